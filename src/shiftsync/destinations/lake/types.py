"""The type contract in a lake table: which Arrow type each column is stored as. Pure.

Iceberg and Delta have fewer types than the contract, so some columns are stored in a wider
or plainer type, and the exact Arrow schema travels with every commit (see properties.py), so
a load reads back the types it wrote:

| contract (Arrow)        | Iceberg             | Delta                  |
|-------------------------|---------------------|------------------------|
| int16                   | int (32 bit)        | short                  |
| time64[us]              | time                | long (µs since 00:00)  |
| duration[us] (INTERVAL) | long (µs)           | long (µs)              |
| arrow.json (SUPER)      | string              | string                 |
| month_day_nano interval | refused             | refused                |

Every other type of the contract is stored as itself (decimal(38, s), timestamp, timestamptz
in UTC, date, binary, string, booleans, floats).
"""

from __future__ import annotations

from typing import Final, Literal

import pyarrow as pa

from shiftsync.destinations.base import LoadSpec, conform_batch, conform_incoming
from shiftsync.destinations.schema_change import normalize_type
from shiftsync.errors import DestinationError

Flavor = Literal["iceberg", "delta"]

_MONTH_DAY_NANO: Final = pa.month_day_nano_interval()
_FORMAT_NAME: Final = {"iceberg": "Apache Iceberg", "delta": "Delta Lake"}


def storage_type(data_type: pa.DataType, flavor: Flavor) -> pa.DataType | None:
    """The Arrow type a column of `data_type` is stored as, or None when it cannot be."""
    if isinstance(data_type, pa.BaseExtensionType):
        return pa.string() if data_type.extension_name == "arrow.json" else None
    data_type = normalize_type(data_type)
    if data_type == _MONTH_DAY_NANO:
        return None
    if pa.types.is_duration(data_type):
        return pa.int64()
    if pa.types.is_int16(data_type) and flavor == "iceberg":
        return pa.int32()
    if pa.types.is_time(data_type) and flavor == "delta":
        return pa.int64()
    if pa.types.is_timestamp(data_type):
        return pa.timestamp("us", tz=data_type.tz)
    return data_type


def storage_schema(target: str, schema: pa.Schema, flavor: Flavor) -> pa.Schema:
    """`schema` as stored; a column the format cannot hold is refused by name."""
    fields = []
    for f in schema:
        stored = storage_type(f.type, flavor)
        if stored is None:
            raise DestinationError(
                f"table {target!r}: column {f.name!r} has type {f.type}, which "
                f"{_FORMAT_NAME[flavor]} cannot store exactly",
                fix=f"cast {f.name!r} in the source (e.g. to text), or sync this table to a "
                "Parquet destination, which keeps it",
            )
        fields.append(pa.field(f.name, stored, nullable=True))
    return pa.schema(fields)


def _to_storage_array(array: pa.Array, stored: pa.DataType) -> pa.Array:
    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage
    if pa.types.is_time(array.type) and pa.types.is_int64(stored):
        return array.cast(pa.time64("us")).view(pa.int64())
    if pa.types.is_duration(array.type):
        return array.cast(pa.duration("us")).view(pa.int64())
    return array.cast(stored)


def to_storage(batch: pa.RecordBatch, stored: pa.Schema) -> pa.RecordBatch:
    """A batch of the contract's types in the stored types (`stored` names its columns)."""
    arrays = [_to_storage_array(batch.column(f.name), f.type) for f in stored]
    return pa.RecordBatch.from_arrays(arrays, schema=stored)


def incoming_to_storage(
    spec: LoadSpec,
    batch: pa.RecordBatch,
    write_schema: pa.Schema,
    schema: pa.Schema,
    stored: pa.Schema,
) -> pa.RecordBatch:
    """An incoming batch of a load as its data files hold it: the load's columns (`schema`,
    missing ones NULL), in the stored types; what a worker's file writer writes."""
    batch = conform_incoming(spec, batch, write_schema)
    return to_storage(conform_batch(batch, schema, missing_as_null=True), stored)


def _from_storage_array(array: pa.Array, wanted: pa.DataType) -> pa.Array:
    if isinstance(wanted, pa.BaseExtensionType):
        return pa.ExtensionArray.from_storage(wanted, array.cast(wanted.storage_type))
    if pa.types.is_time(wanted) and pa.types.is_integer(array.type):
        return array.cast(pa.int64()).view(pa.time64("us")).cast(wanted)
    if pa.types.is_duration(wanted) and pa.types.is_integer(array.type):
        return array.cast(pa.int64()).view(pa.duration("us")).cast(wanted)
    if pa.types.is_timestamp(wanted) and pa.types.is_timestamp(array.type):
        # Readers disagree on units (Delta readers may give ns); µs is the contract's.
        return array.cast(pa.timestamp("us", tz=array.type.tz)).cast(wanted)
    return array


def from_storage(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A batch read from the table, in the contract's `schema` (missing columns NULL)."""
    arrays, names = [], []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if name not in schema.names:
            continue
        arrays.append(_from_storage_array(column, schema.field(name).type))
        names.append(name)
    restored = pa.RecordBatch.from_arrays(arrays, names=names)
    return conform_batch(restored, schema, missing_as_null=True)
