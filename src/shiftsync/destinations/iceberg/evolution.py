"""Which schema changes Iceberg can apply in place, by its rules. Pure.

Iceberg evolves a table's schema without rewriting data files: it adds optional columns and
promotes int → long, float → double and decimal(P, S) → decimal(P', S) with P' ≥ P. A decimal
whose scale changes cannot be promoted (the stored unscaled integers would change meaning), so
such a change is refused by name, before anything is written.
"""

from __future__ import annotations

import pyarrow as pa

from shiftsync.destinations.lake.types import storage_type
from shiftsync.destinations.schema_change import SchemaPlan
from shiftsync.errors import DestinationError


def iceberg_promotes(old: pa.DataType, new: pa.DataType) -> bool:
    """Whether Iceberg promotes a stored column of type `old` to `new` in place."""
    if old == new:
        return True
    if pa.types.is_int32(old) and pa.types.is_int64(new):
        return True
    if pa.types.is_float32(old) and pa.types.is_float64(new):
        return True
    if not (pa.types.is_decimal(old) and pa.types.is_decimal(new)):
        return False
    return bool(old.scale == new.scale and new.precision >= old.precision)


def check_evolution(target: str, existing: pa.Schema, plan: SchemaPlan) -> None:
    """Refuse a plan whose widenings Iceberg cannot apply, naming the column and both types."""
    for change in plan.changes:
        if change.kind != "widen":
            continue
        old = storage_type(existing.field(change.column).type, "iceberg")
        new = storage_type(plan.schema.field(change.column).type, "iceberg")
        if old is None or new is None or iceberg_promotes(old, new):
            continue
        raise DestinationError(
            f"Iceberg table {target!r}: column {change.column!r} would change from {old} to "
            f"{new}, which Iceberg cannot promote in place (a decimal's scale is fixed; only "
            "int → long, float → double and a wider decimal precision are allowed)",
            fix="run this table once with `shiftsync sync --full-refresh` after dropping the "
            "Iceberg table, or cast the column in the source to its old type",
        )
