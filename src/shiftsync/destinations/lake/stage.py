"""The rows of one lake load, waiting in a local DuckDB file until commit.

A lake commit writes whole data files, and a file laid out well needs every row of the load
first: sorted by the table's key, so that each file covers a narrow key range and a later
merge of a few keys rewrites few files; for a merge, deduplicated by key (the last written row
wins). The stage is a DuckDB file in a temporary folder, which spills to disk instead of
holding the load in memory; `chunks` reads it back in bounded batches.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from shiftsync.destinations.base import SEQUENCE_COLUMN, with_sequence
from shiftsync.destinations.duckdb_sql import quote_identifier
from shiftsync.destinations.parquet_layout import from_duckdb_form, to_duckdb_form
from shiftsync.errors import DestinationError

# The stage's pool: appends need little, the sort spills past it.
STAGE_MEMORY_LIMIT: Final = "64MB"


@contextlib.contextmanager
def stage_errors(subject: str, action: str) -> Iterator[None]:
    """A failure of the local stage (DuckDB) during `action`, as a DestinationError."""
    try:
        yield
    except duckdb.Error as exc:
        raise DestinationError(
            f"{subject}: {action} failed in the local stage: {exc}",
            fix="check the temporary folder (TMPDIR) has room",
        ) from exc


class LakeStage:
    """The staged rows of one load in `schema` (the table's schema after the load)."""

    def __init__(self, schema: pa.Schema) -> None:
        self._schema = schema
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._stage: duckdb.DuckDBPyConnection | None = None
        self.rows = 0

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._stage is None:
            self._folder = tempfile.TemporaryDirectory(prefix="shiftsync-lake-")
            self._stage = duckdb.connect(str(Path(self._folder.name) / "stage.duckdb"))
            self._stage.execute(f"SET memory_limit = '{STAGE_MEMORY_LIMIT}'")
            self._stage.execute("SET preserve_insertion_order = false")
            empty = with_sequence(
                pa.RecordBatch.from_arrays(
                    [pa.nulls(0, f.type) for f in self._schema], schema=self._schema
                ),
                0,
            )
            self._stage.register("batch", to_duckdb_form(empty))
            self._stage.execute("CREATE TABLE stage AS SELECT * FROM batch")
            self._stage.unregister("batch")
        return self._stage

    def add(self, batch: pa.RecordBatch) -> None:
        """Stage a batch already conformed to `schema`."""
        stage = self._connection()
        stage.register("batch", to_duckdb_form(with_sequence(batch, self.rows)))
        try:
            stage.execute("INSERT INTO stage SELECT * FROM batch")
        finally:
            stage.unregister("batch")
        self.rows += batch.num_rows

    def keys(self, primary_key: Sequence[str], since: int = 0) -> int:
        """How many distinct keys the rows staged after the first `since` rows hold."""
        key_list = ", ".join(quote_identifier(k) for k in primary_key)
        sequence = quote_identifier(SEQUENCE_COLUMN)
        query = (
            f"SELECT count(*) FROM (SELECT DISTINCT {key_list} FROM stage WHERE {sequence} >= ?)"
        )
        rows = self._connection().execute(query, [since]).fetchall()
        return int(rows[0][0])

    def chunks(
        self, *, sort_key: Sequence[str] = (), latest_per: Sequence[str] = (), rows: int
    ) -> Iterator[pa.Table]:
        """The staged rows in tables of at most `rows` rows, in `schema`.

        `sort_key` orders them (NULLs last); `latest_per` keeps only the last written row of
        each such key.
        """
        columns = ", ".join(quote_identifier(c) for c in self._schema.names)
        query = f"SELECT {columns} FROM stage"
        if latest_per:
            key_list = ", ".join(quote_identifier(k) for k in latest_per)
            query += (
                f" QUALIFY row_number() OVER (PARTITION BY {key_list} "
                f"ORDER BY {quote_identifier(SEQUENCE_COLUMN)} DESC) = 1"
            )
        if sort_key:
            query += " ORDER BY " + ", ".join(quote_identifier(k) for k in sort_key)
        # A cursor of its own: the caller may read the stage again while this is being read.
        cursor = self._connection().cursor()
        try:
            reader = cursor.sql(query).to_arrow_reader(min(rows, 64 * 1024))
            yield from self._rechunk(reader, rows)
        finally:
            cursor.close()

    def _rechunk(self, reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for result in reader:
            batch = from_duckdb_form(result, self._schema)
            while batch.num_rows:
                take = min(rows - pending_rows, batch.num_rows)
                pending.append(batch.slice(0, take))
                pending_rows += take
                batch = batch.slice(take)
                if pending_rows == rows:
                    yield pa.Table.from_batches(pending, schema=self._schema)
                    pending, pending_rows = [], 0
        if pending_rows:
            yield pa.Table.from_batches(pending, schema=self._schema)

    def close(self) -> None:
        """Close and delete the DuckDB file (again is harmless)."""
        if self._stage is not None:
            self._stage.close()
            self._stage = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
