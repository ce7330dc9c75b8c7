"""Delete detection on the stand-in: rows deleted in the source leave the destination (`hard`)
or are marked with `_shiftsync_deleted_at` (`soft`), in every destination and both read
methods, and the run verifies.

Tables are throwaway copies of the seed (`copies`), dropped after each test.
"""

from __future__ import annotations

import signal
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shiftsync.engine.runs import TableRun
from shiftsync.engine.sync import SyncOptions, run_sync
from shiftsync.workspace import Workspace
from tests.support import ROLE_DB_USER as DB_USER
from tests.support_sync import Stand, cli_env, opened, start_paused


def _delete(admin: psycopg.Connection[Any], table: str, where: str) -> int:
    cursor = admin.execute(
        sql.SQL("DELETE FROM {} WHERE ").format(sql.Identifier("public", table)) + sql.SQL(where)
    )
    return cursor.rowcount


def _synced(stand: Stand, kind: str, entry: dict[str, Any]) -> Workspace:
    """The workspace whose sync `main` copies one table into a `kind` destination, run once."""
    workspace = stand.workspace(stand.destination(kind), [entry])
    assert run_sync(workspace, "main").status == "ok"
    return workspace


def _synced_after_delete(
    stand: Stand, workspace: Workspace, table: str, where: str, count: int
) -> TableRun:
    """Delete `count` rows of public.<table> (`where`), sync again: the run finds them all."""
    assert _delete(stand.admin, table, where) == count
    again = run_sync(workspace, "main")
    (run,) = again.tables
    assert again.status == "ok", run.error
    assert run.deletes is not None
    assert run.deletes["deleted"] == count
    return run


def test_without_delete_detection_a_delete_fails_every_later_incremental_run(stand: Stand) -> None:
    """The defect of issue 10, kept as the documented behaviour of `deletes: ignore`."""
    venue = stand.copy("venue", "del")
    entry = {"include": f"public.{venue}", "mode": "incremental", "tracking_field": "venueid"}
    workspace = _synced(stand, "duckdb", entry)
    assert _delete(stand.admin, venue, "venueid = 7") == 1

    again = run_sync(workspace, "main")
    assert again.status == "failed"
    (table,) = again.tables
    assert table.error_type == "VerificationError"
    assert table.verification is not None
    destination_rows = table.verification["destination_rows"]
    assert destination_rows is not None
    assert table.verification["source_rows"] == destination_rows - 1


def _entry(table: str, deletes: str, method: str = "data_api", **more: Any) -> dict[str, Any]:
    return {
        "include": f"public.{table}",
        "mode": "incremental",
        "tracking_field": "venueid",
        "method": method,
        "deletes": deletes,
        **more,
    }


@pytest.mark.parametrize(
    ("kind", "method"),
    [
        ("duckdb", "data_api"),
        ("postgres", "unload"),
        ("parquet", "data_api"),
        ("iceberg", "unload"),
        ("delta", "data_api"),
    ],
)
def test_hard_deletes_remove_the_rows_and_the_run_verifies(
    kind: str, method: str, stand: Stand
) -> None:
    venue = stand.copy("venue", "del")
    workspace = _synced(stand, kind, _entry(venue, "hard", method))
    table = _synced_after_delete(stand, workspace, venue, "venueid IN (7, 8, 100)", 3)
    assert table.deletes is not None
    assert table.deletes["statements"] <= 3
    stand.holds_the_source(workspace, venue)

    # Nothing changed: one statement proves it.
    quiet = run_sync(workspace, "main")
    assert quiet.status == "ok", quiet.tables[0].error
    report = quiet.tables[0].deletes
    assert report is not None
    assert (report["deleted"], report["statements"], report["strategy"]) == (0, 1, "summary")
    assert report["bytes"] < 1024


@pytest.mark.parametrize(
    ("kind", "mode"),
    [
        ("postgres", "incremental"),
        ("parquet", "full_refresh"),
        ("iceberg", "full_refresh"),
        ("delta", "incremental"),
        # The other lake cases of the same promise: behind `slow` (make test's budget).
        pytest.param("iceberg", "incremental", marks=pytest.mark.slow),
        pytest.param("delta", "full_refresh", marks=pytest.mark.slow),
    ],
)
def test_soft_deletes_keep_the_rows_and_mark_them(kind: str, mode: str, stand: Stand) -> None:
    venue = stand.copy("venue", "del")
    entry: dict[str, Any] = {"include": f"public.{venue}", "deletes": "soft"}
    if mode == "incremental":
        entry |= {"mode": "incremental", "tracking_field": "venueid"}
    workspace = _synced(stand, kind, entry)
    table = _synced_after_delete(stand, workspace, venue, "venueid IN (3, 150)", 2)
    assert table.verification is not None
    assert table.verification["status"] == "ok"
    with opened(workspace) as destination:
        rows = destination.read_table(venue).to_pylist()
    assert len(rows) == 202
    marked = sorted(r["venueid"] for r in rows if r["_shiftsync_deleted_at"] is not None)
    assert marked == [3, 150]

    # Marked rows are not deleted again, and the run stays green.
    quiet = run_sync(workspace, "main")
    assert quiet.status == "ok", quiet.tables[0].error
    assert quiet.tables[0].deletes is not None
    assert quiet.tables[0].deletes["deleted"] == 0


def test_deletes_on_a_table_without_a_key_is_refused_before_anything_is_written(
    stand: Stand,
) -> None:
    log = stand.copy("events_log", "del")  # no primary key
    entry = {"include": f"public.{log}", "mode": "incremental", "tracking_field": "created_at",
             "deletes": "hard"}  # fmt: skip
    workspace = stand.workspace(stand.destination("duckdb"), [entry])
    (planned,) = run_sync(workspace, "main", SyncOptions(dry_run=True)).tables
    assert planned.error_type == "ConfigError"
    assert "needs a primary key" in (planned.error or "")
    record = run_sync(workspace, "main")
    (table,) = record.tables
    assert table.status == "failed"
    assert table.error_type == "ConfigError"
    assert "needs a primary key" in (table.error or "")
    assert "primary_key:" in (table.fix or "")
    with opened(workspace) as destination:
        assert destination.table_schema(log) is None


def test_deletes_on_a_view_is_refused_at_the_configuration_check(stand: Stand) -> None:
    entry = {"include": "public.sales_summary", "primary_key": ["eventid"], "deletes": "soft"}
    workspace = stand.workspace(stand.destination("duckdb"), [entry])
    (planned,) = run_sync(workspace, "main", SyncOptions(dry_run=True)).tables
    assert planned.error_type == "ConfigError"
    assert "on a view" in (planned.error or "")
    assert "deletes: ignore" in (planned.fix or "")


@pytest.mark.parametrize(
    "kind", ["duckdb", "delta", pytest.param("iceberg", marks=pytest.mark.slow)]
)
def test_a_delete_pass_killed_before_its_commit_changes_nothing(kind: str, stand: Stand) -> None:
    venue = stand.copy("venue", "del")
    workspace = _synced(stand, kind, _entry(venue, "hard"))
    with opened(workspace) as destination:
        state = destination.read_state(f"main:public.{venue}", venue)
    assert state is not None
    assert _delete(stand.admin, venue, "venueid IN (10, 11)") == 2

    process = start_paused(
        workspace.folder, cli_env(stand.info), "before_delete_commit", f"public.{venue}"
    )
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)

    with opened(workspace) as destination:
        assert destination.read_table(venue).num_rows == 202  # nothing deleted
        # The killed run's load committed (nothing new to read); its deletes did not.
        after = destination.read_state(f"main:public.{venue}", venue)
    assert after is not None
    assert after["cursor"] == state["cursor"]
    again = run_sync(workspace, "main")
    assert again.status == "ok", again.tables[0].error
    assert again.tables[0].deletes is not None
    assert again.tables[0].deletes["deleted"] == 2


@pytest.mark.parametrize(("kind", "method"), [("parquet", "unload"), ("postgres", "data_api")])
def test_many_deletes_are_found_by_one_key_only_read(kind: str, method: str, stand: Stand) -> None:
    venue = stand.copy("venue", "del")
    workspace = _synced(stand, kind, _entry(venue, "hard", method))
    table = _synced_after_delete(stand, workspace, venue, "venueid % 4 = 0", 50)
    assert table.deletes is not None
    assert (table.deletes["strategy"], table.deletes["statements"]) == ("full_read", 2)
    stand.holds_the_source(workspace, venue)


@pytest.mark.parametrize(
    ("kind", "deletes"),
    [("duckdb", "hard"), ("iceberg", "soft"), ("delta", "hard"),
     pytest.param("iceberg", "hard", marks=pytest.mark.slow),
     pytest.param("delta", "soft", marks=pytest.mark.slow)],
)  # fmt: skip
def test_a_composite_key_with_text_and_timestamp_parts(
    kind: str, deletes: str, stand: Stand
) -> None:
    name = f"t_del_pair_{uuid.uuid4().hex[:8]}"
    table = sql.Identifier("public", name)
    admin = stand.admin
    admin.execute(
        sql.SQL(
            "CREATE TABLE {} (region varchar(20), at timestamptz, n int, PRIMARY KEY (region, at))"
        ).format(table)
    )
    try:
        admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT CASE WHEN i % 2 = 0 THEN 'a|1:b' ELSE 'a' END, "
                "TIMESTAMPTZ '2026-01-01 00:00:00+02' + i * interval '1 microsecond', i "
                "FROM generate_series(1, 300) AS g(i)"
            ).format(table)
        )
        admin.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(DB_USER)))
        entry = {"include": f"public.{name}", "mode": "incremental", "tracking_field": "n",
                 "deletes": deletes}  # fmt: skip
        workspace = _synced(stand, kind, entry)
        _synced_after_delete(stand, workspace, name, "n IN (2, 3, 299)", 3)
        if deletes == "hard":
            stand.holds_the_source(workspace, name)
        else:
            with opened(workspace) as destination:
                rows = destination.read_table(name).to_pylist()
            marked = sorted(r["n"] for r in rows if r["_shiftsync_deleted_at"] is not None)
            assert (len(rows), marked) == (300, [2, 3, 299])
    finally:
        admin.execute(sql.SQL("DROP TABLE {}").format(table))


@pytest.mark.parametrize(
    "kind", ["duckdb", "iceberg", pytest.param("delta", marks=pytest.mark.slow)]
)
def test_a_soft_deleted_row_that_comes_back_is_live_again(kind: str, stand: Stand) -> None:
    venue = stand.copy("venue", "del")
    workspace = _synced(stand, kind, {"include": f"public.{venue}", "deletes": "soft"})
    table = sql.Identifier("public", venue)
    saved = stand.admin.execute(
        sql.SQL("SELECT * FROM {} WHERE venueid = 42").format(table)
    ).fetchone()
    assert saved is not None
    _synced_after_delete(stand, workspace, venue, "venueid = 42", 1)
    stand.admin.execute(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s)").format(table), saved)

    back = run_sync(workspace, "main")
    assert back.status == "ok", back.tables[0].error
    with opened(workspace) as destination:
        rows = destination.read_table(venue).to_pylist()
    assert len(rows) == 202
    assert [r["venueid"] for r in rows if r["_shiftsync_deleted_at"] is not None] == []
