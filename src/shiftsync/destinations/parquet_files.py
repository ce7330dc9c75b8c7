"""A Parquet dataset's files: writing a version's parts, scanning a list of them back.

`PartSink` (a `FileSink`, destinations/file_sink.py) lets other processes (Ray workers,
executors/ray_files.py) write parts of a load's version folder with the same conform rules
and writer as the load itself; the load adopts the files they report and commits them with
its pointer.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shiftsync.destinations.base import LoadSpec, conform_batch, conform_incoming
from shiftsync.destinations.file_sink import WrittenFile, check_writer_name
from shiftsync.destinations.parquet_layout import from_storage, to_storage, to_storage_schema
from shiftsync.destinations.scratch import scratch_folder


def conform_for_load(
    spec: LoadSpec, batch: pa.RecordBatch, write_schema: pa.Schema, schema: pa.Schema
) -> pa.RecordBatch:
    """An incoming batch as a load writes it: checked and conformed to the columns written,
    then to the dataset's schema (a column the batch lacks is NULL)."""
    batch = conform_incoming(spec, batch, write_schema)
    return conform_batch(batch, schema, missing_as_null=True)


class PartWriter:
    """Writes batches as `<folder>/part-NNNNN.parquet`, a new file every `rows_per_file`.

    On a remote file system each part is first written to a local temporary file and
    uploaded whole when it is complete: an abandoned load then leaves no half-written
    upload behind, and nothing uploads from a destructor.
    """

    def __init__(
        self, fs: pafs.FileSystem, folder: str, schema: pa.Schema, rows_per_file: int
    ) -> None:
        self._fs, self._folder = fs, folder
        self._local = fs.type_name == "local"
        self._storage_schema = to_storage_schema(schema)
        self._rows_per_file = rows_per_file
        self._spool: tempfile.TemporaryDirectory[str] | None = None
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._rows_in_file = 0
        self.files: list[str] = []
        # Rows in each file of `files`, in the same order.
        self.file_rows: list[int] = []
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        offset = 0
        while offset < batch.num_rows:
            if self._writer is None or self._rows_in_file >= self._rows_per_file:
                self._open()
            take = min(batch.num_rows - offset, self._rows_per_file - self._rows_in_file)
            writer = self._writer
            assert writer is not None  # _open() made it
            writer.write_batch(to_storage(batch.slice(offset, take), self._storage_schema))
            self._rows_in_file += take
            self.file_rows[-1] += take
            self.rows += take
            offset += take

    def close(self, *, at_least_one: bool = False) -> list[str]:
        """Finish the open file; with `at_least_one`, write an empty file if none exists, so
        the version still carries its schema."""
        if at_least_one and not self.files:
            self._open()
        self._finish_file()
        self.discard()
        return self.files

    def discard(self) -> None:
        """Drop the open file without publishing it (a remote part is never uploaded)."""
        if self._writer is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                self._writer.close()
            self._writer = None
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None

    def _open(self) -> None:
        self._finish_file()
        name = f"part-{len(self.files):05d}.parquet"
        if self._local:
            self._fs.create_dir(self._folder, recursive=True)
            self._path = f"{self._folder}/{name}"
        else:
            if self._spool is None:
                self._spool = scratch_folder("parquet")
            self._path = str(Path(self._spool.name) / name)
        filesystem = self._fs if self._local else pafs.LocalFileSystem()
        self._writer = pq.ParquetWriter(self._path, self._storage_schema, filesystem=filesystem)
        self._rows_in_file = 0
        self.files.append(name)
        self.file_rows.append(0)

    def _finish_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        if self._local:
            return
        pafs.copy_files(
            self._path,
            f"{self._folder}/{Path(self._path).name}",
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=self._fs,
        )
        Path(self._path).unlink()


@dataclass(frozen=True)
class PartSink:
    """Where and how a load's parts may be written by another process (picklable: no file
    system, no credential). Each writer takes a folder of its own inside the version folder."""

    dataset: str  # the dataset folder: absolute on a local (or shared) disk, or bucket/key
    current: str  # the version folder's name
    spec: LoadSpec
    write_schema: pa.Schema
    schema: pa.Schema
    rows_per_file: int
    # In S3, written as the source connection's role: the writer's process brings a file
    # system of its own, made from that role's credentials (none travels with the sink).
    in_s3: bool = False

    def writer(self, name: str, fs: pafs.FileSystem | None = None) -> SinkWriter:
        """A writer of `<dataset>/<current>/<name>/part-NNNNN.parquet` (`fs`: for S3)."""
        check_writer_name(name)
        if self.in_s3 and fs is None:
            raise ValueError("a sink in S3 needs the writer's S3 file system")
        return SinkWriter(self, name, fs or pafs.LocalFileSystem())


class SinkWriter:
    """The parts of one writer of a `PartSink` (a `FileWriter`): conformed and written as the
    load does; each `WrittenFile` path is relative to the dataset folder."""

    def __init__(self, sink: PartSink, name: str, fs: pafs.FileSystem) -> None:
        self._sink, self._name = sink, name
        self._fs = fs
        self._parts = PartWriter(
            self._fs, f"{sink.dataset}/{sink.current}/{name}", sink.schema, sink.rows_per_file
        )

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        sink = self._sink
        self._parts.write(conform_for_load(sink.spec, batch, sink.write_schema, sink.schema))

    def close(self) -> list[WrittenFile]:
        names = self._parts.close()
        prefix = f"{self._sink.current}/{self._name}"
        written = []
        for name, rows in zip(names, self._parts.file_rows, strict=True):
            size = self._fs.get_file_info(f"{self._sink.dataset}/{prefix}/{name}").size
            written.append(WrittenFile(f"{prefix}/{name}", rows, int(size or 0)))
        return written

    def discard(self) -> None:
        """Drop this writer's parts (a failed task): the load's abort deletes the folder too."""
        self._parts.discard()
        with contextlib.suppress(OSError, pa.ArrowException):
            self._fs.delete_dir(f"{self._sink.dataset}/{self._sink.current}/{self._name}")


def scan(
    fs: pafs.FileSystem, folder: str, files: Sequence[str], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Stream the batches of `files` (relative to `folder`) in `schema`, reading only its
    columns."""
    for name in files:
        with fs.open_input_file(f"{folder}/{name}") as source:
            parquet = pq.ParquetFile(source)
            present = [c for c in schema.names if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(columns=present):
                yield from_storage(batch, schema)
