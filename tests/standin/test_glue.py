"""The stand-in's Glue Data Catalog (moto's Glue) under IAM: each call is authorised on the
catalog, database and table ARNs it names, and refusals come back as awsJson
`AccessDeniedException`. The role holds the lake's Glue statement for database `shiftsync`."""

from __future__ import annotations

import contextlib
import http.client
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from shiftsync.local.standin import CUSTOMER_ACCOUNT, LAKE_GLUE_DATABASE, REGION, StandInInfo
from tests.standin.test_iam import assume, client_as, error_code_of, status_of

CATALOG = f"arn:aws:glue:{REGION}:{CUSTOMER_ACCOUNT}"


@pytest.fixture
def glue(info: StandInInfo) -> Any:
    return client_as("glue", assume(info.role_arn, info.external_id))


def _ensure_database(glue: Any) -> None:
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):
        glue.create_database(DatabaseInput={"Name": LAKE_GLUE_DATABASE})


def test_the_role_may_use_its_database_and_its_tables(glue: Any) -> None:
    _ensure_database(glue)
    name = f"t_{uuid.uuid4().hex[:8]}"
    glue.create_table(DatabaseName=LAKE_GLUE_DATABASE, TableInput={"Name": name})
    found = glue.get_table(DatabaseName=LAKE_GLUE_DATABASE, Name=name)["Table"]
    assert found["Name"] == name
    glue.delete_table(DatabaseName=LAKE_GLUE_DATABASE, Name=name)


def test_another_database_is_refused_naming_the_action_and_resource(glue: Any) -> None:
    with pytest.raises(ClientError) as refused:
        glue.get_database(Name="other")
    assert error_code_of(refused) == "AccessDeniedException"
    assert status_of(refused) == 400
    message = refused.value.response["Error"]["Message"]
    assert "assumed-role/shiftsync-reader/" in message
    assert f"glue:GetDatabase on resource: {CATALOG}:database/other" in message


def test_listing_every_database_is_not_granted(glue: Any) -> None:
    with pytest.raises(ClientError) as refused:
        glue.get_databases()
    assert error_code_of(refused) == "AccessDeniedException"
    assert "glue:GetDatabases" in refused.value.response["Error"]["Message"]


def test_the_platform_users_own_keys_are_refused(info: StandInInfo) -> None:
    with pytest.raises(ClientError) as refused:
        boto3.client("glue").get_database(Name=LAKE_GLUE_DATABASE)
    assert error_code_of(refused) == "AccessDeniedException"


def test_an_unsigned_glue_request_is_a_missing_token(info: StandInInfo) -> None:
    host = urlsplit(info.endpoint)
    connection = http.client.HTTPConnection(host.hostname or "127.0.0.1", host.port, timeout=10)
    try:
        connection.request(
            "POST",
            "/",
            body=b"{}",
            headers={
                "X-Amz-Target": "AWSGlue.GetDatabases",
                "Content-Type": "application/x-amz-json-1.1",
            },
        )
        answer = connection.getresponse()
        assert answer.status == 403
        assert json.loads(answer.read())["__type"] == "MissingAuthenticationTokenException"
    finally:
        connection.close()


def test_a_commit_from_a_stale_version_is_a_concurrent_modification(glue: Any) -> None:
    # pyiceberg commits with UpdateTable and the VersionId it read: Glue's optimistic lock.
    _ensure_database(glue)
    name = f"t_{uuid.uuid4().hex[:8]}"
    glue.create_table(DatabaseName=LAKE_GLUE_DATABASE, TableInput={"Name": name})
    read = glue.get_table(DatabaseName=LAKE_GLUE_DATABASE, Name=name)["Table"]["VersionId"]
    table_input = {"Name": name, "Parameters": {"metadata_location": "s3://lake/1.json"}}
    glue.update_table(DatabaseName=LAKE_GLUE_DATABASE, TableInput=table_input, VersionId=read)
    with pytest.raises(ClientError) as refused:
        glue.update_table(DatabaseName=LAKE_GLUE_DATABASE, TableInput=table_input, VersionId=read)
    assert error_code_of(refused) == "ConcurrentModificationException"
    glue.delete_table(DatabaseName=LAKE_GLUE_DATABASE, Name=name)
