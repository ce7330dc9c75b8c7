"""Data API sessions on the stand-in: one connection per session, its statements in order,
explicit transactions with snapshot isolation, expiry after the keep-alive, the session limit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shiftsync.local.standin import StandIn, StandInInfo
from tests.support import wait_for_statement


def _in_session(client: Any, session_id: str, sql: str) -> dict[str, Any]:
    started = client.execute_statement(SessionId=session_id, Sql=sql)
    assert started["SessionId"] == session_id
    described = wait_for_statement(client, started["Id"], interval=0.01)
    assert described["Status"] == "FINISHED", described.get("Error")
    return described


def _open(client: Any, info: StandInInfo, sql: str = "select 1", keep_alive: int = 60) -> str:
    started = client.execute_statement(
        WorkgroupName=info.workgroup,
        Database=info.database,
        Sql=sql,
        SessionKeepAliveSeconds=keep_alive,
    )
    described = wait_for_statement(client, started["Id"], interval=0.01)
    assert described["Status"] == "FINISHED", described.get("Error")
    assert described["SessionId"] == started["SessionId"]
    return str(started["SessionId"])


def _count(client: Any, session_id: str, table: str) -> int:
    described = _in_session(client, session_id, f"select count(*) from public.{table}")
    rows = client.get_statement_result(Id=described["Id"])["Records"]
    return int(rows[0][0]["longValue"])


@pytest.fixture
def table(standin: StandIn) -> Iterator[str]:
    name = f"sess_{uuid.uuid4().hex[:10]}"
    with standin.admin_connection() as admin:
        admin.execute(f"create table public.{name} (n int)")
        admin.execute(f"insert into public.{name} select generate_series(1, 5)")
        admin.execute(
            f'grant select on public.{name} to "IAMR:{standin.info.role_arn.split("/")[-1]}"'
        )
    yield name
    with standin.admin_connection() as admin:
        admin.execute(f"drop table if exists public.{name}")


@pytest.fixture
def clock(standin: StandIn) -> Iterator[list[float]]:
    """The session registry's clock, moved on by the test (offset in seconds)."""
    assert standin.sessions is not None
    registry = standin.sessions
    real = registry.clock
    offset = [0.0]
    registry.clock = lambda: real() + offset[0]
    yield offset
    registry.clock = real


def test_statements_of_a_session_share_one_connection(
    redshift_data: Any, info: StandInInfo
) -> None:
    session_id = _open(redshift_data, info, "select pg_backend_pid()")
    first = _in_session(redshift_data, session_id, "select pg_backend_pid()")
    second = _in_session(redshift_data, session_id, "select pg_backend_pid()")
    assert first["RedshiftPid"] == second["RedshiftPid"]


def test_a_transaction_sees_one_snapshot_while_others_commit(
    redshift_data: Any, info: StandInInfo, standin: StandIn, table: str
) -> None:
    session_id = _open(redshift_data, info, "begin")
    assert _count(redshift_data, session_id, table) == 5
    with standin.admin_connection() as admin:
        admin.execute(f"insert into public.{table} values (6), (7)")
    assert _count(redshift_data, session_id, table) == 5
    _in_session(redshift_data, session_id, "commit")
    assert _count(redshift_data, session_id, table) == 7


def test_a_busy_session_refuses_a_second_statement(redshift_data: Any, info: StandInInfo) -> None:
    session_id = _open(redshift_data, info)
    running = redshift_data.execute_statement(SessionId=session_id, Sql="select pg_sleep(30)")
    try:
        with pytest.raises(ClientError) as refused:
            redshift_data.execute_statement(SessionId=session_id, Sql="select 1")
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert "busy" in refused.value.response["Error"]["Message"]
    finally:
        redshift_data.cancel_statement(Id=running["Id"])
    wait_for_statement(redshift_data, running["Id"], interval=0.01)
    _in_session(redshift_data, session_id, "select 1")


@pytest.mark.parametrize(
    ("member", "value"),
    [("WorkgroupName", "default-workgroup"), ("Database", "dev"), ("SessionKeepAliveSeconds", 5)],
)
def test_a_session_request_names_nothing_the_session_fixes(
    redshift_data: Any, info: StandInInfo, member: str, value: Any
) -> None:
    session_id = _open(redshift_data, info)
    with pytest.raises(ClientError) as refused:
        redshift_data.execute_statement(SessionId=session_id, Sql="select 1", **{member: value})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert member in refused.value.response["Error"]["Message"]


def test_an_unknown_session_is_not_found(redshift_data: Any) -> None:
    with pytest.raises(ClientError) as refused:
        redshift_data.execute_statement(SessionId=str(uuid.uuid4()), Sql="select 1")
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_an_idle_session_expires_after_its_keep_alive_and_rolls_back(
    redshift_data: Any, info: StandInInfo, standin: StandIn, table: str, clock: list[float]
) -> None:
    with standin.admin_connection() as admin:
        admin.execute(
            f'grant insert on public.{table} to "IAMR:{standin.info.role_arn.split("/")[-1]}"'
        )
    session_id = _open(redshift_data, info, "begin", keep_alive=30)
    _in_session(redshift_data, session_id, f"insert into public.{table} values (99)")
    clock[0] += 29
    _in_session(redshift_data, session_id, "select 1")  # still open: idle 29 s < 30 s
    clock[0] += 30
    with pytest.raises(ClientError) as refused:
        redshift_data.execute_statement(SessionId=session_id, Sql="commit")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "closed" in refused.value.response["Error"]["Message"]
    with standin.admin_connection() as admin:
        found = admin.execute(f"select count(*) from public.{table} where n = 99").fetchone()
    assert found == (0,)


def test_too_many_sessions_are_refused(
    redshift_data: Any, info: StandInInfo, standin: StandIn, clock: list[float]
) -> None:
    assert standin.sessions is not None
    clock[0] += 100_000  # every earlier session of this module expires
    standin.sessions.expire()
    limit = standin.sessions.max_sessions
    standin.sessions.max_sessions = 2
    try:
        _open(redshift_data, info)
        _open(redshift_data, info)
        with pytest.raises(ClientError) as refused:
            _open(redshift_data, info)
        assert refused.value.response["Error"]["Code"] == "ActiveSessionsExceededException"
    finally:
        standin.sessions.max_sessions = limit


def test_unload_runs_inside_a_transaction_on_its_snapshot(
    redshift_data: Any, s3: Any, info: StandInInfo, standin: StandIn, table: str
) -> None:
    # AWS documents no ban on UNLOAD in a transaction block (stored procedures run in one
    # and may UNLOAD): it reads the transaction's snapshot like any query.
    session_id = _open(redshift_data, info, "begin")
    assert _count(redshift_data, session_id, table) == 5
    with standin.admin_connection() as admin:
        admin.execute(f"insert into public.{table} values (6)")
    key_prefix = f"sessions/{uuid.uuid4().hex}/"
    prefix = f"s3://{info.bucket}/{key_prefix}"
    unloaded = _in_session(
        redshift_data,
        session_id,
        f"unload ('select n from public.{table}') to '{prefix}' "
        f"iam_role '{info.role_arn}' format parquet",
    )
    _in_session(redshift_data, session_id, "commit")
    listed = s3.list_objects_v2(Bucket=info.bucket, Prefix=key_prefix).get("Contents", [])
    for item in listed:
        s3.delete_object(Bucket=info.bucket, Key=item["Key"])
    assert unloaded["ResultRows"] == 5
    assert listed


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ({"SessionKeepAliveSeconds": 86_401}, "less than or equal to 86400"),
        ({"SessionId": "not-a-session"}, "regular expression pattern"),
    ],
)
def test_session_parameters_out_of_the_model_are_refused(
    redshift_data: Any, info: StandInInfo, members: dict[str, Any], fragment: str
) -> None:
    target = {} if "SessionId" in members else {"WorkgroupName": info.workgroup, "Database": "dev"}
    with pytest.raises(ClientError) as refused:
        redshift_data.execute_statement(Sql="select 1", **target, **members)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert fragment in refused.value.response["Error"]["Message"]
