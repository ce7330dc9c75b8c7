"""Every libpq secret of a DSN is masked, in both of libpq's forms."""

from __future__ import annotations

import pytest

from shiftsync.config.problems import LIBPQ_SECRET_KEYS, mask_credentials
from shiftsync.destinations.postgres_session import redact_dsn, scrub


@pytest.mark.parametrize(
    "dsn",
    [
        "host=h dbname=d user=u password=s3cret sslpassword=k3y",
        "host=h dbname=d user=u password='s3cret' sslpassword='k3y'",
        "postgresql://u:s3cret@h/d?sslpassword=k3y&sslmode=require",
    ],
)
def test_redact_and_scrub_leave_no_secret(dsn: str) -> None:
    shown = redact_dsn(dsn)
    assert "s3cret" not in shown
    assert "k3y" not in shown
    message = f"connection to server failed for {dsn}: password s3cret, passphrase k3y"
    scrubbed = scrub(dsn, message)
    assert "s3cret" not in scrubbed
    assert "k3y" not in scrubbed


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("host=h password=abc user=u", "host=h password=<secret> user=u"),
        ("host=h sslpassword='a b' user=u", "host=h sslpassword=<secret> user=u"),
        (
            "postgresql://u:pw@h/db?sslpassword=zz&x=1",
            "postgresql://<secret>@h/db?sslpassword=<secret>&x=1",
        ),
        ("PWD = hunter2", "PWD=<secret>"),
    ],
)
def test_mask_credentials(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked


def test_the_secret_keys_are_libpqs() -> None:
    assert {"password", "sslpassword"} <= LIBPQ_SECRET_KEYS
