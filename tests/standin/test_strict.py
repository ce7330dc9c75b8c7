"""The stand-in as strict as AWS: one contract test per difference of issue 14.

Each test failed on the kinder stand-in (where AWS's rule is documented, the test cites it;
where it is not, the stand-in takes the stricter reading and docs/standin.md says so).
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.local.seed.seeding import ODD_COLUMNS, ODD_ROWS, ODD_SCHEMA, ODD_TABLE
from shiftsync.local.standin import PLATFORM_ACCOUNT, StandIn, StandInInfo, guide_trust_policy
from tests.support import run_statement


def _run(client: Any, info: StandInInfo, sql: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    return run_statement(client, info, sql, interval=0.01, **kwargs)


def _client_in(assumed: AssumedRoleSession, service: str, region: str) -> Any:
    """A client of the assumed role's keys, signing (SigV4) for `region` (same endpoint)."""
    keys = assumed.frozen_credentials()
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name=region,
        config=Config(signature_version="s3v4") if service == "s3" else None,
        aws_access_key_id=keys.access_key,
        aws_secret_access_key=keys.secret_key,
        aws_session_token=keys.token,
    )


def _answer(error: pytest.ExceptionInfo[ClientError]) -> dict[str, Any]:
    """The parsed error answer, with the members the typed stubs do not know."""
    return dict(error.value.response)


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


@pytest.fixture
def case_sensitive(standin: StandIn) -> Iterator[None]:
    """`enable_case_sensitive_identifier` on for one test."""
    assert standin.engine is not None
    standin.engine.case_sensitive_identifiers = True
    try:
        yield
    finally:
        standin.engine.case_sensitive_identifiers = False


# -- 1. region ----------------------------------------------------------------------------------


def test_a_client_of_another_region_does_not_see_the_workgroup(
    assumed: AssumedRoleSession, info: StandInInfo
) -> None:
    elsewhere = _client_in(assumed, "redshift-data", "eu-west-1")
    with pytest.raises(ClientError) as refused:
        elsewhere.execute_statement(
            WorkgroupName=info.workgroup, Database=info.database, Sql="select 1"
        )
    assert _code(refused) == "ResourceNotFoundException"
    assert _answer(refused)["ResourceId"] == info.workgroup


def test_s3_refuses_a_request_signed_for_another_region(
    assumed: AssumedRoleSession, info: StandInInfo
) -> None:
    # boto3 follows the answer's Region by itself (as it does on AWS), so look at the raw one.
    elsewhere = _client_in(assumed, "s3", "eu-west-1")
    url = elsewhere.generate_presigned_url(
        "list_objects_v2", Params={"Bucket": info.bucket, "MaxKeys": 1}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)  # noqa: S310 - the stand-in's own http URL
    body = refused.value.read().decode()
    assert refused.value.code == 400
    assert "<Code>AuthorizationHeaderMalformed</Code>" in body
    assert f"<Region>{info.region}</Region>" in body
    # and boto3, told where the bucket is, carries on as it does on AWS
    assert elsewhere.list_objects_v2(Bucket=info.bucket, MaxKeys=1)["Name"] == info.bucket


# -- 2. Database is the catalog listed ------------------------------------------------------------


def test_the_catalog_listed_is_the_database_not_the_connected_one(
    standin: StandIn, redshift_data: Any, info: StandInInfo
) -> None:
    other = f"other_{uuid.uuid4().hex[:8]}"
    with standin.admin_connection() as admin:
        admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(other)))
    try:
        with psycopg.connect(standin.pg.dsn(other), autocommit=True) as conn:  # type: ignore[union-attr]
            conn.execute("CREATE SCHEMA only_in_other")
        schemas = redshift_data.list_schemas(
            WorkgroupName=info.workgroup, Database=other, ConnectedDatabase=info.database
        )["Schemas"]
        assert "only_in_other" in schemas
        tables = redshift_data.list_tables(
            WorkgroupName=info.workgroup,
            Database=other,
            ConnectedDatabase=info.database,
            SchemaPattern="public",
        )["Tables"]
        assert "sales" not in {t["name"] for t in tables}
    finally:
        with standin.admin_connection() as admin:
            admin.execute(
                psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(other)
                )
            )


# -- 3. ListStatements shows finished statements by default ---------------------------------------


def test_list_statements_shows_only_finished_ones_by_default(
    standin: StandIn, info: StandInInfo
) -> None:
    redshift_data = _wide_client(standin, info)
    name = f"strict-{uuid.uuid4().hex[:8]}"
    running = redshift_data.execute_statement(
        WorkgroupName=info.workgroup,
        Database=info.database,
        Sql="select pg_sleep(30)",
        StatementName=name,
    )["Id"]
    try:
        listed = redshift_data.list_statements(StatementName=name)["Statements"]
        assert running not in {s["Id"] for s in listed}
        everything = redshift_data.list_statements(StatementName=name, Status="ALL")
        assert running in {s["Id"] for s in everything["Statements"]}
    finally:
        redshift_data.cancel_statement(Id=running)


# -- 4. ColumnMetadata as AWS fills it -------------------------------------------------------------


def test_result_metadata_as_aws_fills_it(redshift_data: Any, info: StandInInfo) -> None:
    statement_id, _ = _run(
        redshift_data,
        info,
        "select catid, catname, now()::timestamp as at, 1::bigint as big from public.category "
        "limit 1",
    )
    columns = {
        c["name"]: c for c in redshift_data.get_statement_result(Id=statement_id)["ColumnMetadata"]
    }
    assert (columns["catid"]["precision"], columns["catid"]["nullable"]) == (5, 0)
    assert (columns["catname"]["precision"], columns["catname"]["length"]) == (10, 0)
    assert columns["catname"]["nullable"] == 1
    assert (columns["at"]["precision"], columns["at"]["scale"]) == (29, 6)
    assert columns["big"]["precision"] == 19


# -- 5. identifiers fold to lower case unless enable_case_sensitive_identifier ------------------


def test_quoted_identifiers_fold_to_lower_case_by_default(
    redshift_data: Any, info: StandInInfo
) -> None:
    statement_id, _ = _run(redshift_data, info, 'select 1 as "MyCol"')
    names = [
        c["name"] for c in redshift_data.get_statement_result(Id=statement_id)["ColumnMetadata"]
    ]
    assert names == ["mycol"]


def test_case_sensitive_identifiers_keep_their_case(
    case_sensitive: None, redshift_data: Any, info: StandInInfo
) -> None:
    statement_id, _ = _run(redshift_data, info, 'select 1 as "MyCol"')
    names = [
        c["name"] for c in redshift_data.get_statement_result(Id=statement_id)["ColumnMetadata"]
    ]
    assert names == ["MyCol"]


@pytest.mark.parametrize("sensitive", [False, True])
def test_the_odd_seed_reads_under_both_identifier_settings(
    standin: StandIn, redshift_data: Any, info: StandInInfo, sensitive: bool
) -> None:
    assert standin.engine is not None
    standin.engine.case_sensitive_identifiers = sensitive
    try:
        quoted = ", ".join('"' + name.replace('"', '""') + '"' for name in ODD_COLUMNS)
        statement_id, described = _run(
            redshift_data, info, f'select {quoted} from "{ODD_SCHEMA}"."{ODD_TABLE}" order by 1'
        )
        assert described["Status"] == "FINISHED", described.get("Error")
        assert described["ResultRows"] == len(ODD_ROWS)
        result = redshift_data.get_statement_result(Id=statement_id)
        assert [c["name"] for c in result["ColumnMetadata"]] == list(ODD_COLUMNS)
    finally:
        standin.engine.case_sensitive_identifiers = False


def test_the_odd_seed_is_a_name_a_default_redshift_can_hold() -> None:
    for name in (ODD_SCHEMA, ODD_TABLE, *ODD_COLUMNS):
        assert name == name.lower(), name


# -- 6. character types count bytes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ddl", "insert", "error"),
    [
        ("c char(4)", "'é'", "Multibyte character not supported for CHAR"),
        ("c varchar(3)", "'éé'", "value too long for type character varying(3)"),
        ("c varchar(100000)", None, "length for type varchar cannot exceed 65535"),
    ],
)
def test_character_types_count_bytes(
    redshift_data: Any, info: StandInInfo, ddl: str, insert: str | None, error: str
) -> None:
    table = f"public.t_bytes_{uuid.uuid4().hex[:8]}"
    _, created = _run(redshift_data, info, f"create table {table} ({ddl})")
    try:
        if insert is None:
            assert created["Status"] == "FAILED"
            assert error in created["Error"]
            return
        assert created["Status"] == "FINISHED", created.get("Error")
        _, inserted = _run(redshift_data, info, f"insert into {table} values ({insert})")
        assert inserted["Status"] == "FAILED"
        assert error in inserted["Error"]
    finally:
        _run(redshift_data, info, f"drop table if exists {table}")


def test_bare_varchar_and_text_are_256_bytes(redshift_data: Any, info: StandInInfo) -> None:
    table = f"t_bare_{uuid.uuid4().hex[:8]}"
    _, created = _run(redshift_data, info, f"create table public.{table} (a varchar, b text)")
    assert created["Status"] == "FINISHED", created.get("Error")
    try:
        columns = redshift_data.describe_table(
            WorkgroupName=info.workgroup, Database=info.database, Schema="public", Table=table
        )["ColumnList"]
        assert [(c["typeName"], c["precision"]) for c in columns] == [
            ("varchar", 256),
            ("varchar", 256),
        ]
    finally:
        _run(redshift_data, info, f"drop table public.{table}")


# -- 7. STS validates its input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "member"),
    [
        ({"RoleSessionName": "has space"}, "roleSessionName"),
        ({"ExternalId": "bad id!"}, "externalId"),
        ({"RoleArn": "arn:aws:iam::222222222222:nope"}, "roleArn"),
    ],
)
def test_sts_refuses_malformed_input_as_validation_error(
    info: StandInInfo, changes: dict[str, str], member: str
) -> None:
    sts: Any = boto3.client("sts", region_name=info.region)
    request = {
        "RoleArn": info.role_arn,
        "RoleSessionName": "strict",
        "ExternalId": info.external_id,
        **changes,
    }
    with pytest.raises(ClientError) as refused:
        sts.assume_role(**request)
    assert _code(refused) == "ValidationError"
    assert member in refused.value.response["Error"]["Message"]


# -- 8. DescribeTable without Schema or Table ------------------------------------------------------


def test_describe_table_without_schema_searches_every_schema(
    redshift_data: Any, info: StandInInfo
) -> None:
    answer = redshift_data.describe_table(
        WorkgroupName=info.workgroup, Database=info.database, Table=ODD_TABLE
    )
    assert {c["schemaName"] for c in answer["ColumnList"]} == {ODD_SCHEMA}
    assert all("label" not in c for c in answer["ColumnList"])


def test_describe_table_without_table_describes_every_table(
    redshift_data: Any, info: StandInInfo
) -> None:
    answer = redshift_data.describe_table(
        WorkgroupName=info.workgroup, Database=info.database, Schema="public", MaxResults=1000
    )
    assert {"sales", "category", "users"} <= {c["tableName"] for c in answer["ColumnList"]}


# -- 9. batch parents and unreferenced parameters ------------------------------------------------


def test_a_batch_parent_has_no_query_string_and_query_id_0(
    standin: StandIn, info: StandInInfo
) -> None:
    client = _wide_client(standin, info)
    started = client.batch_execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sqls=["select 1", "select 2"]
    )
    described = client.describe_statement(Id=started["Id"])
    assert "QueryString" not in described
    assert described["RedshiftQueryId"] == 0
    assert [s["QueryString"] for s in described["SubStatements"]] == ["select 1", "select 2"]


def _wide_client(standin: StandIn, info: StandInInfo) -> Any:
    """A role allowed every redshift-data action (the guide's role has no ListStatements)."""
    role_arn = standin.create_role(
        "strict-batch",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["redshift-data:*", "redshift-serverless:GetCredentials"],
                    "Resource": "*",
                }
            ],
        },
        guide_trust_policy(f"arn:aws:iam::{PLATFORM_ACCOUNT}:root", info.external_id),
    )
    keys = boto3.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName="strict", ExternalId=info.external_id
    )["Credentials"]
    return boto3.client(
        "redshift-data",
        region_name=info.region,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )


def test_a_parameter_no_sql_refers_to_is_refused(redshift_data: Any, info: StandInInfo) -> None:
    with pytest.raises(ClientError) as refused:
        redshift_data.execute_statement(
            WorkgroupName=info.workgroup,
            Database=info.database,
            Sql="select :a",
            Parameters=[{"name": "a", "value": "1"}, {"name": "id", "value": "2"}],
        )
    assert _code(refused) == "ValidationException"
    assert refused.value.response["Error"]["Message"] == (
        "Parameters list contains unused parameters. Unused parameters: [id]"
    )


# -- 11. no kinder, no stricter than AWS -----------------------------------------------------------


def test_the_row_limit_counts_utf8_bytes(
    standin: StandIn, redshift_data: Any, info: StandInInfo
) -> None:
    # 30,000 two-byte characters: 60 KB of UTF-8, 180 KB as \\u escapes.
    _, described = _run(redshift_data, info, "select repeat('é', 30000) as v")
    assert described["Status"] == "FINISHED", described.get("Error")


def test_execute_with_wait_time_says_where_the_statement_got(
    redshift_data: Any, info: StandInInfo
) -> None:
    answer = redshift_data.execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sql="select 1", WaitTimeSeconds=10
    )
    assert answer["Status"] == "FINISHED"
    assert answer["HasResultSet"] is True


def test_head_bucket_needs_list_bucket_and_names_the_region(s3: Any, info: StandInInfo) -> None:
    answer = s3.head_bucket(Bucket=info.bucket)
    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == info.region


# -- 12. error shapes ------------------------------------------------------------------------------


def test_a_database_connection_error_is_a_fault(redshift_data: Any, info: StandInInfo) -> None:
    with pytest.raises(ClientError) as refused:
        redshift_data.list_schemas(
            WorkgroupName=info.workgroup, Database=info.database, ConnectedDatabase="nope"
        )
    assert _code(refused) == "DatabaseConnectionException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_resource_not_found_names_the_resource(redshift_data: Any) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(ClientError) as refused:
        redshift_data.describe_statement(Id=missing)
    assert _code(refused) == "ResourceNotFoundException"
    assert _answer(refused)["ResourceId"] == missing


def test_a_bad_continuation_token_is_a_client_error(s3: Any, info: StandInInfo) -> None:
    with pytest.raises(ClientError) as refused:
        s3.list_objects_v2(Bucket=info.bucket, ContinuationToken="not-a-token")
    assert _code(refused) == "InvalidArgument"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_sql_errors_carry_the_position(redshift_data: Any, info: StandInInfo) -> None:
    _, described = _run(redshift_data, info, "select * frm public.sales")
    assert described["Status"] == "FAILED"
    assert described["Error"].endswith("\n  Position: 10")


def test_search_path_does_not_show_the_stand_in_schema(
    redshift_data: Any, info: StandInInfo
) -> None:
    statement_id, _ = _run(redshift_data, info, "show search_path")
    records = redshift_data.get_statement_result(Id=statement_id)["Records"]
    assert "rs_catalog" not in records[0][0]["stringValue"]
    assert "public" in records[0][0]["stringValue"]


# -- 5. identifier lengths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "words"),
    [(64, "the shiftsync stand-in (PostgreSQL) holds at most 63"), (128, "at most 127")],
)
def test_a_long_identifier_is_refused_rather_than_cut(
    redshift_data: Any, info: StandInInfo, size: int, words: str
) -> None:
    _, described = _run(redshift_data, info, f'select 1 as "{"é" * (size // 2)}"')
    assert described["Status"] == "FAILED"
    assert words in described["Error"]


def test_an_identifier_of_63_bytes_is_kept_whole(redshift_data: Any, info: StandInInfo) -> None:
    name = "c" * 63
    statement_id, _ = _run(redshift_data, info, f"select 1 as {name}")
    columns = redshift_data.get_statement_result(Id=statement_id)["ColumnMetadata"]
    assert [c["name"] for c in columns] == [name]
