"""The Glue Data Catalog of an Iceberg destination: the statements `policy` prints, the
properties pyiceberg gets, the refused action named, and the ARNs the stand-in checks. Pure."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ClientError

from shiftsync.aws.destination_policy import (
    GLUE_ACTIONS,
    destination_statements,
    glue_location,
    glue_resources,
    s3_destinations_of,
)
from shiftsync.aws.policy import permission_policy
from shiftsync.config import validate_config_data
from shiftsync.destinations.iceberg.catalog import (
    IcebergSettings,
    catalog_errors,
    catalog_properties,
    refused_glue_action,
)
from shiftsync.destinations.lake.s3 import S3Settings
from shiftsync.errors import DestinationError
from shiftsync.local.glue.auth import catalog_resources
from shiftsync.local.glue.versions import stale_version
from tests.unit.test_lake import BASE

PREFIX = "arn:aws:glue:eu-west-1:123456789012"


def test_glue_resources_are_the_catalog_the_database_and_its_tables() -> None:
    assert glue_resources("aws", "eu-west-1", "123456789012", "lake") == [
        f"{PREFIX}:catalog",
        f"{PREFIX}:database/lake",
        f"{PREFIX}:table/lake/*",
    ]


def test_a_glue_location_gives_one_statement_of_the_glue_actions() -> None:
    (statement,) = destination_statements(
        "aws", [("my-lake", glue_location("lake"))], region="eu-west-1", account="123456789012"
    )
    assert statement["Sid"] == "DestinationMyLakeGlueCatalog"
    assert statement["Action"] == list(GLUE_ACTIONS)
    assert statement["Resource"] == glue_resources("aws", "eu-west-1", "123456789012", "lake")
    # Least privilege: no listing of every database, no deleting databases.
    assert "glue:GetDatabases" not in statement["Action"]
    assert "glue:DeleteDatabase" not in statement["Action"]


def _config(destinations: dict[str, Any]) -> Any:
    data = copy.deepcopy(BASE)
    data["destinations"] = destinations
    data["syncs"] = {
        name: {"source": "warehouse", "destination": name, "tables": ["public.*"]}
        for name in destinations
    }
    config, problems = validate_config_data(data, {})
    assert problems == []
    return config


def test_a_glue_destination_written_as_the_connection_adds_its_namespace() -> None:
    config = _config(
        {
            "glue": {
                "type": "iceberg",
                "catalog": "glue",
                "warehouse": "s3://lake/wh",
                "namespace": "sales",
            },
            "own": {
                "type": "iceberg",
                "catalog": "glue",
                "warehouse": "s3://lake/own",
                "credentials": "default",
            },
            "sql": {"type": "iceberg", "warehouse": "s3://lake/sql"},
        }
    )
    assert s3_destinations_of(config, "warehouse") == [
        ("glue", "glue://sales"),
        ("glue", "s3://lake/wh"),
        ("sql", "s3://lake/sql"),
    ]
    name, conn = config.connection("warehouse")
    policy = permission_policy(conn, s3_destinations_of(config, name))
    glue = [s for s in policy["Statement"] if s["Sid"] == "DestinationGlueGlueCatalog"]
    assert glue[0]["Resource"] == glue_resources("aws", conn.region, conn.role.account, "sales")


CREDENTIALS = ReadOnlyCredentials("AKIDEXAMPLE", "secret-example", "token-example")


def test_glue_gets_the_region_and_credentials_of_the_warehouse_writer() -> None:
    s3 = S3Settings("eu-west-1", "http://127.0.0.1:9000", CREDENTIALS)
    properties = catalog_properties(IcebergSettings("glue", "s3://lake/wh"), s3)
    assert properties["type"] == "glue"
    assert properties["glue.region"] == "eu-west-1"
    assert properties["glue.access-key-id"] == "AKIDEXAMPLE"
    assert properties["glue.secret-access-key"] == "secret-example"
    assert properties["glue.session-token"] == "token-example"
    assert "uri" not in properties
    # The endpoint is boto3's own (AWS_ENDPOINT_URL_GLUE), not the S3 one.
    assert "glue.endpoint" not in properties
    sql = catalog_properties(IcebergSettings("sql", "s3://lake/wh", uri="sqlite:///c.db"), s3)
    assert not any(key.startswith("glue.") for key in sql)


def _denied(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": f"User: arn:aws:sts::1:assumed-role/r/s is not authorized to "
                f"perform: glue:{operation}",
            }
        },
        operation,
    )


def test_a_refused_glue_call_names_the_action_and_the_identity() -> None:
    assert refused_glue_action(_denied("CreateTable")) == "glue:CreateTable"
    other = ClientError({"Error": {"Code": "EntityNotFoundException"}}, "GetTable")
    assert refused_glue_action(other) is None
    assert refused_glue_action(ValueError("x")) is None
    settings = IcebergSettings("glue", "s3://lake/wh", identity="AWS profile 'lake'")
    with (
        pytest.raises(DestinationError) as raised,
        catalog_errors(settings, "creating a table", "t"),
    ):
        raise _denied("UpdateTable")
    assert "AWS profile 'lake' was refused glue:UpdateTable" in raised.value.message
    assert raised.value.fix is not None
    assert raised.value.fix.startswith("allow glue:UpdateTable for AWS profile 'lake'")


def test_the_stand_in_checks_each_catalog_operation_on_what_it_names() -> None:
    region, account = "us-east-1", "222222222222"
    arn = f"arn:aws:glue:{region}:{account}"

    def resources(operation: str, body: dict[str, Any]) -> list[str]:
        return catalog_resources(operation, body, "aws", region, account)

    assert resources("CreateDatabase", {"DatabaseInput": {"Name": "db"}}) == [
        f"{arn}:catalog",
        f"{arn}:database/db",
    ]
    table = [f"{arn}:catalog", f"{arn}:database/db", f"{arn}:table/db/t"]
    assert resources("GetTable", {"DatabaseName": "db", "Name": "t"}) == table
    assert resources("DeleteTable", {"DatabaseName": "db", "Name": "t"}) == table
    assert resources("CreateTable", {"DatabaseName": "db", "TableInput": {"Name": "t"}}) == table
    assert resources("UpdateTable", {"DatabaseName": "db", "TableInput": {"Name": "t"}}) == table
    assert resources("GetTables", {"DatabaseName": "db"})[-1] == f"{arn}:table/db/*"
    assert resources("GetDatabases", {}) == [f"{arn}:catalog", f"{arn}:database/*"]
    # Another account's catalog is named by CatalogId.
    assert resources("GetDatabase", {"Name": "db", "CatalogId": "333333333333"})[0] == (
        "arn:aws:glue:us-east-1:333333333333:catalog"
    )
    # Operations outside the Data Catalog list: only a policy on "*" allows them.
    assert resources("StartJobRun", {"JobName": "j"}) == ["*"]


def test_an_update_naming_an_older_version_is_stale() -> None:
    assert stale_version("3", "4")
    assert not stale_version("4", "4")
    assert not stale_version(None, "4")  # VersionId is optional: no lock asked for


def test_an_unreachable_glue_endpoint_says_where_glue_is_looked_for() -> None:
    from botocore.exceptions import EndpointConnectionError

    settings = IcebergSettings("glue", "s3://lake/wh")
    with (
        pytest.raises(DestinationError) as raised,
        catalog_errors(settings, "loading the table", "t"),
    ):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/")
    assert "EndpointConnectionError" in raised.value.message
    assert raised.value.fix is not None
    assert "AWS_ENDPOINT_URL_GLUE" in raised.value.fix
    assert "uri" not in raised.value.fix


def test_the_stand_in_role_can_be_denied_a_glue_action_of_the_lake() -> None:
    from shiftsync.local.standin import lake_statements

    def actions(deny: tuple[str, ...]) -> list[str]:
        return [a for s in lake_statements(deny) for a in s["Action"]]

    assert set(GLUE_ACTIONS) <= set(actions(()))
    assert "glue:UpdateTable" not in actions(("glue:updatetable",))
    # An s3: deny is the staging bucket's (guide_permission_policy), not the lake's.
    assert "s3:PutObject" in actions(("s3:PutObject",))
