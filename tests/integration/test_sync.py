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
import signal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shiftsync.engine.runs import RunStore
from shiftsync.engine.sync import RESUME_FILE_ENV, SyncOptions, run_sync
from shiftsync.errors import ConfigError
from shiftsync.local.postgres import free_port
from shiftsync.local.standin import StandInInfo
from shiftsync.redshift.source import RedshiftSource
from shiftsync.workspace import Workspace
from tests.support_sync import (
    Stand,
    assert_same_table,
    canonical,
    cli_env,
    destination_config,
    make_workspace,
    open_destination,
    opened,
    run_cli,
    staged_keys,
    start_paused,
    write_config,
)

# Other test modules still import these from here (tests/support_sync.py is their home now).
__all__ = [
    "assert_same_table",
    "canonical",
    "cli_env",
    "destination_config",
    "make_workspace",
    "open_destination",
    "start_paused",
]

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


# --- every destination ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "parquet"])
def test_sync_changes_and_sync_again_equals_the_source(kind: str, stand: Stand) -> None:
    sales = stand.copy("sales", "sales")
    log = stand.copy("events_log", "log")
    tables: list[Any] = [f"public.{t}" for t in SEEDED]
    tables += [
        # Merged by the catalog's key; read with UNLOAD.
        {"include": f"public.{sales}", "mode": "incremental", "tracking_field": "saletime",
         "method": "unload"},
        # No key: appended with an exclusive low bound.
        {"include": f"public.{log}", "mode": "incremental", "tracking_field": "created_at"},
        {"include": "public.types", "method": "unload"},
    ]  # fmt: skip
    workspace = stand.workspace(stand.destination(kind), tables)

    first = run_sync(workspace, "main")
    assert [(t.table, t.status, t.error) for t in first.tables if t.status != "ok"] == []
    assert first.status == "ok"
    by_table = {t.table: t for t in first.tables}
    assert by_table[f"public.{sales}"].load == "replace"  # the first incremental run
    assert by_table[f"public.{sales}"].method == "unload"
    assert all(t.verification and t.verification["status"] == "ok" for t in first.tables)

    with opened(workspace) as destination:
        for table in (*SEEDED, sales, log):
            assert_same_table(stand.admin, destination, table, table)

        # Inserts, updates with a later tracking value, a new column.
        s, lg = sql.Identifier("public", sales), sql.Identifier("public", log)
        stand.admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT salesid + 1000000, listid, sellerid, buyerid, eventid, "
                "dateid, qtysold, pricepaid, commission, saletime + interval '400 days' "
                "FROM public.sales WHERE salesid <= 20"
            ).format(s)
        )
        stand.admin.execute(
            sql.SQL(
                "UPDATE {} SET pricepaid = pricepaid + 1, saletime = saletime + interval '400 days'"
                " WHERE salesid BETWEEN 100 AND 110"
            ).format(s)
        )
        stand.admin.execute(sql.SQL("ALTER TABLE {} ADD COLUMN note varchar(20)").format(s))
        stand.admin.execute(
            sql.SQL(
                "UPDATE {} SET note = 'changed', saletime = saletime + interval '1 day'"
                " WHERE salesid BETWEEN 100 AND 105"
            ).format(s)
        )
        stand.admin.execute(
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
        assert_same_table(stand.admin, destination, sales, sales)
        assert_same_table(stand.admin, destination, log, log)


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
    with opened(workspace) as destination:
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


def test_schema_changes_freeze_and_fail(stand: Stand) -> None:
    venue = stand.copy("venue", "venue")
    destination_yaml = {"type": "duckdb", "path": "out.duckdb"}
    tables = [f"public.{venue}"]
    workspace = stand.workspace(destination_yaml, tables)
    assert run_sync(workspace, "main").status == "ok"
    stand.admin.execute(
        sql.SQL("ALTER TABLE {} ADD COLUMN extra integer DEFAULT 7").format(
            sql.Identifier("public", venue)
        )
    )

    # The same workspace, its configuration rewritten with another `schema_changes`.
    failed = run_sync(stand.workspace(destination_yaml, tables, schema_changes="fail"), "main")
    (table,) = failed.tables
    assert table.status == "failed"
    assert "extra" in (table.error or "")
    assert "fail" in (table.error or "")

    workspace = stand.workspace(destination_yaml, tables, schema_changes="freeze")
    frozen = run_sync(workspace, "main")
    (table,) = frozen.tables
    assert table.status == "ok", table.error
    assert [c["kind"] for c in table.schema_changes] == ["ignore_column"]
    with opened(workspace) as destination:
        schema = destination.table_schema(venue)
        assert schema is not None
        assert "extra" not in schema.names


# --- bad input --------------------------------------------------------------------------------


def test_bad_tables_fail_alone_and_damage_nothing(stand: Stand) -> None:
    log = stand.copy("events_log", "dup")  # id 100 twice: not a key
    destination_yaml = {"type": "duckdb", "path": "out.duckdb"}
    folder = stand.folder / "ws"
    workspace = make_workspace(
        folder, stand.info, destination_yaml, [f"public.{log}", "public.venue"]
    )
    assert run_sync(workspace, "main").status == "ok"
    with opened(workspace) as destination:
        before = destination.read_table(log)

    tables = [
        "public.venue",
        "public.no_such_table",
        {"include": f"public.{log}", "mode": "incremental", "tracking_field": "created_at",
         "primary_key": ["id"]},
        {"include": "public.sales", "mode": "incremental", "tracking_field": "sold_at"},
        {"include": "public.types", "mode": "incremental", "tracking_field": "c_super"},
        {"include": "public.users", "mode": "incremental", "tracking_field": "likesports"},
    ]  # fmt: skip
    write_config(folder, stand.info, destination_yaml, tables)
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

    with opened(Workspace(folder)) as destination:
        assert destination.read_table(log).equals(before)
        assert destination.table_schema("sales") is None  # nothing half-written


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


@pytest.mark.parametrize(
    ("point", "method"),
    [
        # make test keeps the point where most is at stake (README.md, Tests).
        pytest.param("after_first_batch_read", "unload", marks=pytest.mark.slow),
        pytest.param("after_first_batch_written", "data_api", marks=pytest.mark.slow),
        ("before_commit", "unload"),
    ],
)
def test_kill_9_then_run_again_loses_and_doubles_nothing(
    point: str, method: str, s3: Any, stand: Stand
) -> None:
    sales = stand.copy("sales", "crash")
    full = stand.copy("venue", "crashfull")
    tables = [
        {"include": f"public.{sales}", "mode": "incremental", "tracking_field": "saletime",
         "method": method},
        {"include": f"public.{full}", "method": method},
    ]  # fmt: skip
    folder = stand.folder / "ws"
    workspace = make_workspace(folder, stand.info, {"type": "duckdb", "path": "out.duckdb"}, tables)
    env = cli_env(stand.info)
    assert run_sync(workspace, "main").status == "ok"
    with opened(workspace) as destination:
        old_full = destination.read_table(full)

    s, v = sql.Identifier("public", sales), sql.Identifier("public", full)
    stand.admin.execute(
        sql.SQL(
            "INSERT INTO {} SELECT salesid + 1000000, listid, sellerid, buyerid, eventid, dateid,"
            " qtysold, pricepaid, commission, saletime + interval '400 days' FROM public.sales"
        ).format(s)
    )
    stand.admin.execute(
        sql.SQL("UPDATE {} SET qtysold = qtysold + 1, saletime = saletime + interval '1 year'"
                " WHERE salesid % 7 = 0").format(s)
    )  # fmt: skip
    stand.admin.execute(sql.SQL("UPDATE {} SET venueseats = coalesce(venueseats, 0) + 1").format(v))

    for table in (sales, full):
        process = start_paused(folder, env, point, f"public.{table}", "--tables", f"public.{table}")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        if method == "unload" and point == "after_first_batch_read":
            # Killed mid-read: its staged files are still there, for the re-run to remove.
            assert staged_keys(s3, stand.info.bucket) != []

        # The killed run changed nothing: the full-refresh table is the old one.
        with opened(workspace) as destination:
            assert destination.read_table(full).equals(old_full)

    # The history shows the killed runs as interrupted.
    statuses = [r["status"] for r in RunStore(workspace.runs_dir).list()]
    assert statuses[:2] == ["interrupted", "interrupted"]

    rerun = run_cli(folder, env, "--json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    document = json.loads(rerun.stdout)
    assert {t["verification"]["status"] for t in document["tables"]} == {"ok"}
    if method == "unload" and point == "after_first_batch_read":
        assert any("staged object(s) of interrupted run" in n for n in document["notes"])
    with opened(workspace) as destination:
        assert_same_table(stand.admin, destination, sales, sales)
        assert_same_table(stand.admin, destination, full, full)
        keys = destination.read_table(sales).column("salesid").to_pylist()
        assert len(keys) == len(set(keys))
    assert staged_keys(s3, stand.info.bucket) == []
    assert [r["status"] for r in RunStore(workspace.runs_dir).list()][:3] == [
        "ok",
        "interrupted",
        "interrupted",
    ]


def test_verification_catches_a_tampered_destination(stand: Stand) -> None:
    venue = stand.copy("venue", "tamper")
    destination_yaml = destination_config("postgres", stand.folder, stand.postgres())
    folder = stand.folder / "ws"
    make_workspace(folder, stand.info, destination_yaml, [f"public.{venue}", "public.category"])
    resume = stand.folder / "resume"
    env = {**cli_env(stand.info), RESUME_FILE_ENV: str(resume)}
    process = start_paused(folder, env, "before_verify", f"public.{venue}", "--json")
    with psycopg.connect(stand.postgres().dsn("postgres"), autocommit=True) as connection:
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
