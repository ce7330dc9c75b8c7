"""Reading a table in key-range chunks, when the Data API refuses its result as too large.

[min, max] of a key column is cut into ranges (plus one for the NULL keys), each read by its
own SELECT; a range whose result is still too large is cut in two, at most MAX_CHUNK_DEPTH
times over. Chunks are separate statements, so the rows received are checked against one
COUNT(*) at the end: a table changing under the read is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

import pyarrow as pa

from shiftsync.errors import ResultLimitError, SourceError
from shiftsync.redshift.catalog import TableInfo
from shiftsync.redshift.data_api import DataApi
from shiftsync.redshift.data_api_results import field_int, query_rows
from shiftsync.redshift.plan import KeyRange, can_split, split_range
from shiftsync.redshift.sql import build_select_sql, quote_ident, range_predicate
from shiftsync.redshift.stats import ReadStats
from shiftsync.redshift.types import Column

# Runs one SELECT (its SQL) and yields its batches; raises ResultLimitError if it is too big.
Select = Callable[[str], Iterator[pa.RecordBatch]]

# A chunk that still passes the limit is cut in two, at most this many times over.
MAX_CHUNK_DEPTH = 12


def read_chunked(
    api: DataApi,
    select: Select,
    info: TableInfo,
    columns: tuple[Column, ...],
    where: str | None,
    key: Column,
    parts: int,
    stats: ReadStats,
) -> Iterator[pa.RecordBatch]:
    """Read [min, max] of the key in `parts` ranges (plus the NULL keys), cutting any range
    that is still too big in two. Chunks are separate statements, so the row count is
    checked against one COUNT(*) at the end: a table changing under the read is refused."""
    table = str(info.ref)
    quoted = quote_ident(key.name)
    bounds_sql = (
        f"SELECT min({quoted}), max({quoted}), count(*), count({quoted})\n"
        f"FROM {info.ref.sql}" + (f"\nWHERE {where}" if where else "")
    )
    low, high, total, non_null = query_rows(api, bounds_sql, what=f"table {table}", stats=stats)[0]
    ranges: list[KeyRange] = []
    if low is not None and high is not None:
        ranges = split_range(str(low), str(high), parts, key.type_name, scale=key.scale)
    expected = field_int(total)
    if field_int(non_null) < expected:
        ranges.append(KeyRange(None, None, is_null=True))
    received = 0
    for key_range in ranges:
        received += yield from _read_range(select, info, columns, where, key, key_range, stats, 0)
    if received != expected:
        raise SourceError(
            f"table {table}: read in key-range chunks by {key.name}, {received} rows arrived "
            f"but the table holds {expected}: it changed during the read",
            fix="run again when the table is not being written, or read it with UNLOAD "
            "(one snapshot)",
        )


def _read_range(
    select: Select,
    info: TableInfo,
    columns: tuple[Column, ...],
    where: str | None,
    key: Column,
    key_range: KeyRange,
    stats: ReadStats,
    depth: int,
) -> Generator[pa.RecordBatch, None, int]:
    predicate = range_predicate(key, key_range)
    condition = f"({where}) AND {predicate}" if where else predicate
    sql = build_select_sql(
        info.ref.schema, info.ref.name, columns, method="data_api", where=condition
    )
    stats.add(chunks=1)
    produced = 0
    try:
        for batch in select(sql):
            produced += batch.num_rows
            yield batch
        return produced
    except ResultLimitError as error:
        splittable = can_split(key_range, key.type_name, scale=key.scale)
        if produced or not splittable or depth >= MAX_CHUNK_DEPTH:
            raise ResultLimitError(
                f"{error.message}; the chunk of {key.name} from {key_range.low} to "
                f"{key_range.high} cannot be cut smaller",
                fix="read the table with UNLOAD (set unload: in the connection)",
            ) from error
    assert key_range.low is not None
    assert key_range.high is not None
    total = 0
    for half in split_range(
        key_range.low,
        key_range.high,
        2,
        key.type_name,
        high_inclusive=key_range.high_inclusive,
        scale=key.scale,
    ):
        total += yield from _read_range(select, info, columns, where, key, half, stats, depth + 1)
    return total
