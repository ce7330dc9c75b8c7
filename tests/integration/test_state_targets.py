"""A table's sync state belongs to the destination table it was committed with.

The state is keyed by the source table, but its cursor says which rows one destination table
holds. These runs go through the stand-in: an incremental table is synced, its entry's
`target:` changes, and it is synced again; the new target must hold the whole table, once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from psycopg import sql

from shiftsync.engine.runs import RunRecord, TableRun
from shiftsync.engine.sync import SyncOptions, run_sync
from shiftsync.local.standin import StandInInfo
from shiftsync.workspace import Workspace
from tests.support import SEED_KEYS
from tests.support_sync import (
    Stand,
    destination_config,
    incremental,
    make_workspace,
    write_config,
)

# What each seed table is tracked by, and an INSERT of rows past the last cursor (`{n}`
# makes each batch's ids and times its own).
TRACKING = {"sales": "saletime", "events_log": "created_at"}
LATER_ROWS = {
    "sales": (
        "INSERT INTO {table} SELECT salesid + {n} * 1000000, listid, sellerid, buyerid, eventid, "
        "dateid, qtysold, pricepaid, commission, saletime + {n} * interval '400 days' "
        "FROM public.sales WHERE salesid <= 20"
    ),
    "events_log": (
        "INSERT INTO {table} SELECT {n} * 1000 + i, 'late ' || i, "
        "TIMESTAMP '2025-01-01' + {n} * interval '30 days' + i * interval '1 minute' "
        "FROM generate_series(1, 7) AS g(i)"
    ),
}


def add_rows(admin: psycopg.Connection[Any], seed: str, table: str, n: int) -> None:
    statement = LATER_ROWS[seed].format(table="{table}", n=int(n))
    admin.execute(sql.SQL(statement).format(table=sql.Identifier("public", table)))


def entry(table: str, seed: str, target: str) -> dict[str, Any]:
    return incremental(table, TRACKING[seed], target=target)


def only_table(record: RunRecord) -> TableRun:
    assert [(t.table, t.status, t.error) for t in record.tables if t.status != "ok"] == []
    assert record.status == "ok"
    (table,) = record.tables
    assert table.verification is not None
    assert table.verification["status"] == "ok"
    return table


def retarget(folder: Path, info: StandInInfo, destination: dict[str, Any], e: Any) -> Workspace:
    write_config(folder, info, destination, [e])
    return Workspace(folder)  # a new one: a Workspace keeps the configuration it first read


@pytest.mark.parametrize(
    ("kind", "seed", "full_refresh"),
    [
        ("duckdb", "events_log", False),
        ("duckdb", "sales", False),
        ("parquet", "events_log", False),
        ("parquet", "sales", False),
        # Only Parquet keeps the old target's state after a full refresh of the new one (in
        # the old dataset's pointer); DuckDB and PostgreSQL overwrite their one row per key.
        ("parquet", "events_log", True),
        ("postgres", "sales", False),
    ],
)
def test_a_changed_target_gets_the_whole_table_once(
    kind: str, seed: str, full_refresh: bool, stand: Stand
) -> None:
    """Synced to `<t>`, then `target: <t>_v2` (with or without --full-refresh), then synced
    again after more rows arrived: `<t>_v2` equals the source each time, with no row doubled
    (events_log has no key, so a re-read row would be appended twice)."""
    table = stand.copy(seed, "target")
    folder = stand.folder / "ws"
    destination = stand.destination(kind)
    workspace = make_workspace(folder, stand.info, destination, [entry(table, seed, table)])
    first = only_table(run_sync(workspace, "main"))
    assert (first.load, first.cursor_from) == ("replace", None)

    add_rows(stand.admin, seed, table, 1)
    renamed = f"{table}_v2"
    workspace = retarget(folder, stand.info, destination, entry(table, seed, renamed))
    second = only_table(run_sync(workspace, "main", SyncOptions(full_refresh=full_refresh)))
    assert second.target == renamed
    # The stored cursor describes <t>'s rows: <t>_v2 must get every row, not only later ones.
    assert (second.load, second.cursor_from) == ("replace", None)
    if not full_refresh:
        assert any("target changed" in note for note in second.notes), second.notes
    stand.holds_the_source(workspace, table, renamed)

    # <t>_v2's own state now resumes it, whatever <t> still holds.
    add_rows(stand.admin, seed, table, 2)
    third = only_table(run_sync(workspace, "main"))
    assert third.load == ("merge" if seed in SEED_KEYS else "append")
    assert third.cursor_from == second.cursor_to
    stand.holds_the_source(workspace, table, renamed)


def test_a_state_from_before_targets_resumes_its_table_but_not_a_new_one(stand: Stand) -> None:
    """A version-1 state in a state table without the target column (as shiftsync wrote them
    before states named their target) still resumes its table; after a target change it
    cannot say whose it is, but the new table is not there, so the table loads in full."""
    seed = "events_log"
    table = stand.copy(seed, "target")
    folder = stand.folder / "ws"
    destination = destination_config("duckdb", stand.folder, None)
    workspace = make_workspace(folder, stand.info, destination, [entry(table, seed, table)])
    first = only_table(run_sync(workspace, "main"))

    make_state_legacy(folder / "out.duckdb", table)
    add_rows(stand.admin, seed, table, 1)
    second = only_table(run_sync(workspace, "main"))
    assert (second.load, second.cursor_from) == ("append", first.cursor_to)
    stand.holds_the_source(workspace, table, table)

    make_state_legacy(folder / "out.duckdb", table)
    add_rows(stand.admin, seed, table, 2)
    renamed = f"{table}_v2"
    workspace = retarget(folder, stand.info, destination, entry(table, seed, renamed))
    third = only_table(run_sync(workspace, "main"))
    assert (third.load, third.cursor_from) == ("replace", None)
    assert any("not in the destination" in note for note in third.notes), third.notes
    stand.holds_the_source(workspace, table, renamed)


def make_state_legacy(path: Path, target: str) -> None:
    """Rewrite the one state of a DuckDB file as shiftsync wrote it before states named their
    target: a version-1 document, in a state table without the target column."""
    with duckdb.connect(str(path)) as connection:
        rows = connection.execute('SELECT "state_key", "state" FROM "_shiftsync_state"').fetchall()
        ((key, text),) = rows
        document = json.loads(text)
        assert document["target"] == target
        legacy = {k: v for k, v in document.items() if k != "target"} | {"version": 1}
        connection.execute('DROP TABLE "_shiftsync_state"')
        connection.execute(
            'CREATE TABLE "_shiftsync_state" ("state_key" VARCHAR PRIMARY KEY, "state" JSON, '
            '"updated_at" TIMESTAMP)'
        )
        connection.execute(
            'INSERT INTO "_shiftsync_state" VALUES (?, ?, now()::TIMESTAMP)',
            [key, json.dumps(legacy)],
        )


def test_a_state_that_names_another_target_is_not_resumed(stand: Stand) -> None:
    """Synced to `<t>`, then to `<t>_v2`, then back to `<t>`, which still holds the rows of the
    first run. The state now describes `<t>_v2`; even when the destination hands it over (its
    target column cleared, as in a state table from before that column), the engine sees the
    target in the document and loads `<t>` in full instead of appending after `<t>_v2`'s
    cursor, which would leave out the rows in between."""
    seed = "events_log"
    table = stand.copy(seed, "target")
    folder = stand.folder / "ws"
    destination = destination_config("duckdb", stand.folder, None)
    workspace = make_workspace(folder, stand.info, destination, [entry(table, seed, table)])
    only_table(run_sync(workspace, "main"))

    add_rows(stand.admin, seed, table, 1)
    renamed = f"{table}_v2"
    workspace = retarget(folder, stand.info, destination, entry(table, seed, renamed))
    only_table(run_sync(workspace, "main"))
    with duckdb.connect(str(folder / "out.duckdb")) as connection:
        connection.execute('UPDATE "_shiftsync_state" SET "target" = NULL')

    add_rows(stand.admin, seed, table, 2)
    workspace = retarget(folder, stand.info, destination, entry(table, seed, table))
    back = only_table(run_sync(workspace, "main"))
    assert (back.load, back.cursor_from) == ("replace", None)
    assert any(f"of target {renamed!r}" in note for note in back.notes), back.notes
    stand.holds_the_source(workspace, table, table)
