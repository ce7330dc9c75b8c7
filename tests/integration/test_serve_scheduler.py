"""The scheduler inside `shiftsync serve`: due syncs start, one run per sync at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shiftsync.engine.runs import RunStore
from shiftsync.engine.sync import PAUSE_ENV, RESUME_FILE_ENV
from shiftsync.local.standin import StandInInfo
from shiftsync.serve.jobs import RunJobs
from shiftsync.serve.scheduler import Scheduler
from tests.serve_support import pg_dsn, serve_workspace

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _pg_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVE_TEST_PG_DSN", pg_dsn())


def test_due_syncs_start_once_and_not_while_running(
    tmp_path: Path, info: StandInInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ws"
    workspace = serve_workspace(folder, info, tables=("public.category",), schedule="* * * * *")
    runs = RunJobs(folder)
    scheduler = Scheduler(runs, started=EPOCH)
    resume = tmp_path / "resume"
    monkeypatch.setenv(PAUSE_ENV, "before_commit:public.category")
    monkeypatch.setenv(RESUME_FILE_ENV, str(resume))

    now = datetime.now(UTC)
    started = scheduler.tick(now)
    assert len(started) == 1
    run_id = started[0]
    try:
        # Still running (held before its commit): a later slot does not start a second run.
        assert scheduler.tick(now + timedelta(minutes=5)) == []
    finally:
        resume.touch()
    assert runs.wait(run_id, timeout=60)
    record = RunStore(workspace.runs_dir).load(run_id)
    assert record.status == "ok"
    # Ran for this minute's slot: not due again until the next one.
    assert scheduler.tick(now) == []
    later = scheduler.tick(now + timedelta(minutes=1))
    assert len(later) == 1
    assert runs.wait(later[0], timeout=60)


def test_a_sync_without_schedule_is_never_started(tmp_path: Path, info: StandInInfo) -> None:
    folder = tmp_path / "ws"
    serve_workspace(folder, info)
    scheduler = Scheduler(RunJobs(folder), started=EPOCH)
    assert scheduler.schedules() == {}
    assert scheduler.tick(datetime.now(UTC)) == []


def test_the_server_runs_its_scheduler_while_it_is_up(tmp_path: Path, info: StandInInfo) -> None:
    from fastapi.testclient import TestClient

    from shiftsync.serve.app import create_app
    from shiftsync.workspace import Workspace

    folder = tmp_path / "ws"
    serve_workspace(folder, info, schedule="0 3 * * *")
    app = create_app(Workspace(folder), scheduler=True)
    scheduler = app.state.scheduler
    assert isinstance(scheduler, Scheduler)
    assert not scheduler.running
    with TestClient(app, base_url="http://127.0.0.1:8765"):
        assert scheduler.running
        assert scheduler.schedules() == {"nightly": "0 3 * * *"}
    assert not scheduler.running
    assert create_app(Workspace(folder), scheduler=False).state.scheduler is None
