"""`shiftsync schedule` runs what its cron expressions say is due, and only that: once
(`--once`), or in its loop, driven here by a clock the test moves on."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

import shiftsync
from shiftsync.cli.app import app
from shiftsync.cli.schedule import run_schedules
from shiftsync.engine.runs import RunStore
from shiftsync.local.standin import StandInInfo
from shiftsync.workspace import Workspace


def scheduled_workspace(folder: Path, info: StandInInfo, schedule: str | None) -> Path:
    (folder / ".shiftsync").mkdir(parents=True)
    (folder / ".shiftsync" / "external_id").write_text(info.external_id + "\n")
    sync: dict[str, object] = {
        "source": "warehouse",
        "destination": "local",
        "tables": ["public.category"],
    }
    if schedule is not None:
        sync["schedule"] = schedule
    config = {
        "connections": {
            "warehouse": {
                "type": "redshift_serverless",
                "region": info.region,
                "workgroup": info.workgroup,
                "database": info.database,
                "role_arn": info.role_arn,
            }
        },
        "destinations": {"local": {"type": "duckdb", "path": "out.duckdb"}},
        "syncs": {"yearly": sync},
    }
    (folder / "shiftsync.yaml").write_text(yaml.safe_dump(config))
    return folder


def run_once(folder: Path) -> int:
    with pytest.raises(SystemExit) as ended:
        app(["schedule", "--once", "-w", str(folder)], standalone_mode=False)
    return int(ended.value.code or 0)


def test_once_runs_a_due_sync_and_not_again_within_its_slot(
    tmp_path: Path, info: StandInInfo
) -> None:
    folder = scheduled_workspace(tmp_path / "ws", info, "0 0 1 1 *")
    assert run_once(folder) == 0
    runs = RunStore(folder / ".shiftsync" / "runs").list()
    assert [(r["sync"], r["status"]) for r in runs] == [("yearly", "ok")]
    # The slot (January 1st) is older than that run: nothing is due now.
    assert run_once(folder) == 0
    assert len(RunStore(folder / ".shiftsync" / "runs").list()) == 1


def test_without_any_schedule_it_is_a_config_error(tmp_path: Path, info: StandInInfo) -> None:
    from shiftsync.errors import ConfigError

    folder = scheduled_workspace(tmp_path / "ws", info, None)
    with pytest.raises(ConfigError, match="no sync has a schedule"):
        app(["schedule", "--once", "-w", str(folder)], standalone_mode=False)


class FakeClock:
    """The scheduler's clock and nap: a nap moves the time on at once, and asks the loop to
    stop once the time reaches `stop_at`. A loop that naps on past that ignored the request."""

    def __init__(self, start: datetime, stop_at: datetime, stop: threading.Event) -> None:
        self.now = start
        self.stop_at = stop_at
        self.stop = stop

    def clock(self) -> datetime:
        return self.now

    def nap(self, seconds: float) -> bool:
        if self.now >= self.stop_at + timedelta(hours=1):
            raise AssertionError("the scheduler kept going after it was asked to stop")
        self.now += timedelta(seconds=seconds)
        if self.now >= self.stop_at:
            self.stop.set()
        return self.stop.is_set()


def test_the_loop_runs_each_sync_at_its_slots_past_a_failing_one_until_stopped(
    tmp_path: Path, info: StandInInfo, caplog: pytest.LogCaptureFixture
) -> None:
    folder = scheduled_workspace(tmp_path / "ws", info, "*/20 * * * *")
    config = yaml.safe_load((folder / "shiftsync.yaml").read_text())
    config["syncs"]["hourly"] = {**config["syncs"]["yearly"], "schedule": "0 * * * *"}
    config["syncs"]["hourly"]["tables"] = ["public.venue"]
    # Its only pattern matches no table: each of its runs stops with a configuration error.
    config["syncs"]["broken"] = {**config["syncs"]["yearly"], "schedule": "10 * * * *"}
    config["syncs"]["broken"]["tables"] = ["public.no_such_table_*"]
    (folder / "shiftsync.yaml").write_text(yaml.safe_dump(config))
    # Years ahead of the wall clock, which the run records' own times still follow.
    start = datetime(2031, 1, 1, 0, 5, tzinfo=UTC)
    stop = threading.Event()
    fake = FakeClock(start, start.replace(hour=2, minute=0), stop)

    with caplog.at_level(logging.INFO, logger="shiftsync.schedule"):
        workspace = Workspace(folder)
        schedules = {name: str(s.schedule) for name, s in workspace.config.syncs.items()}
        run_schedules(workspace, schedules, stop, fake.clock, fake.nap)

    ran = [
        (r.args[0], r.args[1])
        for r in caplog.records
        if isinstance(r.args, tuple) and r.getMessage().endswith("running")
    ]
    assert ran == [
        ("broken", "2031-01-01 00:10"),
        ("yearly", "2031-01-01 00:20"),
        ("yearly", "2031-01-01 00:40"),
        ("hourly", "2031-01-01 01:00"),
        ("yearly", "2031-01-01 01:00"),
        ("broken", "2031-01-01 01:10"),
        ("yearly", "2031-01-01 01:20"),
        ("yearly", "2031-01-01 01:40"),
    ]
    assert any("broken: could not run" in r.getMessage() for r in caplog.records)
    # Stopped at 02:00: the slot of that time never ran.
    assert fake.now == start.replace(hour=2, minute=0)
    statuses = [(r["sync"], r["status"]) for r in RunStore(folder / ".shiftsync" / "runs").list()]
    assert sorted(statuses) == sorted(
        [("yearly", "ok")] * 5 + [("hourly", "ok")] + [("broken", "failed")] * 2
    )


def test_sigterm_ends_the_loop_with_exit_0(tmp_path: Path, info: StandInInfo) -> None:
    # Its next slot is months away at most: the scheduler naps until SIGTERM asks it to stop.
    folder = scheduled_workspace(tmp_path / "ws", info, "0 0 1 1 *")
    env = {
        **os.environ,
        **info.environment(),
        "PYTHONPATH": str(Path(shiftsync.__file__).resolve().parents[1]),
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "shiftsync", "schedule", "-w", str(folder)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        lines: list[str] = []
        while not any("next slot at" in line for line in lines):
            line = child.stderr.readline()
            assert line, f"the scheduler ended early: {lines}"
            lines.append(line)
        child.send_signal(signal.SIGTERM)
        rest = child.stderr.read()
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    assert rest.rstrip().endswith(" stopped"), rest
