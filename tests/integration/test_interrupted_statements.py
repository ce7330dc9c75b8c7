"""A killed run's statements: the next run stops them before it deletes the killed run's staging.

An UNLOAD still running when its `shiftsync sync` is killed would otherwise write its files
after the next run's cleanup, where they stayed until `shiftsync cleanup` a day later.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from shiftsync.engine.statement_journal import journal_path, open_statements
from shiftsync.local.standin import StandIn
from tests.support import start_shiftsync, wait_until
from tests.support_sync import Stand, cli_env, make_workspace, run_cli, staged_keys


def wait_for_journaled_unload(
    standin: StandIn, runs: Path, process: subprocess.Popen[str], table: str
) -> tuple[str, str]:
    """The killed-to-be run's id and its UNLOAD statement's id, once both the stand-in runs
    the UNLOAD and the run's journal lists it."""
    engine = standin.engine
    assert engine is not None
    found: list[tuple[str, str]] = []

    def journaled() -> bool:
        assert process.poll() is None, "the sync ended before its UNLOAD started"
        for path in runs.glob("*.statements") if runs.exists() else ():
            run_id = path.name.removesuffix(".statements")
            for statement_id in open_statements(runs, run_id):
                statement = engine.statements.get(statement_id)
                if (
                    statement is not None
                    and statement.query_string.lstrip().upper().startswith("UNLOAD")
                    and table in statement.query_string
                    and statement.status == "STARTED"
                ):
                    found.append((run_id, statement_id))
                    return True
        return False

    wait_until(journaled, what="the run's UNLOAD in its statement journal", seconds=90)
    return found[0]


def test_a_killed_runs_unload_leaves_nothing_staged_after_the_next_run(
    standin: StandIn, s3: Any, stand: Stand
) -> None:
    table = stand.copy("sales", "inflight")
    folder = stand.folder / "ws"
    make_workspace(
        folder,
        stand.info,
        {"type": "duckdb", "path": "out.duckdb"},
        [{"include": f"public.{table}", "method": "unload"}],
    )
    env = cli_env(stand.info)
    # The UNLOAD stays running long after its process is killed, then would write its files.
    delay = standin.faults.add("delay", sql=rf"UNLOAD .*{re.escape(table)}", seconds=60)
    killed = start_shiftsync(folder, env, "sync")
    try:
        run_id, statement_id = wait_for_journaled_unload(
            standin, folder / ".shiftsync" / "runs", killed, table
        )
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=30)
    assert standin.faults.counts()[delay] == 1

    rerun = run_cli(folder, env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    # The killed run's UNLOAD has ended without writing: nothing of it is staged, now or later.
    assert standin.engine is not None
    statement = standin.engine.statements[statement_id]
    assert statement.done.wait(90)
    assert staged_keys(s3, stand.info.bucket, f"shiftsync/{run_id}/") == []
    assert staged_keys(s3, stand.info.bucket) == []
    assert statement.status == "ABORTED"
    # Its journal went with its record's closing.
    assert not journal_path(folder / ".shiftsync" / "runs", run_id).exists()
