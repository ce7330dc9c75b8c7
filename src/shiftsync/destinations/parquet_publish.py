"""Publishing a Parquet dataset's pointer only over the version its load started from.

Two loads of one dataset at once (two syncs, or two runs) each write a version folder, then
the pointer. Written blindly, the second pointer replaced the first, and the first load's
garbage collection had already deleted the second's folder: a pointer to missing files. So a
pointer is written only if the dataset still holds the version the load read when it started:

    local disk   an exclusive lock on `<target>/_shiftsync.lock` (flock(2), released by the
                 kernel if the process dies) around "read the pointer, compare, rename over it"
    S3           one PutObject with If-Match: <ETag of the pointer read at start> (or
                 If-None-Match: * when there was none); S3 refuses it with 412 if the pointer
                 changed in between, and nothing lands

A load that loses the race publishes nothing and fails with WriteConflictError (run again: it
reads the new version). Garbage collection deletes only folders whose version number is at
most the pointer's: a load still writing has a higher one, or it started from an older version
and will lose its race anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from shiftsync.destinations.parquet_layout import VERSION_FOLDER, DatasetPointer
from shiftsync.errors import WriteConflictError

LOCK_FILE: Final = "_shiftsync.lock"
# What S3 answers a conditional PutObject whose condition failed, or that raced another one.
CONFLICT_CODES: Final = frozenset(
    {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
)


@dataclass(frozen=True)
class PointerBase:
    """The version a load started from: None when the dataset had no pointer, and on S3 the
    pointer object's ETag (None when it was not read through S3's API)."""

    pointer: DatasetPointer | None
    etag: str | None = None

    def same_version(self, current: DatasetPointer | None) -> bool:
        if self.pointer is None or current is None:
            return self.pointer is None and current is None
        return (self.pointer.version, self.pointer.current) == (current.version, current.current)


def conflict(root: str, target: str) -> WriteConflictError:
    return WriteConflictError(
        f"Parquet root {root!r}: another load published dataset {target!r} while this one ran; "
        "nothing of this load was published",
        fix="run the sync again (it starts from the new version); give each dataset one "
        "writer (one sync, run by one schedule)",
    )


@contextlib.contextmanager
def dataset_lock(folder: str) -> Iterator[None]:
    """An exclusive lock on a local dataset folder (created if missing), for its pointer
    switch and its garbage collection."""
    os.makedirs(folder, exist_ok=True)
    # 0o666 less the umask: the destination's files follow SHIFTSYNC_FILE_MODE, this one too.
    descriptor = os.open(os.path.join(folder, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def collectable(folder_name: str, pointer: DatasetPointer | None, keep: set[str]) -> bool:
    """Whether a version folder may be deleted: not used by the pointer, and not newer than it
    (a newer one may belong to a load still writing)."""
    match = VERSION_FOLDER.fullmatch(folder_name)
    if match is None or folder_name in keep or pointer is None:
        return False
    return int(match.group(1)) <= pointer.version


__all__ = [
    "CONFLICT_CODES",
    "LOCK_FILE",
    "PointerBase",
    "collectable",
    "conflict",
    "dataset_lock",
]
