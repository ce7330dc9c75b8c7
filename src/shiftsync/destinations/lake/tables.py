"""The read side of a lake destination, the same for every table format: a table's schema and
sync state from its newest shiftsync commit, its rows in the contract's types, and its profile.

A format (iceberg/, delta/) subclasses `LakeTables` and says how to open a table, find the
properties of its newest shiftsync commit, and scan its stored rows; what is read from them is
decided here once.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Generic, TypeVar

import duckdb
import pyarrow as pa

from shiftsync.destinations.base import (
    TableProfile,
    live_only_filter,
    missing_table,
    profile_columns,
    subschema,
)
from shiftsync.destinations.duckdb_sql import quote_identifier, run_profile
from shiftsync.destinations.lake.properties import IDENTITY, read_schema, read_states
from shiftsync.destinations.lake.types import from_storage
from shiftsync.destinations.schema_change import normalize_type
from shiftsync.errors import DestinationError
from shiftsync.json_types import JsonObject

TableT = TypeVar("TableT")

# What a commit of a lake table carries next to its data (lake/properties.py).
CommitProperties = Mapping[str, object]


class LakeTables(ABC, Generic[TableT]):
    """The reads of the destination contract over tables of one format (`TableT`)."""

    # "Iceberg" or "Delta": how messages name a table of this format.
    format_name: str

    # --- what a format provides ------------------------------------------------------------

    @abstractmethod
    def describe(self) -> str:
        """The destination for messages (catalog or root, and who writes it)."""

    @abstractmethod
    def errors(
        self, action: str, table: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Turn the format library's errors during `action` into a DestinationError."""

    @abstractmethod
    def open_table(self, target: str) -> TableT | None:
        """The table of `target`, or None when there is none."""

    @abstractmethod
    def last_commit(self, table: TableT, target: str) -> CommitProperties | None:
        """The properties of the table's newest shiftsync commit, or None."""

    @abstractmethod
    def native_schema(self, table: TableT) -> pa.Schema:
        """The table's own schema as Arrow (for a table shiftsync did not write)."""

    @abstractmethod
    def scan(self, table: TableT, names: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """The table's rows of the columns `names`, in their stored types."""

    # --- the contract's reads ----------------------------------------------------------------

    def schema_of(self, table: TableT, target: str) -> pa.Schema:
        properties = self.last_commit(table, target)
        if properties is not None:
            return read_schema(f"{self.format_name} table {target!r}", properties)
        return pa.schema(
            [pa.field(f.name, normalize_type(f.type)) for f in self.native_schema(table)]
        )

    def table_schema(self, target: str) -> pa.Schema | None:
        table = self.open_table(target)
        return None if table is None else self.schema_of(table, target)

    def read_state(self, state_key: str, target: str) -> JsonObject | None:
        table = self.open_table(target)
        properties = self.last_commit(table, target) if table is not None else None
        if properties is None:
            return None
        return read_states(f"{self.format_name} table {target!r}", properties).get(state_key)

    def _read(
        self, target: str, columns: Sequence[str] | None = None
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        table = self.open_table(target)
        if table is None:
            raise missing_table(target, self.describe())
        schema = self.schema_of(table, target)
        if columns is not None:
            schema = subschema(schema, columns)
        batches = self.scan(table, schema.names)
        return schema, (from_storage(b, schema) for b in batches)

    def profile(
        self, target: str, columns: Sequence[str], *, live_only: bool = False
    ) -> TableProfile:
        schema = self.table_schema(target)
        if schema is None:
            raise missing_table(target, self.describe())
        selected = profile_columns(target, schema, columns)
        names = [name for name, _ in selected]
        relation = "lake_table"
        deleted = live_only_filter(schema, live_only)
        if deleted is not None:
            # Soft deletes: the rows marked deleted are not the source's any more.
            names = names if deleted in names else [*names, deleted]
            relation = f"(SELECT * FROM lake_table WHERE {quote_identifier(deleted)} IS NULL)"
        with self.errors("profiling", target):
            wanted, batches = self._read(target, names)
            reader = pa.RecordBatchReader.from_batches(wanted, batches)
            with duckdb.connect() as connection:
                connection.register("lake_table", reader)
                return run_profile(connection, relation, selected)

    def read_table(self, target: str, columns: Sequence[str] | None = None) -> pa.Table:
        schema = self.table_schema(target)
        missing = [c for c in columns or () if schema is not None and c not in schema.names]
        if missing:
            raise DestinationError(
                f"table {target!r} has no column {missing[0]!r}",
                fix="name columns of the destination table",
            )
        with self.errors("reading", target):
            schema, batches = self._read(target, list(columns) if columns is not None else None)
            return pa.Table.from_batches(list(batches), schema=schema)

    def table_identity(self, target: str) -> str | None:
        """The stamp of the newest shiftsync commit (None: no table, or no stamp kept)."""
        table = self.open_table(target)
        properties = self.last_commit(table, target) if table is not None else None
        stamp = properties.get(IDENTITY) if properties is not None else None
        return stamp if isinstance(stamp, str) else None


__all__ = ["CommitProperties", "LakeTables"]
