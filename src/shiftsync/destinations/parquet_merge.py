"""MERGE into a Parquet dataset: the incoming rows wait in a local DuckDB file until commit.

Merge needs every incoming row before it can write any, so they are staged in a DuckDB file
in a temporary folder, which spills to disk instead of holding the load in memory. At commit
the new version is the old rows whose key is not incoming, then the incoming rows, last per
key (the highest sequence number).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from shiftsync.destinations.base import SEQUENCE_COLUMN, with_sequence
from shiftsync.destinations.duckdb_sql import quote_identifier
from shiftsync.destinations.parquet_layout import (
    duckdb_form_schema,
    from_duckdb_form,
    to_duckdb_form,
)
from shiftsync.destinations.scratch import scratch_folder


class MergeStage:
    """The staged rows of one MERGE load; the DuckDB file is made by the first `add`."""

    def __init__(self, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        self._schema = schema
        self._primary_key = tuple(primary_key)
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._stage: duckdb.DuckDBPyConnection | None = None

    def add(self, batch: pa.RecordBatch) -> None:
        """Stage a batch in `schema` plus the sequence column (see `with_sequence`)."""
        if self._stage is None:
            self._folder = scratch_folder("merge")
            self._stage = duckdb.connect(str(Path(self._folder.name) / "stage.duckdb"))
            self._stage.register("batch", to_duckdb_form(batch))
            self._stage.execute("CREATE TABLE stage AS SELECT * FROM batch")
        else:
            self._stage.register("batch", to_duckdb_form(batch))
            self._stage.execute("INSERT INTO stage SELECT * FROM batch")
        self._stage.unregister("batch")

    def merge(
        self,
        old: Iterator[pa.RecordBatch] | None,
        write: Callable[[pa.RecordBatch], None],
        *,
        keep_incoming: bool = True,
    ) -> int:
        """Hand the merged rows to `write`: the `old` rows whose key is not staged, then the
        staged rows, last per key (not with `keep_incoming` False: a delete by the staged
        keys). Returns how many staged keys there were."""
        columns = ", ".join(quote_identifier(c) for c in self._schema.names)
        key_list = ", ".join(quote_identifier(k) for k in self._primary_key)
        if self._stage is None:  # nothing incoming: the new version is the old rows
            empty = [pa.nulls(0, f.type) for f in self._schema]
            self.add(with_sequence(pa.RecordBatch.from_arrays(empty, schema=self._schema), 0))
        stage = self._stage
        assert stage is not None
        stage.execute(
            f"CREATE TABLE latest AS SELECT {columns} FROM stage QUALIFY row_number() OVER "
            f"(PARTITION BY {key_list} ORDER BY {quote_identifier(SEQUENCE_COLUMN)} DESC) = 1"
        )
        (incoming,) = stage.execute("SELECT count(*) FROM latest").fetchall()[0]
        query = f"SELECT {columns} FROM latest"
        if not keep_incoming:
            query += " WHERE false"
        if old is not None:
            reader = pa.RecordBatchReader.from_batches(
                duckdb_form_schema(self._schema), (to_duckdb_form(b) for b in old)
            )
            stage.register("old", reader)
            query = (
                f"SELECT {columns} FROM old ANTI JOIN latest USING ({key_list}) UNION ALL " + query
            )
        for result in stage.sql(query).to_arrow_reader(64 * 1024):
            write(from_duckdb_form(result, self._schema))
        return int(incoming)

    def close(self) -> None:
        """Close and delete the DuckDB file (again is harmless)."""
        if self._stage is not None:
            self._stage.close()
            self._stage = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
