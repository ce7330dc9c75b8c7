"""`shiftsync sync` outside the sync's `only_between` window: refused, exit code 5, one
clear message, nothing run or recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shiftsync.engine.runs import RunStore
from shiftsync.errors import EXIT_OUTSIDE_WINDOW
from shiftsync.local.standin import StandInInfo
from shiftsync.workspace import Workspace
from tests.support import Cli, standin_connection, write_external_id, write_sync_config


def test_outside_its_window_a_sync_is_refused_with_exit_code_5(
    tmp_path: Path, info: StandInInfo, cli: Cli, monkeypatch: Any
) -> None:
    now = datetime.now(UTC)
    start, end = now + timedelta(hours=2), now + timedelta(hours=3)
    window = f"{start:%H:%M}-{end:%H:%M}"
    write_external_id(tmp_path, info.external_id)
    write_sync_config(
        tmp_path,
        standin_connection(info),
        {"dest": {"type": "duckdb", "path": "out.duckdb"}},
        {"destination": "dest", "tables": ["public.venue"], "only_between": window},
    )
    monkeypatch.chdir(tmp_path)
    ran = cli("sync")
    assert ran.code == EXIT_OUTSIDE_WINDOW
    assert f"sync main may run only between {start:%H:%M} and {end:%H:%M} UTC" in ran.err
    assert "fix:" in ran.err
    assert "Traceback" not in ran.err
    assert RunStore(Workspace(tmp_path).runs_dir).list() == []


def test_runs_lists_and_shows_what_a_run_cost(
    tmp_path: Path, info: StandInInfo, cli: Cli, monkeypatch: Any
) -> None:
    write_external_id(tmp_path, info.external_id)
    write_sync_config(
        tmp_path,
        standin_connection(info),
        {"dest": {"type": "duckdb", "path": "out.duckdb"}},
        {"destination": "dest", "tables": ["public.venue"], "max_compute_seconds": 600},
    )
    monkeypatch.chdir(tmp_path)
    assert cli("sync").code == 0
    listed = cli("runs")
    assert listed.code == 0
    header, row = listed.out.splitlines()[:2]
    assert header.split()[-2:] == ["compute", "s"]
    assert float(row.split()[-1]) >= 0
    shown = cli("runs", "show", "latest")
    assert "s of execution (from sys_query_history), budget 600 s" in shown.out
    assert "SYS_SERVERLESS_USAGE" in shown.out
