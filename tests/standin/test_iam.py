"""IAM as AWS evaluates it: signatures, session tokens, trust across accounts, permissions.

The platform account holds the IAM user the tests run as (static keys in AWS_ACCESS_KEY_ID);
the customer account holds the roles. Roles with other policies are made with
`standin.create_role`, as a customer would change their role, without restarting anything.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

import boto3
import pytest
from botocore.exceptions import ClientError

from shiftsync.local.iam import evaluation as iam
from shiftsync.local.standin import (
    BUCKET,
    CUSTOMER_ACCOUNT,
    PLATFORM_ACCOUNT,
    ROLE_NAME,
    StandIn,
    StandInInfo,
    guide_permission_policy,
    guide_trust_policy,
)

PLATFORM_ROOT: Final = f"arn:aws:iam::{PLATFORM_ACCOUNT}:root"


def error_code_of(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def status_of(raised: pytest.ExceptionInfo[ClientError]) -> int:
    return int(raised.value.response["ResponseMetadata"]["HTTPStatusCode"])


def assume(role_arn: str, external_id: str | None, **kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": "tests", **kwargs}
    if external_id is not None:
        arguments["ExternalId"] = external_id
    answer: Any = boto3.client("sts").assume_role(**arguments)
    return dict(answer["Credentials"])


def client_as(service: str, credentials: dict[str, Any]) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def _role(
    standin: StandIn,
    info: StandInInfo,
    *,
    deny: tuple[str, ...] = (),
    trust: dict[str, Any] | None = None,
) -> str:
    name = f"probe-{uuid.uuid4().hex[:12]}"
    return standin.create_role(
        name,
        guide_permission_policy(BUCKET, deny=deny),
        trust or guide_trust_policy(PLATFORM_ROOT, info.external_id),
    )


# -- AssumeRole and the trust policy -------------------------------------------------------


def test_the_right_external_id_gives_an_assumed_role_session(info: StandInInfo) -> None:
    credentials = assume(info.role_arn, info.external_id)
    identity = client_as("sts", credentials).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{CUSTOMER_ACCOUNT}:assumed-role/{ROLE_NAME}/tests"
    assert identity["Account"] == CUSTOMER_ACCOUNT


@pytest.mark.parametrize("external_id", ["not-the-id", None])
def test_wrong_or_missing_external_id_is_refused(
    info: StandInInfo, external_id: str | None
) -> None:
    with pytest.raises(ClientError) as refused:
        assume(info.role_arn, external_id)
    assert error_code_of(refused) == "AccessDenied"
    assert status_of(refused) == 403


def test_unknown_role_is_refused(info: StandInInfo) -> None:
    with pytest.raises(ClientError) as refused:
        assume(f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/no-such-role", info.external_id)
    assert error_code_of(refused) == "AccessDenied"


@pytest.mark.parametrize(
    "principal",
    [PLATFORM_ROOT, PLATFORM_ACCOUNT, f"arn:aws:iam::{PLATFORM_ACCOUNT}:user/shiftsync-runner"],
)
def test_the_platform_account_or_user_as_principal_is_honoured(
    standin: StandIn, info: StandInInfo, principal: str
) -> None:
    role_arn = _role(standin, info, trust=guide_trust_policy(principal, info.external_id))
    assert assume(role_arn, info.external_id)["AccessKeyId"]


def test_another_account_as_principal_is_refused(standin: StandIn, info: StandInInfo) -> None:
    trust = guide_trust_policy("arn:aws:iam::333333333333:root", info.external_id)
    role_arn = _role(standin, info, trust=trust)
    with pytest.raises(ClientError) as refused:
        assume(role_arn, info.external_id)
    assert error_code_of(refused) == "AccessDenied"


def test_a_trust_without_external_id_lets_anyone_in_the_account_assume(
    standin: StandIn, info: StandInInfo
) -> None:
    role_arn = _role(standin, info, trust=guide_trust_policy(PLATFORM_ROOT, None))
    assert assume(role_arn, None)["AccessKeyId"]
    assert assume(role_arn, "whatever-id")["AccessKeyId"]


def test_a_service_principal_does_not_trust_a_user(standin: StandIn, info: StandInInfo) -> None:
    trust = guide_trust_policy(PLATFORM_ROOT, info.external_id)
    trust["Statement"] = [trust["Statement"][1]]  # redshift.amazonaws.com only
    role_arn = _role(standin, info, trust=trust)
    with pytest.raises(ClientError) as refused:
        assume(role_arn, info.external_id)
    assert error_code_of(refused) == "AccessDenied"
    assert iam.service_trusted(trust, "redshift.amazonaws.com")


def test_session_duration_above_the_role_maximum_is_refused(info: StandInInfo) -> None:
    assert assume(info.role_arn, info.external_id, DurationSeconds=900)["AccessKeyId"]
    with pytest.raises(ClientError) as refused:
        assume(info.role_arn, info.external_id, DurationSeconds=3601)
    assert error_code_of(refused) == "ValidationError"
    assert "MaxSessionDuration" in refused.value.response["Error"]["Message"]


# -- signatures and session tokens ----------------------------------------------------------


def test_a_wrong_secret_fails_the_signature(info: StandInInfo) -> None:
    sts = boto3.client(
        "sts", aws_access_key_id=info.access_key_id, aws_secret_access_key="not-the-secret"
    )
    with pytest.raises(ClientError) as refused:
        sts.get_caller_identity()
    assert error_code_of(refused) == "SignatureDoesNotMatch"
    assert status_of(refused) == 403


def test_an_unknown_access_key_is_refused() -> None:
    sts = boto3.client(
        "sts", aws_access_key_id="AKIAUNKNOWNKEY000000", aws_secret_access_key="whatever"
    )
    with pytest.raises(ClientError) as refused:
        sts.get_caller_identity()
    assert error_code_of(refused) == "InvalidClientTokenId"


def test_redshift_data_checks_signature_and_session_token(info: StandInInfo) -> None:
    credentials = assume(info.role_arn, info.external_id)
    arguments = {"WorkgroupName": info.workgroup, "Database": info.database}
    wrong_secret = dict(credentials, SecretAccessKey="not-the-secret")
    with pytest.raises(ClientError) as bad_signature:
        client_as("redshift-data", wrong_secret).list_databases(**arguments)
    assert error_code_of(bad_signature) == "InvalidSignatureException"
    no_token: Any = boto3.client(
        "redshift-data",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
    )
    with pytest.raises(ClientError) as missing_token:
        no_token.list_databases(**arguments)
    assert error_code_of(missing_token) == "UnrecognizedClientException"
    assert status_of(missing_token) == 403


def test_an_expired_session_is_refused_everywhere(info: StandInInfo) -> None:
    credentials = assume(info.role_arn, info.external_id)
    redshift_data = client_as("redshift-data", credentials)
    s3 = client_as("s3", credentials)
    arguments = {"WorkgroupName": info.workgroup, "Database": info.database}
    assert redshift_data.list_databases(**arguments)["Databases"]
    assert iam.expire_session(credentials["AccessKeyId"]) is True
    with pytest.raises(ClientError) as expired:
        redshift_data.list_databases(**arguments)
    assert error_code_of(expired) == "ExpiredTokenException"
    with pytest.raises(ClientError) as expired_s3:
        s3.list_objects_v2(Bucket=info.bucket)
    assert error_code_of(expired_s3) == "ExpiredToken"
    # A new session of the same role works.
    fresh = client_as("redshift-data", assume(info.role_arn, info.external_id))
    assert fresh.list_databases(**arguments)["Databases"]
    assert iam.expire_session("ASIANOSUCHKEY0000000") is False


# -- the role's permission policy -----------------------------------------------------------


def test_the_platform_user_itself_may_not_use_the_data_api(info: StandInInfo) -> None:
    with pytest.raises(ClientError) as refused:
        boto3.client("redshift-data").list_databases(
            WorkgroupName=info.workgroup, Database=info.database
        )
    assert error_code_of(refused) == "AccessDeniedException"
    assert info.principal_arn in refused.value.response["Error"]["Message"]


def _call(client: Any, info: StandInInfo, action: str, statement_id: str) -> Any:
    target = {"WorkgroupName": info.workgroup, "Database": info.database}
    calls = {
        "ExecuteStatement": lambda: client.execute_statement(**target, Sql="select 1"),
        "DescribeStatement": lambda: client.describe_statement(Id=statement_id),
        "GetStatementResult": lambda: client.get_statement_result(Id=statement_id),
        "CancelStatement": lambda: client.cancel_statement(Id=statement_id),
        "DescribeTable": lambda: client.describe_table(**target, Table="category"),
        "ListDatabases": lambda: client.list_databases(**target),
        "ListSchemas": lambda: client.list_schemas(**target),
        "ListTables": lambda: client.list_tables(**target),
    }
    return calls[action]()


@pytest.mark.parametrize(
    "action",
    [
        "ExecuteStatement",
        "DescribeStatement",
        "GetStatementResult",
        "CancelStatement",
        "DescribeTable",
        "ListDatabases",
        "ListSchemas",
        "ListTables",
    ],
)
def test_a_denied_action_is_refused_as_json_access_denied(
    standin: StandIn, info: StandInInfo, action: str
) -> None:
    role_arn = _role(standin, info, deny=(f"redshift-data:{action}",))
    client = client_as("redshift-data", assume(role_arn, info.external_id))
    statement_id = str(uuid.uuid4())
    if action != "ExecuteStatement":
        statement_id = client.execute_statement(
            WorkgroupName=info.workgroup, Database=info.database, Sql="select 1"
        )["Id"]
    with pytest.raises(ClientError) as refused:
        _call(client, info, action, statement_id)
    assert error_code_of(refused) == "AccessDeniedException"
    assert status_of(refused) == 403
    assert f"redshift-data:{action}" in refused.value.response["Error"]["Message"]
    # The other actions of the same role still work.
    other = "ListSchemas" if action == "ListDatabases" else "ListDatabases"
    assert _call(client, info, other, statement_id)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_get_statement_result_v2_is_authorised_as_get_statement_result(
    standin: StandIn, info: StandInInfo
) -> None:
    role_arn = _role(standin, info, deny=("redshift-data:GetStatementResult",))
    client = client_as("redshift-data", assume(role_arn, info.external_id))
    started = client.execute_statement(
        WorkgroupName=info.workgroup,
        Database=info.database,
        Sql="select 1",
        ResultFormat="CSV",
        WaitTimeSeconds=10,
    )
    with pytest.raises(ClientError) as refused:
        client.get_statement_result_v2(Id=started["Id"])
    assert error_code_of(refused) == "AccessDeniedException"
    assert "redshift-data:GetStatementResult" in refused.value.response["Error"]["Message"]


def test_without_get_credentials_the_workgroup_is_refused(
    standin: StandIn, info: StandInInfo
) -> None:
    role_arn = _role(standin, info, deny=("redshift-serverless:GetCredentials",))
    client = client_as("redshift-data", assume(role_arn, info.external_id))
    with pytest.raises(ClientError) as refused:
        client.execute_statement(
            WorkgroupName=info.workgroup, Database=info.database, Sql="select 1"
        )
    assert error_code_of(refused) == "AccessDeniedException"
    message = refused.value.response["Error"]["Message"]
    assert "redshift-serverless:GetCredentials" in message
    assert standin.workgroup.arn in message


def test_statements_are_visible_to_their_role_only(
    standin: StandIn, redshift_data: Any, info: StandInInfo
) -> None:
    mine = redshift_data.execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sql="select 1"
    )
    other = client_as("redshift-data", assume(_role(standin, info), info.external_id))
    with pytest.raises(ClientError) as hidden:
        other.describe_statement(Id=mine["Id"])
    assert error_code_of(hidden) == "ResourceNotFoundException"
    # Another session of the same role sees it (the Data API scopes statements to the role).
    same_role = client_as("redshift-data", assume(info.role_arn, info.external_id))
    assert same_role.describe_statement(Id=mine["Id"])["Id"] == mine["Id"]


def test_s3_is_limited_to_the_staging_bucket(s3: Any, info: StandInInfo) -> None:
    key = f"tests/{uuid.uuid4()}.txt"
    s3.put_object(Bucket=info.bucket, Key=key, Body=b"hello")
    assert s3.get_object(Bucket=info.bucket, Key=key)["Body"].read() == b"hello"
    listed = s3.list_objects_v2(Bucket=info.bucket, Prefix="tests/")
    assert key in {o["Key"] for o in listed["Contents"]}
    s3.delete_object(Bucket=info.bucket, Key=key)
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket="some-other-bucket", Key="x", Body=b"x")
    assert error_code_of(refused) == "AccessDenied"


def test_a_denied_s3_action_is_refused(standin: StandIn, info: StandInInfo) -> None:
    role_arn = _role(standin, info, deny=("s3:DeleteObject",))
    s3 = client_as("s3", assume(role_arn, info.external_id))
    key = f"tests/{uuid.uuid4()}.txt"
    s3.put_object(Bucket=info.bucket, Key=key, Body=b"kept")
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=info.bucket, Key=key)
    assert error_code_of(refused) == "AccessDenied"
    assert status_of(refused) == 403
