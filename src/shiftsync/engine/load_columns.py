"""Optional load columns: when and by which run each row was written.

`load_columns: true` on a sync adds two columns to every destination table it writes:

    _shiftsync_synced_at   TIMESTAMPTZ (UTC): when the run that wrote the row started
    _shiftsync_run_id      text: that run's id (`shiftsync runs show <id>` shows it)

A row re-read by a later run (a merge, a full refresh) gets that run's values. The columns
are not in the source, so verification does not compare them. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import pyarrow as pa

from shiftsync.errors import ConfigError

SYNCED_AT: Final = "_shiftsync_synced_at"
RUN_ID: Final = "_shiftsync_run_id"
LOAD_FIELDS: Final = (
    pa.field(SYNCED_AT, pa.timestamp("us", tz="UTC")),
    pa.field(RUN_ID, pa.string()),
)


def with_load_columns(table: str, schema: pa.Schema) -> pa.Schema:
    """`schema` plus the load columns (a source column of the same name is refused)."""
    taken = [f.name for f in LOAD_FIELDS if f.name in schema.names]
    if taken:
        raise ConfigError(
            f"table {table}: the source has a column {taken[0]!r}, the name of a load column",
            fix="set load_columns: false for this sync, or leave the column out with "
            "columns: {exclude: [...]}",
        )
    return pa.schema([*schema, *LOAD_FIELDS])


def add_load_columns(batch: pa.RecordBatch, run_id: str, synced_at: datetime) -> pa.RecordBatch:
    """`batch` with both load columns, one value for every row."""
    rows = batch.num_rows
    moment = pa.scalar(synced_at, LOAD_FIELDS[0].type)
    arrays = [*batch.columns, pa.repeat(moment, rows), pa.repeat(pa.scalar(run_id), rows)]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([*batch.schema, *LOAD_FIELDS]))


__all__ = ["LOAD_FIELDS", "RUN_ID", "SYNCED_AT", "add_load_columns", "with_load_columns"]
