"""One snapshot per read: a table written while it is read still verifies, because its rows,
high-water mark and verification figures come from one Redshift transaction (a Data API
session); `snapshot: consistent` reads every table of a run from one transaction.

Writes land "during the read" deterministically: a hook of the stand-in commits them from
another connection when the table's verification statement starts, the moment at which a run
without a snapshot sees a source that moved on from the rows it copied.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shiftsync.engine.sync import run_sync
from shiftsync.local.data_api.statements import Statement
from shiftsync.local.standin import StandIn, StandInInfo
from shiftsync.workspace import Workspace
from tests.support import standin_connection, write_external_id, write_sync_config

ROWS = 200


@pytest.fixture
def busy_tables(admin: psycopg.Connection[Any], info: StandInInfo) -> Iterator[list[str]]:
    """Two tables of this test's own (id key, updated_at, note), dropped afterwards."""
    names = [f"t_busy_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    reader = sql.Identifier("IAMR:" + info.role_arn.split("/")[-1])
    for name in names:
        table = sql.Identifier("public", name)
        admin.execute(
            sql.SQL(
                "CREATE TABLE {} (id int PRIMARY KEY, updated_at timestamp, note varchar(20))"
            ).format(table)
        )
        admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT n, timestamp '2024-01-01' + n * interval '1 minute', "
                "'row ' || n FROM generate_series(1, %s) AS n"
            ).format(table),
            (ROWS,),
        )
        admin.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, reader))
    yield names
    for name in names:
        admin.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("public", name)))


@pytest.fixture
def write_when(standin: StandIn) -> Iterator[Callable[[Callable[[Statement], bool], str], None]]:
    """`write_when(condition, sql)`: run `sql` (committed, as the admin) the first time a
    statement meeting `condition` starts, before it reads anything."""
    assert standin.engine is not None
    engine = standin.engine
    original = engine.statement_hook
    pending: list[tuple[Callable[[Statement], bool], str]] = []

    def hook(statement: Statement) -> None:
        for item in list(pending):
            condition, text = item
            if condition(statement):
                pending.remove(item)
                with standin.admin_connection() as admin:
                    admin.execute(text.encode())
        if original is not None:
            original(statement)

    engine.statement_hook = hook

    def add(condition: Callable[[Statement], bool], text: str) -> None:
        pending.append((condition, text))

    yield add
    engine.statement_hook = original


def is_verification_of(table: str) -> Callable[[Statement], bool]:
    return lambda s: s.query_string.startswith("SELECT count(*), ") and table in s.query_string


def is_read_of(table: str) -> Callable[[Statement], bool]:
    return lambda s: table in s.query_string and not s.query_string.startswith("SELECT count(*)")


def workspace(tmp_path: Path, info: StandInInfo, tables: list[Any], **sync: Any) -> Workspace:
    write_external_id(tmp_path, info.external_id)
    write_sync_config(
        tmp_path,
        standin_connection(info, unload={"bucket": info.bucket}),
        {"dest": {"type": "duckdb", "path": "out.duckdb"}},
        {"destination": "dest", "tables": tables, **sync},
    )
    return Workspace(tmp_path)


def statuses(record: Any) -> list[tuple[str, str, str | None]]:
    return [(t.table, t.status, (t.verification or {}).get("status")) for t in record.tables]


@pytest.mark.parametrize("method", ["data_api", "unload"])
def test_a_table_written_during_its_read_verifies(
    method: str,
    tmp_path: Path,
    info: StandInInfo,
    busy_tables: list[str],
    write_when: Callable[[Callable[[Statement], bool], str], None],
) -> None:
    table = busy_tables[0]
    write_when(
        is_verification_of(table),
        f"INSERT INTO public.{table} VALUES (100001, now(), 'late'), (100002, now(), 'late'); "
        f"UPDATE public.{table} SET note = 'changed' WHERE id = 7",
    )
    ws = workspace(tmp_path, info, [{"include": f"public.{table}", "method": method}])
    record = run_sync(ws, "main")
    assert statuses(record) == [(f"public.{table}", "ok", "ok")]
    assert record.tables[0].rows == ROWS


def test_an_incremental_table_updated_during_its_read_verifies(
    tmp_path: Path,
    info: StandInInfo,
    busy_tables: list[str],
    write_when: Callable[[Callable[[Statement], bool], str], None],
) -> None:
    table = busy_tables[0]
    entry = {"include": f"public.{table}", "mode": "incremental", "tracking_field": "updated_at"}
    ws = workspace(tmp_path, info, [entry])
    assert run_sync(ws, "main").status == "ok"
    # A late row (below the stored mark) and an in-place update land while the next run reads.
    write_when(
        is_read_of(table),
        f"UPDATE public.{table} SET note = 'changed', updated_at = timestamp '2030-01-01' "
        "WHERE id = 3",
    )
    write_when(
        is_verification_of(table),
        f"UPDATE public.{table} SET note = 'again' WHERE id = 4; "
        f"INSERT INTO public.{table} VALUES (100003, timestamp '2024-01-01', 'late')",
    )
    record = run_sync(ws, "main")
    assert statuses(record) == [(f"public.{table}", "ok", "ok")]


def test_without_a_snapshot_the_busy_table_fails_verification(
    tmp_path: Path,
    info: StandInInfo,
    busy_tables: list[str],
    write_when: Callable[[Callable[[Statement], bool], str], None],
) -> None:
    """What `snapshot: none` (and every run before snapshots) gives: a mismatch."""
    table = busy_tables[0]
    write_when(is_verification_of(table), f"DELETE FROM public.{table} WHERE id = 9")
    ws = workspace(tmp_path, info, [f"public.{table}"], snapshot="none")
    record = run_sync(ws, "main")
    assert statuses(record) == [(f"public.{table}", "failed", "mismatch")]


def test_consistent_reads_every_table_from_one_snapshot(
    tmp_path: Path,
    info: StandInInfo,
    standin: StandIn,
    busy_tables: list[str],
    write_when: Callable[[Callable[[Statement], bool], str], None],
) -> None:
    first, second = sorted(busy_tables)
    # While the first table is verified, the second one changes: a consistent run copies the
    # second as it was when the run's transaction began.
    write_when(is_verification_of(first), f"DELETE FROM public.{second} WHERE id <= 50")
    ws = workspace(tmp_path, info, [f"public.{first}", f"public.{second}"], snapshot="consistent")
    record = run_sync(ws, "main")
    assert sorted(statuses(record)) == [
        (f"public.{first}", "ok", "ok"),
        (f"public.{second}", "ok", "ok"),
    ]
    assert {t.table: t.rows for t in record.tables} == {
        f"public.{first}": ROWS,
        f"public.{second}": ROWS,
    }
    assert standin.engine is not None
    sessions = {
        s.session_id
        for s in standin.engine.statements.values()
        if first in s.query_string or second in s.query_string
    }
    assert len(sessions) == 1
    assert None not in sessions


@pytest.fixture
def low_result_cap(standin: StandIn) -> Iterator[None]:
    """The stand-in's Data API result cap lowered so that public.sales (~107 KB) passes it."""
    import dataclasses

    assert standin.engine is not None
    saved = standin.engine.limits
    standin.engine.limits = dataclasses.replace(saved, max_result_bytes=30_000)
    try:
        yield
    finally:
        standin.engine.limits = saved


@pytest.mark.parametrize("unload", [True, False])
def test_a_result_too_big_falls_back_inside_the_snapshot(
    tmp_path: Path, info: StandInInfo, low_result_cap: None, unload: bool
) -> None:
    """The Data API refuses the result (the statement fails, which ends a Redshift
    transaction): the read goes on by UNLOAD or by key chunks, and the table verifies."""
    write_external_id(tmp_path, info.external_id)
    write_sync_config(
        tmp_path,
        standin_connection(info, **({"unload": {"bucket": info.bucket}} if unload else {})),
        {"dest": {"type": "duckdb", "path": "out.duckdb"}},
        {"destination": "dest", "tables": ["public.sales"]},
    )
    record = run_sync(Workspace(tmp_path), "main")
    assert statuses(record) == [("public.sales", "ok", "ok")], record.tables[0].error
    assert record.tables[0].method == ("unload" if unload else "data_api")
    assert any("transaction began again" in note for note in record.tables[0].notes)
