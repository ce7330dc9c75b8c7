"""The Destination contract, and the small helpers every destination shares.

A load is `start_load(spec)` → `write(batch)`… → `commit(state)` (or `abort()`): data and
state land together in one transaction (or one pointer switch), or not at all. Arrow record
batches are the only input format. A state belongs to the target it was committed with:
`read_state(state_key, target)` never returns the state a load of another target committed,
so a cursor can only ever resume the table whose rows it describes.

The profile helpers define the verification contract: the engine computes the same numbers
on the Redshift side in SQL, and `ColumnProfile` values are compared as plain text.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal
from enum import StrEnum
from typing import Final, Literal, Protocol, TypeAlias, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc

from shiftsync.destinations.schema_change import SchemaChange, SchemaPolicy, normalize_type
from shiftsync.errors import DestinationError
from shiftsync.json_types import JsonObject, JsonValue

STATE_TABLE: Final = "_shiftsync_state"
STAGE_PREFIX: Final = "_shiftsync_stage_"
SEQUENCE_COLUMN: Final = "_shiftsync_seq"
# Set (UTC) on rows that `deletes: soft` found gone from the source; NULL on live rows.
DELETED_AT_COLUMN: Final = "_shiftsync_deleted_at"
# PostgreSQL truncates identifiers past 63 bytes; one naming rule keeps all destinations alike.
MAX_IDENTIFIER_BYTES: Final = 63
_TOKEN_HEX: Final = 8


class LoadMode(StrEnum):
    REPLACE = "replace"  # full refresh: stage, then swap atomically
    MERGE = "merge"  # upsert by primary key (incoming deduplicated by key, last written wins)
    APPEND = "append"  # insert only
    # delete the target rows whose key is written (the batches hold key columns only); with
    # the state, in one transaction: how a delete pass removes rows gone from the source
    DELETE = "delete"


KEYED_MODES: Final = frozenset({LoadMode.MERGE, LoadMode.DELETE})


@dataclass(frozen=True)
class LoadSpec:
    """One load into one destination table.

    `state_key` names where the sync's cursor state for this table is kept; empty means the
    target name. `sort_key` is the order a destination that lays out files may write rows in
    (the lake formats sort by it so a later merge rewrites few files); others ignore it.
    """

    target: str
    schema: pa.Schema
    mode: LoadMode
    primary_key: tuple[str, ...] = ()
    schema_changes: SchemaPolicy = "evolve"
    state_key: str = ""
    # Who writes, stamped on the table at commit (see `identity_comment`): a state records the
    # stamp it was committed with, so a table that something else wrote since is noticed.
    identity: str = ""
    # The key a table this load creates carries (PRIMARY KEY where the destination has one);
    # empty: none. The engine sets it where the key was checked unique in the source.
    table_key: tuple[str, ...] = ()
    # Columns the source declares NOT NULL: NOT NULL in a table this load creates (DuckDB,
    # PostgreSQL); any other NOT NULL column of an existing table is relaxed by the commit.
    not_null: tuple[str, ...] = ()
    sort_key: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadOutcome:
    rows_written: int
    schema_changes: tuple[SchemaChange, ...]


@dataclass(frozen=True)
class ColumnProfile:
    """What verification compares for one column (see `profile_kind` for which fields)."""

    non_null: int
    total: str | None = None
    min: str | None = None
    max: str | None = None


@dataclass(frozen=True)
class TableProfile:
    rows: int
    columns: Mapping[str, ColumnProfile] = field(default_factory=dict)


class Load(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...

    def commit(self, state: Mapping[str, JsonValue] | None) -> LoadOutcome: ...

    def abort(self) -> None: ...


class Destination(Protocol):
    kind: str
    # Whether a DELETE load (delete detection) can be applied; every destination today.
    supports_deletes: bool

    # Run by a sync before it reads anything: the destination is reachable and writable.
    def check(self) -> None: ...

    def table_schema(self, target: str) -> pa.Schema | None: ...

    def read_state(self, state_key: str, target: str) -> JsonObject | None: ...

    def start_load(self, spec: LoadSpec) -> Load: ...

    def profile(
        self, target: str, columns: Sequence[str], *, live_only: bool = False
    ) -> TableProfile: ...

    def read_table(self, target: str, columns: Sequence[str] | None = None) -> pa.Table: ...

    def table_identity(self, target: str) -> str | None:
        """The stamp of the load that last wrote `target` (None: none kept)."""

    def close(self) -> None: ...


@runtime_checkable
class Probed(Protocol):
    """A destination whose `shiftsync check` probe does more than the check a sync runs
    before reading: Iceberg creates, writes, reads and drops a probe table (every catalog
    action a load needs), Delta writes, reads and deletes one, which a sync need not repeat
    on every run (its check writes and deletes one probe file, lake/probe.py)."""

    def probe(self) -> None: ...


# --- load specs, stage names, state ------------------------------------------------------


def state_key_of(spec: LoadSpec) -> str:
    return spec.state_key or spec.target


IDENTITY_PREFIX: Final = "shiftsync:"


def identity_comment(identity: str) -> str:
    """The table comment that names the last load committed into a table."""
    return IDENTITY_PREFIX + identity


def identity_of_comment(comment: str | None) -> str | None:
    """The identity in a table comment, or None (no comment, or not one of shiftsync's)."""
    if comment is None or not comment.startswith(IDENTITY_PREFIX):
        return None
    return comment[len(IDENTITY_PREFIX) :]


def columns_to_relax(existing_not_null: Collection[str], spec: LoadSpec) -> tuple[str, ...]:
    """The NOT NULL columns of an existing table that may now receive NULL (the source
    dropped its NOT NULL, or no longer has the column); key columns stay NOT NULL."""
    kept = {*spec.not_null, *spec.table_key, *spec.primary_key}
    return tuple(sorted(c for c in existing_not_null if c not in kept))


def validate_spec(spec: LoadSpec) -> None:
    """Refuse a spec no destination can load (a MERGE needs a primary key it can find)."""
    if not spec.target:
        raise DestinationError(
            "a load was started without a target table name",
            fix="this is a bug in the caller: report it with the sync's configuration",
        )
    if spec.schema_changes == "recreate" and spec.mode is not LoadMode.REPLACE:
        raise DestinationError(
            f"table {spec.target!r}: schema_changes 'recreate' rebuilds a table that a load "
            f"replaces whole, and this load is a {spec.mode}",
            fix="this is a bug in the caller: pass 'evolve' for merge and append loads",
        )
    missing_key = [k for k in spec.table_key if k not in spec.schema.names]
    if missing_key:
        raise DestinationError(
            f"table {spec.target!r}: key column {missing_key[0]!r} is not in the data",
            fix="fix primary_key for this table so it names columns of the source",
        )
    if spec.mode in KEYED_MODES:
        if not spec.primary_key:
            raise DestinationError(
                f"table {spec.target!r}: a merge load needs a primary key, and none was given",
                fix="declare primary_key for this table, or load it with mode append or replace",
            )
        missing = [k for k in spec.primary_key if k not in spec.schema.names]
        if missing:
            raise DestinationError(
                f"table {spec.target!r}: primary key column {missing[0]!r} is not in the data",
                fix="fix primary_key for this table so it names columns of the source",
            )


def check_merge_keys(target: str, batch: pa.RecordBatch, primary_key: Sequence[str]) -> None:
    """Refuse NULL keys: a NULL matches nothing in SQL, so the row could never be updated."""
    for key in primary_key:
        if batch.column(key).null_count:
            raise DestinationError(
                f"table {target!r}: primary key column {key!r} holds NULL in "
                f"{batch.column(key).null_count} incoming row(s), so the merge cannot match them",
                fix="declare a primary key whose columns are never NULL, or load with mode append",
            )


def conform_incoming(spec: LoadSpec, batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """An incoming batch conformed to `schema`, its merge keys checked first when merging."""
    if spec.mode in KEYED_MODES:
        check_merge_keys(spec.target, batch, spec.primary_key)
    elif spec.table_key:
        check_merge_keys(spec.target, batch, spec.table_key)  # a PRIMARY KEY holds no NULL
    return conform_batch(batch, schema)


def ensure_open(done: bool, target: str, noun: str = "table") -> None:
    """Refuse to use a load that is already committed or aborted."""
    if done:
        raise DestinationError(
            f"the load of {noun} {target!r} is already committed or aborted",
            fix="start a new load",
        )


def new_run_token() -> str:
    return secrets.token_hex(_TOKEN_HEX // 2)


def _stage_stem(target: str) -> str:
    fixed = len(STAGE_PREFIX) + 1 + _TOKEN_HEX
    if fixed + len(target.encode()) <= MAX_IDENTIFIER_BYTES:
        return target
    # Too long: a prefix of the name, then a digest so two long names never share a stage.
    digest = hashlib.sha256(target.encode()).hexdigest()[:8]
    budget = MAX_IDENTIFIER_BYTES - fixed - 1 - len(digest)
    short = target.encode()[:budget].decode(errors="ignore")
    return f"{short}_{digest}"


def stage_table_name(target: str, token: str) -> str:
    """`_shiftsync_stage_<target>_<token>`, shortened with a digest past 63 bytes."""
    return f"{STAGE_PREFIX}{_stage_stem(target)}_{token}"


def is_stage_of(name: str, target: str) -> bool:
    """Whether `name` is a stage table of `target` (and not of a target sharing its prefix)."""
    pattern = f"{re.escape(STAGE_PREFIX + _stage_stem(target))}_[0-9a-f]{{{_TOKEN_HEX}}}"
    return re.fullmatch(pattern, name) is not None


def encode_state(target: str, state: Mapping[str, JsonValue]) -> str:
    try:
        return json.dumps(dict(state), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise DestinationError(
            f"table {target!r}: the sync state cannot be written as JSON: {exc}",
            fix="keep only JSON values (text, numbers, lists, objects) in the state",
        ) from exc


def decode_state(where: str, text: str) -> JsonObject:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DestinationError(
            f"{where}: the stored sync state is not valid JSON: {exc}",
            fix="reset the state of this table (shiftsync state reset) and run a full refresh",
        ) from exc
    if not isinstance(value, dict):
        raise DestinationError(
            f"{where}: the stored sync state is not a JSON object",
            fix="reset the state of this table (shiftsync state reset) and run a full refresh",
        )
    return value


# --- Arrow batches ------------------------------------------------------------------------


def _conform_array(array: pa.Array, data_type: pa.DataType) -> pa.Array:
    if array.type == data_type:
        return array
    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage
    if isinstance(data_type, pa.BaseExtensionType):
        storage = array.cast(data_type.storage_type)
        return pa.ExtensionArray.from_storage(data_type, storage)
    # A safe cast: overflow or lost digits raise instead of changing values.
    return array.cast(data_type)


def conform_batch(
    batch: pa.RecordBatch, schema: pa.Schema, *, missing_as_null: bool = False
) -> pa.RecordBatch:
    """`batch` with exactly the columns of `schema`, cast to its types.

    A column of `schema` that `batch` lacks is NULL when `missing_as_null`, else an error:
    incoming data must carry every column its LoadSpec announced.
    """
    names = set(batch.schema.names)
    arrays: list[pa.Array] = []
    for f in schema:
        if f.name in names:
            arrays.append(_conform_array(batch.column(f.name), f.type))
        elif missing_as_null:
            arrays.append(pa.nulls(batch.num_rows, f.type))
        else:
            raise DestinationError(
                f"an incoming batch has no column {f.name!r} although its load announced it",
                fix="this is a bug in the caller: report it with the table's schema",
            )
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def conform_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` cast to `schema` (for tables read back from a destination)."""
    batches = [conform_batch(b, schema, missing_as_null=True) for b in table.to_batches()]
    return pa.Table.from_batches(batches, schema=schema)


def with_sequence(batch: pa.RecordBatch, start: int) -> pa.RecordBatch:
    """`batch` plus `_shiftsync_seq` = start, start+1, …: the order rows were written in."""
    ones = pa.repeat(pa.scalar(1, pa.int64()), batch.num_rows)
    sequence = pc.add(pc.cumulative_sum(ones), pa.scalar(start - 1, pa.int64()))
    return batch.append_column(pa.field(SEQUENCE_COLUMN, pa.int64(), nullable=False), sequence)


def subschema(schema: pa.Schema, names: Sequence[str]) -> pa.Schema:
    return pa.schema([schema.field(name) for name in names])


# --- profiles -----------------------------------------------------------------------------

ProfileKind = Literal["sum", "octets", "true_count", "range", "count"]

_EXACT = Context(prec=200)

# A column's total as a database returns it: SUM of integers or decimals, or a count.
ProfileTotal: TypeAlias = int | Decimal | str | None


def profile_kind(data_type: pa.DataType) -> ProfileKind:
    """Which total a column's profile carries.

    sum: integers and decimals (exact SUM); octets: SUM of UTF-8/byte lengths of strings,
    binary and JSON; true_count: booleans; range: min/max of dates, times and timestamps;
    count: everything else (floats, intervals), compared by non-NULL count only.
    """
    data_type = normalize_type(data_type)
    if isinstance(data_type, pa.BaseExtensionType):
        return "octets" if data_type.extension_name == "arrow.json" else "count"
    if pa.types.is_integer(data_type) or pa.types.is_decimal(data_type):
        return "sum"
    if pa.types.is_string(data_type) or pa.types.is_binary(data_type):
        return "octets"
    if pa.types.is_boolean(data_type):
        return "true_count"
    if pa.types.is_date(data_type) or pa.types.is_timestamp(data_type):
        return "range"
    if pa.types.is_time(data_type):
        return "range"
    return "count"


def render_sum(value: int | Decimal | str | None, data_type: pa.DataType) -> str:
    """An exact SUM as text: integers plain, decimals with exactly the column's scale digits.

    The SUM over no values is "0" (SQL gives NULL; the comparison needs a number).
    """
    amount = Decimal(0) if value is None else Decimal(value)
    if pa.types.is_decimal(data_type) and data_type.scale > 0:
        amount = amount.quantize(Decimal(1).scaleb(-data_type.scale), context=_EXACT)
    else:
        amount = amount.quantize(Decimal(1), context=_EXACT)
    if amount.is_zero():
        amount = abs(amount)
    return format(amount, "f")


_BC_MARK: Final = re.compile(r"\s*\(?BC\)?")


def render_temporal(text: str | None) -> str | None:
    """A database's text of a date, time or timestamp in the profile's ISO form.

    Fractions always have six digits (`HH:MM:SS.ffffff`); years before 1 AD keep a " BC"
    suffix, as PostgreSQL and Redshift print them.
    """
    if text is None:
        return None
    before_christ = "BC" in text
    core = _BC_MARK.sub("", text).strip()
    if ":" in core:
        whole, _, fraction = core.partition(".")
        core = f"{whole}.{fraction.ljust(6, '0')}"
    return f"{core} BC" if before_christ else core


def assemble_profile(
    rows: int,
    columns: Sequence[tuple[str, pa.DataType]],
    values: Sequence[tuple[int, ProfileTotal, str | None, str | None]],
) -> TableProfile:
    """A TableProfile from per-column (non_null, total, min, max) read from SQL."""
    profiles: dict[str, ColumnProfile] = {}
    for (name, data_type), (non_null, total, low, high) in zip(columns, values, strict=True):
        kind = profile_kind(data_type)
        if kind == "sum":
            profiles[name] = ColumnProfile(int(non_null), render_sum(total, data_type))
        elif kind in ("octets", "true_count"):
            profiles[name] = ColumnProfile(int(non_null), str(int(total or 0)))
        elif kind == "range":
            profiles[name] = ColumnProfile(
                int(non_null), None, render_temporal(low), render_temporal(high)
            )
        else:
            profiles[name] = ColumnProfile(int(non_null))
    return TableProfile(int(rows), profiles)


def profile_columns(
    target: str, schema: pa.Schema, columns: Sequence[str]
) -> list[tuple[str, pa.DataType]]:
    """The (name, type) of each column to profile; an unknown column is an error."""
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise DestinationError(
            f"table {target!r} has no column {missing[0]!r} to profile",
            fix="run the sync again so the destination table has every source column",
        )
    return [(c, schema.field(c).type) for c in columns]


def profile_columns_names(target: str, schema: pa.Schema, columns: Sequence[str]) -> list[str]:
    """`columns`, each checked to be in `schema` (for reads of some columns only)."""
    return [name for name, _ in profile_columns(target, schema, columns)]


def live_only_filter(schema: pa.Schema, live_only: bool) -> str | None:
    """The column whose NULL marks a live row, when the profile must skip soft-deleted rows."""
    return DELETED_AT_COLUMN if live_only and DELETED_AT_COLUMN in schema.names else None


def missing_table(target: str, where: str) -> DestinationError:
    return DestinationError(
        f"table {target!r} does not exist in {where}",
        fix="run the sync for this table first",
    )
