"""Compare a destination table's Arrow schema with an incoming one and plan the changes.

Pure: no I/O. Every destination asks `plan_schema` what the table must look like after a load,
which incoming columns to write, and which changes to apply (and report) in the commit.

Rules, from safest to strictest policy:
- a new incoming column is added, nullable (`add_column`);
- a type that grew is widened: int16 → int32 → int64, float32 → float64, decimal(p, s) → a
  decimal that keeps both the integer digits and the scale of either side (`widen`);
- a column missing from the incoming data is kept and gets NULL in new rows (`keep_dropped`);
- anything else (string → int, timestamp → timestamptz, …) cannot be applied without loss and
  raises DestinationError naming the table, the column and both types.

`freeze` keeps the target's schema: new incoming columns are not written (`ignore_column`) and
a widening is refused, because writing wider values into the narrower column could round them.
`fail` refuses any change at all.

`recreate` (replace loads only: the table is written whole anyway) builds the table from the
incoming schema alone: a changed type is the new type (`retype`), a column no longer incoming
is dropped (`drop_column`), a renamed column is one dropped and one added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import pyarrow as pa

from shiftsync.errors import DestinationError

SchemaPolicy = Literal["evolve", "freeze", "fail", "recreate"]
ChangeKind = Literal[
    "add_column", "widen", "keep_dropped", "ignore_column", "retype", "drop_column"
]

MAX_DECIMAL_PRECISION: Final = 38

# Integer widths, narrowest first: a column may move right, never left.
_INT_ORDER: Final[tuple[pa.DataType, ...]] = (pa.int16(), pa.int32(), pa.int64())
_FLOAT_ORDER: Final[tuple[pa.DataType, ...]] = (pa.float32(), pa.float64())

_FIX_INCOMPATIBLE: Final = (
    "set schema_changes: recreate on the sync and run it with --full-refresh (the table is "
    "rebuilt with the new type), or cast the column to its old type in the source"
)


@dataclass(frozen=True)
class SchemaChange:
    """One change applied to a destination table by a load.

    `old_type` and `new_type` are Arrow type names (`str(pa.DataType)`), None where the side
    does not exist (a new column has no old type, a kept column no new one).
    """

    kind: ChangeKind
    column: str
    old_type: str | None
    new_type: str | None

    def describe(self) -> str:
        if self.kind == "add_column":
            return f"new column {self.column!r} ({self.new_type})"
        if self.kind == "widen":
            return f"column {self.column!r} widened from {self.old_type} to {self.new_type}"
        if self.kind == "keep_dropped":
            return f"column {self.column!r} ({self.old_type}) is missing from the incoming data"
        if self.kind == "retype":
            return f"column {self.column!r} recreated as {self.new_type} (was {self.old_type})"
        if self.kind == "drop_column":
            return f"column {self.column!r} ({self.old_type}) dropped: the source has it no more"
        return f"new column {self.column!r} ({self.new_type}) is not written (schema frozen)"


@dataclass(frozen=True)
class SchemaPlan:
    """What a load does to the table's schema.

    `schema` is the table after the load: existing columns in their order (widened where
    needed), then new columns. `write_columns` are the incoming columns that are written.
    """

    schema: pa.Schema
    write_columns: tuple[str, ...]
    changes: tuple[SchemaChange, ...]


def normalize_type(data_type: pa.DataType) -> pa.DataType:
    """The type a destination stores: large variants folded, every timezone read as UTC.

    A timezone-aware timestamp is an instant; its zone name is only a display preference,
    so two zones never make a schema difference.
    """
    if pa.types.is_large_string(data_type):
        return pa.string()
    if pa.types.is_large_binary(data_type):
        return pa.binary()
    if pa.types.is_timestamp(data_type) and data_type.tz is not None:
        return pa.timestamp(data_type.unit, tz="UTC")
    return data_type


def widest_type(old: pa.DataType, new: pa.DataType) -> pa.DataType | None:
    """The narrowest type that holds every value of both, or None when none does exactly."""
    old, new = normalize_type(old), normalize_type(new)
    if old == new:
        return old
    for order in (_INT_ORDER, _FLOAT_ORDER):
        if old in order and new in order:
            return max(old, new, key=order.index)
    if pa.types.is_decimal128(old) and pa.types.is_decimal128(new):
        scale = max(old.scale, new.scale)
        integer_digits = max(old.precision - old.scale, new.precision - new.scale)
        if integer_digits + scale > MAX_DECIMAL_PRECISION:
            return None
        return pa.decimal128(integer_digits + scale, scale)
    return None


def _field(name: str, data_type: pa.DataType, source: pa.Field) -> pa.Field:
    # Destination columns are always nullable: a kept column gets NULL in new rows, and a
    # source's NOT NULL is its own business (Redshift does not enforce it on every path).
    return pa.field(name, data_type, nullable=True, metadata=source.metadata)


def _duplicates(schema: pa.Schema) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for name in schema.names:
        if name in seen:
            repeated.append(name)
        seen.add(name)
    return repeated


def plan_schema(
    table: str, existing: pa.Schema | None, incoming: pa.Schema, policy: SchemaPolicy
) -> SchemaPlan:
    """Plan how `incoming` lands in `table`, whose current schema is `existing` (None: new)."""
    duplicated = _duplicates(incoming)
    if duplicated:
        raise DestinationError(
            f"table {table!r}: the incoming data has the column {duplicated[0]!r} twice",
            fix="rename one of the columns in the source query",
        )
    created = pa.schema([_field(f.name, normalize_type(f.type), f) for f in incoming])
    if existing is None:
        return SchemaPlan(created, tuple(incoming.names), ())
    if policy == "recreate":
        return SchemaPlan(created, tuple(incoming.names), _recreated(existing, created))

    incoming_by_name = {f.name: f for f in incoming}
    fields: list[pa.Field] = []
    changes: list[SchemaChange] = []
    for old in existing:
        new = incoming_by_name.get(old.name)
        if new is None:
            changes.append(SchemaChange("keep_dropped", old.name, str(old.type), None))
            fields.append(_field(old.name, old.type, old))
            continue
        merged = widest_type(old.type, new.type)
        if merged is None:
            raise DestinationError(
                f"table {table!r}: column {old.name!r} changed type from {old.type} to "
                f"{new.type}, which cannot be stored in the old type without loss",
                fix=_FIX_INCOMPATIBLE,
            )
        if merged != normalize_type(old.type):
            changes.append(SchemaChange("widen", old.name, str(old.type), str(merged)))
        fields.append(_field(old.name, merged, new))

    existing_names = set(existing.names)
    added = [f for f in incoming if f.name not in existing_names]
    write_columns = [name for name in incoming.names if name in existing_names]
    if policy == "freeze":
        widened = [c for c in changes if c.kind == "widen"]
        if widened:
            raise DestinationError(
                f"table {table!r}: {widened[0].describe()}, but schema_changes is 'freeze'",
                fix="set schema_changes: evolve for this table, or cast the column in the "
                "source to its old type",
            )
        changes += [SchemaChange("ignore_column", f.name, None, str(f.type)) for f in added]
        return SchemaPlan(existing, tuple(write_columns), tuple(changes))

    changes += [
        SchemaChange("add_column", f.name, None, str(normalize_type(f.type))) for f in added
    ]
    fields += [_field(f.name, normalize_type(f.type), f) for f in added]
    if policy == "fail" and changes:
        raise DestinationError(
            f"table {table!r}: the schema changed ({'; '.join(c.describe() for c in changes)}) "
            "and schema_changes is 'fail'",
            fix="set schema_changes: evolve (or freeze) for this table, or restore the source "
            "schema",
        )
    return SchemaPlan(pa.schema(fields), tuple(incoming.names), tuple(changes))


def _recreated(existing: pa.Schema, created: pa.Schema) -> tuple[SchemaChange, ...]:
    """What recreating a table with `created` changes against `existing`."""
    new_by_name = {f.name: f for f in created}
    changes: list[SchemaChange] = []
    for old in existing:
        new = new_by_name.get(old.name)
        if new is None:
            changes.append(SchemaChange("drop_column", old.name, str(old.type), None))
        elif normalize_type(old.type) != new.type:
            changes.append(SchemaChange("retype", old.name, str(old.type), str(new.type)))
    old_names = set(existing.names)
    changes += [
        SchemaChange("add_column", f.name, None, str(f.type))
        for f in created
        if f.name not in old_names
    ]
    return tuple(changes)
