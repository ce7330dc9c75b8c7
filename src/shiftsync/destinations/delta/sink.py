"""Delta data files written by other processes (Ray workers), committed by the load.

A load that only adds files (replace: an overwrite; append without a schema change) into a
local (or shared) root, or one in S3 written as the source connection's role (which each worker
assumes itself, as for Parquet: executors/ray_files.py), offers a `DeltaSink` (a `FileSink`,
destinations/file_sink.py): each writer conforms its batches as `LakeLoad.write` does, puts
them in the stored types (lake/types.py) and writes Parquet files (snappy, as delta-rs writes)
into the table's folder, named as delta-rs names its own
(`part-<n>-<uuid>-c000.snappy.parquet`, the UUID made of the load's token and the writer's
name, see file_sink.py). It hands back each file's path, rows, size and statistics (the `stats`
of its add action); the driver checks each file is there as written and commits them all in one
log entry (`create_table_with_add_actions` for a new table,
`DeltaTable.create_write_transaction` otherwise) with the load's commit properties.

Statistics: numRecords and every column's nullCount; minValues/maxValues only for integer,
date and short (at most 32 characters) string columns, whose JSON form is exact. delta-rs
also records floats, decimals and timestamps, whose JSON forms round; a reader without them
only reads more files, a reader with rounded ones could skip a file it needs.

Layout: a worker's files are not sorted; its rows are in the order its task read them (the
driver-fed load sorts the whole load by the table's key). Files are cut at the root's
`target_file_size_bytes` of Arrow data (delta-rs measures its own target on disk, so worker
files are smaller than the driver's).
"""

from __future__ import annotations

import contextlib
import json
import posixpath
from dataclasses import dataclass
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shiftsync.destinations.base import LoadSpec
from shiftsync.destinations.file_sink import (
    WrittenFile,
    check_writer_name,
    token_mark,
    writer_uuid,
)
from shiftsync.destinations.lake.types import incoming_to_storage
from shiftsync.json_types import JsonObject, JsonValue

COMPRESSION: Final = "snappy"
# Strings longer than this get no min/max (delta-rs truncates them; an exact bound or none).
STRING_STATS_CHARS: Final = 32


def is_load_file(path: str, token: str) -> bool:
    """Whether `path` (relative to the table's folder) is a data file a writer of the load
    `token` may have written: directly in the folder, its name holding the load's mark."""
    return (
        "/" not in path
        and path.startswith("part-")
        and token_mark(token) in path
        and path.endswith(f".{COMPRESSION}.parquet")
    )


def _bound(value: pa.Scalar) -> JsonValue:
    """A min/max value in the JSON form of Delta statistics, or None when not exact."""
    data_type = value.type
    if not value.is_valid:
        return None
    if pa.types.is_integer(data_type):
        return int(value.as_py())
    if pa.types.is_date(data_type):
        return str(value.as_py().isoformat())
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        text = str(value.as_py())
        return text if len(text) <= STRING_STATS_CHARS else None
    return None


class FileStats:
    """The statistics of one data file, added up batch by batch."""

    def __init__(self, schema: pa.Schema) -> None:
        self._schema = schema
        self.rows = 0
        self._nulls = dict.fromkeys(schema.names, 0)
        self._min: dict[str, pa.Scalar] = {}
        self._max: dict[str, pa.Scalar] = {}
        # Columns with a value that has no exact bound: no min/max for them at all.
        self._unbounded: set[str] = set()

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            self._nulls[name] += column.null_count
            if name in self._unbounded or column.null_count == len(column):
                continue
            low, high = pc.min_max(column).values()
            if _bound(low) is None or _bound(high) is None:
                self._unbounded.add(name)
                continue
            if name not in self._min or pc.less(low, self._min[name]).as_py():
                self._min[name] = low
            if name not in self._max or pc.greater(high, self._max[name]).as_py():
                self._max[name] = high

    def to_json(self) -> str:
        """The add action's `stats` (Delta's JSON statistics)."""
        bounded = [n for n in self._schema.names if n in self._min and n not in self._unbounded]
        stats: JsonObject = {
            "numRecords": self.rows,
            "minValues": {n: _bound(self._min[n]) for n in bounded},
            "maxValues": {n: _bound(self._max[n]) for n in bounded},
            "nullCount": dict(self._nulls),
        }
        return json.dumps(stats)


@dataclass(frozen=True)
class DeltaWrittenFile(WrittenFile):
    """A data file a writer wrote (path: relative to the table's folder) and its `stats`."""

    stats: str = ""


@dataclass(frozen=True)
class DeltaSink:
    """Where and how another process writes a load's Delta data files (picklable)."""

    folder: str  # the table's folder: absolute on a local (or shared) disk, or bucket/key
    token: str
    spec: LoadSpec
    write_schema: pa.Schema  # the columns the load writes
    schema: pa.Schema  # the table's contract schema
    stored: pa.Schema  # in the stored types (lake/types.py)
    target_file_size: int  # bytes of Arrow data per file
    # In S3, written as the source connection's role: the writer's process brings a file
    # system of its own, made from that role's credentials (none travels with the sink).
    in_s3: bool = False

    def writer(self, name: str, fs: pafs.FileSystem | None = None) -> DeltaWriter:
        check_writer_name(name)
        if self.in_s3 and fs is None:
            raise ValueError("a sink in S3 needs the writer's S3 file system")
        return DeltaWriter(self, name, fs or pafs.LocalFileSystem())


class DeltaWriter:
    """One writer's data files, cut at the sink's target size (a `FileWriter`)."""

    def __init__(self, sink: DeltaSink, name: str, fs: pafs.FileSystem) -> None:
        self._sink = sink
        self._uuid = writer_uuid(sink.token, name)
        self._fs = fs
        self._writer: pq.ParquetWriter | None = None
        self._name = ""
        self._bytes = 0
        self._stats = FileStats(sink.stored)
        self.files: list[DeltaWrittenFile] = []
        # Every file opened, whole or not (for `discard`).
        self._opened: list[str] = []

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        sink = self._sink
        stored = incoming_to_storage(sink.spec, batch, sink.write_schema, sink.schema, sink.stored)
        if self._writer is None:
            self._open()
        writer = self._writer
        assert writer is not None  # _open() made it
        writer.write_batch(stored)
        self._stats.add(stored)
        self._bytes += stored.nbytes
        if self._bytes >= sink.target_file_size:
            self._finish()

    def close(self) -> list[WrittenFile]:
        self._finish()
        return list(self.files)

    def discard(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                self._writer.close()
            self._writer = None
        for name in self._opened:
            with contextlib.suppress(OSError, pa.ArrowException):
                self._fs.delete_file(posixpath.join(self._sink.folder, name))
        self.files, self._opened = [], []

    def _open(self) -> None:
        self._name = f"part-{len(self._opened):05d}-{self._uuid}-c000.{COMPRESSION}.parquet"
        if not self._sink.in_s3:  # S3 has no folders to make
            self._fs.create_dir(self._sink.folder, recursive=True)
        self._opened.append(self._name)
        self._writer = pq.ParquetWriter(
            posixpath.join(self._sink.folder, self._name),
            self._sink.stored,
            compression=COMPRESSION,
            filesystem=self._fs,
        )

    def _finish(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        size = self._fs.get_file_info(posixpath.join(self._sink.folder, self._name)).size
        stats = self._stats
        self.files.append(DeltaWrittenFile(self._name, stats.rows, int(size or 0), stats.to_json()))
        self._stats, self._bytes = FileStats(self._sink.stored), 0


__all__ = [
    "DeltaSink",
    "DeltaWriter",
    "DeltaWrittenFile",
    "FileStats",
    "is_load_file",
]
