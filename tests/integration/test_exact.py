"""Incremental syncs that stay exact: NULL tracking values, verification of the whole selection,
`on_mismatch`, one writer per destination table, schema changes on full refresh.

Every run goes through the stand-in; each destination table is compared with the stand-in's
PostgreSQL directly (tests/support_sync.py's helpers).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import duckdb
import psycopg
import pytest
from psycopg import sql

from shiftsync.engine.runs import RunRecord, TableRun
from shiftsync.engine.sync import SyncOptions, run_sync
from shiftsync.errors import ConfigError
from shiftsync.local.postgres import TempPostgres
from shiftsync.local.standin import StandInInfo
from shiftsync.workspace import Workspace
from tests.support import ROLE_DB_USER
from tests.support_sync import (
    Stand,
    add_sales_rows,
    assert_same_table,
    destination_config,
    holds_the_source,
    incremental,
    make_workspace,
    opened,
    update_rows,
    write_config,
    write_syncs,
)

# A DuckDB file in the workspace's folder.
DUCKDB: Final = {"type": "duckdb", "path": "o.duckdb"}


# Changed rows whose tracking value moves on past the cursor.
LATER_AND_CHANGED: Final = "qtysold = qtysold + 1, saletime = saletime + interval '900 days'"


def one_table(record: RunRecord) -> TableRun:
    (table,) = record.tables
    return table


def synced_sales(
    stand: Stand, label: str, destination: dict[str, Any], **settings: Any
) -> tuple[str, Workspace]:
    """A fresh copy of public.sales synced once, incrementally by saletime, into `destination`
    (the first run must be `ok`): the copy's name and the workspace."""
    sales = stand.copy("sales", label)
    workspace = stand.workspace(destination, [incremental(sales, **settings)])
    assert one_table(run_sync(workspace, "main")).status == "ok"
    return sales, workspace


def verified(table: TableRun) -> bool:
    return table.verification is not None and table.verification["status"] == "ok"


# --- NULL tracking values ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "parquet"])
def test_the_first_incremental_run_and_full_refresh_copy_null_tracked_rows(
    kind: str, stand: Stand
) -> None:
    """Before: the rows whose saletime is NULL were left out and the run said `verified`."""
    sales = stand.copy("sales", "nulls")
    update_rows(stand.admin, sales, "saletime = NULL", "salesid % 100 = 7")
    entry = incremental(sales)
    workspace = stand.workspace(stand.destination(kind), [entry])
    first = one_table(run_sync(workspace, "main"))
    assert (first.status, first.load) == ("ok", "replace"), first.error
    assert verified(first)
    stand.holds_the_source(workspace, sales)
    again = one_table(run_sync(workspace, "main", SyncOptions(full_refresh=True)))
    assert again.status == "ok", again.error
    assert verified(again)
    stand.holds_the_source(workspace, sales)


def test_an_incremental_run_warns_of_null_tracked_rows_and_never_says_verified(
    stand: Stand,
) -> None:
    """`null_tracking: warn` (the default): every incremental run counts the NULL-tracked rows;
    a row that became NULL-tracked since is not copied, so the run fails verification."""
    sales, workspace = synced_sales(stand, "nullwarn", DUCKDB)
    add_sales_rows(stand.admin, sales, saletime="NULL")
    second = one_table(run_sync(workspace, "main"))
    assert any("3 row(s)" in n and "NULL" in n for n in second.notes), second.notes
    assert second.status == "failed"
    assert second.verification is not None
    assert second.verification["status"] == "mismatch"
    assert second.error is not None
    assert "null_tracking: carry" in (second.fix or "")


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "parquet"])
def test_null_tracking_carry_merges_null_tracked_rows_by_key_on_every_run(
    kind: str, stand: Stand
) -> None:
    sales, workspace = synced_sales(
        stand, "nullcarry", stand.destination(kind), null_tracking="carry"
    )
    # Rows that lose their tracking value (and change), and new rows that never had one.
    update_rows(stand.admin, sales, "saletime = NULL, qtysold = qtysold + 1", "salesid <= 4")
    add_sales_rows(stand.admin, sales, saletime="NULL")
    second = one_table(run_sync(workspace, "main"))
    assert (second.status, second.load) == ("ok", "merge"), second.error
    assert verified(second)
    stand.holds_the_source(workspace, sales)


def test_null_tracking_carry_needs_a_key(stand: Stand) -> None:
    log = stand.copy("events_log", "nullkey")
    entry = incremental(log, "created_at", null_tracking="carry")
    workspace = stand.workspace(DUCKDB, [entry])
    table = one_table(run_sync(workspace, "main"))
    assert table.status == "failed"
    assert "null_tracking" in (table.error or "")
    assert "primary key" in (table.error or "")
    assert "primary_key" in (table.fix or "")


# --- on_mismatch ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["sync", "table"])
def test_on_mismatch_full_refresh_copies_the_table_again_in_the_same_run(
    where: str, stand: Stand
) -> None:
    """A row changed without moving its tracking value: the incremental run cannot see it,
    verification finds the difference, and the table is copied again and verified."""
    sales = stand.copy("sales", "heal")
    entry = incremental(sales)
    sync: dict[str, Any] = {}
    if where == "table":
        entry["on_mismatch"] = "full_refresh"
    else:
        sync["on_mismatch"] = "full_refresh"
    workspace = stand.workspace(DUCKDB, [entry], **sync)
    assert one_table(run_sync(workspace, "main")).status == "ok"
    update_rows(stand.admin, sales, "qtysold = qtysold + 1", "salesid <= 5")
    record = run_sync(workspace, "main")
    table = one_table(record)
    assert (record.status, table.status, table.load) == ("ok", "ok", "replace"), table.error
    assert verified(table)
    assert any("on_mismatch: full_refresh copied the table again" in n for n in table.notes)
    stand.holds_the_source(workspace, sales)


def test_on_mismatch_fail_is_the_default(stand: Stand) -> None:
    sales, workspace = synced_sales(stand, "noheal", DUCKDB)
    update_rows(stand.admin, sales, "qtysold = qtysold + 1", "salesid <= 5")
    table = one_table(run_sync(workspace, "main"))
    assert (table.status, table.error_type) == ("failed", "VerificationError")
    assert "on_mismatch: full_refresh" in (table.fix or "")


# --- one writer per destination table ---------------------------------------------------------


def two_syncs(folder: Path, info: StandInInfo, first: list[Any], second: list[Any]) -> Workspace:
    """A workspace whose syncs `main` and `other` write one DuckDB file."""
    return write_syncs(folder, info, DUCKDB, {"main": first, "other": second})


def test_two_syncs_naming_one_target_are_refused_before_anything_is_written(stand: Stand) -> None:
    """An hourly incremental and a nightly full refresh of one table: before, the nightly
    run replaced the table and the hourly one trusted its cursor over it."""
    sales = stand.copy("sales", "twosyncs")
    hourly = incremental(sales)
    # The same table in both: refused as the file is loaded.
    workspace = two_syncs(stand.folder / "ws", stand.info, [hourly], [f"public.{sales}"])
    with pytest.raises(ConfigError, match="writes the same destination table"):
        run_sync(workspace, "main")
    # Another table whose target is the first one's default name: refused when either runs.
    other = {"include": "public.venue", "target": sales}
    workspace = two_syncs(stand.folder / "ws2", stand.info, [hourly], [other])
    for name in ("main", "other"):
        with pytest.raises(ConfigError, match=f"both write destination table '{sales}'") as caught:
            run_sync(workspace, name)
        assert caught.value.fix is not None
        assert "target" in caught.value.fix
    assert not (stand.folder / "ws" / "o.duckdb").exists()
    assert not (stand.folder / "ws2" / "o.duckdb").exists()


def test_a_public_table_cannot_replace_another_syncs_target(
    tmp_path: Path, info: StandInInfo, admin: psycopg.Connection[Any]
) -> None:
    """Any database user may create `public.<schema>_orders`; a sync whose pattern matches it
    must not write over the target of `<schema>.orders` that another sync names."""
    schema = f"fin_{uuid.uuid4().hex[:8]}"
    decoy = f"{schema}_orders"
    try:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for table, rows in ((sql.Identifier(schema, "orders"), 5), (sql.Identifier(decoy), 2)):
            admin.execute(
                sql.SQL(
                    "CREATE TABLE {} AS SELECT i AS id FROM generate_series(1, {}) g(i)"
                ).format(table, sql.Literal(rows))
            )
            admin.execute(
                sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(ROLE_DB_USER))
            )
        admin.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema), sql.Identifier(ROLE_DB_USER)
            )
        )
        workspace = two_syncs(tmp_path / "ws", info, [f"{schema}.orders"], [f"public.{schema}_*"])
        main = one_table(run_sync(workspace, "main"))
        assert (main.status, main.target) == ("ok", decoy)
        other = run_sync(workspace, "other")
        (refused,) = other.tables
        assert refused.status == "failed"
        assert f"sync main (table {schema}.orders)" in (refused.error or "")
        with opened(workspace) as destination:
            assert destination.read_table(decoy).num_rows == 5
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        admin.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(decoy)))


def shared_destination(kind: str, tmp_path: Path, postgres: TempPostgres) -> dict[str, Any]:
    """One destination that two workspaces both write (absolute paths)."""
    if kind == "duckdb":
        return {"type": "duckdb", "path": str(tmp_path / "shared.duckdb")}
    if kind == "parquet":
        return {"type": "parquet", "path": str(tmp_path / "shared-lake")}
    return destination_config(kind, tmp_path, postgres)


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "parquet"])
def test_a_foreign_replace_of_the_table_invalidates_the_cursor(kind: str, stand: Stand) -> None:
    """Another workspace's sync (no configuration shows both) replaces the table with a
    filtered copy. Before, the incremental sync then trusted its cursor and merged only the new
    rows into what the other sync left."""
    sales = stand.copy("sales", "foreign")
    destination = shared_destination(kind, stand.folder, stand.postgres())
    entry = incremental(sales)
    hourly = make_workspace(stand.folder / "hourly", stand.info, destination, [entry])
    assert one_table(run_sync(hourly, "main")).status == "ok"

    filtered = {"include": f"public.{sales}", "filter": "salesid <= 100"}
    nightly = write_syncs(
        stand.folder / "nightly", stand.info, destination, {"nightly": [filtered]}
    )
    assert one_table(run_sync(nightly, "nightly")).status == "ok"

    add_sales_rows(stand.admin, sales, saletime="saletime + interval '900 days'")
    again = one_table(run_sync(hourly, "main"))
    assert (again.status, again.load) == ("ok", "replace"), again.error
    assert any("nightly:public." in n and "loaded in full" in n for n in again.notes), again.notes
    # Each writer says that the other wrote the table last.
    assert any(n.startswith("warning: destination table") for n in again.notes), again.notes
    assert verified(again)
    stand.holds_the_source(hourly, sales)


def test_a_table_replaced_by_hand_invalidates_the_cursor(stand: Stand) -> None:
    sales, workspace = synced_sales(stand, "byhand", DUCKDB)
    with duckdb.connect(str(stand.folder / "ws" / "o.duckdb")) as connection:
        name = '"' + sales + '"'
        connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name} LIMIT 10")
    again = one_table(run_sync(workspace, "main"))
    assert (again.status, again.load) == ("ok", "replace"), again.error
    assert any("something other than shiftsync" in n for n in again.notes), again.notes
    stand.holds_the_source(workspace, sales)


# --- schema changes on full refresh ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "parquet"])
def test_recreate_rebuilds_a_table_after_a_type_change_and_a_rename(
    kind: str, stand: Stand
) -> None:
    """Before: the type change failed the table ("drop the destination table"), and a renamed
    column stayed behind as an all-NULL column for good."""
    venue = stand.copy("venue", "recreate")
    workspace = stand.workspace(
        stand.destination(kind),
        [f"public.{venue}"],
        schema_changes="recreate",
    )
    assert one_table(run_sync(workspace, "main")).status == "ok"
    table = sql.Identifier("public", venue)
    stand.admin.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN venueseats TYPE varchar(12)").format(table)
    )
    stand.admin.execute(sql.SQL("ALTER TABLE {} RENAME COLUMN venuecity TO city").format(table))
    again = one_table(run_sync(workspace, "main"))
    assert again.status == "ok", again.error
    kinds = {(c["kind"], c["column"]) for c in again.schema_changes}
    assert {("retype", "venueseats"), ("drop_column", "venuecity"), ("add_column", "city")} <= kinds
    with opened(workspace) as destination:
        schema = destination.table_schema(venue)
        assert schema is not None
        assert "venuecity" not in schema.names
        assert_same_table(stand.admin, destination, venue, venue)


def test_a_table_gone_from_the_source_or_the_selection_is_reported_on_every_run(
    stand: Stand,
) -> None:
    kept, dropped, left_out = (stand.copy("category", k) for k in ("kept", "gone", "left"))
    destination = DUCKDB
    folder = stand.folder / "ws"
    every = [f"public.{kept}", f"public.{dropped}", f"public.{left_out}"]
    workspace = make_workspace(folder, stand.info, destination, every)
    assert run_sync(workspace, "main").status == "ok"

    stand.admin.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("public", dropped)))
    write_config(folder, stand.info, destination, [f"public.{kept}", "public.t_gone_*"])
    workspace = Workspace(folder)
    for _ in range(2):  # on every run, not only the first after the change
        record = run_sync(workspace, "main")
        assert record.status == "ok", [t.error for t in record.tables]
        notes = " ".join(record.notes)
        assert f"table public.{dropped} was copied by this sync before" in notes
        assert f"table public.{left_out} was copied by this sync before" in notes
    with opened(workspace) as destination_:
        for target in (dropped, left_out):  # reported, never dropped
            assert destination_.table_schema(target) is not None
    # Dropping the destination table by hand ends the notes.
    with duckdb.connect(str(folder / "o.duckdb")) as connection:
        connection.execute(f'DROP TABLE "{left_out}"')
    notes = " ".join(run_sync(workspace, "main").notes)
    assert f"public.{left_out}" not in notes
    assert f"public.{dropped}" in notes


# --- wide tables ------------------------------------------------------------------------------

WIDE_COLUMNS = 1600  # Redshift's most columns in a table


@pytest.fixture
def wide_table(admin: psycopg.Connection[Any]) -> Iterator[str]:
    """public.t_wide_*: 1,600 columns of several types, 3 rows."""
    name = f"t_wide_{uuid.uuid4().hex[:8]}"
    kinds = ("int4", "varchar(8)", "numeric(10,2)", "date", "bool")
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(f"c{i:04d}"), sql.SQL(kinds[i % len(kinds)]))
        for i in range(WIDE_COLUMNS)
    )
    table = sql.Identifier("public", name)
    admin.execute(sql.SQL("CREATE TABLE {} ({})").format(table, columns))
    values = {
        "int4": "{r} * 7",
        "varchar(8)": "'v' || {r}",
        "numeric(10,2)": "{r} + 0.25",
        "date": "DATE '2024-01-01' + {r}",
        "bool": "{r} % 2 = 0",
    }
    for row in range(3):
        expressions = ", ".join(
            values[kinds[i % len(kinds)]].format(r=row) if (i + row) % 4 else "NULL"
            for i in range(WIDE_COLUMNS)
        )
        admin.execute(sql.SQL(f"INSERT INTO {{}} VALUES ({expressions})").format(table))
    admin.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(ROLE_DB_USER)))
    try:
        yield name
    finally:
        admin.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))


# Parquet (12 s: 1,600 columns of Parquet metadata) is behind `slow`, for make test's budget.
@pytest.mark.parametrize(
    "kind", ["duckdb", "postgres", pytest.param("parquet", marks=pytest.mark.slow)]
)
def test_a_table_of_1600_columns_is_verified_on_every_destination(
    kind: str,
    tmp_path: Path,
    info: StandInInfo,
    postgres: TempPostgres,
    admin: psycopg.Connection[Any],
    wide_table: str,
) -> None:
    """Before: the profile query of a table past ~550 columns passed PostgreSQL's 1,664-entry
    target list, and every such table failed verification."""
    workspace = make_workspace(
        tmp_path / "ws",
        info,
        destination_config(kind, tmp_path, postgres),
        [f"public.{wide_table}"],
    )
    table = one_table(run_sync(workspace, "main"))
    assert table.status == "ok", table.error
    assert table.verification is not None
    assert table.verification["status"] == "ok"
    assert table.verification["columns_checked"] == WIDE_COLUMNS
    holds_the_source(admin, workspace, wide_table)


# --- destination tables that carry keys -------------------------------------------------------


def key_columns(kind: str, workspace: Workspace, target: str) -> list[str]:
    """The PRIMARY KEY columns of a destination table, read from the destination's catalog."""
    _, config = workspace.config.destination("dest")
    if kind == "duckdb":
        with duckdb.connect(str(workspace.folder / "out.duckdb"), read_only=True) as connection:
            rows = connection.execute(
                "SELECT constraint_column_names FROM duckdb_constraints() "
                "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
                [target],
            ).fetchall()
        return list(rows[0][0]) if rows else []
    dsn = config.dsn.get_secret_value()  # type: ignore[union-attr]
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT a.attname, a.attnotnull FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indisprimary AND i.indrelid = to_regclass(%s)",
            (f'"{config.db_schema}"."{target}"',),  # type: ignore[union-attr]
        ).fetchall()
    assert all(not_null for _, not_null in rows)
    return [name for name, _ in rows]


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_an_incremental_tables_key_is_the_destination_tables_primary_key(
    kind: str, stand: Stand
) -> None:
    sales = stand.copy("sales", "keys")
    venue = stand.copy("venue", "nokey")  # full refresh: its key is not checked, so not carried
    entry = incremental(sales)
    workspace = stand.workspace(
        stand.destination(kind),
        [entry, f"public.{venue}"],
    )
    assert run_sync(workspace, "main").status == "ok"
    assert key_columns(kind, workspace, sales) == ["salesid"]
    assert key_columns(kind, workspace, venue) == []
    update_rows(
        stand.admin,
        sales,
        "qtysold = qtysold + 1, saletime = saletime + interval '900 days'",
        "salesid <= 5",
    )
    merged = run_sync(workspace, "main", SyncOptions(tables=(sales,)))
    assert merged.status == "ok", [t.error for t in merged.tables]
    assert merged.tables[0].load == "merge"
    assert key_columns(kind, workspace, sales) == ["salesid"]
    stand.holds_the_source(workspace, sales)


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "parquet"])
def test_load_columns_say_when_and_by_which_run_each_row_was_written(
    kind: str, stand: Stand
) -> None:
    sales = stand.copy("sales", "loadcols")
    entry = incremental(sales)
    destination = stand.destination(kind)
    workspace = stand.workspace(destination, [entry], load_columns=True)
    first = run_sync(workspace, "main")
    assert one_table(first).status == "ok"
    update_rows(
        stand.admin,
        sales,
        "qtysold = qtysold + 1, saletime = saletime + interval '900 days'",
        "salesid <= 5",
    )
    second = run_sync(workspace, "main")
    table = one_table(second)
    assert table.status == "ok", table.error
    assert verified(table)
    with opened(workspace) as destination_:
        rows = destination_.read_table(sales).to_pylist()
    by_run = {r["_shiftsync_run_id"] for r in rows if r["salesid"] <= 5}
    assert by_run == {second.run_id}
    # The others keep the first run's, but for the rows at the old cursor, read again.
    again = [r for r in rows if r["salesid"] > 5 and r["_shiftsync_run_id"] != first.run_id]
    assert {r["_shiftsync_run_id"] for r in again} <= {second.run_id}
    assert len(again) == table.rows - 5
    started = datetime.fromisoformat(second.started_at.replace("Z", "+00:00"))
    moments = {r["_shiftsync_synced_at"] for r in rows if r["salesid"] <= 5}
    assert {m.astimezone(UTC).replace(microsecond=0) for m in moments} == {
        started.replace(microsecond=0)
    }


def not_null_columns(kind: str, workspace: Workspace, target: str) -> set[str]:
    _, config = workspace.config.destination("dest")
    if kind == "duckdb":
        with duckdb.connect(str(workspace.folder / "out.duckdb"), read_only=True) as connection:
            rows = connection.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND NOT is_nullable",
                [target],
            ).fetchall()
        return {name for (name,) in rows}
    dsn = config.dsn.get_secret_value()  # type: ignore[union-attr]
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped AND attnotnull",
            (f'"{config.db_schema}"."{target}"',),  # type: ignore[union-attr]
        ).fetchall()
    return {name for (name,) in rows}


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_source_not_null_columns_are_not_null_and_relaxed_when_the_source_relaxes(
    kind: str, stand: Stand
) -> None:
    sales = stand.copy("sales", "notnull")
    table = sql.Identifier("public", sales)
    stand.admin.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN qtysold SET NOT NULL").format(table))
    entry = incremental(sales)
    destination = stand.destination(kind)
    workspace = stand.workspace(destination, [entry])
    assert one_table(run_sync(workspace, "main")).status == "ok"
    assert not_null_columns(kind, workspace, sales) == {"salesid", "qtysold"}
    # The source drops the constraint and a row gets NULL: the merge relaxes the column.
    stand.admin.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN qtysold DROP NOT NULL").format(table))
    stand.admin.execute(
        sql.SQL(
            "UPDATE {} SET qtysold = NULL, saletime = saletime + interval '900 days' "
            "WHERE salesid = 1"
        ).format(table)
    )
    merged = one_table(run_sync(workspace, "main"))
    assert (merged.status, merged.load) == ("ok", "merge"), merged.error
    assert not_null_columns(kind, workspace, sales) == {"salesid"}
    stand.holds_the_source(workspace, sales)
