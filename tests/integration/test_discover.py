"""`shiftsync discover` and `shiftsync cleanup` on the stand-in, and the catalog under them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from botocore.stub import Stubber

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.cli import main
from shiftsync.errors import SourceError
from shiftsync.local.standin import StandInInfo
from shiftsync.redshift.catalog import TableInfo, TableRef
from shiftsync.redshift.data_api import ReadStats
from shiftsync.redshift.retry import PollPolicy, RetryPolicy
from shiftsync.redshift.source import RedshiftSource
from shiftsync.redshift.types import Column
from shiftsync.redshift.unload import StagingBucket
from shiftsync.workspace import Workspace
from tests.support import UNLOAD_SETTINGS, connection_template, write_template_workspace

PREFIX = "shiftsync-discover/"
READER = "IAMR:shiftsync-reader"
MANY = "shiftsync_many"
TICKIT = {"category", "date", "event", "listing", "sales", "users", "venue"}
CONFIG = (
    "connections:\n"
    + connection_template("warehouse", *UNLOAD_SETTINGS)
    + connection_template("nostage")
)

Conn = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, info: StandInInfo) -> Workspace:
    folder = tmp_path_factory.mktemp("discover")
    return write_template_workspace(folder, CONFIG, info, PREFIX)


@pytest.fixture(scope="module")
def source(workspace: Workspace) -> RedshiftSource:
    return RedshiftSource.from_workspace(workspace, "warehouse")


def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["shiftsync", *args])
    code = 0
    try:
        main()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def discover(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workspace: Workspace,
    *args: str,
) -> tuple[int, str, str]:
    """`shiftsync discover warehouse -w <workspace> ARGS`: exit code, stdout, stderr."""
    return run_cli(capsys, monkeypatch, "discover", "warehouse", "-w", str(workspace.folder), *args)


def discover_json(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workspace: Workspace,
    *args: str,
) -> dict[str, Any]:
    code, out, err = discover(capsys, monkeypatch, workspace, *args)
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{t['schema']}.{t['name']}": t for t in document["tables"]}


# ---------------------------------------------------------------- discover


def test_discover_lists_every_table_and_view_with_columns_keys_and_plans(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    document = discover_json(capsys, monkeypatch, workspace, "--json")
    tables = by_name(document)
    assert document["connection"] == "warehouse"
    assert document["errors"] == []
    assert {f"public.{name}" for name in TICKIT} <= set(tables)
    assert {
        "public.types",
        "public.sales_summary",
        "public.events_log",
        "odd schema.mixed case",
    } <= (set(tables))
    assert not [name for name in tables if name.startswith(("pg_", "information_schema"))]
    sales = tables["public.sales"]
    assert sales["kind"] == "TABLE"
    assert sales["primary_key"] == ["salesid"]
    assert sales["estimated_rows"] == 1725
    assert sales["estimated_bytes"] > 0
    assert sales["method"] == "data_api"
    assert "small" in sales["reason"]
    price = next(c for c in sales["columns"] if c["name"] == "pricepaid")
    assert price == {
        "name": "pricepaid",
        "type": "numeric(8,2)",
        "nullable": True,
        "precision": 8,
        "scale": 2,
        "length": None,
        "arrow_type": "decimal128(8, 2)",
        "supported": True,
        "problem": None,
    }
    salesid = sales["columns"][0]
    assert (salesid["name"], salesid["type"], salesid["nullable"]) == ("salesid", "int4", False)
    view = tables["public.sales_summary"]
    assert view["kind"] == "VIEW"
    assert view["estimated_rows"] is None
    assert view["primary_key"] == []
    users = tables["public.users"]
    email = next(c for c in users["columns"] if c["name"] == "email")
    assert (email["type"], email["length"]) == ("varchar(100)", 100)


def test_discover_narrows_by_schema_and_table_patterns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    odd = by_name(discover_json(capsys, monkeypatch, workspace, "--schema", "odd*", "--json"))
    assert list(odd) == ["odd schema.mixed case"]
    assert [c["name"] for c in odd["odd schema.mixed case"]["columns"]] == [
        "id",
        "select",
        "has space",
        'quo"te',
        "ünïcödé",
        "from",
    ]
    sales = discover_json(capsys, monkeypatch, workspace, "--table", "sales%", "--json")
    assert sorted(by_name(sales)) == ["public.sales", "public.sales_summary"]


def test_discover_prints_a_readable_summary_and_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    code, out, err = discover(capsys, monkeypatch, workspace, "--table", "venue")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "1 table or view"
    assert lines[1].split() == ["table", "kind", "rows", "size", "primary", "key", "method"]
    assert lines[2].split()[:3] == ["public.venue", "table", "202"]
    assert lines[2].split()[-2:] == ["venueid", "data_api"]
    assert any(line.split()[:4] == ["venueid", "int2", "not", "null"] for line in lines)
    assert "connection warehouse" in err


def test_discover_marks_a_type_outside_the_contract(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workspace: Workspace,
    admin: Conn,
) -> None:
    admin.execute("DROP TABLE IF EXISTS public.shiftsync_discover_odd")
    admin.execute("CREATE TABLE public.shiftsync_discover_odd (id int, span int4range)")
    admin.execute(f'GRANT SELECT ON public.shiftsync_discover_odd TO "{READER}"')
    try:
        document = discover_json(
            capsys, monkeypatch, workspace, "--table", "shiftsync_discover_odd", "--json"
        )
        code, out, err = discover(
            capsys, monkeypatch, workspace, "--table", "shiftsync_discover_odd"
        )
    finally:
        admin.execute("DROP TABLE public.shiftsync_discover_odd")
    [table] = document["tables"]
    span = table["columns"][1]
    assert span["supported"] is False
    assert span["arrow_type"] is None
    assert "'span'" in span["problem"]
    assert "int4range (unsupported)" in out
    assert "'span'" in err
    assert code == 0


def test_discover_with_no_match_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    code, out, _ = discover(capsys, monkeypatch, workspace, "--table", "nothing_here%")
    assert code == 0
    assert out.strip() == "no tables or views match"


def test_discover_of_an_unknown_connection_is_a_config_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    code, out, err = run_cli(capsys, monkeypatch, "discover", "-w", str(workspace.folder), "nope")
    assert code == 2
    assert out == ""
    assert "nope" in err
    assert "fix:" in err


# ---------------------------------------------------------------- pagination


@pytest.fixture(scope="module")
def many(admin: Conn) -> Iterator[int]:
    """A schema with more tables than a ListTables page, and a table with more columns than a
    DescribeTable page (1,000 each)."""
    admin.execute(f"DROP SCHEMA IF EXISTS {MANY} CASCADE")
    admin.execute(f"CREATE SCHEMA {MANY}")
    with admin.transaction():
        for n in range(1005):
            admin.execute(f"CREATE VIEW {MANY}.v{n:04d} AS SELECT {n} AS n")
        columns = ", ".join(f"c{n:04d} int" for n in range(1100))
        admin.execute(f"CREATE TABLE {MANY}.wide (id int PRIMARY KEY, {columns})")
    admin.execute(f'GRANT USAGE ON SCHEMA {MANY} TO "{READER}"')
    admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA {MANY} TO "{READER}"')
    yield 1005
    admin.execute(f"DROP SCHEMA {MANY} CASCADE")


def test_list_tables_follows_every_page(source: RedshiftSource, many: int) -> None:
    refs = source.list_tables(MANY, "v%")
    assert len(refs) == many
    assert refs[0] == TableRef(MANY, "v0000")
    assert refs[-1] == TableRef(MANY, f"v{many - 1:04d}")


def test_describe_follows_every_page_of_columns(source: RedshiftSource, many: int) -> None:
    info = source.describe(TableRef(MANY, "wide"))
    assert len(info.columns) == 1101
    assert info.columns[-1] == Column("c1099", "int4")
    assert info.primary_key == ("id",)


def test_a_listing_that_repeats_a_next_token_is_refused(
    workspace: Workspace, info: StandInInfo
) -> None:
    session = AssumedRoleSession(info.role_arn, workspace.external_id, info.region)
    _, connection = workspace.config.connection("warehouse")
    source = RedshiftSource(connection, session, retry=RetryPolicy(max_attempts=1))
    client = session.client("redshift-data")
    pages = [
        {"Tables": [{"schema": "public", "name": "a", "type": "TABLE"}], "NextToken": "t1"},
        {"Tables": [{"schema": "public", "name": "b", "type": "TABLE"}], "NextToken": "t2"},
        {"Tables": [{"schema": "public", "name": "c", "type": "TABLE"}], "NextToken": "t1"},
    ]
    with Stubber(client) as stubber:
        for page in pages:
            stubber.add_response("list_tables", page)
        with pytest.raises(SourceError, match="NextToken") as raised:
            source.list_tables()
    assert raised.value.fix is not None


def stubbable_category(
    workspace: Workspace, info: StandInInfo
) -> tuple[RedshiftSource, TableInfo, Any]:
    """A source that tries once and polls at once, public.category, and its client to stub."""
    session = AssumedRoleSession(info.role_arn, workspace.external_id, info.region)
    _, connection = workspace.config.connection("warehouse")
    source = RedshiftSource(
        connection, session, retry=RetryPolicy(max_attempts=1), polling=PollPolicy(first=0)
    )
    return source, source.describe("public.category"), session.client("redshift-data")


def test_a_result_that_repeats_a_next_token_is_refused(
    workspace: Workspace, info: StandInInfo
) -> None:
    source, table, client = stubbable_category(workspace, info)
    statement = "11111111-2222-3333-4444-555555555555"
    page = {
        "Records": [{"CSVRecords": "catid\n1\n"}],
        "ColumnMetadata": [{"name": "catid", "typeName": "int2"}],
        "TotalNumRows": 3,
        "NextToken": "again",
    }
    with Stubber(client) as stubber:
        stubber.add_response("execute_statement", {"Id": statement})
        stubber.add_response(
            "describe_statement",
            {"Id": statement, "Status": "FINISHED", "HasResultSet": True, "ResultRows": 3},
        )
        stubber.add_response("get_statement_result_v2", page)
        stubber.add_response("get_statement_result_v2", {**page, "Records": []})
        with pytest.raises(SourceError, match="NextToken") as raised:
            list(source.read(table, columns=["catid"], method="data_api"))
    assert "public.category" in raised.value.message


def test_a_result_shorter_than_announced_is_refused(
    workspace: Workspace, info: StandInInfo
) -> None:
    source, table, client = stubbable_category(workspace, info)
    statement = "11111111-2222-3333-4444-666666666666"
    with Stubber(client) as stubber:
        stubber.add_response("execute_statement", {"Id": statement})
        stubber.add_response(
            "describe_statement",
            {"Id": statement, "Status": "FINISHED", "HasResultSet": True, "ResultRows": 5},
        )
        stubber.add_response(
            "get_statement_result_v2",
            {
                "Records": [{"CSVRecords": "catid\n1\n2\n"}],
                "ColumnMetadata": [{"name": "catid", "typeName": "int2"}],
                "TotalNumRows": 5,
            },
        )
        with pytest.raises(SourceError, match="announced 5 rows but 2 arrived"):
            list(source.read(table, columns=["catid"], method="data_api"))


def test_a_refused_long_poll_falls_back_to_polling(workspace: Workspace, info: StandInInfo) -> None:
    source, table, client = stubbable_category(workspace, info)
    statement = "11111111-2222-3333-4444-777777777777"
    with Stubber(client) as stubber:
        stubber.add_response("execute_statement", {"Id": statement})
        stubber.add_client_error(
            "describe_statement",
            service_error_code="ActiveWaitingRequestsExceededException",
            http_status_code=400,
            expected_params={"Id": statement, "WaitTimeSeconds": 20},
        )
        stubber.add_response(
            "describe_statement",
            {"Id": statement, "Status": "FINISHED", "HasResultSet": True, "ResultRows": 1},
            expected_params={"Id": statement},
        )
        stubber.add_response(
            "get_statement_result_v2",
            {
                "Records": [{"CSVRecords": "catid\n7\n"}],
                "ColumnMetadata": [{"name": "catid", "typeName": "int2"}],
                "TotalNumRows": 1,
            },
        )
        batches = list(source.read(table, columns=["catid"], method="data_api"))
        stubber.assert_no_pending_responses()
    assert batches[0].column(0).to_pylist() == [7]
    assert source.api.long_poll  # refused once, still used next time


# ---------------------------------------------------------------- cleanup


@pytest.fixture
def crashed_run(assumed: AssumedRoleSession, info: StandInInfo) -> Iterator[list[str]]:
    """Objects a killed run left under the prefix."""
    s3 = assumed.client("s3")
    keys = [f"{PREFIX}20260101T000000Z-deadbeef/public.sales/abc_{n:04d}_part_00" for n in range(3)]
    for key in keys:
        s3.put_object(Bucket=info.bucket, Key=key, Body=b"parquet bytes")
    yield keys
    bucket = StagingBucket(assumed, RetryPolicy())
    bucket.delete_prefix(info.bucket, PREFIX, stats=ReadStats())


def staged(assumed: AssumedRoleSession, info: StandInInfo) -> list[str]:
    listed = StagingBucket(assumed, RetryPolicy()).list(info.bucket, PREFIX, stats=ReadStats())
    return sorted(str(item["Key"]) for item in listed)


def test_cleanup_dry_run_lists_and_keeps(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workspace: Workspace,
    crashed_run: list[str],
    assumed: AssumedRoleSession,
    info: StandInInfo,
) -> None:
    args = ("cleanup", "warehouse", "-w", str(workspace.folder), "--older-than", "0", "--dry-run")
    code, out, err = run_cli(capsys, monkeypatch, *args)
    assert code == 0, err
    assert all(key in out for key in crashed_run)
    assert "dry run: 3 object(s)" in err
    assert staged(assumed, info) == crashed_run


def test_cleanup_deletes_what_is_old_enough(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workspace: Workspace,
    crashed_run: list[str],
    assumed: AssumedRoleSession,
    info: StandInInfo,
) -> None:
    args = ("cleanup", "warehouse", "-w", str(workspace.folder))
    code, _, err = run_cli(capsys, monkeypatch, *args)  # default: older than 24 h
    assert code == 0, err
    assert "deleted 0 of 0" in err
    assert staged(assumed, info) == crashed_run
    code, _, err = run_cli(capsys, monkeypatch, *args, "--older-than", "0")
    assert code == 0, err
    assert "deleted 3 of 3 object(s)" in err
    assert staged(assumed, info) == []


def test_cleanup_without_unload_settings_is_a_config_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    code, _, err = run_cli(capsys, monkeypatch, "cleanup", "nostage", "-w", str(workspace.folder))
    assert code == 2
    assert "nostage" in err
    assert "unload" in err


def test_cleanup_staged_from_python(
    source: RedshiftSource, crashed_run: list[str], assumed: AssumedRoleSession, info: StandInInfo
) -> None:
    assert source.cleanup_staged(older_than_hours=1) == 0
    assert source.cleanup_staged(older_than_hours=0) == len(crashed_run)
    assert staged(assumed, info) == []
