"""Arrow batches as CSV that PostgreSQL's `COPY … (FORMAT CSV)` parses exactly (pure).

Arrow writes every value itself (decimals as written, never through a float; timestamps with
microseconds and `Z` for instants); only two types need a text form first: bytea as `\\x`
hex and intervals as microseconds. The session settings (postgres_session.py) fix how PostgreSQL
reads the rest.
"""

from __future__ import annotations

import io
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

_DURATION: Final = pa.duration("us")
_HEX_PAIRS: Final = pa.array([f"{byte:02x}" for byte in range(256)], pa.string())
_CSV_OPTIONS: Final = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")


def bytea_hex(array: pa.Array) -> pa.Array:
    """Binary values as PostgreSQL's bytea hex text (`\\x00ff`), without a Python loop."""
    array = array.cast(pa.binary())
    _, offsets_buffer, data = array.buffers()
    offsets = pa.Array.from_buffers(
        pa.int32(), len(array) + 1, [None, offsets_buffer], offset=array.offset
    )
    data_bytes = (
        pa.Array.from_buffers(pa.uint8(), data.size, [None, data])
        if data is not None
        else pa.array([], pa.uint8())
    )
    per_byte = pc.take(_HEX_PAIRS, data_bytes)
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, per_byte), "")
    text = pc.binary_join_element_wise(pa.scalar("\\x"), joined, "")
    return pc.if_else(array.is_null(), pa.scalar(None, pa.string()), text)


def interval_text(array: pa.Array) -> pa.Array:
    """duration[us] values as `<n> microseconds`, which PostgreSQL keeps exactly in the
    interval's time part (it does not fold hours into days)."""
    text = pc.binary_join_element_wise(
        array.cast(pa.int64()).cast(pa.string()), pa.scalar(" microseconds"), ""
    )
    return pc.if_else(array.is_null(), pa.scalar(None, pa.string()), text)


def to_copy_csv(batch: pa.RecordBatch) -> bytes:
    """The batch as CSV for `COPY … (FORMAT CSV)`.

    Every non-NULL value is quoted, so an empty string is `""` and NULL is an empty field.
    """
    arrays: list[pa.Array] = []
    for column in batch.columns:
        data_type = column.type
        if isinstance(data_type, pa.BaseExtensionType):
            column = column.storage
            data_type = column.type
        if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
            column = bytea_hex(column)
        elif data_type == _DURATION:
            column = interval_text(column)
        arrays.append(column)
    sink = io.BytesIO()
    pacsv.write_csv(
        pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), sink, _CSV_OPTIONS
    )
    return sink.getvalue()
