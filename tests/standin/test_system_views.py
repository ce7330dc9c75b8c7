"""SYS_QUERY_HISTORY and SYS_SERVERLESS_USAGE on the stand-in: AWS's columns, figures from the
stand-in's own statement timings, and AWS's visibility (own rows; usage for superusers only)."""

from __future__ import annotations

from typing import Any

from shiftsync.local.data_api.statements import Statement
from shiftsync.local.data_api.system_views import BASE_RPU, usage_rows
from shiftsync.local.standin import StandIn, StandInInfo
from tests.support import run_statement

HISTORY_COLUMNS = [
    "user_id", "query_id", "query_label", "transaction_id", "session_id", "database_name",
    "query_type", "status", "result_cache_hit", "start_time", "end_time", "elapsed_time",
    "queue_time", "execution_time", "error_message", "returned_rows", "returned_bytes",
    "query_text", "redshift_version", "compute_type", "compile_time", "planning_time",
    "lock_wait_time",
]  # fmt: skip


def _rows(client: Any, statement_id: str) -> list[list[Any]]:
    result = client.get_statement_result(Id=statement_id)
    return [[next(iter(field.values())) for field in record] for record in result["Records"]]


def test_query_history_holds_each_statement_by_its_query_id(
    redshift_data: Any, info: StandInInfo
) -> None:
    _, ran = run_statement(redshift_data, info, "select pg_sleep(0.2), 1 as x")
    assert ran["Status"] == "FINISHED"
    query_id = ran["RedshiftQueryId"]
    asked_id, asked = run_statement(
        redshift_data,
        info,
        "select query_id, query_type, status, execution_time, elapsed_time, returned_rows "
        f"from sys_query_history where query_id = {query_id}",
    )
    assert asked["Status"] == "FINISHED", asked.get("Error")
    [(found_id, query_type, status, execution, elapsed, returned)] = _rows(redshift_data, asked_id)
    assert (found_id, query_type.strip(), status.strip(), returned) == (
        query_id,
        "SELECT",
        "success",
        1,
    )
    # Microseconds: at least the 0.2 s the statement slept, and no more than DescribeStatement's
    # Duration says it ran.
    assert 200_000 <= execution <= ran["Duration"] // 1000 <= elapsed


def test_query_history_has_the_documented_columns(redshift_data: Any, info: StandInInfo) -> None:
    asked_id, asked = run_statement(redshift_data, info, "select * from sys_query_history limit 1")
    assert asked["Status"] == "FINISHED", asked.get("Error")
    metadata = redshift_data.get_statement_result(Id=asked_id)["ColumnMetadata"]
    assert [c["name"] for c in metadata] == HISTORY_COLUMNS


def test_a_user_sees_only_their_own_queries(
    redshift_data: Any, info: StandInInfo, standin: StandIn
) -> None:
    with standin.admin_connection() as admin:
        admin.execute("select 1")  # not through the Data API: not in the history at all
        mine = admin.execute(
            "select count(distinct user_id) from rs_catalog.stand_in_query_history"
        ).fetchone()
    asked_id, _ = run_statement(
        redshift_data, info, "select count(distinct user_id) from sys_query_history"
    )
    assert _rows(redshift_data, asked_id) == [[1]]
    assert mine is not None


def test_serverless_usage_is_for_superusers_only(
    redshift_data: Any, info: StandInInfo, standin: StandIn
) -> None:
    _, refused = run_statement(redshift_data, info, "select * from sys_serverless_usage")
    assert refused["Status"] == "FAILED"
    assert "permission denied" in refused["Error"]
    with standin.admin_connection() as admin:
        used = admin.execute(
            "select sum(compute_seconds), sum(charged_seconds) from sys_serverless_usage"
        ).fetchone()
    assert used is not None
    assert used[0] > 0
    assert used[1] >= 60 * BASE_RPU


def _timed(start: float, end: float) -> Statement:
    statement = Statement(
        id="x", owner_arn="", owner_userid="", db_user="", database="", workgroup="",
        query_string="select 1", parameters=[], result_format="JSON",
    )  # fmt: skip
    statement.started_at, statement.finished_at = start, end
    return statement


def test_usage_is_per_minute_and_charged_at_least_a_minute() -> None:
    rows = usage_rows([_timed(60.0, 70.0), _timed(110.0, 130.0)])
    # Minute 1 has 10 + 10 busy seconds, minute 2 has 10.
    assert [(r[2], r[6]) for r in rows] == [
        (20 * BASE_RPU, 60 * BASE_RPU),
        (10 * BASE_RPU, 60 * BASE_RPU),
    ]


def test_a_statement_is_in_the_history_once_however_often_it_is_asked_and_after_expiry(
    standin: StandIn, redshift_data: Any, info: StandInInfo
) -> None:
    """The history gets each ended statement once (it is not refilled whole for every
    question), and keeps it after the Data API's result has expired, as AWS's view does."""
    _, ran = run_statement(redshift_data, info, "select 2 as two")
    query_id = ran["RedshiftQueryId"]
    count = f"select count(*) from sys_query_history where query_id = {query_id}"
    for _ in range(2):
        asked_id, asked = run_statement(redshift_data, info, count)
        assert asked["Status"] == "FINISHED", asked.get("Error")
        assert _rows(redshift_data, asked_id) == [[1]]
    engine = standin.engine
    assert engine is not None
    engine.expire_results(older_than=0)
    asked_id, asked = run_statement(redshift_data, info, count)
    assert asked["Status"] == "FINISHED", asked.get("Error")
    assert _rows(redshift_data, asked_id) == [[1]]
