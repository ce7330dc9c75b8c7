"""Reading tables end to end on the stand-in, through the Data API and through UNLOAD.

Every result is compared with PostgreSQL read directly (the admin connection), converted to
Arrow per the type contract. After every test the staging prefix must be empty.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from shiftsync import read_table
from shiftsync.aws.session import AssumedRoleSession
from shiftsync.errors import ConfigError, ResultLimitError, SourceError, StatementError
from shiftsync.local.data_api import call_log
from shiftsync.local.iam import evaluation as iam
from shiftsync.local.seed.seeding import EDGE_STRINGS, TICKIT_KEYS
from shiftsync.local.standin import (
    StandIn,
    StandInInfo,
    guide_permission_policy,
    guide_trust_policy,
)
from shiftsync.redshift.catalog import TableInfo, TableRef
from shiftsync.redshift.data_api import ReadStats
from shiftsync.redshift.retry import PollPolicy, RetryPolicy
from shiftsync.redshift.source import Method, RedshiftSource
from shiftsync.redshift.sql import quote_ident
from shiftsync.redshift.types import Column, arrow_field, arrow_schema
from shiftsync.redshift.unload import StagingBucket
from shiftsync.workspace import Workspace
from tests.support import (
    UNLOAD_SETTINGS,
    connection_template,
    lowered_limits,
    wait_until,
    write_external_id,
    write_template_workspace,
)

PREFIX = "shiftsync-extract/"
READER = "IAMR:shiftsync-reader"
FAST_RETRY = RetryPolicy(base_delay=0.02, max_delay=0.2)
FAST_POLL = PollPolicy(first=0.01, longest=0.05)
METHODS: tuple[Method, ...] = ("data_api", "unload")
CONFIG = (
    "connections:\n"
    + connection_template("standin", *UNLOAD_SETTINGS)
    + connection_template("plain")
    + connection_template("json", "result_format: json")
)

Conn = psycopg.Connection[Any]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, info: StandInInfo) -> Workspace:
    folder = tmp_path_factory.mktemp("extract")
    return write_template_workspace(folder, CONFIG, info, PREFIX)


@pytest.fixture(scope="module")
def session(workspace: Workspace, info: StandInInfo) -> AssumedRoleSession:
    return AssumedRoleSession(info.role_arn, workspace.external_id, info.region)


def make_source(
    workspace: Workspace, session: AssumedRoleSession, name: str = "standin", **options: Any
) -> RedshiftSource:
    _, connection = workspace.config.connection(name)
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("polling", FAST_POLL)
    return RedshiftSource(connection, session, **options)


@pytest.fixture(scope="module")
def source(workspace: Workspace, session: AssumedRoleSession) -> RedshiftSource:
    return make_source(workspace, session)


@pytest.fixture(scope="module")
def plain(workspace: Workspace, session: AssumedRoleSession) -> RedshiftSource:
    """A connection without UNLOAD."""
    return make_source(workspace, session, "plain")


@pytest.fixture(autouse=True)
def nothing_left_staged(
    standin: StandIn, session: AssumedRoleSession, info: StandInInfo
) -> Iterator[None]:
    yield
    bucket = StagingBucket(session, FAST_RETRY)
    left = bucket.list(info.bucket, PREFIX, stats=ReadStats())
    assert [item["Key"] for item in left] == []


@pytest.fixture
def owned_table(admin: Conn) -> Iterator[str]:
    """A test-owned table name in public, dropped afterwards."""
    name = "shiftsync_extract_owned"
    admin.execute(f"DROP TABLE IF EXISTS public.{name}")
    yield name
    admin.execute(f"DROP TABLE IF EXISTS public.{name}")


# ---------------------------------------------------------------- expected values


def _expected_expression(column: Column) -> str:
    quoted = quote_ident(column.name)
    return f"{quoted}::text" if column.type_name == "super" else quoted


def _arrow(values: list[Any], column: Column) -> pa.Array:
    field = arrow_field(column)
    if column.type_name == "super":
        return pa.ExtensionArray.from_storage(field.type, pa.array(values, pa.string()))
    if column.type_name == "timetz":
        return pa.array([None if v is None else v.isoformat() for v in values], pa.string())
    return pa.array(values, type=field.type)


def expected_table(
    admin: Conn, info: TableInfo, columns: Sequence[Column] | None = None, where: str = ""
) -> pa.Table:
    """The table read from PostgreSQL directly and converted per the contract."""
    chosen = list(columns or info.columns)
    select = ", ".join(_expected_expression(column) for column in chosen)
    rows = admin.execute(
        f"SELECT {select} FROM {info.ref.sql}" + (f" WHERE {where}" if where else "")
    ).fetchall()
    arrays = [_arrow([row[i] for row in rows], column) for i, column in enumerate(chosen)]
    return pa.Table.from_arrays(arrays, schema=arrow_schema(chosen))


def read_all(source: RedshiftSource, info: TableInfo, **options: Any) -> pa.Table:
    batches = list(source.read(info, **options))
    assert batches, "a read yields at least one batch"
    return pa.Table.from_batches(batches)


def sort(table: pa.Table, keys: Sequence[str] | None = None) -> pa.Table:
    names = list(keys) if keys else table.column_names
    return table.sort_by([(name, "ascending") for name in names])


def assert_same_table(actual: pa.Table, expected: pa.Table, keys: Sequence[str]) -> None:
    assert actual.schema.equals(expected.schema, check_metadata=True)
    assert actual.num_rows == expected.num_rows
    assert sort(actual, keys).equals(sort(expected, keys))


def same_value(a: Any, b: Any, column: Column) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if column.type_name == "super":
        return bool(json.loads(a) == json.loads(b))
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


def assert_same_values(actual: pa.Table, expected: pa.Table, columns: Sequence[Column]) -> None:
    """Value by value: NaN equals NaN, -0.0 differs from 0.0, SUPER compares as JSON."""
    assert actual.schema.equals(expected.schema, check_metadata=True)
    left, right = sort(actual, ["id"]).to_pylist(), sort(expected, ["id"]).to_pylist()
    assert len(left) == len(right)
    for got, want in zip(left, right, strict=True):
        for column in columns:
            name = column.name
            assert same_value(got[name], want[name], column), (
                f"id {want['id']} column {name}: {got[name]!r} != {want[name]!r}"
            )


def statements_with(standin: StandIn, marker: str) -> list[Any]:
    assert standin.engine is not None
    return [s for s in list(standin.engine.statements.values()) if marker in s.query_string]


# ---------------------------------------------------------------- every table, both methods


@pytest.mark.parametrize("table", sorted(TICKIT_KEYS))
def test_tickit_tables_equal_the_source_through_both_methods(
    source: RedshiftSource, admin: Conn, table: str
) -> None:
    info = source.describe(TableRef("public", table))
    key = [TICKIT_KEYS[table]]
    assert info.primary_key == tuple(key)
    expected = expected_table(admin, info)
    through_data_api = read_all(source, info, method="data_api")
    assert source.stats.method == "data_api"
    through_unload = read_all(source, info, method="unload")
    assert source.stats.method == "unload"
    assert source.stats.parts >= 1
    assert_same_table(through_data_api, expected, key)
    assert_same_table(through_unload, expected, key)
    assert sort(through_data_api, key).equals(sort(through_unload, key))


def test_every_type_through_both_methods_equals_the_source(
    source: RedshiftSource, admin: Conn
) -> None:
    info = source.describe("public.types")
    expected = expected_table(admin, info)
    through_data_api = read_all(source, info, method="data_api")
    through_unload = read_all(source, info, method="unload")
    assert_same_values(through_data_api, expected, info.columns)
    assert_same_values(through_unload, expected, info.columns)
    assert_same_values(through_data_api, through_unload, info.columns)


def test_the_json_result_format_gives_the_same_table_as_csv(
    source: RedshiftSource, workspace: Workspace, session: AssumedRoleSession
) -> None:
    through_json = make_source(workspace, session, "json")
    info = source.describe("public.types")
    from_json = read_all(through_json, info)
    assert_same_values(from_json, read_all(source, info, method="data_api"), info.columns)
    # The float columns hold NaN and both infinities, which travel as JSON strings.
    for name in ("c_real", "c_double"):
        values = [v for v in from_json.column(name).to_pylist() if v is not None]
        assert any(math.isnan(v) for v in values), name
        assert {math.inf, -math.inf} <= set(values), name


@pytest.mark.parametrize("method", METHODS)
def test_null_and_empty_string_stay_apart_and_odd_strings_survive(
    source: RedshiftSource, method: Method
) -> None:
    info = source.describe("public.types")
    table = sort(read_all(source, info, method=method, columns=["id", "c_varchar"]), ["id"])
    values = table.column("c_varchar").to_pylist()
    assert values[0] is None  # row 1 is NULL everywhere
    assert values[1] == ""  # row 2 holds the empty string
    assert set(EDGE_STRINGS) <= {v for v in values if v is not None}
    for odd in ("it's", 'say "hi"', "a,b,c", "\\", "line1\nline2", "crlf\r\nend", "\\N"):
        assert odd in values


@pytest.mark.parametrize("method", METHODS)
def test_odd_identifiers_are_read(source: RedshiftSource, admin: Conn, method: Method) -> None:
    info = source.describe('"odd schema"."mixed case"')
    assert [c.name for c in info.columns] == [
        "id",
        "select",
        "has space",
        'quo"te',
        "ünïcödé",
        "from",
    ]
    assert info.primary_key == ("id",)
    actual = read_all(source, info, method=method)
    assert_same_table(actual, expected_table(admin, info), ["id"])
    assert actual.num_rows == 3


@pytest.mark.parametrize("method", METHODS)
def test_a_view_reads_like_a_table(source: RedshiftSource, admin: Conn, method: Method) -> None:
    info = source.describe("public.sales_summary")
    assert info.kind == "VIEW"
    assert info.estimated_rows is None
    assert source.plan(info).method == "data_api"
    actual = read_all(source, info, method=method)
    assert_same_table(actual, expected_table(admin, info), ["eventid"])


@pytest.mark.parametrize("method", METHODS)
def test_a_table_without_a_key_keeps_its_duplicates(
    source: RedshiftSource, admin: Conn, method: Method
) -> None:
    info = source.describe("public.events_log")
    assert info.primary_key == ()
    actual = read_all(source, info, method=method)
    expected = expected_table(admin, info)
    assert actual.num_rows == 101
    assert sort(actual).equals(sort(expected))


@pytest.mark.parametrize("method", METHODS)
def test_columns_and_a_filter_are_applied(
    source: RedshiftSource, admin: Conn, method: Method
) -> None:
    info = source.describe("public.sales")
    chosen = ["pricepaid", "salesid", "saletime"]
    actual = read_all(source, info, method=method, columns=chosen, where='"qtysold" > 2')
    assert actual.column_names == chosen
    columns = [c for name in chosen for c in info.columns if c.name == name]
    expected = expected_table(admin, info, columns, where='"qtysold" > 2')
    assert 0 < expected.num_rows < 1725
    assert_same_table(actual, expected, ["salesid"])


@pytest.mark.parametrize("method", METHODS)
def test_an_empty_result_still_gives_the_schema(source: RedshiftSource, method: Method) -> None:
    info = source.describe("public.types")
    batches = list(source.read(info, method=method, where="1 = 0"))
    assert len(batches) == 1
    assert batches[0].num_rows == 0
    assert batches[0].schema.equals(arrow_schema(info.columns), check_metadata=True)


@pytest.mark.parametrize("method", METHODS)
def test_progress_adds_up_to_the_rows(source: RedshiftSource, method: Method) -> None:
    info = source.describe("public.listing")
    seen: list[tuple[int, int]] = []
    table = read_all(source, info, method=method, progress=lambda r, b: seen.append((r, b)))
    assert sum(rows for rows, _ in seen) == table.num_rows == 1925
    assert all(size > 0 for _, size in seen)
    assert source.stats.rows == 1925


def test_auto_reads_small_tables_through_the_data_api(source: RedshiftSource) -> None:
    info = source.describe("public.category")
    assert info.estimated_rows == 11
    assert info.estimated_bytes is not None
    assert source.plan(info).method == "data_api"
    read_all(source, info)
    assert source.stats.method == "data_api"
    assert source.stats.statements == 1


def test_read_table_from_a_workspace_path(
    workspace: Workspace, source: RedshiftSource, admin: Conn
) -> None:
    batches = read_table(workspace.folder / "shiftsync.yaml", "public.venue", "standin")
    actual = pa.Table.from_batches(list(batches))
    info = source.describe("public.venue")
    assert_same_table(actual, expected_table(admin, info), ["venueid"])


def test_query_and_execute(source: RedshiftSource, admin: Conn, owned_table: str) -> None:
    admin.execute(f"CREATE TABLE public.{owned_table} (id int, note varchar(10))")
    admin.execute(f'GRANT SELECT, INSERT ON public.{owned_table} TO "{READER}"')
    inserted = source.execute(f"INSERT INTO public.{owned_table} VALUES (1, 'a'), (2, NULL)")
    assert inserted == 2
    rows = source.query(
        f"SELECT id, note, 1.50::numeric(4,2) FROM public.{owned_table} ORDER BY id"
    )
    assert rows == [(1, "a", "1.50"), (2, None, "1.50")]


# ---------------------------------------------------------------- the Data API's limits


def test_a_result_over_the_cap_is_read_in_key_chunks_without_unload(
    plain: RedshiftSource, admin: Conn, low_result_cap: int
) -> None:
    info = plain.describe("public.sales")
    assert plain.plan(info).method == "data_api"
    actual = read_all(plain, info)
    assert_same_table(actual, expected_table(admin, info), ["salesid"])
    assert plain.stats.chunks >= 4
    assert any("chunks by salesid" in note for note in plain.stats.fallbacks)


def test_a_view_over_the_cap_is_read_in_chunks_with_its_null_keys(
    plain: RedshiftSource, admin: Conn, low_result_cap: int, owned_table: str
) -> None:
    admin.execute(
        f"CREATE TABLE public.{owned_table} AS SELECT CASE WHEN salesid % 7 = 0 THEN NULL "
        "ELSE salesid END AS k, pricepaid, saletime FROM public.sales"
    )
    admin.execute(f'GRANT SELECT ON public.{owned_table} TO "{READER}"')
    info = plain.describe(f"public.{owned_table}")
    actual = read_all(plain, info, method="data_api")
    expected = expected_table(admin, info)
    assert actual.num_rows == expected.num_rows == 1725
    assert sort(actual).equals(sort(expected))


def test_a_result_over_the_cap_switches_to_unload_when_configured(
    source: RedshiftSource, admin: Conn, low_result_cap: int
) -> None:
    info = source.describe("public.sales")
    assert source.plan(info).method == "data_api"
    actual = read_all(source, info)
    assert_same_table(actual, expected_table(admin, info), ["salesid"])
    assert source.stats.method == "unload"
    assert source.stats.fallbacks == [
        "the Data API refused the result as too large: read with UNLOAD"
    ]


def test_asking_for_the_data_api_over_the_cap_chunks_even_with_unload(
    source: RedshiftSource, admin: Conn, low_result_cap: int
) -> None:
    info = source.describe("public.sales")
    actual = read_all(source, info, method="data_api")
    assert_same_table(actual, expected_table(admin, info), ["salesid"])
    assert source.stats.method == "data_api"
    assert source.stats.chunks >= 4


def test_a_planned_big_read_is_chunked_up_front(plain: RedshiftSource, admin: Conn) -> None:
    info = plain.describe("public.listing")
    big = dataclasses.replace(info, estimated_rows=10_000_000)
    plan = plain.plan(big)
    assert plan.method == "data_api"
    assert plan.chunks > 1
    actual = read_all(plain, big)
    assert_same_table(actual, expected_table(admin, info), ["listid"])
    assert plain.stats.chunks == plan.chunks
    assert plain.stats.fallbacks == []


def test_over_the_cap_without_a_key_column_or_unload_is_a_clear_error(
    plain: RedshiftSource, admin: Conn, low_result_cap: int, owned_table: str
) -> None:
    admin.execute(
        f"CREATE TABLE public.{owned_table} AS SELECT repeat('x', 200) AS t FROM "
        "generate_series(1, 400)"
    )
    admin.execute(f'GRANT SELECT ON public.{owned_table} TO "{READER}"')
    info = plain.describe(f"public.{owned_table}")
    with pytest.raises(ResultLimitError) as raised:
        read_all(plain, info)
    assert f"public.{owned_table}" in raised.value.message
    assert raised.value.fix is not None
    assert "UNLOAD" in raised.value.fix


# ---------------------------------------------------------------- faults


@pytest.fixture
def faults(standin: StandIn) -> Iterator[Any]:
    yield standin.faults
    standin.faults.clear()


def fired(standin: StandIn, fault_id: str) -> int:
    return standin.faults.counts()[fault_id]


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("throttle", {"operation": "ExecuteStatement"}),
        ("throttle", {"operation": "GetStatementResultV2"}),
        ("server_error", {"operation": "DescribeStatement"}),
        ("server_error", {"operation": "GetStatementResultV2"}),
        ("active_statements", {}),
        ("pause_workgroup", {"operation": "ExecuteStatement"}),
        ("drop_connection", {"service": "redshift-data", "operation": "ExecuteStatement"}),
        (
            "drop_connection",
            {
                "service": "redshift-data",
                "operation": "GetStatementResultV2",
                "after_processing": True,
            },
        ),
    ],
)
def test_data_api_faults_are_survived_with_the_same_result(
    source: RedshiftSource,
    admin: Conn,
    standin: StandIn,
    faults: Any,
    kind: str,
    fields: dict[str, Any],
) -> None:
    info = source.describe("public.sales")
    expected = expected_table(admin, info)
    fault_id = faults.add(kind, times=2, **fields)
    actual = read_all(source, info, method="data_api")
    assert fired(standin, fault_id) == 2
    assert_same_table(actual, expected, ["salesid"])
    assert source.stats.retries >= 2


def test_describing_a_listed_table_does_not_list_again(
    workspace: Workspace, session: AssumedRoleSession, standin: StandIn, faults: Any
) -> None:
    listed = make_source(workspace, session)
    assert TableRef("public", "venue") in listed.list_tables("public", "ven%")
    fault_id = faults.add("server_error", times=1, operation="ListTables")
    assert listed.describe("public.venue").primary_key == ("venueid",)
    assert fired(standin, fault_id) == 0
    # A table not listed before is looked up: the same fault then fires (and is retried).
    info = make_source(workspace, session).describe("public.venue")
    assert fired(standin, fault_id) == 1
    assert info.kind == "TABLE"
    assert [c.name for c in info.columns][:2] == ["venueid", "venuename"]


def test_an_execute_whose_answer_was_lost_runs_once(
    source: RedshiftSource, standin: StandIn, faults: Any
) -> None:
    """The response is cut after the statement started: the retry reuses its ClientToken."""
    info = source.describe("public.category")
    marker = "'lost-answer-1' = 'lost-answer-1'"
    fault_id = faults.add(
        "drop_connection",
        service="redshift-data",
        operation="ExecuteStatement",
        after_processing=True,
    )
    assert read_all(source, info, where=marker).num_rows == 11
    assert fired(standin, fault_id) == 1
    assert len(statements_with(standin, "lost-answer-1")) == 1


@pytest.fixture
def revive_sessions() -> Iterator[None]:
    """Undo an expiry for the sessions other tests share (the stand-in cannot revive them)."""
    expired_before = set(iam._expired_access_keys)
    yield
    with iam._lock:
        iam._expired_access_keys.intersection_update(expired_before)


@pytest.mark.usefixtures("revive_sessions")
def test_expired_credentials_mid_read_are_refreshed(
    workspace: Workspace, info: StandInInfo, admin: Conn, standin: StandIn, faults: Any
) -> None:
    own = AssumedRoleSession(info.role_arn, workspace.external_id, info.region)
    source = make_source(workspace, own, prefetch=False)
    table = source.describe("public.listing")
    with lowered_limits(standin, page_bytes=16 * 1024):
        batches = source.read(table, method="data_api")
        first = next(batches)
        refreshes = own.refreshes
        fault_id = faults.add("expire_credentials")
        rest = list(batches)
    assert fired(standin, fault_id) == 1
    assert own.refreshes == refreshes + 1
    assert source.stats.pages > 1
    actual = pa.Table.from_batches([first, *rest])
    assert_same_table(actual, expected_table(admin, table), ["listid"])


@pytest.mark.usefixtures("revive_sessions")
def test_expired_credentials_before_an_unload_are_refreshed(
    workspace: Workspace, info: StandInInfo, admin: Conn, standin: StandIn, faults: Any
) -> None:
    own = AssumedRoleSession(info.role_arn, workspace.external_id, info.region)
    source = make_source(workspace, own)
    table = source.describe("public.sales")
    refreshes = own.refreshes
    fault_id = faults.add("expire_credentials")
    actual = read_all(source, table, method="unload")
    assert fired(standin, fault_id) == 1
    assert own.refreshes == refreshes + 1
    assert_same_table(actual, expected_table(admin, table), ["salesid"])


@pytest.mark.parametrize(
    ("kind", "fields", "times"),
    [
        ("throttle", {"service": "s3", "operation": "GetObject", "key": "_part_"}, 2),
        ("server_error", {"service": "s3", "operation": "GetObject", "key": "_part_"}, 2),
        ("drop_connection", {"service": "s3", "operation": "GetObject", "key": "_part_"}, 2),
        (
            "drop_connection",
            {"service": "s3", "operation": "GetObject", "key": "_part_", "after_processing": True},
            1,
        ),
        ("s3_vanish", {"key": "_part_"}, 1),
        ("s3_vanish", {"key": "manifest$"}, 1),
        ("server_error", {"service": "s3", "operation": "DeleteObjects"}, 1),
    ],
)
def test_s3_faults_are_survived_with_the_same_result(
    source: RedshiftSource,
    admin: Conn,
    standin: StandIn,
    faults: Any,
    kind: str,
    fields: dict[str, Any],
    times: int,
) -> None:
    info = source.describe("public.sales")
    expected = expected_table(admin, info)
    fault_id = faults.add(kind, times=times, **fields)
    actual = read_all(source, info, method="unload")
    assert fired(standin, fault_id) == times
    assert_same_table(actual, expected, ["salesid"])


def test_a_part_deleted_before_it_is_read_makes_the_unload_run_again(
    source: RedshiftSource, admin: Conn, standin: StandIn, faults: Any
) -> None:
    info = source.describe("public.sales")
    fault_id = faults.add("s3_vanish", key="0000_part_00", delete=True)
    actual = read_all(source, info, method="unload")
    assert fired(standin, fault_id) == 1
    assert_same_table(actual, expected_table(admin, info), ["salesid"])
    assert source.stats.fallbacks
    assert "UNLOAD ran again" in source.stats.fallbacks[0]


@pytest.fixture
def unload_reports_no_rows(standin: StandIn) -> Iterator[None]:
    """UNLOAD statements report ResultRows 0 whatever they wrote.

    AWS does not document ResultRows for UNLOAD (for COPY the Data API reports 0), while the
    stand-in reports the real count; this swaps the stand-in's UNLOAD handler for one that
    runs the real UNLOAD and reports 0, the case the stand-in cannot produce by itself.
    """
    engine = standin.engine
    assert engine is not None
    real = engine.unload_handler
    assert real is not None

    def reports_zero(*args: Any) -> int:
        real(*args)
        return 0

    engine.unload_handler = reports_zero
    try:
        yield
    finally:
        engine.unload_handler = real


def test_a_missing_manifest_of_an_empty_select_is_confirmed_by_a_count(
    source: RedshiftSource, standin: StandIn, faults: Any
) -> None:
    marker = "empty-manifest-marker"
    info = source.describe("public.types")
    fault_id = faults.add("s3_vanish", key="manifest$")
    batches = list(source.read(info, method="unload", where=f"'{marker}' = ''"))
    assert fired(standin, fault_id) == 1
    assert [batch.num_rows for batch in batches] == [0]
    assert batches[0].schema.equals(arrow_schema(info.columns), check_metadata=True)
    statements = statements_with(standin, marker)
    assert [s.query_string.split()[0] for s in statements] == ["UNLOAD", "SELECT"]
    assert statements[1].query_string.startswith("SELECT count(*)")
    assert statements[1].status == "FINISHED"
    assert source.stats.fallbacks == []


@pytest.mark.usefixtures("unload_reports_no_rows")
def test_a_missing_manifest_with_rows_runs_the_unload_again_even_if_it_reported_none(
    source: RedshiftSource, admin: Conn, standin: StandIn, faults: Any
) -> None:
    info = source.describe("public.sales")
    fault_id = faults.add("s3_vanish", key="manifest$")
    actual = read_all(source, info, method="unload")
    assert fired(standin, fault_id) == 1
    assert_same_table(actual, expected_table(admin, info), ["salesid"])
    assert len(source.stats.fallbacks) == 1
    assert "manifest" in source.stats.fallbacks[0]
    assert "UNLOAD ran again" in source.stats.fallbacks[0]


@pytest.mark.usefixtures("unload_reports_no_rows")
def test_a_manifest_missing_twice_with_rows_is_an_error_not_an_empty_table(
    source: RedshiftSource, standin: StandIn, faults: Any
) -> None:
    info = source.describe("public.sales")
    fault_id = faults.add("s3_vanish", key="manifest$", times=2)
    with pytest.raises(SourceError) as raised:
        read_all(source, info, method="unload")
    assert fired(standin, fault_id) == 2
    assert "public.sales" in raised.value.message
    assert "manifest" in raised.value.message


# ---------------------------------------------------------------- cleanup failures

UNLISTABLE_PREFIX = "shiftsync-extract-unlisted/"


@pytest.fixture(scope="module")
def unlistable(
    tmp_path_factory: pytest.TempPathFactory, standin: StandIn, info: StandInInfo, admin: Conn
) -> Iterator[RedshiftSource]:
    """A role without s3:ListBucket: its UNLOAD reads work, but its cleanup is refused."""
    name = f"no-list-{uuid.uuid4().hex[:10]}"
    external_id = f"shiftsync-{uuid.uuid4()}"
    role_arn = standin.create_role(
        name,
        guide_permission_policy(info.bucket, deny=["s3:ListBucket"]),
        guide_trust_policy(info.principal_arn, external_id),
    )
    db_user = quote_ident(f"IAMR:{name}")
    admin.execute(f"CREATE ROLE {db_user} LOGIN")
    admin.execute(f"GRANT SELECT ON public.category TO {db_user}")
    folder = tmp_path_factory.mktemp("unlistable")
    (folder / "shiftsync.yaml").write_text(
        CONFIG.format(
            region=info.region,
            workgroup=info.workgroup,
            database=info.database,
            role_arn=role_arn,
            bucket=info.bucket,
            prefix=UNLISTABLE_PREFIX,
        )
    )
    write_external_id(folder, external_id)
    workspace = Workspace(folder)
    try:
        yield make_source(workspace, AssumedRoleSession(role_arn, external_id, info.region))
    finally:
        admin.execute(f"REVOKE SELECT ON public.category FROM {db_user}")


@pytest.fixture
def left_staged(session: AssumedRoleSession, info: StandInInfo) -> Iterator[StagingBucket]:
    """Removes what the unlistable role could not, through the reader role."""
    bucket = StagingBucket(session, FAST_RETRY)
    yield bucket
    bucket.delete_prefix(info.bucket, UNLISTABLE_PREFIX, stats=ReadStats())


def test_a_refused_cleanup_does_not_fail_the_read(
    unlistable: RedshiftSource,
    admin: Conn,
    info: StandInInfo,
    left_staged: StagingBucket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = unlistable.describe("public.category")
    with caplog.at_level(logging.WARNING, logger="shiftsync.redshift"):
        actual = read_all(unlistable, table, method="unload")
    assert_same_table(actual, expected_table(admin, table), ["catid"])
    left = left_staged.list(info.bucket, UNLISTABLE_PREFIX, stats=ReadStats())
    assert left, "the staged files stay: the role may not list them"
    [warning] = [r for r in caplog.records if "could not be deleted" in r.getMessage()]
    message = warning.getMessage()
    assert "public.category" in message
    assert f"s3://{info.bucket}/{UNLISTABLE_PREFIX}" in message
    assert "`shiftsync cleanup` removes them" in message
    assert "s3:ListBucket" in message


def test_a_refused_cleanup_does_not_replace_the_reads_own_error(
    unlistable: RedshiftSource, left_staged: StagingBucket
) -> None:
    table = unlistable.describe("public.category")
    with pytest.raises(StatementError) as raised:
        read_all(unlistable, table, method="unload", where='1 / ("catid" - "catid") = 1')
    assert "division by zero" in raised.value.message
    assert "public.category" in raised.value.message


# ---------------------------------------------------------------- cancelling


def test_a_timeout_cancels_the_statement(
    workspace: Workspace, session: AssumedRoleSession, standin: StandIn, faults: Any
) -> None:
    source = make_source(workspace, session, statement_timeout=0.5)
    info = source.describe("public.category")
    faults.add("delay", sql="timeout-marker-1", seconds=30)
    with pytest.raises(StatementError) as raised:
        read_all(source, info, where="'timeout-marker-1' <> ''")
    assert "did not finish within 0.5 s" in raised.value.message
    assert "public.category" in raised.value.message
    [statement] = statements_with(standin, "timeout-marker-1")
    assert statement.done.wait(5)
    assert statement.status == "ABORTED"
    assert raised.value.statement_id == statement.id


@pytest.mark.parametrize("method", METHODS)
def test_ctrl_c_cancels_the_running_statement(
    source: RedshiftSource, standin: StandIn, faults: Any, method: Method
) -> None:
    marker = f"ctrl-c-marker-{method}"
    info = source.describe("public.category")
    delay = faults.add("delay", sql=marker, seconds=30)
    main = threading.main_thread().ident
    assert main is not None
    assert main == threading.get_ident()

    def interrupt_once_running() -> None:
        # Ctrl-C arrives while the statement is known to run (its delay fault fired) and the
        # client is waiting on it (it asked DescribeStatement after submitting it), not after a
        # guessed time: on a busy machine a timer could fire before or after either. The wait
        # is a long poll that can arrive before the statement starts: counting only calls
        # after the fault fired waited out that poll (20 s).
        if not standin.faults.wait_fired(delay, 30):
            return
        fired = time.monotonic()
        submitted = max(at for at in calls.times("ExecuteStatement", since=started) if at <= fired)
        wait_until(
            lambda: calls.times("DescribeStatement", since=submitted),
            what="the client's wait on the statement",
        )
        signal.pthread_kill(main, signal.SIGINT)

    calls = call_log.current()
    started = time.monotonic()
    interrupter = threading.Thread(target=interrupt_once_running, daemon=True)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        read_all(source, info, method=method, where=f"'{marker}' <> ''")
    interrupter.join(5)
    [statement] = statements_with(standin, marker)
    assert statement.done.wait(5)
    assert statement.status == "ABORTED"
    assert source.stats.cancelled == 1


def test_closing_an_unload_read_early_deletes_its_staged_files(
    source: RedshiftSource, info: StandInInfo, session: AssumedRoleSession
) -> None:
    table = source.describe("public.listing")
    batches = source.read(table, method="unload")
    first = next(batches)
    assert first.num_rows > 0
    staged = StagingBucket(session, FAST_RETRY).list(info.bucket, PREFIX, stats=ReadStats())
    assert staged, "the parts are staged while the read runs"
    batches.close()
    assert source.stats.staged_deleted == len(staged)


# ---------------------------------------------------------------- bad input


def test_an_unknown_table_names_the_table(source: RedshiftSource) -> None:
    with pytest.raises(SourceError) as raised:
        source.describe("public.no_such_table")
    assert "public.no_such_table" in raised.value.message
    assert raised.value.fix is not None
    assert "shiftsync discover" in raised.value.fix


def test_an_unknown_column_names_the_table_and_column(source: RedshiftSource) -> None:
    info = source.describe("public.venue")
    with pytest.raises(SourceError) as raised:
        source.read(info, columns=["venueid", "nope"])
    assert "public.venue" in raised.value.message
    assert "'nope'" in raised.value.message


@pytest.mark.parametrize("method", METHODS)
def test_a_dropped_column_names_table_and_column(
    source: RedshiftSource, admin: Conn, owned_table: str, method: Method
) -> None:
    admin.execute(f"CREATE TABLE public.{owned_table} (id int PRIMARY KEY, gone varchar(10))")
    admin.execute(f"INSERT INTO public.{owned_table} VALUES (1, 'a'), (2, 'b')")
    admin.execute(f'GRANT SELECT ON public.{owned_table} TO "{READER}"')
    info = source.describe(f"public.{owned_table}")
    admin.execute(f"ALTER TABLE public.{owned_table} DROP COLUMN gone")
    with pytest.raises(StatementError) as raised:
        read_all(source, info, method=method)
    message = raised.value.message
    assert f"public.{owned_table}" in message
    assert "gone" in message
    assert raised.value.statement_id
    assert raised.value.fix is not None
    assert "describe it again" in raised.value.fix


def test_a_type_outside_the_contract_names_the_column(
    source: RedshiftSource, admin: Conn, owned_table: str
) -> None:
    admin.execute(f"CREATE TABLE public.{owned_table} (id int, span int4range)")
    admin.execute(f"INSERT INTO public.{owned_table} VALUES (1, '[1,5)')")
    admin.execute(f'GRANT SELECT ON public.{owned_table} TO "{READER}"')
    info = source.describe(f"public.{owned_table}")
    assert info.column("span") == Column("span", "int4range")
    with pytest.raises(SourceError) as raised:
        source.read(info)
    assert "'span'" in raised.value.message
    assert f"public.{owned_table}" in raised.value.message
    assert raised.value.fix is not None
    assert "exclude" in raised.value.fix
    assert read_all(source, info, columns=["id"]).num_rows == 1


@pytest.mark.parametrize("method", METHODS)
def test_a_statement_that_fails_in_redshift_names_the_table(
    source: RedshiftSource, method: Method
) -> None:
    info = source.describe("public.sales")
    with pytest.raises(StatementError) as raised:
        read_all(source, info, method=method, where='1 / ("qtysold" - "qtysold") = 1')
    assert "public.sales" in raised.value.message
    assert "division by zero" in raised.value.message


@pytest.mark.parametrize("method", METHODS)
def test_a_statement_aborted_by_redshift_is_a_statement_error(
    source: RedshiftSource, standin: StandIn, faults: Any, method: Method
) -> None:
    marker = f"aborted-marker-{method}"
    info = source.describe("public.sales")
    fault_id = faults.add("abort_statement", sql=marker)
    with pytest.raises(StatementError) as raised:
        read_all(source, info, method=method, where=f"'{marker}' <> ''")
    assert fired(standin, fault_id) == 1
    [statement] = statements_with(standin, marker)
    assert raised.value.statement_id == statement.id
    assert "ABORTED" in raised.value.message
    assert "public.sales" in raised.value.message


def test_a_failed_statement_carries_redshifts_message(
    source: RedshiftSource, standin: StandIn, faults: Any
) -> None:
    info = source.describe("public.sales")
    faults.add("fail_statement", sql="failed-marker", message="ERROR: disk full on slice 3")
    with pytest.raises(StatementError) as raised:
        read_all(source, info, where="'failed-marker' <> ''")
    assert "FAILED: ERROR: disk full on slice 3" in raised.value.message
    assert "public.sales" in raised.value.message
    assert raised.value.fix is not None


def test_asking_for_unload_without_a_bucket_is_a_config_error(plain: RedshiftSource) -> None:
    info = plain.describe("public.venue")
    with pytest.raises(ConfigError, match="unload"):
        plain.read(info, method="unload")
