"""The Iceberg commit's data files, written a row group at a time (iceberg/files.py): files of
the target size, each a few row groups of about ROW_GROUP_BYTES, the rows exact and in order,
the statistics pyiceberg would write, and nothing left behind by a failed write."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from shiftsync.destinations.iceberg.files import ROW_GROUP_BYTES, DataFileWriter, write_data_files

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def _table(folder: Path) -> Table:
    catalog = SqlCatalog("t", uri=f"sqlite:///{folder}/catalog.db", warehouse=f"file://{folder}/wh")
    catalog.create_namespace("n")
    return catalog.create_table(("n", "t"), schema=SCHEMA)


def _batches(rows: int, per: int) -> list[pa.RecordBatch]:
    return [
        pa.record_batch(
            [
                pa.array(range(start, min(start + per, rows))),
                pa.array([f"name-{i:08d}" for i in range(start, min(start + per, rows))]),
            ],
            schema=SCHEMA,
        )
        for start in range(0, rows, per)
    ]


def test_rows_go_out_in_row_groups_into_files_of_the_target_size(tmp_path: Path) -> None:
    table = _table(tmp_path)
    batches = _batches(400_000, 8192)
    total = sum(b.nbytes for b in batches)
    files = write_data_files(
        batches,
        table.io,
        table.metadata,
        target_bytes=4 * ROW_GROUP_BYTES,
        write_uuid=uuid.uuid4(),
        counter=itertools.count(0),
    )
    assert len(files) == pytest.approx(total / (4 * ROW_GROUP_BYTES), abs=1)
    read = []
    for index, data_file in enumerate(files):
        path = data_file.file_path.removeprefix("file://")
        metadata = pq.ParquetFile(path).metadata
        if index < len(files) - 1:  # the last file holds what was left
            assert metadata.num_row_groups >= 3, "a file is written as several row groups"
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            # A row group is what gathered up to ROW_GROUP_BYTES, never the whole file.
            assert rows * batches[0].nbytes / batches[0].num_rows < 2 * ROW_GROUP_BYTES + 1
        assert data_file.record_count == metadata.num_rows
        # Field ids as pyiceberg writes them, so readers map columns by id.
        assert pq.read_schema(path).field("id").metadata == {b"PARQUET:field_id": b"1"}
        read.append(pq.read_table(path))
    together = pa.concat_tables(read).cast(SCHEMA)
    assert together.equals(pa.Table.from_batches(batches))
    # The statistics of each file are its rows' bounds (what a merge prunes files by).
    first = files[0]
    assert first.lower_bounds[1] == (0).to_bytes(8, "little")

    transaction = table.transaction()
    with transaction.update_snapshot().fast_append() as append:
        for data_file in files:
            append.append_data_file(data_file)
    transaction.commit_transaction()
    assert table.scan().to_arrow().sort_by("id").equals(pa.Table.from_batches(batches))


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    table = _table(tmp_path)

    def failing() -> object:
        yield from _batches(300_000, 8192)
        raise RuntimeError("the stage broke")

    with pytest.raises(RuntimeError, match="the stage broke"):
        write_data_files(
            failing(),  # type: ignore[arg-type]
            table.io,
            table.metadata,
            target_bytes=4 * ROW_GROUP_BYTES,
            write_uuid=uuid.uuid4(),
            counter=itertools.count(0),
        )
    assert [p for p in (tmp_path / "wh").rglob("*.parquet")] == []


def test_no_rows_no_file(tmp_path: Path) -> None:
    table = _table(tmp_path)
    writer = DataFileWriter(
        table.io,
        table.metadata,
        target_bytes=ROW_GROUP_BYTES,
        write_uuid=uuid.uuid4(),
        counter=itertools.count(0),
    )
    writer.write(
        pa.record_batch([pa.array([], pa.int64()), pa.array([], pa.string())], schema=SCHEMA)
    )
    assert writer.close() == []
