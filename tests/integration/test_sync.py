"""The sync engine end to end on the stand-in: every destination, incremental changes, crashes
(kill -9 at chosen points, then a re-run), verification that catches a tampered destination,
and bad input that fails one table while the others finish.

Tables that a test changes are its own copies of the seed (`public.t_*`), dropped at the end,
so the seed stays as other tests expect it. Each destination table is compared with the
stand-in's PostgreSQL directly (psycopg), not through shiftsync's read path.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from shiftsync.destinations.base import Destination
from shiftsync.destinations.registry import DestinationContext, create_destination
from shiftsync.engine.runs import RunStore
from shiftsync.engine.sync import PAUSE_ENV, PAUSE_MARKER, RESUME_FILE_ENV, SyncOptions, run_sync
from shiftsync.errors import ConfigError
from shiftsync.local.postgres import TempPostgres, free_port
from shiftsync.local.standin import StandInInfo
from shiftsync.redshift.source import RedshiftSource
from shiftsync.workspace import Workspace
from tests.support import (
    standin_connection,
    write_external_id,
    write_sync_config,
)

SEEDED = (
    "category",
    "date",
    "event",
    "events_log",
    "listing",
    "sales",
    "sales_summary",
    "types",
    "users",
    "venue",
)


# --- fixtures and helpers ----------------------------------------------------------------------


def destination_config(kind: str, folder: Path, postgres: TempPostgres | None) -> dict[str, Any]:
    if kind == "duckdb":
        return {"type": "duckdb", "path": "out.duckdb"}
    if kind == "postgres":
        assert postgres is not None
        return {
            "type": "postgres",
            "dsn": postgres.dsn("postgres"),
            "schema": f"s_{uuid.uuid4().hex[:8]}",
        }
    if kind == "iceberg":  # the SQLite catalog in the workspace, a warehouse folder beside it
        return {"type": "iceberg", "warehouse": "warehouse"}
    if kind == "delta":
        return {"type": "delta", "path": "delta"}
    return {"type": "parquet", "path": "lake"}


def make_workspace(
    folder: Path,
    info: StandInInfo,
    destination: Mapping[str, Any],
    tables: Sequence[Any],
    **sync: Any,
) -> Workspace:
    write_external_id(folder, info.external_id)
    write_config(folder, info, destination, tables, **sync)
    return Workspace(folder)


def write_config(
    folder: Path,
    info: StandInInfo,
    destination: Mapping[str, Any],
    tables: Sequence[Any],
    **sync: Any,
) -> None:
    write_sync_config(
        folder,
        standin_connection(info, unload={"bucket": info.bucket}),
        {"dest": dict(destination)},
        {"destination": "dest", "concurrency": 4, "tables": list(tables), **sync},
    )


def open_destination(workspace: Workspace) -> Destination:
    _, config = workspace.config.destination("dest")
    return create_destination(config, DestinationContext(folder=workspace.folder))


def canonical(value: Any) -> Any:
    """One form for a value from psycopg and from Arrow (NaN, TIMETZ text, JSON text)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, clock_time) and value.tzinfo is not None:
        return value.isoformat()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).isoformat()
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def source_rows(
    admin: psycopg.Connection[Any], table: str
) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = admin.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("public", table)))
    names = [d.name for d in cursor.description or ()]
    return names, [tuple(canonical(v) for v in row) for row in cursor.fetchall()]


def destination_rows(
    destination: Destination, target: str, names: Sequence[str]
) -> list[tuple[Any, ...]]:
    table = destination.read_table(target)
    json_columns = {
        f.name
        for f in table.schema
        if isinstance(f.type, pa.BaseExtensionType) and f.type.extension_name == "arrow.json"
    }
    rows = []
    for row in table.to_pylist():
        rows.append(
            tuple(
                json.loads(row[n])
                if n in json_columns and row[n] is not None
                else canonical(row[n])
                for n in names
            )
        )
    return rows


def sort_key(row: tuple[Any, ...]) -> str:
    return repr(row)


def as_float32(value: Any) -> Any:
    # psycopg reads REAL as its shortest text, parsed as a double; Arrow keeps the float32.
    if isinstance(value, float):
        return struct.unpack("<f", struct.pack("<f", value))[0]
    return value


def assert_same_table(
    admin: psycopg.Connection[Any], destination: Destination, table: str, target: str
) -> None:
    names, expected = source_rows(admin, table)
    schema = destination.table_schema(target)
    assert schema is not None, target
    singles = [i for i, n in enumerate(names) if schema.field(n).type == pa.float32()]
    expected = [
        tuple(as_float32(v) if i in singles else v for i, v in enumerate(row)) for row in expected
    ]
    actual = destination_rows(destination, target, names)
    assert sorted(actual, key=sort_key) == sorted(expected, key=sort_key), table


def staged_keys(s3: Any, bucket: str, run_prefix: str = "shiftsync/") -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=run_prefix)
    return [item["Key"] for item in listed.get("Contents", ())]


# --- every destination ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "parquet"])
def test_sync_changes_and_sync_again_equals_the_source(
    kind: str,
    tmp_path: Path,
    info: StandInInfo,
    postgres: TempPostgres,
    admin: psycopg.Connection[Any],
    copies: Callable[[str, str], str],
) -> None:
    sales = copies("sales", "sales")
    log = copies("events_log", "log")
    tables: list[Any] = [f"public.{t}" for t in SEEDED]
    tables += [
        # Merged by the catalog's key; read with UNLOAD.
        {"include": f"public.{sales}", "mode": "incremental", "tracking_field": "saletime",
         "method": "unload"},
        # No key: appended with an exclusive low bound.
        {"include": f"public.{log}", "mode": "incremental", "tracking_field": "created_at"},
        {"include": "public.types", "method": "unload"},
    ]  # fmt: skip
    workspace = make_workspace(
        tmp_path / "ws", info, destination_config(kind, tmp_path, postgres), tables
    )

    first = run_sync(workspace, "main")
    assert [(t.table, t.status, t.error) for t in first.tables if t.status != "ok"] == []
    assert first.status == "ok"
    by_table = {t.table: t for t in first.tables}
    assert by_table[f"public.{sales}"].load == "replace"  # the first incremental run
    assert by_table[f"public.{sales}"].method == "unload"
    assert all(t.verification and t.verification["status"] == "ok" for t in first.tables)

    destination = open_destination(workspace)
    try:
        for table in (*SEEDED, sales, log):
            assert_same_table(admin, destination, table, table)

        # Inserts, updates with a later tracking value, a new column.
        s, lg = sql.Identifier("public", sales), sql.Identifier("public", log)
        admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT salesid + 1000000, listid, sellerid, buyerid, eventid, "
                "dateid, qtysold, pricepaid, commission, saletime + interval '400 days' "
                "FROM public.sales WHERE salesid <= 20"
            ).format(s)
        )
        admin.execute(
            sql.SQL(
                "UPDATE {} SET pricepaid = pricepaid + 1, saletime = saletime + interval '400 days'"
                " WHERE salesid BETWEEN 100 AND 110"
            ).format(s)
        )
        admin.execute(sql.SQL("ALTER TABLE {} ADD COLUMN note varchar(20)").format(s))
        admin.execute(
            sql.SQL(
                "UPDATE {} SET note = 'changed', saletime = saletime + interval '1 day'"
                " WHERE salesid BETWEEN 100 AND 105"
            ).format(s)
        )
        admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT 1000 + i, 'late ' || i, TIMESTAMP '2025-01-01' + i * "
                "interval '1 minute' FROM generate_series(1, 7) AS g(i)"
            ).format(lg)
        )

        second = run_sync(workspace, "main", SyncOptions(tables=(sales, log)))
        assert second.status == "ok", [(t.table, t.error) for t in second.tables]
        changed = {t.table: t for t in second.tables}
        merged = changed[f"public.{sales}"]
        assert merged.load == "merge"
        # 20 new rows, 11 updated ones, and the boundary row read again (inclusive low bound).
        assert merged.rows >= 31
        assert {"kind": "add_column", "column": "note"}.items() <= merged.schema_changes[0].items()
        appended = changed[f"public.{log}"]
        assert appended.load == "append"
        assert appended.rows == 7
        assert_same_table(admin, destination, sales, sales)
        assert_same_table(admin, destination, log, log)
    finally:
        destination.close()


def test_normalize_names_and_hashing(
    tmp_path: Path, info: StandInInfo, admin: psycopg.Connection[Any]
) -> None:
    tables = [
        "odd?schema.mixed?case",
        {"include": "public.users", "columns": {"hash": ["email"], "exclude": ["phone"]}},
    ]
    workspace = make_workspace(
        tmp_path / "ws", info, {"type": "duckdb", "path": "out.duckdb"}, tables,
        normalize_names=True,
    )  # fmt: skip
    record = run_sync(workspace, "main")
    assert record.status == "ok", [(t.table, t.error) for t in record.tables]
    destination = open_destination(workspace)
    try:
        odd = destination.read_table("odd_schema_mixed_case")
        assert odd.schema.names == ["id", "select", "has_space", "quo_te", "ünïcödé", "from"]
        assert odd.num_rows == 3
        users = destination.read_table("users")
        assert "phone" not in users.schema.names
        emails = dict(
            zip(users.column("userid").to_pylist(), users.column("email").to_pylist(), strict=True)
        )
        raw = dict(admin.execute("SELECT userid, email FROM public.users").fetchall())
        salt = (workspace.dot_dir / "hash_salt").read_text().strip()

        for userid, value in raw.items():
            expected = (
                None if value is None else hashlib.sha256((salt + value).encode()).hexdigest()
            )
            assert emails[userid] == expected
        assert all(v is None or v not in emails.values() for v in raw.values())
        # The stand-in's sha2() gives the same digest in SQL.
        row = admin.execute(
            "SELECT email, sha2(%s || cast(email as varchar), 256) FROM public.users"
            " WHERE email IS NOT NULL LIMIT 1",
            (salt,),
        ).fetchone()
        assert row is not None
        assert row[1] == hashlib.sha256((salt + row[0]).encode()).hexdigest()
    finally:
        destination.close()


def test_schema_changes_freeze_and_fail(
    tmp_path: Path,
    info: StandInInfo,
    admin: psycopg.Connection[Any],
    copies: Callable[[str, str], str],
) -> None:
    venue = copies("venue", "venue")
    destination_yaml = {"type": "duckdb", "path": "out.duckdb"}
    workspace = make_workspace(tmp_path / "ws", info, destination_yaml, [f"public.{venue}"])
    assert run_sync(workspace, "main").status == "ok"
    admin.execute(
        sql.SQL("ALTER TABLE {} ADD COLUMN extra integer DEFAULT 7").format(
            sql.Identifier("public", venue)
        )
    )

    write_config(
        tmp_path / "ws", info, destination_yaml, [f"public.{venue}"], schema_changes="fail"
    )
    failed = run_sync(Workspace(tmp_path / "ws"), "main")
    (table,) = failed.tables
    assert table.status == "failed"
    assert "extra" in (table.error or "")
    assert "fail" in (table.error or "")

    write_config(
        tmp_path / "ws", info, destination_yaml, [f"public.{venue}"], schema_changes="freeze"
    )
    frozen = run_sync(Workspace(tmp_path / "ws"), "main")
    (table,) = frozen.tables
    assert table.status == "ok", table.error
    assert [c["kind"] for c in table.schema_changes] == ["ignore_column"]
    destination = open_destination(Workspace(tmp_path / "ws"))
    try:
        schema = destination.table_schema(venue)
        assert schema is not None
        assert "extra" not in schema.names
    finally:
        destination.close()


# --- bad input --------------------------------------------------------------------------------


def test_bad_tables_fail_alone_and_damage_nothing(
    tmp_path: Path,
    info: StandInInfo,
    admin: psycopg.Connection[Any],
    copies: Callable[[str, str], str],
) -> None:
    log = copies("events_log", "dup")  # id 100 twice: not a key
    destination_yaml = {"type": "duckdb", "path": "out.duckdb"}
    folder = tmp_path / "ws"
    workspace = make_workspace(folder, info, destination_yaml, [f"public.{log}", "public.venue"])
    assert run_sync(workspace, "main").status == "ok"
    destination = open_destination(workspace)
    try:
        before = destination.read_table(log)
    finally:
        destination.close()

    tables = [
        "public.venue",
        "public.no_such_table",
        {"include": f"public.{log}", "mode": "incremental", "tracking_field": "created_at",
         "primary_key": ["id"]},
        {"include": "public.sales", "mode": "incremental", "tracking_field": "sold_at"},
        {"include": "public.types", "mode": "incremental", "tracking_field": "c_super"},
        {"include": "public.users", "mode": "incremental", "tracking_field": "likesports"},
    ]  # fmt: skip
    write_config(folder, info, destination_yaml, tables)
    record = run_sync(Workspace(folder), "main")
    result = {t.table: t for t in record.tables}
    assert record.status == "partial"
    assert result["public.venue"].status == "ok"
    missing = result["public.no_such_table"]
    assert missing.status == "failed"
    assert "does not exist" in (missing.error or "")
    duplicate = result[f"public.{log}"]
    assert duplicate.status == "failed"
    assert "not unique" in (duplicate.error or "")
    assert "id='100'" in (duplicate.error or "")
    assert "sold_at" in (result["public.sales"].error or "")
    assert "c_super" in (result["public.types"].error or "")
    assert "no order" in (result["public.types"].error or "")
    assert "likesports" in (result["public.users"].error or "")
    for table in record.failed_tables:
        assert table.fix, table.table

    destination = open_destination(Workspace(folder))
    try:
        assert destination.read_table(log).equals(before)
        assert destination.table_schema("sales") is None  # nothing half-written
    finally:
        destination.close()


class ListingRecorder:
    """The real source, with the ListTables patterns it is asked for written down."""

    def __init__(self, source: RedshiftSource) -> None:
        self.source = source
        self.asked: list[tuple[str, str]] = []

    def list_tables(self, schema_pattern: str = "%", table_pattern: str = "%") -> list[Any]:
        self.asked.append((schema_pattern, table_pattern))
        return self.source.list_tables(schema_pattern, table_pattern)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


def test_a_sync_lists_only_its_own_tables_unless_a_name_is_wrong(
    tmp_path: Path, info: StandInInfo
) -> None:
    destination_yaml = {"type": "duckdb", "path": "out.duckdb"}
    folder = tmp_path / "ws"
    workspace = make_workspace(folder, info, destination_yaml, ["public.venue", "public.categ?ry"])
    source = ListingRecorder(RedshiftSource.from_workspace(workspace))
    record = run_sync(workspace, "main", source=source)
    assert record.status == "ok"
    assert sorted(t.table for t in record.tables) == ["public.category", "public.venue"]
    assert source.asked == [("public", "categ_ry"), ("public", "venue")]

    # A misspelt name: everything is listed, so that the error can name the close one.
    write_config(folder, info, destination_yaml, ["public.venue", "public.venu"])
    source = ListingRecorder(RedshiftSource.from_workspace(workspace))
    record = run_sync(Workspace(folder), "main", source=source)
    assert source.asked == [("public", "venu"), ("public", "venue"), ("%", "%")]
    missing = {t.table: t for t in record.tables}["public.venu"]
    assert missing.status == "failed"
    assert "did you mean 'public.venue'" in (missing.error or "")


def test_unreachable_and_unwritable_destinations_fail_every_table(
    tmp_path: Path, info: StandInInfo
) -> None:
    closed_port = free_port()
    unreachable = {"type": "postgres", "dsn": f"host=127.0.0.1 port={closed_port} user=x dbname=x"}
    workspace = make_workspace(
        tmp_path / "a", info, unreachable, ["public.venue", "public.category"]
    )
    record = run_sync(workspace, "main")
    assert record.status == "failed"
    assert {t.table for t in record.failed_tables} == {"public.venue", "public.category"}
    assert all("connect" in (t.error or "") and t.fix for t in record.failed_tables)

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "afile").write_text("not a folder")
    unwritable = {"type": "duckdb", "path": "afile/out.duckdb"}
    workspace = make_workspace(tmp_path / "b", info, unwritable, ["public.venue"])
    # A path under a file is a configuration mistake: the run does not start, and the fix
    # names a path that can be created (not "locked or disk full").
    with pytest.raises(ConfigError, match="is a file, not a folder") as caught:
        run_sync(workspace, "main")
    assert str(tmp_path / "b" / "out.duckdb") in (caught.value.fix or "")


def test_unknown_sync_is_a_config_error(tmp_path: Path, info: StandInInfo) -> None:
    workspace = make_workspace(tmp_path, info, {"type": "duckdb"}, ["public.venue"])
    with pytest.raises(ConfigError, match="nightly"):
        run_sync(workspace, "nightly")


# --- crashes ------------------------------------------------------------------------------------


def cli_env(info: StandInInfo) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIFTSYNC_DEBUG")}
    env.update(info.environment())
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


def run_cli(folder: Path, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shiftsync", "sync", *args],
        cwd=folder,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_paused(
    folder: Path, env: Mapping[str, str], point: str, table: str, *args: str
) -> subprocess.Popen[str]:
    """Start `shiftsync sync` and return once it printed the pause marker at `point`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "shiftsync", "sync", *args],
        cwd=folder,
        env={**env, PAUSE_ENV: f"{point}:{table}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 90
    for line in process.stderr:
        seen.append(line)
        if line.startswith(f"{PAUSE_MARKER} {point} {table}"):
            return process
        if time.monotonic() > deadline:
            break
    process.kill()
    process.wait()
    pytest.fail(f"no pause marker at {point}; stderr was:\n{''.join(seen)}")


@pytest.mark.parametrize(
    ("point", "method"),
    [
        ("after_first_batch_read", "unload"),
        ("after_first_batch_written", "data_api"),
        ("before_commit", "unload"),
    ],
)
def test_kill_9_then_run_again_loses_and_doubles_nothing(
    point: str,
    method: str,
    tmp_path: Path,
    info: StandInInfo,
    admin: psycopg.Connection[Any],
    copies: Callable[[str, str], str],
    s3: Any,
) -> None:
    sales = copies("sales", "crash")
    full = copies("venue", "crashfull")
    tables = [
        {"include": f"public.{sales}", "mode": "incremental", "tracking_field": "saletime",
         "method": method},
        {"include": f"public.{full}", "method": method},
    ]  # fmt: skip
    folder = tmp_path / "ws"
    workspace = make_workspace(folder, info, {"type": "duckdb", "path": "out.duckdb"}, tables)
    env = cli_env(info)
    assert run_sync(workspace, "main").status == "ok"
    destination = open_destination(workspace)
    try:
        old_full = destination.read_table(full)
    finally:
        destination.close()

    s, v = sql.Identifier("public", sales), sql.Identifier("public", full)
    admin.execute(
        sql.SQL(
            "INSERT INTO {} SELECT salesid + 1000000, listid, sellerid, buyerid, eventid, dateid,"
            " qtysold, pricepaid, commission, saletime + interval '400 days' FROM public.sales"
        ).format(s)
    )
    admin.execute(
        sql.SQL("UPDATE {} SET qtysold = qtysold + 1, saletime = saletime + interval '1 year'"
                " WHERE salesid % 7 = 0").format(s)
    )  # fmt: skip
    admin.execute(sql.SQL("UPDATE {} SET venueseats = coalesce(venueseats, 0) + 1").format(v))

    for table in (sales, full):
        process = start_paused(folder, env, point, f"public.{table}", "--tables", f"public.{table}")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        if method == "unload" and point == "after_first_batch_read":
            # Killed mid-read: its staged files are still there, for the re-run to remove.
            assert staged_keys(s3, info.bucket) != []

        # The killed run changed nothing: the full-refresh table is the old one.
        destination = open_destination(workspace)
        try:
            assert destination.read_table(full).equals(old_full)
        finally:
            destination.close()

    # The history shows the killed runs as interrupted.
    statuses = [r["status"] for r in RunStore(workspace.runs_dir).list()]
    assert statuses[:2] == ["interrupted", "interrupted"]

    rerun = run_cli(folder, env, "--json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    document = json.loads(rerun.stdout)
    assert {t["verification"]["status"] for t in document["tables"]} == {"ok"}
    if method == "unload" and point == "after_first_batch_read":
        assert any("staged object(s) of interrupted run" in n for n in document["notes"])
    destination = open_destination(workspace)
    try:
        assert_same_table(admin, destination, sales, sales)
        assert_same_table(admin, destination, full, full)
        keys = destination.read_table(sales).column("salesid").to_pylist()
        assert len(keys) == len(set(keys))
    finally:
        destination.close()
    assert staged_keys(s3, info.bucket) == []
    assert [r["status"] for r in RunStore(workspace.runs_dir).list()][:3] == [
        "ok",
        "interrupted",
        "interrupted",
    ]


def test_verification_catches_a_tampered_destination(
    tmp_path: Path,
    info: StandInInfo,
    postgres: TempPostgres,
    copies: Callable[[str, str], str],
) -> None:
    venue = copies("venue", "tamper")
    destination_yaml = destination_config("postgres", tmp_path, postgres)
    folder = tmp_path / "ws"
    make_workspace(folder, info, destination_yaml, [f"public.{venue}", "public.category"])
    resume = tmp_path / "resume"
    env = {**cli_env(info), RESUME_FILE_ENV: str(resume)}
    process = start_paused(folder, env, "before_verify", f"public.{venue}", "--json")
    with psycopg.connect(postgres.dsn("postgres"), autocommit=True) as connection:
        connection.execute(
            sql.SQL("INSERT INTO {} (venueid, venuename) VALUES (-1, 'tampered')").format(
                sql.Identifier(destination_yaml["schema"], venue)
            )
        )
    resume.write_text("go")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    document = json.loads(out)
    result = {t["table"]: t for t in document["tables"]}
    tampered = result[f"public.{venue}"]
    assert tampered["status"] == "failed"
    assert tampered["error_type"] == "VerificationError"
    assert f"public.{venue}" in tampered["error"]
    assert "row count: source 202, destination 203" in tampered["error"]
    assert "'venueid'" in tampered["error"]
    assert result["public.category"]["status"] == "ok"
