"""Malformed requests get AWS's error in AWS's shape; the stand-in never shows a traceback or dies.

Raw HTTP (http.client) reaches the endpoints named by the AWS_ENDPOINT_URL_* variables; signed
requests are signed with botocore's SigV4 signer and the assumed role's credentials.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.local.standin import StandInInfo

JSON_TYPE = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


def _send(url: str, method: str, headers: dict[str, str], body: bytes) -> Answer:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=15)
    try:
        connection.request(method, parts.path or "/", body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.getheader("Content-Type") or "", response.read())
    finally:
        connection.close()


def _signed(
    credentials: Any,
    service: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    region: str,
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(credentials, service, region).add_auth(request)
    return dict(request.headers.items())


def _data_api_url() -> str:
    return os.environ["AWS_ENDPOINT_URL_REDSHIFT_DATA"] + "/"


def _call(
    assumed: AssumedRoleSession,
    info: StandInInfo,
    target: str,
    body: bytes,
    *,
    sign: bool = True,
) -> Answer:
    url = _data_api_url()
    headers = {"X-Amz-Target": f"RedshiftData.{target}", "Content-Type": JSON_TYPE}
    if sign:
        headers = _signed(
            assumed.frozen_credentials(), "redshift-data", url, headers, body, info.region
        )
    return _send(url, "POST", headers, body)


def _assert_aws_json_error(answer: Answer, status: int, error_type: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert answer.content_type == JSON_TYPE
    assert b"Traceback" not in answer.body
    payload = answer.json()
    assert payload["__type"] == error_type, payload
    assert isinstance(payload["message"], str)
    return payload


@pytest.fixture(autouse=True)
def still_serving(redshift_data: Any, info: StandInInfo) -> Any:
    """After every malformed request, the stand-in still answers a good one."""
    yield
    answer = redshift_data.list_databases(WorkgroupName=info.workgroup, Database=info.database)
    assert info.database in answer["Databases"]


def _body(info: StandInInfo, **members: Any) -> bytes:
    return json.dumps(
        {"WorkgroupName": info.workgroup, "Database": info.database, **members}
    ).encode()


def test_no_authorization_header_is_a_missing_token(
    assumed: AssumedRoleSession, info: StandInInfo
) -> None:
    answer = _call(assumed, info, "ExecuteStatement", _body(info, Sql="select 1"), sign=False)
    payload = _assert_aws_json_error(answer, 403, "MissingAuthenticationTokenException")
    assert payload["message"] == "Missing Authentication Token"


def test_unsigned_sts_and_s3_requests_are_refused_in_their_own_shape(info: StandInInfo) -> None:
    sts = _send(
        os.environ["AWS_ENDPOINT_URL_STS"] + "/",
        "POST",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"Action=GetCallerIdentity&Version=2011-06-15",
    )
    assert sts.status == 403
    assert b"<Code>MissingAuthenticationToken</Code>" in sts.body
    s3 = _send(os.environ["AWS_ENDPOINT_URL_S3"] + f"/{info.bucket}", "GET", {}, b"")
    assert s3.status == 403
    assert b"<Code>AccessDenied</Code>" in s3.body
    assert b"Traceback" not in sts.body + s3.body


def test_an_unknown_operation_is_named_as_such(
    assumed: AssumedRoleSession, info: StandInInfo
) -> None:
    answer = _call(assumed, info, "DropEverything", b"{}")
    _assert_aws_json_error(answer, 400, "UnknownOperationException")


def test_a_bad_signature_is_refused(assumed: AssumedRoleSession, info: StandInInfo) -> None:
    body = _body(info)
    url = _data_api_url()
    headers = _signed(
        assumed.frozen_credentials(),
        "redshift-data",
        url,
        {"X-Amz-Target": "RedshiftData.ListDatabases", "Content-Type": JSON_TYPE},
        body,
        info.region,
    )
    tampered = body.replace(b'"dev"', b'"xyz"')
    answer = _send(url, "POST", headers, tampered)
    _assert_aws_json_error(answer, 403, "InvalidSignatureException")


@pytest.mark.parametrize(
    ("target", "body", "error_type", "message"),
    [
        ("ExecuteStatement", b"{not json", "SerializationException", "not valid JSON"),
        ("ExecuteStatement", b"[1, 2]", "SerializationException", "JSON object"),
        ("ExecuteStatement", b"\xff\xfe\x00garbage", "SerializationException", "not valid UTF-8"),
        ("ExecuteStatement", None, "ValidationException", "Value null at 'sql'"),
        ("ExecuteStatement", {"Sql": 5}, "SerializationException", "converted to a String"),
        ("ExecuteStatement", {"Sql": ["a"]}, "SerializationException", "Start of list"),
        ("ExecuteStatement", {"Sql": "select 1", "Parameters": "x"}, "SerializationException", ""),
        (
            "ExecuteStatement",
            {"Sql": "select 1", "Parameters": [{"name": "a"}]},
            "ValidationException",
            "Value null at 'parameters.1.member.value'",
        ),
        (
            "ExecuteStatement",
            {"Sql": "select 1", "ResultFormat": "XML"},
            "ValidationException",
            "enum value set: [JSON, CSV]",
        ),
        (
            "ExecuteStatement",
            {"Sql": "select 1", "WaitTimeSeconds": True},
            "SerializationException",
            "",
        ),
        ("ListTables", {"MaxResults": "ten"}, "SerializationException", "an Integer"),
        ("ListTables", {"NextToken": "garbage"}, "ValidationException", "NextToken"),
        ("ListSchemas", {"Database": None}, "ValidationException", "Value null at 'database'"),
        ("DescribeStatement", {"Id": "not-a-uuid"}, "ValidationException", "regular expression"),
        ("DescribeStatement", {"Id": {"nested": 1}}, "SerializationException", "structure"),
        ("CancelStatement", {}, "ValidationException", "Value null at 'id'"),
    ],
)
def test_malformed_bodies_get_aws_errors(
    assumed: AssumedRoleSession,
    info: StandInInfo,
    target: str,
    body: bytes | dict[str, Any] | None,
    error_type: str,
    message: str,
) -> None:
    if body is None:
        raw = _body(info)
    elif isinstance(body, dict):
        raw = json.dumps(
            {"WorkgroupName": info.workgroup, "Database": info.database, **body}
            if target in ("ExecuteStatement", "ListTables", "ListSchemas")
            else body
        ).encode()
    else:
        raw = body
    payload = _assert_aws_json_error(_call(assumed, info, target, raw), 400, error_type)
    assert message in payload["message"]


def test_an_empty_body_is_an_empty_request(assumed: AssumedRoleSession, info: StandInInfo) -> None:
    payload = _assert_aws_json_error(
        _call(assumed, info, "ExecuteStatement", b""), 400, "ValidationException"
    )
    assert "Value null at 'sql'" in payload["message"]


def test_session_duration_below_the_minimum_is_refused(info: StandInInfo) -> None:
    url = os.environ["AWS_ENDPOINT_URL_STS"] + "/"
    body = urlencode(
        {
            "Action": "AssumeRole",
            "Version": "2011-06-15",
            "RoleArn": info.role_arn,
            "RoleSessionName": "probe",
            "ExternalId": info.external_id,
            "DurationSeconds": "899",
        }
    ).encode()
    credentials = boto3.Session().get_credentials()
    assert credentials is not None
    headers = _signed(
        credentials.get_frozen_credentials(),
        "sts",
        url,
        {"Content-Type": "application/x-www-form-urlencoded"},
        body,
        info.region,
    )
    answer = _send(url, "POST", headers, body)
    assert answer.status == 400
    assert b"<Code>ValidationError</Code>" in answer.body
    assert b"greater than or equal to 900" in answer.body


def test_garbage_on_the_socket_does_not_kill_the_server(info: StandInInfo) -> None:
    parts = urlsplit(info.endpoint)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01 this is not HTTP at all\r\n\r\n")
        raw.recv(1024)


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ({"ClusterIdentifier": "my-cluster"}, "ClusterIdentifier"),
        ({"SecretArn": "arn:aws:secretsmanager:us-east-1:222222222222:secret:x"}, "SecretArn"),
        ({"DbUser": "admin"}, "DbUser"),
        (
            {"SessionKeepAliveSeconds": 60, "SessionId": "0" * 8 + "-0000-0000-0000-" + "0" * 12},
            "SessionId",
        ),
    ],
)
def test_unsupported_authentication_and_sessions_are_refused(
    redshift_data: Any, info: StandInInfo, members: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ClientError) as refused:
        redshift_data.execute_statement(
            WorkgroupName=info.workgroup, Database=info.database, Sql="select 1", **members
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert fragment in refused.value.response["Error"]["Message"]


def test_list_sessions_is_not_among_the_guide_actions(redshift_data: Any) -> None:
    # ListSessions is not among the guide's actions: the role is refused, in JSON.
    with pytest.raises(ClientError) as refused:
        redshift_data.list_sessions()
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
