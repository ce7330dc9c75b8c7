"""Deleting the rows of a set of keys from an Iceberg table, inside the load's one transaction.

Copy-on-write, as pyiceberg's `Transaction.delete` does it, but matched by a join rather than
by an expression: an expression of every key (an OR of ANDs for a composite key) grows with
the key set, and pyiceberg evaluates it per row (minutes for 25,000 keys, and a crash past
about 10,000). Here the only expression is the keys' bounding box (each key column between
the smallest and largest value deleted), which prunes the data files by their column
statistics (rows are written sorted by key, so each file covers a narrow range); each file the
box may touch is read once, its rows whose key is in the set are found by a semi-join on the
key columns only (DuckDB), and it is dropped or rewritten without them. One overwrite snapshot
carries all the files replaced, with the commit's properties.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    GreaterThanOrEqual,
    LessThanOrEqual,
    Reference,
)
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import DataScan, FileScanTask, Transaction
from pyiceberg.table.metadata import TableMetadata

from shiftsync.destinations.duckdb_sql import quote_identifier
from shiftsync.destinations.iceberg.literals import KeyValue, iceberg_literal

_ROW: str = "_shiftsync_row"


def key_bounds(primary_key: Sequence[str], keys: pa.Table) -> BooleanExpression:
    """Each key column between the smallest and the largest of `keys`' values."""
    terms: list[BooleanExpression] = []
    for name in primary_key:
        low, high = pc.min_max(keys.column(name)).values()
        low_value: KeyValue = low.as_py()
        high_value: KeyValue = high.as_py()
        terms.append(GreaterThanOrEqual(term=Reference(name), value=iceberg_literal(low_value)))
        terms.append(LessThanOrEqual(term=Reference(name), value=iceberg_literal(high_value)))
    return And(*terms) if len(terms) > 1 else terms[0]


def rows_to_delete(
    rows: pa.Table,
    keys: pa.Table,
    primary_key: Sequence[str],
    db: duckdb.DuckDBPyConnection | None = None,
) -> pa.Array:
    """A mask of `rows` whose key (`primary_key`) is one of `keys`' rows.

    One key column: Arrow's `is_in`. A composite key: a semi-join in DuckDB of the key columns
    and row positions only (the other columns never leave Arrow); `db`, when given, is a
    connection where `keys` is already registered as `gone`.
    """
    if len(primary_key) == 1:
        column = rows.column(primary_key[0])
        wanted = keys.column(primary_key[0]).cast(column.type)
        return pc.fill_null(pc.is_in(column, value_set=wanted), False)
    if db is None:
        with duckdb.connect() as own:
            own.register("gone", keys.select(list(primary_key)))
            return rows_to_delete(rows, keys, primary_key, own)
    positions = rows.select(list(primary_key)).append_column(
        _ROW, pa.array(range(rows.num_rows), pa.int64())
    )
    using = ", ".join(quote_identifier(k) for k in primary_key)
    db.register("file_rows", positions)
    try:
        found = db.sql(
            f"SELECT {quote_identifier(_ROW)} FROM file_rows SEMI JOIN gone USING ({using})"
        ).to_arrow_table()
    finally:
        db.unregister("file_rows")
    hits = found.column(0) if found.num_rows else pa.array([], pa.int64())
    return pc.is_in(pa.array(range(rows.num_rows), pa.int64()), value_set=hits)


def delete_keys(
    transaction: Transaction,
    primary_key: Sequence[str],
    keys: pa.Table,
    properties: dict[str, str],
) -> int:
    """Delete the rows whose key is one of `keys` (stored types); the rows deleted."""
    if keys.num_rows == 0 or transaction.table_metadata.current_snapshot() is None:
        return 0
    metadata, io = transaction.table_metadata, transaction._table.io
    bounds = key_bounds(primary_key, keys)
    tasks = DataScan(table_metadata=metadata, io=io, row_filter=bounds).plan_files()
    commit_uuid = uuid.uuid4()
    counter = itertools.count(0)
    replaced: list[tuple[DataFile, list[DataFile]]] = []
    deleted = 0
    with duckdb.connect() as db:
        db.register("gone", keys.select(list(primary_key)))
        for task in tasks:
            found = _rewrite(task, metadata, io, keys, primary_key, db, commit_uuid, counter)
            if found is not None:
                deleted += found[0]
                replaced.append((task.file, found[1]))
    if replaced:
        snapshot = transaction.update_snapshot(snapshot_properties=properties)
        with snapshot.overwrite(commit_uuid=commit_uuid) as overwrite:
            overwrite.delete_by_predicate(bounds)
            for original, rewritten in replaced:
                overwrite.delete_data_file(original)
                for data_file in rewritten:
                    overwrite.append_data_file(data_file)
    return deleted


def _rewrite(
    task: FileScanTask,
    metadata: TableMetadata,
    io: FileIO,
    keys: pa.Table,
    primary_key: Sequence[str],
    db: duckdb.DuckDBPyConnection,
    commit_uuid: uuid.UUID,
    counter: itertools.count[int],
) -> tuple[int, list[DataFile]] | None:
    """(rows deleted, the files replacing the task's) or None when it holds no gone key."""
    rows = ArrowScan(
        table_metadata=metadata,
        io=io,
        projected_schema=metadata.schema(),
        row_filter=AlwaysTrue(),
    ).to_table(tasks=[task])
    gone = rows_to_delete(rows, keys, primary_key, db)
    count = int(pc.sum(gone).as_py() or 0)
    if count == 0:
        return None
    kept = rows.filter(pc.invert(gone))
    if kept.num_rows == 0:
        return count, []
    written = _dataframe_to_data_files(
        table_metadata=metadata, df=kept, io=io, write_uuid=commit_uuid, counter=counter
    )
    return count, list(written)


__all__ = ["delete_keys", "key_bounds", "rows_to_delete"]
