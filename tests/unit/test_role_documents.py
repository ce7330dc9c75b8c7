"""Pure parts of the role documents: SSO principals, role chaining, template values, the
schemas `policy` grants, and the loose trust conditions `check` warns about."""

from __future__ import annotations

from typing import Any

import pytest

from shiftsync.aws.policy import (
    chained_session_problem,
    database_grants,
    grant_schemas,
    render_json,
    template_values,
    trust_principal,
)
from shiftsync.aws.trust import loose_external_id_conditions
from shiftsync.config import RedshiftServerlessConfig

ROLE = "arn:aws:iam::210987654321:role/shiftsync-reader"
EXTERNAL_ID = "shiftsync-6f1c2d3e4b5a69788796a5b4c3d2e1f0"


def conn(**changes: Any) -> RedshiftServerlessConfig:
    data: dict[str, Any] = {
        "type": "redshift_serverless",
        "region": "eu-west-1",
        "workgroup": "analytics",
        "database": "dev",
        "role_arn": ROLE,
    }
    data.update(changes)
    return RedshiftServerlessConfig.model_validate(data)


def test_an_sso_session_is_trusted_as_its_role_with_the_reserved_path() -> None:
    session = (
        "arn:aws:sts::568237466542:assumed-role/AWSReservedSSO_Admin_0123abcd/jane@example.com"
    )
    assert trust_principal(session) == (
        "arn:aws:iam::568237466542:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123abcd"
    )
    # Other sessions have no path to add.
    assert trust_principal("arn:aws:sts::568237466542:assumed-role/runner/i-0abc") == (
        "arn:aws:iam::568237466542:role/runner"
    )


@pytest.mark.parametrize(
    ("caller", "duration", "refused"),
    [
        ("arn:aws:sts::568237466542:assumed-role/runner/i-0abc", 7200, True),
        ("arn:aws:sts::568237466542:assumed-role/runner/i-0abc", 3600, False),
        ("arn:aws:iam::568237466542:user/ci", 7200, False),
    ],
)
def test_role_chaining_caps_the_session_at_an_hour(
    caller: str, duration: int, refused: bool
) -> None:
    problem = chained_session_problem(conn(session_duration_seconds=duration), caller)
    assert (problem is not None) is refused
    if problem:
        assert "role chaining" in problem
        assert "3600" in problem
        assert str(duration) in problem


def test_template_values_are_named() -> None:
    template = conn(
        role_arn="arn:aws:iam::123456789012:role/shiftsync-reader",
        workgroup="default-workgroup",
        unload={"bucket": "my-staging-bucket"},
    )
    found = template_values(template)
    assert len(found) == 3
    assert "123456789012" in found[0]
    assert template_values(conn()) == []


def test_grant_schemas_are_those_the_syncs_name() -> None:
    assert grant_schemas(["sales.orders", "public.*", "sales.items"]) == (["public", "sales"], [])
    assert grant_schemas(['"Odd Schema"."Mixed Case"']) == (["Odd Schema"], [])
    assert grant_schemas(["st?ge.*", "*.x"]) == ([], ["*", "st?ge"])
    assert grant_schemas([]) == (["public"], [])


def test_the_json_bundle_grants_the_schemas_given() -> None:
    import json

    bundle = json.loads(render_json(conn(), ROLE, EXTERNAL_ID, ["Odd Schema", "sales"]))
    assert bundle["database_grants"] == database_grants(conn(), ["Odd Schema", "sales"])
    assert (
        'GRANT USAGE ON SCHEMA "Odd Schema" TO "IAMR:shiftsync-reader"'
        in (bundle["database_grants"])
    )


def _trust(condition: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": "Platform",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::568237466542:root"},
        "Action": "sts:AssumeRole",
        **extra,
    }
    if condition is not None:
        statement["Condition"] = condition
    return {"Statement": [statement]}


@pytest.mark.parametrize(
    ("condition", "finding"),
    [
        (None, "does not test sts:ExternalId at all"),
        ({"StringLike": {"sts:ExternalId": "shiftsync-*"}}, "StringLike with the pattern"),
        ({"StringEqualsIfExists": {"sts:ExternalId": EXTERNAL_ID}}, "without an external ID"),
        ({"Null": {"sts:ExternalId": "false"}}, "Null"),
        ({"StringEqualsIgnoreCase": {"sts:ExternalId": EXTERNAL_ID}}, "instead of StringEquals"),
        ({"ForAnyValue:StringLike": {"sts:ExternalId": ["a*"]}}, "pattern"),
    ],
)
def test_loose_external_id_conditions_are_found(
    condition: dict[str, Any] | None, finding: str
) -> None:
    (found,) = loose_external_id_conditions(_trust(condition))
    assert finding in found
    assert found.startswith("Platform")


def test_strict_conditions_and_service_statements_are_not_findings() -> None:
    assert (
        loose_external_id_conditions(_trust({"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}))
        == []
    )
    # StringLike without a wildcard is as exact as StringEquals.
    assert (
        loose_external_id_conditions(_trust({"StringLike": {"sts:ExternalId": EXTERNAL_ID}})) == []
    )
    service = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "redshift.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    assert loose_external_id_conditions(service) == []
