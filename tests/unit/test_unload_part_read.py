"""A downloaded UNLOAD part is read a piece at a time, not a row group at a time.

The spool is a Python file, so whatever Arrow reads from it becomes Python bytes objects,
which tracemalloc sees: the measure here is bytes allocated, not time.
"""

from __future__ import annotations

import io
import tempfile
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq

from shiftsync.redshift.unload import (
    BATCH_BYTES,
    BATCH_ROWS,
    PART_READ_BUFFER,
    batch_rows_for,
    open_part,
)

MIB = 2**20
ROWS = 1_000_000


def spooled_part() -> tempfile._TemporaryFileWrapper[bytes]:
    """A part like an UNLOAD's: one uncompressed row group of 24 MB in a temporary file."""
    table = pa.table(
        {
            name: pa.array(range(offset, offset + ROWS), pa.int64())
            for offset, name in ((0, "a"), (ROWS, "b"), (2 * ROWS, "c"))
        }
    )
    spool = tempfile.NamedTemporaryFile(prefix="shiftsync-part-test-")  # noqa: SIM115
    pq.write_table(table, spool, row_group_size=ROWS, compression="none")
    spool.seek(0)
    return spool


def test_reading_a_part_holds_a_buffer_not_its_row_group() -> None:
    """Before: pq.ParquetFile(spool) read each column chunk whole, 8 MB each here, and all
    of a row group's at once (24 MB); glibc then kept them (30-60 MB of a 10^7-row sync)."""
    with spooled_part() as spool:
        tracemalloc.start()
        try:
            part = open_part(spool)
            rows = 0
            for batch in part.iter_batches(batch_size=BATCH_ROWS):
                rows += batch.num_rows
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert rows == ROWS
    assert PART_READ_BUFFER == MIB
    # Three columns' page streams of PART_READ_BUFFER, the footer and Python's own.
    assert peak < 3 * PART_READ_BUFFER + 2 * MIB, f"{peak / MIB:.1f} MB of Python bytes"


def _metadata(columns: int, rows: int) -> pq.FileMetaData:
    """A part's footer: `columns` columns of 32-character texts (about 36 bytes a value)."""
    texts = pa.array([f"{i:032x}" for i in range(rows)])
    table = pa.table({f"c{i}": texts for i in range(columns)})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=rows // 2 or 1, compression="snappy")
    return pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata


def test_narrow_rows_keep_the_batch_rows() -> None:
    assert batch_rows_for(_metadata(1, 20_000), BATCH_ROWS, BATCH_BYTES) == BATCH_ROWS


def test_wide_rows_get_fewer_rows_per_batch_within_the_bytes() -> None:
    metadata = _metadata(20, 20_000)
    rows = batch_rows_for(metadata, BATCH_ROWS, BATCH_BYTES)
    data = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    assert rows < BATCH_ROWS
    assert rows * data / metadata.num_rows <= BATCH_BYTES
    assert (rows + 1024) * data / metadata.num_rows > BATCH_BYTES, "not needlessly small"


def test_a_batch_keeps_a_floor_of_rows_and_an_empty_part_the_default() -> None:
    assert batch_rows_for(_metadata(20, 20_000), BATCH_ROWS, 1) == 1024
    assert batch_rows_for(_metadata(1, 0), BATCH_ROWS, BATCH_BYTES) == BATCH_ROWS
