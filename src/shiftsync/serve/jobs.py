"""Runs and connection checks in background threads, so that the API answers at once.

A run is started with a run id chosen here (the 202 answer carries it), then `run_sync` does
the work exactly as `shiftsync sync` does; its record in .shiftsync/runs/ is what clients
poll. One run per sync at a time: a second start while one runs (in this server, or in another
process holding the sync's lock) is refused with `sync_running`.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shiftsync.engine.housekeeping import sync_lock
from shiftsync.engine.observer import SyncObserver, SyncOptions
from shiftsync.engine.runs import TableRun, new_run_id, utc_now
from shiftsync.errors import ShiftsyncError, StateError
from shiftsync.serve.bodies import CheckView
from shiftsync.serve.problems import ApiError
from shiftsync.workspace import Workspace


@dataclass
class RunJob:
    run_id: str
    sync: str
    started_at: str
    options: SyncOptions
    done: threading.Event = field(default_factory=threading.Event)
    error: dict[str, str | None] | None = None
    # table → (rows, bytes) read so far, for the run page while a table is still going.
    live: dict[str, tuple[int, int]] = field(default_factory=dict)


class _LiveObserver(SyncObserver):
    def __init__(self, job: RunJob) -> None:
        self.job = job

    def table_started(self, table: TableRun) -> None:
        self.job.live[table.table] = (0, 0)

    def table_progress(self, table: TableRun, rows: int, bytes_read: int) -> None:
        self.job.live[table.table] = (rows, bytes_read)

    def table_finished(self, table: TableRun) -> None:
        self.job.live.pop(table.table, None)


class RunJobs:
    """The runs this server started; at most one per sync at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._by_run: dict[str, RunJob] = {}
        self._by_sync: dict[str, RunJob] = {}

    def running(self, sync: str) -> bool:
        with self._lock:
            job = self._by_sync.get(sync)
            return job is not None and not job.done.is_set()

    def get(self, run_id: str) -> RunJob | None:
        with self._lock:
            return self._by_run.get(run_id)

    def get_for_sync(self, sync: str) -> RunJob | None:
        """The last run of `sync` this server started."""
        with self._lock:
            return self._by_sync.get(sync)

    def start(self, sync: str, options: SyncOptions | None = None) -> RunJob:
        """Start a run of `sync` now; ApiError `sync_running` if one is going."""
        options = options or SyncOptions()
        workspace = Workspace(self.folder)
        with self._lock:
            current = self._by_sync.get(sync)
            if current is not None and not current.done.is_set():
                raise ApiError(
                    "sync_running",
                    f"sync {sync} is already running (run {current.run_id})",
                    f"wait for run {current.run_id} to finish (GET /api/v1/runs/"
                    f"{current.run_id}), then start it again",
                )
            try:
                # Held by another process (`shiftsync sync` in a shell)? Probe and let go.
                with sync_lock(workspace, sync):
                    pass
            except StateError as error:
                raise ApiError("sync_running", error.message, error.fix) from error
            job = RunJob(new_run_id(), sync, utc_now(), options)
            self._by_run[job.run_id] = job
            self._by_sync[sync] = job
        thread = threading.Thread(target=self._run, args=(job,), name=f"run-{sync}", daemon=True)
        thread.start()
        return job

    def _run(self, job: RunJob) -> None:
        # The engine loads boto3, pyarrow and DuckDB: imported by the first run, not at startup.
        from shiftsync.engine.sync import run_sync

        try:
            run_sync(
                Workspace(self.folder),
                job.sync,
                job.options,
                observer=_LiveObserver(job),
                run_id=job.run_id,
            )
        except ShiftsyncError as error:
            job.error = {"code": type(error).__name__, "message": error.message, "fix": error.fix}
        except Exception as error:  # a bug: keep the server up, say what it was
            job.error = {
                "code": "InternalError",
                "message": f"internal error: {type(error).__name__}: {error}",
                "fix": "this is a bug in shiftsync: report it with the server's log",
            }
        finally:
            job.live.clear()
            job.done.set()

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        job = self.get(run_id)
        return job is None or job.done.wait(timeout)


@dataclass
class CheckJob:
    check_id: str
    connection: str
    planned: tuple[str, ...]
    started_at: str
    results: list[dict[str, str | None]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: dict[str, str | None] | None = None
    finished_at: str | None = None

    @property
    def status(self) -> str:
        if not self.done.is_set():
            return "running"
        if self.error is not None:
            return "error"
        ok = all(r["status"] in ("pass", "warn") for r in self.results)
        return "passed" if ok and self.results else "failed"

    def to_json(self) -> CheckView:
        return {
            "check_id": self.check_id,
            "connection": self.connection,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "planned": list(self.planned),
            "results": list(self.results),
            "error": self.error,
        }


class CheckJobs:
    """`shiftsync check` for a connection, in the background; results readable as they come."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._jobs: dict[str, CheckJob] = {}

    def start(self, connection: str) -> CheckJob:
        from shiftsync.preflight import planned_checks

        workspace = Workspace(self.folder)
        name, conn = workspace.config.connection(connection)
        job = CheckJob(secrets.token_hex(8), name, planned_checks(conn), utc_now())
        with self._lock:
            self._jobs[job.check_id] = job
        threading.Thread(target=self._run, args=(job, workspace), daemon=True).start()
        return job

    def _run(self, job: CheckJob, workspace: Workspace) -> None:
        from shiftsync.preflight import CheckResult, run_preflight

        def progress(result: CheckResult) -> None:
            job.results.append(result.as_json())

        try:
            run_preflight(workspace, job.connection, progress=progress)
        except ShiftsyncError as error:
            job.error = {"code": type(error).__name__, "message": error.message, "fix": error.fix}
        except Exception as error:
            job.error = {
                "code": "InternalError",
                "message": f"internal error: {type(error).__name__}",
                "fix": "this is a bug in shiftsync: report it with the server's log",
            }
        finally:
            job.finished_at = utc_now()
            job.done.set()

    def get(self, check_id: str) -> CheckJob | None:
        with self._lock:
            return self._jobs.get(check_id)

    def latest(self, connection: str) -> CheckJob | None:
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.connection == connection]
        return max(jobs, key=lambda j: j.started_at) if jobs else None


def live_rows(job: RunJob | None) -> Mapping[str, tuple[int, int]]:
    return dict(job.live) if job is not None else {}


__all__ = ["CheckJob", "CheckJobs", "RunJob", "RunJobs", "live_rows"]
