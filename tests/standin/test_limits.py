"""The Data API's limits, with AWS's messages; the stand-in's `Limits` can be lowered."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shiftsync.local.data_api.results import Limits
from shiftsync.local.standin import (
    BUCKET,
    PLATFORM_ACCOUNT,
    StandIn,
    StandInInfo,
    guide_permission_policy,
    guide_trust_policy,
)
from tests.support import run_statement

# lower(**changes): replace some of the engine's limits for the rest of one test.
Lower = Callable[..., Limits]


def _run(client: Any, info: StandInInfo, sql: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    return run_statement(client, info, sql, interval=0.01, **kwargs)


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


@pytest.fixture
def limits(standin: StandIn) -> Iterator[Lower]:
    """Lower the engine's limits for one test; the originals come back afterwards."""
    engine = standin.engine
    assert engine is not None
    original = engine.limits

    def lower(**changes: Any) -> Limits:
        engine.limits = dataclasses.replace(original, **changes)
        return engine.limits

    try:
        yield lower
    finally:
        engine.limits = original


@pytest.fixture(scope="module")
def batcher(standin: StandIn, info: StandInInfo) -> Any:
    """A redshift-data client of a role allowed BatchExecuteStatement too."""
    policy = guide_permission_policy(BUCKET)
    policy["Statement"].append(
        {"Effect": "Allow", "Action": "redshift-data:BatchExecuteStatement", "Resource": "*"}
    )
    role_arn = standin.create_role(
        "shiftsync-batcher",
        policy,
        guide_trust_policy(f"arn:aws:iam::{PLATFORM_ACCOUNT}:root", info.external_id),
    )
    credentials = boto3.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName="tests", ExternalId=info.external_id
    )["Credentials"]
    return boto3.client(
        "redshift-data",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def test_sql_over_100_kb_is_refused(redshift_data: Any, info: StandInInfo) -> None:
    prefix = "select 1 as one -- "
    at_limit = prefix + "x" * (100 * 1024 - len(prefix))
    _, described = _run(redshift_data, info, at_limit)
    assert described["Status"] == "FINISHED"
    with pytest.raises(ClientError) as refused:
        redshift_data.execute_statement(
            WorkgroupName=info.workgroup, Database=info.database, Sql=at_limit + "x"
        )
    assert _error(refused) == (
        "ValidationException",
        "Cannot process query string larger than 100kB",
    )


def test_one_statement_per_execute(redshift_data: Any, info: StandInInfo) -> None:
    _, described = _run(redshift_data, info, "select 1; select 2")
    assert described["Status"] == "FAILED"
    assert described["Error"] == "ERROR: cannot insert multiple commands into a prepared statement"
    _, trailing = _run(redshift_data, info, "select 1; -- a comment after the semicolon")
    assert trailing["Status"] == "FINISHED"


@pytest.mark.parametrize("result_format", ["JSON", "CSV"])
def test_a_row_over_64_kb_fails(redshift_data: Any, info: StandInInfo, result_format: str) -> None:
    _, described = _run(
        redshift_data, info, "select repeat('x', 70000) as wide", ResultFormat=result_format
    )
    assert described["Status"] == "FAILED"
    assert described["Error"].startswith("ERROR: Packet for query is too large")
    _, fits = _run(
        redshift_data, info, "select repeat('x', 60000) as wide", ResultFormat=result_format
    )
    assert fits["Status"] == "FINISHED"


def test_the_row_limit_can_be_lowered(redshift_data: Any, info: StandInInfo, limits: Lower) -> None:
    limits(max_row_bytes=1000)
    _, described = _run(redshift_data, info, "select repeat('x', 2000)")
    assert described["Status"] == "FAILED"
    assert "Packet for query is too large" in described["Error"]
    _, fits = _run(redshift_data, info, "select repeat('x', 500)")
    assert fits["Status"] == "FINISHED"


@pytest.mark.parametrize("result_format", ["JSON", "CSV"])
def test_a_result_over_the_cap_fails(
    redshift_data: Any, info: StandInInfo, limits: Lower, result_format: str
) -> None:
    limits(max_result_bytes=100_000)
    _, described = _run(
        redshift_data,
        info,
        "select repeat('x', 1000) from generate_series(1, 200)",
        ResultFormat=result_format,
    )
    assert described["Status"] == "FAILED"
    assert described["Error"] == "ERROR: Database response exceeded size limit"
    _, fits = _run(
        redshift_data,
        info,
        "select repeat('x', 1000) from generate_series(1, 50)",
        ResultFormat=result_format,
    )
    assert fits["Status"] == "FINISHED"


def test_the_page_size_can_be_lowered(redshift_data: Any, info: StandInInfo, limits: Lower) -> None:
    limits(page_bytes=4096)
    statement_id, described = _run(redshift_data, info, "select n from generate_series(1, 3000) n")
    assert described["Status"] == "FINISHED"
    pages = [redshift_data.get_statement_result(Id=statement_id)]
    while pages[-1].get("NextToken"):
        pages.append(
            redshift_data.get_statement_result(Id=statement_id, NextToken=pages[-1]["NextToken"])
        )
    assert len(pages) > 5
    assert sum(len(p["Records"]) for p in pages) == 3000


def test_limits_default_to_aws_figures() -> None:
    limits = Limits()
    assert limits.max_sql_bytes == 100 * 1024
    assert limits.max_row_bytes == 64 * 1024
    assert limits.max_result_bytes == 500 * 1024 * 1024
    assert limits.result_ttl_seconds == 24 * 3600


def test_results_are_gone_after_expiry(
    standin: StandIn, redshift_data: Any, info: StandInInfo
) -> None:
    engine = standin.engine
    assert engine is not None
    statement_id, described = _run(redshift_data, info, "select 1 as one")
    assert described["Status"] == "FINISHED"
    engine.expire_results()  # the default lifetime (24 h) keeps a fresh result
    assert redshift_data.describe_statement(Id=statement_id)["Status"] == "FINISHED"
    assert engine.expire_results(older_than=0) >= 1
    for call in (redshift_data.describe_statement, redshift_data.get_statement_result):
        with pytest.raises(ClientError) as gone:
            call(Id=statement_id)
        assert _error(gone)[0] == "ResourceNotFoundException"


def test_a_client_token_of_an_expired_statement_starts_a_new_one(
    standin: StandIn, redshift_data: Any, info: StandInInfo
) -> None:
    engine = standin.engine
    assert engine is not None
    first, _ = _run(redshift_data, info, "select 1", ClientToken="expiring-token")
    engine.expire_results(older_than=0)
    second, described = _run(redshift_data, info, "select 1", ClientToken="expiring-token")
    assert second != first
    assert described["Status"] == "FINISHED"


def test_unknown_workgroup_is_not_found(redshift_data: Any, info: StandInInfo) -> None:
    with pytest.raises(ClientError) as missing:
        redshift_data.execute_statement(
            WorkgroupName="no-such-workgroup", Database=info.database, Sql="select 1"
        )
    assert _error(missing) == ("ResourceNotFoundException", "Workgroup no-such-workgroup not found")


def test_missing_workgroup_is_a_validation_error(redshift_data: Any, info: StandInInfo) -> None:
    with pytest.raises(ClientError) as missing:
        redshift_data.execute_statement(Database=info.database, Sql="select 1")
    assert _error(missing) == (
        "ValidationException",
        "Either ClusterIdentifier or WorkgroupName needs to be specified.",
    )


def test_unknown_database_fails_the_statement(redshift_data: Any, info: StandInInfo) -> None:
    started = redshift_data.execute_statement(
        WorkgroupName=info.workgroup, Database="no_such_db", Sql="select 1"
    )
    described = redshift_data.describe_statement(Id=started["Id"], WaitTimeSeconds=10)
    assert described["Status"] == "FAILED"
    assert described["Error"] == 'FATAL: database "no_such_db" does not exist'


def test_the_workgroup_arn_works_as_its_name(
    standin: StandIn, redshift_data: Any, info: StandInInfo
) -> None:
    arn = standin.workgroup.arn
    tables = redshift_data.list_tables(
        WorkgroupName=arn, Database=info.database, SchemaPattern="public", TablePattern="venue"
    )["Tables"]
    assert [t["name"] for t in tables] == ["venue"]


@pytest.mark.parametrize(
    ("call", "arguments", "message"),
    [
        (
            "batch_execute_statement",
            {"Sqls": ["select 1"] * 41},
            "Member must have length less than or equal to 40",
        ),
        ("describe_statement", {"WaitTimeSeconds": 31}, "less than or equal to 30"),
        ("list_tables", {"MaxResults": 1001}, "less than or equal to 1000"),
        ("execute_statement", {"Sql": "select 1", "StatementName": "n" * 2049}, "2048"),
    ],
)
def test_limits_of_the_api_model(
    batcher: Any, info: StandInInfo, call: str, arguments: dict[str, Any], message: str
) -> None:
    common: dict[str, Any] = {"WorkgroupName": info.workgroup, "Database": info.database}
    if call == "describe_statement":
        common = {"Id": _run(batcher, info, "select 1")[0]}
    with pytest.raises(ClientError) as refused:
        getattr(batcher, call)(**common, **arguments)
    code, text = _error(refused)
    assert code == "ValidationException"
    assert text.startswith("1 validation error detected: Value ")
    assert message in text
