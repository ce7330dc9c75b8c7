"""Configuration problems never show a credential, wherever the value was put."""

from __future__ import annotations

import pytest

from shiftsync.config import validate_config_data
from shiftsync.config.problems import mask_credentials

DSN = "postgresql://bob:hunter2@db.example.com:5432/analytics"


def problem_texts(data: object, env: dict[str, str] | None = None) -> str:
    config, problems = validate_config_data(data, env or {})
    assert config is None
    return "\n".join(str(problem) for problem in problems)


@pytest.mark.parametrize(
    ("data", "env"),
    [
        ({"destinations": {"pg": DSN}}, None),
        ({"destinations": {"pg": "${PG_DSN}"}}, {"PG_DSN": DSN}),
        ({"connections": {"rs": {"workgroup": DSN}}}, None),
        ({"destinations": {"pg": "host=db user=bob password=hunter2"}}, None),
    ],
    ids=["url-in-wrong-place", "url-from-env", "url-under-another-key", "key-value-dsn"],
)
def test_a_misplaced_dsn_shows_no_password(data: object, env: dict[str, str] | None) -> None:
    text = problem_texts(data, env)
    assert "destinations.pg" in text or "connections.rs" in text
    assert "hunter2" not in text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (DSN, "postgresql://<secret>@db.example.com:5432/analytics"),
        ("https://user@host/x", "https://<secret>@host/x"),
        ("host=db PASSWORD = s3cr3t port=5432", "host=db PASSWORD=<secret> port=5432"),
        ("s3://bucket/prefix/", "s3://bucket/prefix/"),
        ("plain text", "plain text"),
    ],
)
def test_mask_credentials(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked
