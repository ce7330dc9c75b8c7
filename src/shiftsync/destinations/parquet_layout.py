"""The on-disk form of a Parquet dataset: its pointer, its version folders, its file schema.

The pointer (`<target>/_shiftsync.json`) is the dataset: it lists the current version's files
(relative to `<target>/`), the exact Arrow schema, the sync state and a short history.
Version folders are named `v000003-1a2b3c4d` (version number, then a random token).

The type contract's INTERVAL (duration[us]) is a native Parquet column. Parquet has no type
for Arrow's month_day_nano interval, so such a column is stored as its 16 raw bytes
(fixed_size_binary(16), field metadata `shiftsync.arrow_type`) and read back as intervals.
DuckDB (which merges) gets its own pass-through form of the same batches. All pure.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pyarrow as pa

from shiftsync.destinations.base import conform_batch, decode_state
from shiftsync.errors import DestinationError
from shiftsync.json_types import JsonObject, JsonValue

POINTER_FILE: Final = "_shiftsync.json"
POINTER_FORMAT: Final = 1
STORED_AS: Final = b"shiftsync.arrow_type"
VERSION_FOLDER: Final = re.compile(r"v(\d{6,})-[0-9a-f]{8}")
_INTERVAL: Final = pa.month_day_nano_interval()
_INTERVAL_BYTES: Final = pa.binary(16)


# --- storage form of a schema (pure) ---------------------------------------------------------


def to_storage_schema(schema: pa.Schema) -> pa.Schema:
    """The schema as written to Parquet: intervals become their raw 16 bytes."""
    fields = []
    for f in schema:
        if f.type == _INTERVAL:
            metadata = {**(f.metadata or {}), STORED_AS: b"month_day_nano_interval"}
            fields.append(pa.field(f.name, _INTERVAL_BYTES, f.nullable, metadata))
        else:
            fields.append(f)
    return pa.schema(fields, metadata=schema.metadata)


def to_storage(batch: pa.RecordBatch, storage_schema: pa.Schema) -> pa.RecordBatch:
    arrays = [
        column.view(_INTERVAL_BYTES) if column.type == _INTERVAL else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=storage_schema)


def from_storage(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A batch read from a file, in `schema` (intervals restored, missing columns NULL)."""
    arrays, names = [], []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        wanted = schema.field(name).type if name in schema.names else None
        if wanted == _INTERVAL and column.type == _INTERVAL_BYTES:
            column = column.view(_INTERVAL)
        arrays.append(column)
        names.append(name)
    restored = pa.RecordBatch.from_arrays(arrays, names=names)
    return conform_batch(restored, schema, missing_as_null=True)


def duckdb_form_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of `to_duckdb_form`'s batches."""
    fields = []
    for f in schema:
        if f.type == _INTERVAL:
            f = f.with_type(_INTERVAL_BYTES)
        elif pa.types.is_duration(f.type):
            f = f.with_type(pa.int64())
        fields.append(f)
    return pa.schema(fields)


def to_duckdb_form(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch DuckDB passes through exactly: DuckDB keeps intervals in microseconds and
    exports them in int64 nanoseconds, so month_day_nano travels as its 16 bytes and a
    duration as its int64 microseconds."""
    arrays = []
    for column in batch.columns:
        if column.type == _INTERVAL:
            column = column.view(_INTERVAL_BYTES)
        elif pa.types.is_duration(column.type):
            column = column.cast(pa.int64())
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=duckdb_form_schema(batch.schema))


def from_duckdb_form(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The inverse of `to_duckdb_form`, then cast to `schema`."""
    arrays = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        wanted = schema.field(name).type
        if wanted == _INTERVAL:
            column = column.cast(_INTERVAL_BYTES).view(_INTERVAL)
        elif pa.types.is_duration(wanted):
            column = column.cast(wanted)
        arrays.append(column)
    return conform_batch(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), schema)


def encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def decode_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def describe_schema(schema: pa.Schema) -> list[dict[str, str]]:
    """A readable listing of the columns, for people and tools that do not speak Arrow IPC."""
    described = []
    for f in schema:
        entry = {"name": f.name, "type": str(f.type)}
        redshift = (f.metadata or {}).get(b"shiftsync.redshift_type")
        if redshift is not None:
            entry["redshift_type"] = redshift.decode()
        described.append(entry)
    return described


# --- the pointer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetPointer:
    """The content of `<target>/_shiftsync.json`; file paths are relative to `<target>/`."""

    version: int
    current: str
    files: tuple[str, ...]
    rows: int
    schema: pa.Schema
    state: Mapping[str, JsonObject] = field(default_factory=dict)
    previous_files: tuple[str, ...] = ()
    history: tuple[Mapping[str, JsonValue], ...] = ()

    def to_json(self, target: str) -> str:
        document = {
            "format": POINTER_FORMAT,
            "target": target,
            "version": self.version,
            "current": self.current,
            "files": list(self.files),
            "rows": self.rows,
            "schema": describe_schema(self.schema),
            "arrow_schema": encode_schema(self.schema),
            "state": dict(self.state),
            "previous": {"files": list(self.previous_files)},
            "history": list(self.history),
        }
        return json.dumps(document, indent=1, sort_keys=False)

    @classmethod
    def from_json(cls, text: str, where: str) -> DatasetPointer:
        try:
            document = json.loads(text)
            if document.get("format") != POINTER_FORMAT:
                raise ValueError(f"unknown format {document.get('format')!r}")
            return cls(
                version=int(document["version"]),
                current=str(document["current"]),
                files=tuple(str(f) for f in document["files"]),
                rows=int(document["rows"]),
                schema=decode_schema(document["arrow_schema"]),
                state={
                    key: decode_state(where, json.dumps(value))
                    for key, value in document.get("state", {}).items()
                },
                previous_files=tuple(document.get("previous", {}).get("files", [])),
                history=tuple(document.get("history", [])),
            )
        except (ValueError, KeyError, TypeError, pa.ArrowException) as exc:
            raise DestinationError(
                f"{where} is not a shiftsync dataset pointer: {exc}",
                fix="restore the file from a backup, or delete the dataset folder so the next "
                "run writes it again",
            ) from exc


def adds_files_only(mode: str, existing: pa.Schema | None, schema: pa.Schema) -> bool:
    """Whether a load's version is only the files its rows are written to (other processes
    may then write them): REPLACE, and APPEND unless the schema changed (the old rows are
    rewritten then). MERGE and DELETE must see every row with the old ones."""
    if mode == "replace":
        return True
    return mode == "append" and (existing is None or existing.equals(schema))


def version_folder(version: int, token: str) -> str:
    return f"v{version:06d}-{token}"


def folders_in_use(pointer: DatasetPointer | None) -> set[str]:
    if pointer is None:
        return set()
    return {path.split("/", 1)[0] for path in (*pointer.files, *pointer.previous_files)}
