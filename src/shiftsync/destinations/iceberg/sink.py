"""Iceberg data files written by other processes (Ray workers), committed by the load.

A load that only adds files (replace: delete every row, then append; append without a schema
change) into a local (or shared) warehouse, or one in S3 written as the source connection's
role (which each worker assumes itself, as for Parquet: executors/ray_files.py), offers an
`IcebergSink` (a `FileSink`, destinations/file_sink.py). It carries the table's metadata as
the commit will see it (for a new table, that of the create transaction the commit makes
again, with the same field ids): each writer conforms its batches as `LakeLoad.write` does,
puts them in the stored types (lake/types.py) and writes them with pyiceberg's own writer
(`_dataframe_to_data_files`: the table's field ids, statistics and file naming) into the
table's data folder, and hands back pyiceberg's `DataFile`s. The driver checks each file is
there as written and appends them all in the load's one commit.

Names: every writer's files carry a UUID made of the load's token and the writer's name
(`00000-<n>-<token…><name hash>.parquet`), so a failed load deletes what its writers left,
even a file a killed worker had half written, and nothing of another load.

Layout: a worker's files are not sorted; its rows are in the order its task read them (the
driver-fed load sorts the whole load by the table's key). Files are written a row group at a
time and cut at the destination's target size in Arrow bytes, by the driver's own writer
(iceberg/files.py).
"""

from __future__ import annotations

import itertools
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs as pafs
from pyiceberg.manifest import DataFile
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata

if TYPE_CHECKING:
    pass

from shiftsync.destinations.base import LoadSpec
from shiftsync.destinations.file_sink import (
    WrittenFile,
    check_writer_name,
    token_mark,
    writer_uuid,
)
from shiftsync.destinations.lake.types import incoming_to_storage


def data_folder(metadata: TableMetadata) -> str:
    """The folder (URI) the table's data files are written to."""
    provider = load_location_provider(metadata.location, metadata.properties)
    return posixpath.dirname(provider.new_data_location("probe.parquet"))


def is_load_file(path: str, folder: str, token: str) -> bool:
    """Whether `path` is a data file a writer of the load `token` may have written: directly
    in the table's data `folder`, its name holding the load's mark."""
    parent, name = posixpath.split(path)
    return parent == folder and token_mark(token) in name and name.endswith(".parquet")


@dataclass(frozen=True)
class IcebergWrittenFile(WrittenFile):
    """A data file a writer wrote (path: its URI) and its pyiceberg entry, as committed."""

    data_file: DataFile | None = field(default=None, compare=False)


@dataclass(frozen=True)
class IcebergSink:
    """Where and how another process writes a load's Iceberg data files (picklable)."""

    metadata: TableMetadata  # as the commit sees it: schema (field ids), location, properties
    token: str
    spec: LoadSpec
    write_schema: pa.Schema  # the columns the load writes
    schema: pa.Schema  # the table's contract schema
    stored: pa.Schema  # in the stored types (lake/types.py)
    target_bytes: int  # Arrow bytes per data file, as the driver's commit cuts them
    # In S3, written as the source connection's role: the writer's process brings a file
    # system of its own, made from that role's credentials (none travels with the sink).
    in_s3: bool = False

    def writer(self, name: str, fs: pafs.FileSystem | None = None) -> IcebergWriter:
        check_writer_name(name)
        if self.in_s3 and fs is None:
            raise ValueError("a sink in S3 needs the writer's S3 file system")
        return IcebergWriter(self, name, fs)


class IcebergWriter:
    """One writer's data files, written a row group at a time as the driver's commit writes
    its own (iceberg/files.py), cut at the sink's target size (a `FileWriter`)."""

    def __init__(self, sink: IcebergSink, name: str, fs: pafs.FileSystem | None = None) -> None:
        # Imported here, not with the module: pyiceberg's Arrow writer stays out of the driver
        # until its commit (see IcebergLoad._append), and the driver imports this module.
        from pyiceberg.io.pyarrow import PyArrowFileIO

        from shiftsync.destinations.iceberg.files import DataFileWriter

        self._sink = sink
        io = PyArrowFileIO()
        if fs is not None:
            # pyiceberg's writer reaches S3 through the worker's own session of the role.
            io.fs_by_scheme = lambda scheme, netloc: fs
        self._files = DataFileWriter(
            io,
            sink.metadata,
            target_bytes=sink.target_bytes,
            write_uuid=writer_uuid(sink.token, name),
            counter=itertools.count(0),
        )

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        sink = self._sink
        stored = incoming_to_storage(sink.spec, batch, sink.write_schema, sink.schema, sink.stored)
        self._files.write(stored)

    def close(self) -> list[WrittenFile]:
        return [
            IcebergWrittenFile(f.file_path, f.record_count, f.file_size_in_bytes, f)
            for f in self._files.close()
        ]

    def discard(self) -> None:
        self._files.discard()


__all__ = [
    "IcebergSink",
    "IcebergWriter",
    "IcebergWrittenFile",
    "data_folder",
    "is_load_file",
]
