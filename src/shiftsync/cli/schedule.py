"""`shiftsync schedule`: run each sync when its `schedule:` cron expression (UTC) says."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime

import typer

from shiftsync.cli.options import WorkspaceOption, find_workspace
from shiftsync.engine.runs import RunStore
from shiftsync.engine.schedule import due_syncs, next_wakeup
from shiftsync.errors import EXIT_OK, ConfigError, ShiftsyncError
from shiftsync.workspace import Workspace

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What the scheduler says goes through logging: each line gets its time (and --log-format json,
# --log-file apply), which a daemon's output needs.
log = logging.getLogger("shiftsync.schedule")


def _last_started(store: RunStore, sync: str) -> datetime | None:
    runs = store.list(limit=1, sync=sync)
    if not runs:
        return None
    return datetime.fromisoformat(str(runs[0]["started_at"]).replace("Z", "+00:00"))


def run_due(
    workspace: Workspace,
    schedules: dict[str, str],
    now: datetime,
    since: datetime,
    started: MutableMapping[str, datetime] | None = None,
) -> int:
    """Run every sync that is due now, one after the other; the worst exit code.

    `started` is the scheduler's own memory of when (by its clock) it last started each sync;
    it is updated here. It counts alongside the run records, which a run refused before it
    began may not have written.
    """
    # Imported here: the engine loads boto3, pyarrow and DuckDB, which `--help` does not need.
    from shiftsync.engine.sync import exit_code_of, run_sync

    store = RunStore(workspace.runs_dir)
    started = {} if started is None else started
    last = {sync: _latest(_last_started(store, sync), started.get(sync)) for sync in schedules}
    worst = EXIT_OK
    due = due_syncs(schedules, last, now, since)
    if not due:
        wake = next_wakeup(schedules, now)
        upcoming = f"; next slot at {wake:%Y-%m-%d %H:%M} UTC" if wake is not None else ""
        log.info(
            "nothing due at %s UTC (%s)%s",
            f"{now:%Y-%m-%d %H:%M}",
            ", ".join(f"{name} '{cron}'" for name, cron in schedules.items()),
            upcoming,
        )
    for slot in due:
        log.info("%s: due at %s UTC, running", slot.sync, f"{slot.due_at:%Y-%m-%d %H:%M}")
        started[slot.sync] = now
        try:
            record = run_sync(workspace, slot.sync)
        except ShiftsyncError as error:
            # The error and its fix on lines of their own, as every command prints them.
            log.error("%s: could not run\nerror: %s", slot.sync, error)
            worst = max(worst, error.exit_code)
            continue
        code = exit_code_of(record)
        log.info("%s: run %s %s", slot.sync, record.run_id, record.status)
        worst = max(worst, code)
    return worst


def _latest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


def schedule(
    once: bool = typer.Option(
        False, "--once", help="Run what is due now and exit (for cron, CI or a timer unit)."
    ),
    workspace: WorkspaceOption = None,
) -> None:
    """Run each sync whenever its schedule: cron expression (UTC) comes due.

    Without --once it keeps running, sleeping until the next slot of any sync; stop it with
    Ctrl-C, or with SIGTERM (a run going on finishes first). A sync that was due while the
    scheduler was down runs once to catch up. With --once a sync that never ran counts as due.

    Exit codes (--once): 0 every run was ok; 1 a table failed; 2 configuration; 3 AWS access.
    """
    found = find_workspace(workspace)
    schedules = {name: sync.schedule for name, sync in found.config.syncs.items() if sync.schedule}
    for name, problems in found.config.unresolved("syncs").items():
        # Its schedule cannot be read without the variable: say so rather than skip it quietly.
        needed = ", ".join(dict.fromkeys(variable for _, variable in problems))
        log.warning("sync %s is not scheduled: it needs %s (export it and restart)", name, needed)
    if not schedules:
        raise ConfigError(
            f"{found.config_path}: no sync has a schedule",
            fix='add e.g. `schedule: "0 3 * * *"` (cron, UTC) to a sync in shiftsync.yaml',
        )
    if once:
        raise SystemExit(run_due(found, schedules, datetime.now(UTC), EPOCH))
    log.info("schedules: %s", ", ".join(f"{k} '{v}'" for k, v in schedules.items()))
    stop = threading.Event()
    # A service manager stops a daemon with SIGTERM: end between runs, not in the middle of one.
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if on_main_thread else None
    try:
        run_schedules(found, schedules, stop, lambda: datetime.now(UTC), stop.wait)
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
    log.info("stopped")


def run_schedules(
    workspace: Workspace,
    schedules: dict[str, str],
    stop: threading.Event,
    clock: Callable[[], datetime],
    nap: Callable[[float], object],
) -> None:
    """Run what comes due until `stop` is set. `clock` says the time (UTC); `nap(seconds)`
    waits, and returns early when `stop` is set (`stop.wait` does both)."""
    since = clock()
    started: dict[str, datetime] = {}
    while not stop.is_set():
        run_due(workspace, schedules, clock(), since, started)
        wake = next_wakeup(schedules, clock())
        if wake is None:
            return
        log.info("next slot at %s UTC", f"{wake:%Y-%m-%d %H:%M}")
        while not stop.is_set() and (now := clock()) < wake:
            # Short naps keep Ctrl-C responsive.
            nap(min(30.0, max(0.5, (wake - now).total_seconds())))
