"""Promises of `shiftsync sync` that only a real second process or a real signal can show."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from shiftsync.engine.runs import RunStore
from shiftsync.engine.sync import run_sync
from shiftsync.local.standin import StandIn, StandInInfo
from tests.integration.test_sync import (
    cli_env,
    make_workspace,
    open_destination,
    run_cli,
    staged_keys,
    start_paused,
)


def test_a_second_run_of_a_sync_is_refused_while_the_first_runs(
    tmp_path: Path, info: StandInInfo
) -> None:
    folder = tmp_path / "ws"
    make_workspace(folder, info, {"type": "duckdb", "path": "out.duckdb"}, ["public.venue"])
    env = cli_env(info)
    first = start_paused(folder, env, "before_commit", "public.venue")
    try:
        second = run_cli(folder, env)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "another run of sync main is in progress" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.communicate(timeout=30)
    # The lock went with the killed process: the next run goes ahead.
    again = run_cli(folder, env)
    assert again.returncode == 0, again.stdout + again.stderr


def test_ctrl_c_during_a_sync_stops_it_cleanly(
    tmp_path: Path, info: StandInInfo, s3: Any, admin: psycopg.Connection[Any]
) -> None:
    folder = tmp_path / "ws"
    tables = [{"include": "public.listing", "method": "unload"}]
    workspace = make_workspace(folder, info, {"type": "duckdb", "path": "out.duckdb"}, tables)
    assert run_sync(workspace, "main").status == "ok"
    destination = open_destination(workspace)
    try:
        before = destination.read_table("listing")
    finally:
        destination.close()
    admin.execute("UPDATE public.listing SET numtickets = numtickets WHERE false")

    env = cli_env(info)
    process = start_paused(
        folder, env, "after_first_batch_read", "public.listing", "--full-refresh", "--json"
    )
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    # Nothing half-done: the destination holds the old table, nothing is left staged.
    destination = open_destination(workspace)
    try:
        assert destination.read_table("listing").equals(before)
    finally:
        destination.close()
    assert staged_keys(s3, info.bucket) == []
    latest = RunStore(workspace.runs_dir).list()[0]
    assert latest["status"] in {"failed", "interrupted"}, json.dumps(latest)


def test_ctrl_c_cancels_the_statement_a_table_waits_on(
    tmp_path: Path, info: StandInInfo, standin: StandIn
) -> None:
    folder = tmp_path / "ws"
    marker = "ctrl-c-sync-marker"
    tables = [{"include": "public.category", "method": "data_api", "filter": f"'{marker}' <> ''"}]
    make_workspace(folder, info, {"type": "duckdb", "path": "out.duckdb"}, tables)
    delay = standin.faults.add("delay", sql=marker, seconds=60)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "shiftsync", "sync"],
            cwd=folder,
            env=cli_env(info),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert standin.faults.wait_fired(delay, 60), "the table's statement never ran"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        standin.faults.clear()
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    assert standin.engine is not None
    [statement] = [s for s in standin.engine.statements.values() if marker in s.query_string]
    assert statement.done.wait(30)
    # Cancelled, not waited out: without the cancel it would have FINISHED after its delay.
    assert statement.status == "ABORTED"
