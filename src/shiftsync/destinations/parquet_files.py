"""A Parquet dataset's files: writing a version's parts, scanning a list of them back."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shiftsync.destinations.parquet_layout import from_storage, to_storage, to_storage_schema
from shiftsync.destinations.scratch import scratch_folder


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
