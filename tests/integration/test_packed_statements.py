"""A run's Redshift statements are packed, so that a run wakes a Serverless workgroup once.

A table's verification profile is queried with its read (engine/source_figures.py), before the
destination's commit, and the run's cost is asked once the last table's reads are done
(engine/cost_watch.py): the long local write of a big table no longer separates two groups of
statements. Shown on the stand-in's own statement log: a `shiftsync sync` paused just before
its table's commit has already submitted every Redshift statement of the run; a mismatch made
in the destination after the commit is still found; a source change after the read is not
taken for one (the figures are those of the rows read).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shiftsync.engine.cost_watch import AWAKE_SECONDS, CostWatch
from shiftsync.engine.guardrails import run_cost
from shiftsync.engine.pause import PAUSE_ENV, PAUSE_MARKER, RESUME_FILE_ENV
from shiftsync.engine.sync import run_sync
from shiftsync.local.postgres import TempPostgres
from shiftsync.local.standin import StandIn, StandInInfo
from shiftsync.redshift.source import RedshiftSource
from tests.support import wait_until
from tests.support_sync import cli_env, make_workspace


def statement_ids(standin: StandIn) -> set[str]:
    assert standin.engine is not None
    return set(list(standin.engine.statements))


def statements_of(standin: StandIn, ids: set[str]) -> list[Any]:
    assert standin.engine is not None
    return [s for s in list(standin.engine.statements.values()) if s.id in ids]


def wait_for_cost_question(standin: StandIn, before: set[str]) -> None:
    """The run's cost is asked in a thread of its own from the end of the table's reads, so
    its statements may follow the pause marker by a moment; they never wait for the resume."""

    def asked() -> bool:
        since = statements_of(standin, statement_ids(standin) - before)
        return any("sys_serverless_usage" in s.query_string for s in since)

    wait_until(asked, what="the run's cost asked while the table is paused before its commit")


def is_profile_of(table: str) -> Callable[[Any], bool]:
    return lambda s: s.query_string.startswith("SELECT count(*), ") and table in s.query_string


@pytest.fixture
def paused_run(
    tmp_path: Path, info: StandInInfo
) -> Iterator[Callable[..., tuple[subprocess.Popen[str], Path]]]:
    """`start(folder, point, table, *args)`: `shiftsync sync` started and paused at `point`
    of `table`; touch the returned file to let it go on. Killed if the test leaves it."""
    started: list[subprocess.Popen[str]] = []

    def start(
        folder: Path, point: str, table: str, *args: str
    ) -> tuple[subprocess.Popen[str], Path]:
        resume = folder / "resume"
        env: Mapping[str, str] = {
            **cli_env(info),
            PAUSE_ENV: f"{point}:{table}",
            RESUME_FILE_ENV: str(resume),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "shiftsync", "sync", "--json", *args],
            cwd=folder,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stderr is not None
        seen = []
        for line in process.stderr:
            seen.append(line)
            if line.startswith(f"{PAUSE_MARKER} {point} {table}"):
                return process, resume
        process.wait()
        pytest.fail(f"no pause at {point}; stderr was:\n{''.join(seen)}")

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def finish(process: subprocess.Popen[str], resume: Path) -> tuple[int, dict[str, Any], str]:
    resume.touch()
    out, err = process.communicate(timeout=120)
    return process.returncode, json.loads(out), err


@pytest.mark.parametrize("method", ["unload", "data_api"])
def test_every_statement_of_a_verified_run_is_submitted_before_its_commit(
    method: str,
    tmp_path: Path,
    info: StandInInfo,
    standin: StandIn,
    copies: Callable[[str, str], str],
    paused_run: Callable[..., tuple[subprocess.Popen[str], Path]],
) -> None:
    table = copies("venue", "pack")
    folder = tmp_path / "ws"
    folder.mkdir()
    make_workspace(
        folder,
        info,
        {"type": "duckdb", "path": "out.duckdb"},
        [{"include": f"public.{table}", "method": method}],
    )
    before = statement_ids(standin)
    process, resume = paused_run(folder, "before_commit", f"public.{table}")
    wait_for_cost_question(standin, before)
    at_pause = statement_ids(standin) - before
    code, document, err = finish(process, resume)
    assert code == 0, err
    [entry] = document["tables"]
    assert entry["verification"]["status"] == "ok"
    # Nothing reached Redshift once the destination's commit could begin: the verification's
    # source side ran with the read, the run's cost once the table's reads were done.
    assert statement_ids(standin) - before - at_pause == set()
    ran = statements_of(standin, at_pause)
    [profile] = [s for s in ran if is_profile_of(table)(s)]
    assert profile.status == "FINISHED"
    assert any("sys_query_history" in s.query_string for s in ran)
    assert document["cost"]["source"] == "sys_query_history"


@pytest.mark.parametrize("snapshot", ["none", "table"])
def test_a_source_change_after_the_read_is_not_a_mismatch(
    snapshot: str,
    tmp_path: Path,
    info: StandInInfo,
    admin: psycopg.Connection[Any],
    copies: Callable[[str, str], str],
    paused_run: Callable[..., tuple[subprocess.Popen[str], Path]],
) -> None:
    """The figures describe the rows read: a row deleted from the source after the read (even
    without a snapshot) is the next run's to copy, not this run's mismatch."""
    table = copies("venue", "pack")
    rows = admin.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", table))
    ).fetchone()
    assert rows is not None
    folder = tmp_path / "ws"
    folder.mkdir()
    make_workspace(
        folder,
        info,
        {"type": "duckdb", "path": "out.duckdb"},
        [f"public.{table}"],
        snapshot=snapshot,
    )
    process, resume = paused_run(folder, "before_commit", f"public.{table}")
    admin.execute(
        sql.SQL("DELETE FROM {} WHERE venueid = (SELECT min(venueid) FROM {})").format(
            sql.Identifier("public", table), sql.Identifier("public", table)
        )
    )
    code, document, err = finish(process, resume)
    assert code == 0, err
    [entry] = document["tables"]
    assert entry["verification"]["status"] == "ok"
    assert entry["verification"]["source_rows"] == rows[0]
    assert entry["rows"] == rows[0]


def test_a_destination_changed_after_the_commit_is_a_mismatch(
    tmp_path: Path,
    info: StandInInfo,
    copies: Callable[[str, str], str],
    postgres: TempPostgres,
    paused_run: Callable[..., tuple[subprocess.Popen[str], Path]],
) -> None:
    table = copies("venue", "pack")
    folder = tmp_path / "ws"
    folder.mkdir()
    schema = f"s_{uuid.uuid4().hex[:8]}"
    make_workspace(
        folder,
        info,
        {"type": "postgres", "dsn": postgres.dsn("postgres"), "schema": schema},
        [f"public.{table}"],
    )
    process, resume = paused_run(folder, "before_verify", f"public.{table}")
    with psycopg.connect(postgres.dsn("postgres"), autocommit=True) as destination:
        target = sql.Identifier(schema, table)
        destination.execute(
            sql.SQL(
                "UPDATE {} SET venueseats = venueseats + 1 WHERE venueid = "
                "(SELECT min(venueid) FROM {} WHERE venueseats IS NOT NULL)"
            ).format(target, target)
        )
    code, document, err = finish(process, resume)
    assert code == 1, err
    [entry] = document["tables"]
    assert entry["verification"]["status"] == "mismatch"
    assert {m["column"] for m in entry["verification"]["mismatches"]} == {"venueseats"}


def test_a_delete_pass_that_finds_nothing_sends_no_statement_after_the_commit(
    tmp_path: Path,
    info: StandInInfo,
    standin: StandIn,
    admin: psycopg.Connection[Any],
    copies: Callable[[str, str], str],
    paused_run: Callable[..., tuple[subprocess.Popen[str], Path]],
) -> None:
    """The pass's first statement (the source's key summary) is sent with the read; when the
    destination's keys agree with it, the pass has nothing more to ask after the commit. The
    table's transaction, kept open for the pass, is then only ended (its COMMIT)."""
    table = copies("venue", "pack")
    folder = tmp_path / "ws"
    folder.mkdir()
    entry = {
        "include": f"public.{table}",
        "mode": "incremental",
        "tracking_field": "venueid",
        "deletes": "hard",
    }
    workspace = make_workspace(folder, info, {"type": "duckdb", "path": "out.duckdb"}, [entry])
    assert run_sync(workspace, "main").status == "ok"
    before = statement_ids(standin)
    process, resume = paused_run(folder, "before_commit", f"public.{table}")
    at_pause = statement_ids(standin) - before
    code, document, err = finish(process, resume)
    assert code == 0, err
    [entry_run] = document["tables"]
    assert entry_run["verification"]["status"] == "ok"
    assert entry_run["deletes"]["deleted"] == 0
    assert entry_run["deletes"]["strategy"] == "summary"
    later = statements_of(standin, statement_ids(standin) - before - at_pause)
    # Only the transaction's end and the run's cost (asked once the pass was done).
    assert [s.query_string for s in later if table in s.query_string] == []
    assert "COMMIT" in [s.query_string.strip() for s in later]
    # A row deleted before the next run is still found and deleted.
    admin.execute(
        sql.SQL("DELETE FROM {} WHERE venueid = 7").format(sql.Identifier("public", table))
    )
    again = run_sync(workspace, "main")
    assert again.status == "ok", again.tables[0].error
    assert again.tables[0].deletes is not None
    assert again.tables[0].deletes["deleted"] == 1


# --- the run's cost, asked while the workgroup is awake ---------------------------------------


def cost_source(tmp_path: Path, info: StandInInfo) -> RedshiftSource:
    workspace = make_workspace(
        tmp_path, info, {"type": "duckdb", "path": "out.duckdb"}, ["public.category"]
    )
    return RedshiftSource.from_workspace(workspace)


def test_the_cost_is_not_asked_of_a_workgroup_idle_since_the_last_statement(
    tmp_path: Path, info: StandInInfo, standin: StandIn
) -> None:
    source = cost_source(tmp_path, info)
    started = datetime.now(UTC)
    source.query("SELECT 1")
    watch = CostWatch(source, started, [], serverless=True)
    before = statement_ids(standin)
    # The clock AWAKE_SECONDS and more past the statement's end (no waiting: a later `now`).
    later = time.monotonic() + AWAKE_SECONDS + 15
    cost = watch.final(datetime.now(UTC), now=later)
    assert statement_ids(standin) == before
    assert cost["source"] == "describe_statement"
    assert cost["compute_seconds"] == cost["describe_seconds"]
    assert any("SYS_QUERY_HISTORY was not asked" in note for note in cost["notes"])
    # Soon after the statement, the workgroup is awake: it is asked.
    assert watch.final(datetime.now(UTC))["source"] == "sys_query_history"


def test_statements_after_the_early_cost_count_by_their_duration_once_idle(
    tmp_path: Path, info: StandInInfo, standin: StandIn
) -> None:
    source = cost_source(tmp_path, info)
    started = datetime.now(UTC)
    source.query("SELECT 1")
    watch = CostWatch(source, started, ["public.a"], serverless=True)
    watch.reads_done("public.a")  # the last table's reads: the cost is asked now
    early = watch.final(datetime.now(UTC))
    assert early["source"] == "sys_query_history"
    assert not any("holds" in note for note in early["notes"]), early["notes"]
    seconds = source.spend.seconds
    source.query("SELECT 2")  # a table copied again after its verification, say
    later = time.monotonic() + AWAKE_SECONDS + 15
    before = statement_ids(standin)
    cost = watch.final(datetime.now(UTC), now=later)
    assert statement_ids(standin) == before
    assert cost["source"] == "sys_query_history"
    assert cost["compute_seconds"] == round(
        early["compute_seconds"] + source.spend.seconds - seconds, 3
    )
    assert any("1 statement(s) ran after the cost was read" in n for n in cost["notes"])


def test_a_consistent_run_reads_its_cost_outside_its_snapshot(
    tmp_path: Path, info: StandInInfo
) -> None:
    """The cost is asked while the run's one transaction is still open; inside it the system
    view would show what it held when the transaction began (none of the run's statements)."""
    workspace = make_workspace(
        tmp_path,
        info,
        {"type": "duckdb", "path": "out.duckdb"},
        ["public.category", "public.venue"],
        snapshot="consistent",
        concurrency=1,
    )
    record = run_sync(workspace, "main")
    assert record.status == "ok"
    assert record.cost is not None
    assert record.cost["source"] == "sys_query_history"
    assert not any("holds" in note for note in record.cost["notes"]), record.cost["notes"]


def test_a_statement_the_history_does_not_hold_yet_counts_by_its_duration(
    tmp_path: Path, info: StandInInfo
) -> None:
    """Asked right after the last statement, SYS_QUERY_HISTORY may not hold the newest ones
    yet (AWS fills it with a delay): their DescribeStatement Duration stands in for them."""
    source = cost_source(tmp_path, info)
    started = datetime.now(UTC)
    source.query("SELECT 1")
    # A query id the view has never seen, of a statement that ran 2 s by its Duration.
    source.spend.add(10**12, 2_000_000_000)
    cost = run_cost(source, started, datetime.now(UTC))
    assert cost["source"] == "sys_query_history"
    # The real statements by the view's figures, the unseen one by its Duration.
    assert 2.0 <= cost["compute_seconds"] <= round(source.spend.seconds, 3) + 0.001
    assert any("the other 1 count by their Duration" in note for note in cost["notes"])
