"""Workspace housekeeping around a run: the hashing salt, the per-sync lock, and the cleanup of
what killed runs left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import secrets
from collections.abc import Iterator
from typing import Final

from shiftsync.engine.run_context import _Context
from shiftsync.errors import ConfigError, ShiftsyncError, StateError
from shiftsync.workspace import Workspace, write_new_text

SALT_FILE: Final = "hash_salt"


def hash_salt(workspace: Workspace) -> str:
    """The workspace's hashing salt, created once (never printed)."""
    path = workspace.dot_dir / SALT_FILE
    try:
        workspace.dot_dir.mkdir(parents=True, exist_ok=True)
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
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".lock-{sync_name}"
    with path.open("a+") as handle:
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


def clean_interrupted_runs(ctx: _Context) -> None:
    """Delete what killed runs of this sync left staged in S3, and mark them interrupted.

    A run's UNLOAD files live under `<prefix><run_id>/`; a run whose process is gone (kill -9,
    a crash) never reached its `finally`. Only runs of the same sync are handled: they used
    this connection's bucket, and the sync's lock says none of them is still going. Other
    syncs' runs, and other workspaces', are left alone.
    """
    if ctx.store is None:
        return
    for summary in ctx.store.list():
        if summary["status"] != "interrupted" or summary["sync"] != ctx.sync_name:
            continue
        if summary.get("finished_at"):
            # Already cleaned up and closed by an earlier run: its record says when it ended.
            continue
        try:
            deleted = ctx.source.delete_run_staging(str(summary["run_id"]))
            if deleted:
                ctx.record.notes.append(
                    f"deleted {deleted} staged object(s) of interrupted run {summary['run_id']}"
                )
            old = ctx.store.load(str(summary["run_id"]))
            old.finish(error="interrupted: the process ended before the run finished")
            old.status = "interrupted"
            ctx.store.save(old)
        except ShiftsyncError as error:
            ctx.record.notes.append(
                f"could not clean up interrupted run {summary['run_id']}: {error.message}"
            )
