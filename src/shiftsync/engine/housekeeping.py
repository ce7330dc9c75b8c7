"""Workspace housekeeping around a run: the hashing salt, the per-sync lock, and the cleanup of
what killed runs left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Final

from shiftsync.engine.run_context import RunContext
from shiftsync.engine.runs import utc_now
from shiftsync.engine.statement_journal import forget, open_sessions, open_statements
from shiftsync.errors import ConfigError, ShiftsyncError, StateError
from shiftsync.workspace import PRIVATE_FILE_MODE, Workspace, private_mkdir, write_new_text

SALT_FILE: Final = "hash_salt"


def hash_salt(workspace: Workspace) -> str:
    """The workspace's hashing salt, created once (never printed)."""
    path = workspace.dot_dir / SALT_FILE
    try:
        private_mkdir(workspace.dot_dir)
        write_new_text(path, secrets.token_hex(32) + "\n")
        value = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(
            f"cannot read or create the hashing salt {path}: {error.strerror or error}",
            fix="check that the workspace's .shiftsync folder is writable",
        ) from error
    if len(value) < 16:
        raise ConfigError(
            f"{path} holds a salt shorter than 16 characters",
            fix="restore the file from a backup; a new salt changes every hashed value",
        )
    return value


@contextlib.contextmanager
def sync_lock(workspace: Workspace, sync_name: str) -> Iterator[None]:
    """One run of a sync at a time in a workspace; the OS drops the lock if the run dies."""
    folder = workspace.runs_dir
    private_mkdir(folder)
    path = folder / f".lock-{sync_name}"
    with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateError(
                f"another run of sync {sync_name} is in progress in {workspace.folder}",
                fix="wait for it to finish (`shiftsync runs` lists it), then run again",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clean_interrupted_runs(ctx: RunContext, clock: Callable[[], str] = utc_now) -> None:
    """Delete what killed runs of this sync left staged in S3, and mark them interrupted.

    A run's UNLOAD files live under `<prefix><run_id>/`; a run whose process is gone (kill -9,
    a crash) never reached its `finally`. The statements it left running (its statement
    journal, statement_journal.py) are cancelled or waited out first: an UNLOAD would write
    after the deletion. Only runs of the same sync are handled: they used this connection's
    bucket, and the sync's lock says none of them is still going. Other syncs' runs, and other
    workspaces', are left alone. `clock` gives the end time written into a closed record.
    """
    if ctx.store is None:
        return
    for summary in ctx.store.list():
        if summary["status"] != "interrupted" or summary["sync"] != ctx.sync_name:
            continue
        if summary.get("finished_at"):
            # Already cleaned up and closed by an earlier run: its record says when it ended.
            continue
        run_id = str(summary["run_id"])
        try:
            # Its transactions hold their locks (a DROP of the table would wait) until their
            # sessions expire: end them now.
            sessions = open_sessions(ctx.store.folder, run_id)
            if sessions and ctx.source.end_sessions(sessions):
                ctx.record.notes.append(
                    f"rolled back the open transaction(s) of interrupted run {run_id}"
                )
            # Its UNLOADs may still be running and would write after the deletion below.
            running = open_statements(ctx.store.folder, run_id)
            if running:
                left = ctx.source.settle_statements(running)
                if left:
                    ctx.record.notes.append(
                        f"{len(left)} statement(s) of interrupted run {run_id} may still be "
                        "running: its staged files are left for the next run to delete"
                    )
                    continue
                ctx.record.notes.append(
                    f"stopped or waited out {len(running)} statement(s) of interrupted run {run_id}"
                )
            deleted = ctx.source.delete_run_staging(run_id)
            if deleted:
                ctx.record.notes.append(
                    f"deleted {deleted} staged object(s) of interrupted run {summary['run_id']}"
                )
            old = ctx.store.load(str(summary["run_id"]))
            old.finish(error="interrupted: the process ended before the run finished", at=clock())
            old.status = "interrupted"
            ctx.store.save(old)
            forget(ctx.store.folder, run_id)
        except ShiftsyncError as error:
            ctx.record.notes.append(
                f"could not clean up interrupted run {summary['run_id']}: {error.message}"
            )
