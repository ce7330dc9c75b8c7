"""The scheduler inside `shiftsync serve`: `shiftsync schedule`'s cron rules, one run per sync.

Each tick reads shiftsync.yaml afresh (schedules edited by hand take effect), asks
engine/schedule.py which syncs are due, and starts each through the server's run jobs; a sync
that is still running is skipped (its next slot comes again). The thread sleeps until the next
slot of any sync (at most a minute, so edits are seen) or until the server stops.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Final

from shiftsync.engine.runs import RunStore
from shiftsync.engine.schedule import due_syncs, next_wakeup
from shiftsync.errors import ShiftsyncError
from shiftsync.serve.jobs import RunJobs
from shiftsync.serve.problems import ApiError
from shiftsync.workspace import Workspace

LOG: Final = logging.getLogger("shiftsync.serve.scheduler")
MAX_NAP_SECONDS: Final = 60.0


def _last_started(store: RunStore, sync: str) -> datetime | None:
    runs = store.list(limit=1, sync=sync)
    if not runs:
        return None
    return datetime.fromisoformat(str(runs[0]["started_at"]).replace("Z", "+00:00"))


class Scheduler:
    def __init__(self, runs: RunJobs, started: datetime | None = None) -> None:
        self.runs = runs
        self.started = started or datetime.now(UTC)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def schedules(self) -> dict[str, str]:
        config = Workspace(self.runs.folder).config
        return {name: sync.schedule for name, sync in config.syncs.items() if sync.schedule}

    def tick(self, now: datetime) -> list[str]:
        """Start every due sync that is not running; the run ids started."""
        schedules = self.schedules()
        store = RunStore(Workspace(self.runs.folder).runs_dir)
        last = {sync: _last_started(store, sync) for sync in schedules}
        started = []
        for slot in due_syncs(schedules, last, now, self.started):
            if self.runs.running(slot.sync):
                LOG.info("%s: due at %s but still running; skipped", slot.sync, slot.due_at)
                continue
            try:
                job = self.runs.start(slot.sync)
            except ApiError as error:
                LOG.warning("%s: not started: %s", slot.sync, error.message)
                continue
            LOG.info("%s: due at %s, run %s started", slot.sync, slot.due_at, job.run_id)
            started.append(job.run_id)
        return started

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick(datetime.now(UTC))
                wake = next_wakeup(self.schedules(), datetime.now(UTC))
            except ShiftsyncError as error:
                LOG.warning("scheduler: %s", error)
                wake = None
            nap = MAX_NAP_SECONDS
            if wake is not None:
                nap = min(MAX_NAP_SECONDS, max(0.5, (wake - datetime.now(UTC)).total_seconds()))
            self._stop.wait(nap)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


__all__ = ["Scheduler"]
