"""A load's rows written as Iceberg data files, a row group at a time.

pyiceberg writes one data file from an Arrow table it holds whole (`write_file`: the file's
batches converted to the file schema, then written), so a file of 4 MB of Arrow held those
4 MB and their conversion while it was encoded: the peak of an Iceberg sync's commit. Its
writer takes a file in several writes (pyiceberg's `FileFormatWriter.write`: "may be called
multiple times"), so this writes the rows as they come: batches gather up to
`row_group_bytes` of Arrow, go out as one row group, and a file ends once it holds
`target_bytes`. The files, their names, schema, field ids and statistics are pyiceberg's own
(its format model, location provider, schema conversion and `DataFile`); only the feeding
differs.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterable
from typing import Final

import pyarrow as pa
from pyiceberg.io import FileIO, OutputFile
from pyiceberg.io.fileformat import FileFormatFactory, FileFormatWriter
from pyiceberg.io.pyarrow import _to_requested_schema, pyarrow_to_schema
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import WriteTask
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.typedef import Record

# Arrow bytes gathered into one row group: what the writer holds besides the encoder's pages.
ROW_GROUP_BYTES: Final = 1024 * 1024


class DataFileWriter:
    """Batches in the table's stored schema, written into data files of about `target_bytes`
    of Arrow each (the measure of pyiceberg's `write.target-file-size-bytes`)."""

    def __init__(
        self,
        io: FileIO,
        metadata: TableMetadata,
        *,
        target_bytes: int,
        write_uuid: uuid.UUID,
        counter: itertools.count[int],
        row_group_bytes: int = ROW_GROUP_BYTES,
    ) -> None:
        self._io, self._metadata = io, metadata
        self._target, self._row_group = target_bytes, row_group_bytes
        self._uuid, self._counter = write_uuid, counter
        self._model = FileFormatFactory.get(FileFormat.PARQUET)
        self._locations = load_location_provider(metadata.location, metadata.properties)
        self._file_schema = metadata.schema()
        self._batch_schema: object = None
        self._task_schema = self._file_schema
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0
        self._file: tuple[str, FileFormatWriter, OutputFile] | None = None
        self._file_bytes = 0
        self._paths: list[str] = []
        self.files: list[DataFile] = []

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if self._batch_schema is None:
            self._batch_schema = batch.schema
            self._task_schema = pyarrow_to_schema(
                batch.schema,
                name_mapping=self._file_schema.name_mapping,
                format_version=self._metadata.format_version,
            )
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        if self._pending_bytes >= self._row_group:
            self._flush()
        if self._file_bytes >= self._target:
            self._end_file()

    def close(self) -> list[DataFile]:
        """Every data file written, the last one ended."""
        self._flush()
        self._end_file()
        return self.files

    def discard(self) -> None:
        """Delete what was written (a failed load): nothing refers to these files yet."""
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file[1].close()
            self._file = None
        for path in self._paths:
            with contextlib.suppress(Exception):
                self._io.delete(path)
        self._paths, self.files, self._pending = [], [], []

    def _flush(self) -> None:
        if not self._pending:
            return
        converted = [
            _to_requested_schema(
                requested_schema=self._file_schema,
                file_schema=self._task_schema,
                batch=batch,
                include_field_ids=True,
                format_model=self._model,
            )
            for batch in self._pending
        ]
        self._pending, size = [], self._pending_bytes
        self._pending_bytes = 0
        if self._file is None:
            task = WriteTask(
                write_uuid=self._uuid,
                task_id=next(self._counter),
                schema=self._task_schema,
                record_batches=[],
            )
            name = task.generate_data_file_filename(self._model.file_extension())
            path = self._locations.new_data_location(data_file_name=name)
            output = self._io.new_output(path)
            self._paths.append(path)
            writer = self._model.create_writer(output, self._file_schema, self._metadata.properties)
            self._file = (path, writer, output)
        self._file[1].write(pa.Table.from_batches(converted))
        self._file_bytes += size

    def _end_file(self) -> None:
        if self._file is None:
            return
        path, writer, output = self._file
        self._file, self._file_bytes = None, 0
        statistics = writer.close()
        self.files.append(
            DataFile.from_args(
                content=DataFileContent.DATA,
                file_path=path,
                file_format=FileFormat.PARQUET,
                partition=Record(),
                file_size_in_bytes=len(output),
                sort_order_id=None,
                spec_id=self._metadata.default_spec_id,
                equality_ids=None,
                key_metadata=None,
                **statistics.to_serialized_dict(),
            )
        )


def write_data_files(
    batches: Iterable[pa.RecordBatch],
    io: FileIO,
    metadata: TableMetadata,
    *,
    target_bytes: int,
    write_uuid: uuid.UUID,
    counter: itertools.count[int],
) -> list[DataFile]:
    """`batches` written as data files (see DataFileWriter); on a failure none is left."""
    writer = DataFileWriter(
        io, metadata, target_bytes=target_bytes, write_uuid=write_uuid, counter=counter
    )
    try:
        for batch in batches:
            writer.write(batch)
        return writer.close()
    except BaseException:
        writer.discard()
        raise


__all__ = ["ROW_GROUP_BYTES", "DataFileWriter", "write_data_files"]
