"""What a load whose data files other processes may write offers them (Ray workers,
executors/ray_files.py), the same for every file destination: a sink that makes writers, and
the files they report back for the load's one commit.

A sink is picklable (it travels with a task): no file system, no credential. Each writer
takes a name of its own (one per task), so two writers never write one file. A lake table's
writers write beside the table's committed files: their file names carry a UUID made of the
load's token and the writer's name, so a failed load finds and deletes what its writers left
(a killed worker's half-written file too), and nothing of another load.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from typing import Final, Protocol

import pyarrow as pa
import pyarrow.fs as pafs


@dataclass(frozen=True)
class WrittenFile:
    """A data file another process wrote for a load: its path as the load commits it
    (relative to a Parquet dataset's folder, a URI in a lake table), its rows and its size in
    bytes as written (the driver checks it sees the same)."""

    path: str
    rows: int
    size: int


class FileWriter(Protocol):
    """One writer's files: batches conformed and written as the load itself would."""

    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> list[WrittenFile]:
        """Finish the files; what the driver needs to commit them."""
        ...

    def discard(self) -> None:
        """Drop this writer's files (a failed or cancelled task)."""
        ...


class FileSink(Protocol):
    """Where and how a load's data files may be written by another process."""

    # In S3, written as the source connection's role: the writer's process brings a file
    # system of its own, made from that role's credentials.
    @property
    def in_s3(self) -> bool: ...

    def writer(self, name: str, fs: pafs.FileSystem | None = None) -> FileWriter: ...


TOKEN_HEX: Final = 24  # of the 32 hex digits of a writer's UUID


def new_token() -> str:
    """A load's token: the first 24 hex digits of every writer's UUID."""
    return uuid.uuid4().hex[:TOKEN_HEX]


def writer_uuid(token: str, name: str) -> uuid.UUID:
    """The UUID of writer `name` of the load `token` (in every file name it writes)."""
    return uuid.UUID(token + f"{zlib.crc32(name.encode()):08x}")


def token_mark(token: str) -> str:
    """What every file name of the load `token` holds (its writers' UUIDs' common start)."""
    return "-" + str(uuid.UUID(token + "0" * 8))[:28]


def check_writer_name(name: str) -> None:
    """A writer's name becomes part of a file or folder name: one plain path segment."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"{name!r} is not a writer name")


__all__ = [
    "FileSink",
    "FileWriter",
    "WrittenFile",
    "check_writer_name",
    "new_token",
    "token_mark",
    "writer_uuid",
]
