"""Provisioned-cluster connections, without I/O: the identifier rules, the refusals at config
check, the Data API parameters, and the least-privilege policy of each log-in mode."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from shiftsync.aws.policy import (
    credentials_action,
    database_grants,
    permission_policy,
    render_policy_bundle,
    trust_policy,
)
from shiftsync.config import (
    SECRET_USER_PLACEHOLDER,
    ConnectionConfig,
    cluster_identifier_problem,
    config_template,
    validate_config_data,
)
from shiftsync.preflight.checks import mentions_get_credentials, planned_checks

ACCOUNT = "210987654321"
SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:redshift/etl-AbCdEf"
BASE: dict[str, Any] = {
    "region": "eu-west-1",
    "database": "analytics",
    "role_arn": f"arn:aws:iam::{ACCOUNT}:role/reader",
}
CLUSTER: dict[str, Any] = {**BASE, "type": "redshift_provisioned", "cluster_identifier": "prod-1"}


def problems(conn: dict[str, Any]) -> list[str]:
    document = {
        "connections": {"c": conn},
        "destinations": {"d": {"type": "duckdb"}},
        "syncs": {"s": {"source": "c", "destination": "d", "tables": ["public.*"]}},
    }
    _, found = validate_config_data(document, {})
    return [problem.line("shiftsync.yaml") for problem in found]


def connection(**extra: Any) -> ConnectionConfig:
    document = {
        "connections": {"c": {**CLUSTER, **extra}},
        "destinations": {"d": {"type": "duckdb"}},
        "syncs": {"s": {"source": "c", "destination": "d", "tables": ["public.*"]}},
    }
    config, found = validate_config_data(document, {})
    assert config is not None, found
    return config.connections["c"]


@pytest.mark.parametrize(
    "name", ["a", "prod-1", "my-cluster-2", "x" * 63, "a1-b2-c3", "redshift-cluster-1"]
)
def test_cluster_identifiers_aws_accepts(name: str) -> None:
    assert cluster_identifier_problem(name) is None
    assert problems({**CLUSTER, "cluster_identifier": name}) == []


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "1-63 characters"),
        ("x" * 64, "1-63 characters"),
        ("Prod", "lowercase letters, digits and -"),
        ("prod_1", "lowercase letters, digits and -"),
        ("prod.1", "lowercase letters, digits and -"),
        ("prod 1", "lowercase letters, digits and -"),
        ("1prod", "start with a letter"),
        ("-prod", "start with a letter"),
        ("prod--1", "two consecutive hyphens"),
        ("prod-", "end with a hyphen"),
        ("ü-cluster", "lowercase letters, digits and -"),
    ],
)
def test_malformed_cluster_identifiers_are_refused_naming_the_key(name: str, why: str) -> None:
    problem = cluster_identifier_problem(name)
    assert problem is not None
    assert why in problem
    [line] = problems({**CLUSTER, "cluster_identifier": name})
    assert "connections.c.cluster_identifier" in line
    assert why in line
    assert "expected 1-63 lowercase letters, digits and -" in line


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:s3:::bucket",
        "arn:aws:secretsmanager:eu-west-1:123:secret:x",
        "arn:aws:secretsmanager:eu-west-1:210987654321:parameter:x",
        "redshift/etl",
        "arn:aws:iam::210987654321:role/reader",
        "arn:aws:secretsmanager:eu-west-1:210987654321:secret:",
        "arn:aws:secretsmanager:eu-west-1:210987654321:secret:a b",
    ],
)
def test_a_secret_arn_that_is_not_a_secrets_manager_arn_is_refused(arn: str) -> None:
    [line] = problems({**CLUSTER, "secret_arn": arn})
    assert "connections.c.secret_arn: not a Secrets Manager secret ARN" in line
    assert "arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name>" in line


@pytest.mark.parametrize("user", ["", "public", "a b", 'x"y', "ü", "u" * 129])
def test_a_malformed_db_user_is_refused(user: str) -> None:
    [line] = problems({**CLUSTER, "db_user": user})
    assert "connections.c.db_user: not a Redshift user name" in line


def test_a_connection_naming_a_workgroup_and_a_cluster_is_refused() -> None:
    [line] = problems({**CLUSTER, "workgroup": "wg1"})
    assert "connections.c.workgroup: a workgroup on a redshift_provisioned connection" in line
    lines = problems({**BASE, "type": "redshift_serverless", "workgroup": "wg1",
                      "cluster_identifier": "prod-1"})  # fmt: skip
    assert len(lines) == 1
    assert "names both a workgroup and a cluster" in lines[0]
    assert "connections.c.cluster_identifier" in lines[0]


def test_db_user_and_secret_arn_together_are_refused() -> None:
    [line] = problems({**CLUSTER, "db_user": "etl", "secret_arn": SECRET})
    assert "connections.c.secret_arn: db_user and secret_arn together" in line
    assert "keep one of them" in line


@pytest.mark.parametrize(("key", "value"), [("db_user", "etl"), ("secret_arn", SECRET)])
def test_cluster_options_on_a_workgroup_are_refused(key: str, value: str) -> None:
    [line] = problems({**BASE, "type": "redshift_serverless", "workgroup": "wg1", key: value})
    assert f"connections.c.{key}: {key} on a Serverless workgroup connection" in line
    assert "remove it, or use cluster_identifier" in line


def test_a_target_is_required_and_must_match_the_type() -> None:
    [line] = problems({**BASE, "type": "redshift_provisioned"})
    assert "connections.c.cluster_identifier: missing" in line
    [line] = problems({**BASE, "type": "redshift_serverless"})
    assert "connections.c.workgroup: missing" in line
    lines = problems({**BASE, "type": "redshift_serverless", "cluster_identifier": "prod-1"})
    assert any("type: redshift_provisioned" in line for line in lines)


def test_the_data_api_parameters_of_each_mode() -> None:
    assert connection().data_api_target() == {
        "ClusterIdentifier": "prod-1",
        "Database": "analytics",
    }
    assert connection(db_user="etl").data_api_target()["DbUser"] == "etl"
    assert connection(secret_arn=SECRET).data_api_target()["SecretArn"] == SECRET
    assert "WorkgroupName" not in connection(db_user="etl").data_api_target()
    assert connection().login_user == "IAMR:reader"
    assert connection(db_user="etl").login_user == "etl"
    assert connection(secret_arn=SECRET).login_user == SECRET_USER_PLACEHOLDER
    assert connection().target_label == "cluster prod-1"


def actions(document: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for statement in document["Statement"]:
        listed = statement["Action"]
        for action in [listed] if isinstance(listed, str) else listed:
            found[action] = statement["Resource"]
    return found


def test_the_policy_with_iam_credentials() -> None:
    granted = actions(permission_policy(connection()))
    assert granted["redshift:GetClusterCredentialsWithIAM"] == (
        f"arn:aws:redshift:eu-west-1:{ACCOUNT}:dbname:prod-1/analytics"
    )
    assert granted["redshift-data:ExecuteStatement"] == (
        f"arn:aws:redshift:eu-west-1:{ACCOUNT}:cluster:prod-1"
    )
    assert "redshift-serverless:GetCredentials" not in granted
    assert "redshift:GetClusterCredentials" not in granted
    assert "secretsmanager:GetSecretValue" not in granted


def test_the_policy_with_a_database_user() -> None:
    granted = actions(permission_policy(connection(db_user="etl")))
    assert granted["redshift:GetClusterCredentials"] == [
        f"arn:aws:redshift:eu-west-1:{ACCOUNT}:dbuser:prod-1/etl",
        f"arn:aws:redshift:eu-west-1:{ACCOUNT}:dbname:prod-1/analytics",
    ]
    assert "redshift:GetClusterCredentialsWithIAM" not in granted
    assert "redshift-serverless:GetCredentials" not in granted


def test_the_policy_with_a_secret() -> None:
    granted = actions(permission_policy(connection(secret_arn=SECRET)))
    assert granted["secretsmanager:GetSecretValue"] == SECRET
    assert not {a for a in granted if a.startswith(("redshift:", "redshift-serverless:"))}


@pytest.mark.parametrize(
    ("extra", "action"),
    [
        ({}, "redshift:GetClusterCredentialsWithIAM"),
        ({"db_user": "etl"}, "redshift:GetClusterCredentials"),
        ({"secret_arn": SECRET}, "secretsmanager:GetSecretValue"),
    ],
)
def test_every_format_carries_the_modes_action_and_no_serverless_one(
    extra: dict[str, str], action: str
) -> None:
    conn = connection(**extra)
    assert credentials_action(conn) == action
    assert action in planned_checks(conn)
    assert "redshift-serverless:GetCredentials" not in planned_checks(conn)
    for fmt in ("json", "terraform", "cloudformation"):
        text = render_policy_bundle(conn, f"arn:aws:iam::{ACCOUNT}:user/me", "shiftsync-x1", fmt)
        assert action in text, fmt
        assert "redshift-serverless" not in text, fmt
        assert "Redshift Serverless" not in text, fmt
        assert "prod-1" in text, fmt


def test_unload_on_a_cluster_trusts_redshift_for_its_database_user() -> None:
    conn = connection(db_user="etl", unload={"bucket": "stage-bkt"})
    statement = trust_policy(f"arn:aws:iam::{ACCOUNT}:user/me", "shiftsync-x1", conn)["Statement"][
        1
    ]
    assert statement["Principal"] == {"Service": ["redshift.amazonaws.com"]}
    assert statement["Condition"]["StringEquals"]["sts:ExternalId"] == (
        f"arn:aws:redshift:eu-west-1:{ACCOUNT}:dbuser:prod-1/etl"
    )
    bundle = json.loads(
        render_policy_bundle(conn, f"arn:aws:iam::{ACCOUNT}:user/me", "shiftsync-x1", "json")
    )
    assert (
        "modify-cluster-iam-roles --region eu-west-1 --cluster-identifier prod-1"
        in (bundle["namespace_association"])
    )


def test_grants_go_to_the_login_user() -> None:
    assert (
        database_grants(connection(db_user="etl"))[0] == 'GRANT USAGE ON SCHEMA "public" TO "etl"'
    )
    assert database_grants(connection())[0].endswith('TO "IAMR:reader"')
    assert database_grants(connection(secret_arn=SECRET))[0].endswith(SECRET_USER_PLACEHOLDER)


@pytest.mark.parametrize(
    ("message", "action", "expected"),
    [
        ("not authorized to perform: redshift:GetClusterCredentials on",
         "redshift:GetClusterCredentials", True),
        ("not authorized to perform: redshift:GetClusterCredentialsWithIAM on",
         "redshift:GetClusterCredentials", False),
        ("not authorized to perform: redshift:GetClusterCredentialsWithIAM on",
         "redshift:GetClusterCredentialsWithIAM", True),
        ("not authorized to perform: secretsmanager:GetSecretValue",
         "secretsmanager:GetSecretValue", True),
        ("not authorized to perform: redshift-data:ListSchemas",
         "secretsmanager:GetSecretValue", False),
        ("redshift-serverless:GetCredentials", "redshift-serverless:GetCredentials", True),
    ],
)  # fmt: skip
def test_a_refusal_of_the_login_action_is_told_from_the_calls_own(
    message: str, action: str, expected: bool
) -> None:
    assert mentions_get_credentials(message, action) is expected


def test_init_cluster_template_loads_as_a_cluster() -> None:
    import yaml

    text = config_template(cluster=True)
    document = yaml.safe_load(text)
    config, found = validate_config_data(document, {})
    assert config is not None, found
    conn = config.connections["warehouse"]
    assert conn.is_cluster
    assert conn.auth_mode == "cluster_iam"
    assert "workgroup" not in text.split("connections:")[1].split("destinations:")[0].replace(
        "workgroup's", ""
    )


def client_error(code: str, message: str) -> Any:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, "ExecuteStatement")


@pytest.mark.parametrize(
    ("extra", "action"),
    [
        ({}, "redshift:GetClusterCredentialsWithIAM"),
        ({"db_user": "etl"}, "redshift:GetClusterCredentials"),
        ({"secret_arn": SECRET}, "secretsmanager:GetSecretValue"),
    ],
)
def test_a_refused_call_on_a_cluster_names_the_logins_action(
    extra: dict[str, str], action: str
) -> None:
    from shiftsync.errors import AccessError
    from shiftsync.redshift.data_api_errors import mapped_client_error

    mapped = mapped_client_error(
        client_error("AccessDeniedException", "not authorized"),
        "ExecuteStatement",
        "public.venue",
        connection(**extra),
        1,
    )
    assert isinstance(mapped, AccessError)
    assert action in (mapped.fix or "")
    assert "cluster prod-1" in (mapped.fix or "")
    assert "redshift-serverless" not in (mapped.fix or "")


def test_an_unknown_cluster_is_a_configuration_error_naming_the_key() -> None:
    from shiftsync.errors import ConfigError
    from shiftsync.redshift.data_api_errors import mapped_client_error

    mapped = mapped_client_error(
        client_error("ResourceNotFoundException", "Cluster prod-1 not found"),
        "ExecuteStatement",
        "public.venue",
        connection(),
        1,
    )
    assert isinstance(mapped, ConfigError)
    assert "cluster_identifier (prod-1)" in (mapped.fix or "")


def test_a_missing_database_on_a_cluster_lists_databases_with_the_cluster_options() -> None:
    from shiftsync.redshift.data_api_errors import mapped_client_error

    mapped = mapped_client_error(
        client_error("DatabaseConnectionException", 'FATAL: database "analytics" does not exist'),
        "ExecuteStatement",
        "public.venue",
        connection(db_user="etl"),
        1,
    )
    assert "--cluster-identifier prod-1 --db-user etl" in (mapped.fix or "")


def test_the_templates_cluster_is_warned_about_until_changed() -> None:
    from shiftsync.aws.policy import template_values

    assert "cluster_identifier my-cluster" in template_values(
        connection(cluster_identifier="my-cluster")
    )
    assert not any("cluster_identifier" in value for value in template_values(connection()))
