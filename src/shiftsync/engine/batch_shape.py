"""A batch as read → as written: one object, so the driver and a Ray worker that writes a
table's files (executors/ray_files.py) shape rows the same way. Picklable; pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from shiftsync.engine.deletes import deleted_at_field
from shiftsync.engine.load_columns import add_load_columns
from shiftsync.engine.selection import TablePlan, shape_batch


@dataclass(frozen=True)
class BatchShape:
    """Shaped (destination names, hashes), then the soft-delete mark (NULL: live) and the
    load columns (`stamp`: the run's id and start) when the table has them."""

    plan: TablePlan
    schema: pa.Schema
    salt: str | None
    soft_deletes: bool
    stamp: tuple[str, datetime] | None

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        shaped = shape_batch(self.plan, batch, self.schema, self.salt)
        if self.soft_deletes:
            mark = deleted_at_field()
            shaped = shaped.append_column(mark, pa.nulls(shaped.num_rows, mark.type))
        if self.stamp is not None:
            shaped = add_load_columns(shaped, *self.stamp)
        return shaped


__all__ = ["BatchShape"]
