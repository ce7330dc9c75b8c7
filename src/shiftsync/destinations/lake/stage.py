"""The rows of one lake load, waiting in a local DuckDB file until commit.

A lake commit writes whole data files, and a file laid out well needs every row of the load
first: sorted by the table's key, so that each file covers a narrow key range and a later
merge of a few keys rewrites few files; for a merge, deduplicated by key (the last written row
wins). The stage is a DuckDB file in a temporary folder, which spills to disk instead of
holding the load in memory. `chunks` sorts into a Parquet file, closes DuckDB (its buffers
go back before the caller writes anything) and reads the file back a row group at a time, so
a load's peak memory is the larger of staging and writing, not their sum.

A stage made with `runs_key` (a load that keeps every row: no deduplication) first keeps
rows that arrive in that key's order as sorted runs (lake/runs.py) and merges them at read,
without DuckDB; more runs than the merge takes, a key Arrow cannot sort, or a read that
deduplicates or counts keys moves what is staged into DuckDB.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from shiftsync.destinations.base import SEQUENCE_COLUMN, with_sequence
from shiftsync.destinations.duckdb_sql import quote_identifier, quote_literal
from shiftsync.destinations.lake.runs import SortedRuns
from shiftsync.destinations.parquet_layout import from_duckdb_form, to_duckdb_form
from shiftsync.destinations.scratch import scratch_folder
from shiftsync.errors import DestinationError

T = TypeVar("T")

# The stage's pool while rows are appended (blocks past it go to the file) and while it is
# queried (the sort and the key count spill past it). One thread: each of DuckDB's threads
# keeps buffers of its own, and the stage is never the bottleneck of a load.
STAGE_MEMORY_LIMIT: Final = "16MB"
QUERY_MEMORY_MB: Final = 20
# A sort's merge pins more as the stage grows (10^7 rows need more than 20 MB): a query that
# runs out is run again with twice the pool, up to this.
MAX_QUERY_MEMORY_MB: Final = 2048
STAGE_THREADS: Final = 1
# Rows per row group of the sorted export `chunks` reads back: what one read holds. The file
# is not compressed: it lives for one read, and compressing it cost 0.1 s per 10^6 rows.
EXPORT_ROW_GROUP_ROWS: Final = 64 * 1024


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


def _in_pool(stage: duckdb.DuckDBPyConnection, query: Callable[[], T]) -> T:
    """`query` with the stage's query pool, doubled each time it runs out of memory."""
    megabytes = QUERY_MEMORY_MB
    while True:
        stage.execute(f"SET memory_limit = '{megabytes}MB'")
        try:
            return query()
        except duckdb.OutOfMemoryException:
            if megabytes >= MAX_QUERY_MEMORY_MB:
                raise
            megabytes *= 2


class LakeStage:
    """The staged rows of one load in `schema` (the table's schema after the load)."""

    def __init__(self, schema: pa.Schema, runs_key: Sequence[str] | None = None) -> None:
        self._schema = schema
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._stage: duckdb.DuckDBPyConnection | None = None
        self._created = False
        self.rows = 0
        self._exports = 0
        usable = runs_key is not None and all(k in schema.names for k in runs_key)
        self._runs_key = tuple(runs_key) if usable and runs_key is not None else None
        self._runs: SortedRuns | None = None

    def _folder_path(self) -> Path:
        if self._folder is None:
            self._folder = scratch_folder("lake")
        return Path(self._folder.name)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        self._to_duckdb()
        if self._stage is None:
            self._stage = duckdb.connect(str(self._folder_path() / "stage.duckdb"))
            self._stage.execute(f"SET memory_limit = '{STAGE_MEMORY_LIMIT}'")
            self._stage.execute(f"SET threads = {STAGE_THREADS}")
            self._stage.execute("SET preserve_insertion_order = false")
            if not self._created:
                self._create(self._stage)
                self._created = True
        return self._stage

    def _to_duckdb(self) -> None:
        """Move the sorted runs, if any, into the DuckDB stage (run after run)."""
        runs, self._runs, self._runs_key = self._runs, None, None
        if runs is None:
            return
        try:
            sequence = 0
            for batch in runs.in_runs():
                self._insert(batch, sequence)
                sequence += batch.num_rows
        finally:
            runs.close()

    def _create(self, stage: duckdb.DuckDBPyConnection) -> None:
        empty = with_sequence(
            pa.RecordBatch.from_arrays(
                [pa.nulls(0, f.type) for f in self._schema], schema=self._schema
            ),
            0,
        )
        stage.register("batch", to_duckdb_form(empty))
        stage.execute("CREATE TABLE stage AS SELECT * FROM batch")
        stage.unregister("batch")

    def _release(self) -> None:
        """Close the connection, keeping its file: DuckDB's buffers and allocator give their
        memory back before the caller writes (the next query opens the file again)."""
        if self._stage is not None:
            self._stage.close()
            self._stage = None

    def add(self, batch: pa.RecordBatch) -> None:
        """Stage a batch already conformed to `schema`."""
        if self._runs_key is not None:
            if self._runs is None:
                self._runs = SortedRuns(self._folder_path(), self._schema, self._runs_key)
            if self._runs.add(batch):
                self.rows += batch.num_rows
                return
        self._insert(batch, self.rows)
        self.rows += batch.num_rows

    def _insert(self, batch: pa.RecordBatch, sequence: int) -> None:
        stage = self._connection()
        stage.register("batch", to_duckdb_form(with_sequence(batch, sequence)))
        try:
            stage.execute("INSERT INTO stage SELECT * FROM batch")
        finally:
            stage.unregister("batch")

    def keys(self, primary_key: Sequence[str], since: int = 0) -> int:
        """How many distinct keys the rows staged after the first `since` rows hold."""
        key_list = ", ".join(quote_identifier(k) for k in primary_key)
        sequence = quote_identifier(SEQUENCE_COLUMN)
        query = (
            f"SELECT count(*) FROM (SELECT DISTINCT {key_list} FROM stage WHERE {sequence} >= ?)"
        )
        stage = self._connection()
        rows = _in_pool(stage, lambda: stage.execute(query, [since]).fetchall())
        return int(rows[0][0])

    def chunks(
        self, *, sort_key: Sequence[str] = (), latest_per: Sequence[str] = (), rows: int
    ) -> Iterator[pa.Table]:
        """The staged rows in tables of at most `rows` rows, in `schema`.

        `sort_key` orders them (NULLs last); `latest_per` keeps only the last written row of
        each such key.
        """
        runs = self._runs
        if runs is not None and not latest_per and tuple(sort_key) in (runs.key, ()):
            yield from self._rechunk(runs.merged(), rows)
            return
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
        # Sorted into a Parquet file first, then read back a row group at a time: DuckDB's sort
        # is over (its memory released) before the caller writes a single file, so the peak
        # of a load is the larger of the two, not their sum.
        self._exports += 1
        export = Path(self._folder_name()) / f"sorted-{self._exports}.parquet"
        cursor = self._connection().cursor()
        try:
            copy = (
                f"COPY ({query}) TO {quote_literal(str(export))} "
                "(FORMAT parquet, COMPRESSION uncompressed, "
                f"ROW_GROUP_SIZE {EXPORT_ROW_GROUP_ROWS})"
            )
            _in_pool(cursor, lambda: cursor.execute(copy))
        finally:
            cursor.close()
        self._release()
        try:
            sorted_rows = pq.ParquetFile(export, pre_buffer=False)
            try:
                batches = sorted_rows.iter_batches(
                    batch_size=min(rows, EXPORT_ROW_GROUP_ROWS), use_threads=False
                )
                restored = (from_duckdb_form(b, self._schema) for b in batches)
                yield from self._rechunk(restored, rows)
            finally:
                sorted_rows.close()
        finally:
            export.unlink(missing_ok=True)

    def _folder_name(self) -> str:
        self._connection()
        return str(self._folder_path())

    def _rechunk(self, reader: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for batch in reader:
            while batch.num_rows:
                take = min(rows - pending_rows, batch.num_rows)
                pending.append(batch.slice(0, take))
                pending_rows += take
                batch = batch.slice(take)
                if pending_rows == rows:
                    yield self._table(pending)
                    pending, pending_rows = [], 0
        if pending_rows:
            yield self._table(pending)

    def _table(self, batches: list[pa.RecordBatch]) -> pa.Table:
        """One table of one batch: a writer gets batches of `rows` rows, whether the sorted
        runs' merge (batches of any size) or DuckDB's export (row groups) gave them."""
        table = pa.Table.from_batches(batches, schema=self._schema)
        return table.combine_chunks() if len(batches) > 1 else table

    def close(self) -> None:
        """Close and delete the DuckDB file and the runs (again is harmless)."""
        if self._runs is not None:
            self._runs.close()
            self._runs = None
        self._release()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
