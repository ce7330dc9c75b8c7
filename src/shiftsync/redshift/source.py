"""RedshiftSource: list, describe, plan and read the tables of one Redshift Serverless database.

The sync engine and the Python API (`shiftsync.read_table`) read through this class. A read
is a generator of record batches with the type contract's schema; it picks its method with the
planner (plan.py), falls back when the Data API's limits are hit (UNLOAD if configured, else
key-range chunks), and leaves nothing staged in S3 once it ends, however it ends. Close a
read you stop early (`contextlib.closing`, or let it go out of scope) so that happens at once.

The key-range chunking is in chunked.py, the UNLOAD reader in unload.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal

import pyarrow as pa
from botocore.credentials import ReadOnlyCredentials

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.config import RedshiftServerlessConfig, UnloadConfig
from shiftsync.errors import ConfigError, ResultLimitError, ShiftsyncError, SourceError
from shiftsync.redshift import catalog
from shiftsync.redshift.catalog import TableInfo, TableRef, column_problem
from shiftsync.redshift.chunked import MAX_CHUNK_DEPTH, read_chunked
from shiftsync.redshift.csv_probe import CACHE_FILE_NAME as CSV_DIALECT_CACHE
from shiftsync.redshift.csv_probe import CsvDialectGuard
from shiftsync.redshift.data_api import DEFAULT_STATEMENT_TIMEOUT, DataApi, StatementListener
from shiftsync.redshift.data_api_errors import ROW_SIZE_MESSAGE
from shiftsync.redshift.data_api_results import Row, execute_statement, query_rows, read_select
from shiftsync.redshift.plan import (
    ReadPlan,
    choose_method,
    chunk_key,
    estimate_row_width,
    initial_chunks,
    unload_blocker,
)
from shiftsync.redshift.ranged import (
    RangeCheckpoint,
    RangedProgress,
    RangedSelect,
    RangeRead,
    StagedRange,
    delete_range_area,
    delete_unfinished,
    range_conditions,
    range_count,
    range_reads,
    read_ranged,
    stage_range,
    start_ranged,
)
from shiftsync.redshift.rate_limit import Limiter
from shiftsync.redshift.retry import PollPolicy, RetryPolicy
from shiftsync.redshift.snapshot import (
    DEFAULT_KEEP_ALIVE_SECONDS,
    Transaction,
    joined,
    transaction,
)
from shiftsync.redshift.spend import Spend
from shiftsync.redshift.sql import build_select_sql
from shiftsync.redshift.staging import StagedObject, StagingBucket, find_staged
from shiftsync.redshift.stats import ReadStats
from shiftsync.redshift.types import Column, arrow_schema
from shiftsync.redshift.unload import PART_CONCURRENCY, UnloadReader
from shiftsync.redshift.unload_manifest import new_run_id, staging_location
from shiftsync.workspace import Workspace

log = logging.getLogger("shiftsync.redshift")

Method = Literal["auto", "data_api", "unload"]
Progress = Callable[[int, int], None]


class RedshiftSource:
    """One connection's tables: `list_tables`, `describe`, `plan`, `read`, `query`, `execute`.

    `stats` holds the counters of the last read started in the calling thread (statements,
    retries, pages, rows, fallbacks…); they fill as the read runs.
    """

    def __init__(
        self,
        connection: RedshiftServerlessConfig,
        session: AssumedRoleSession,
        *,
        run_id: str | None = None,
        retry: RetryPolicy | None = None,
        polling: PollPolicy | None = None,
        limiter: Limiter | None = None,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        prefetch: bool = True,
        part_concurrency: int = PART_CONCURRENCY,
        csv_dialect_cache: Path | None = None,
    ) -> None:
        """`csv_dialect_cache`: the workspace's CSV dialect verdicts (csv_probe.py); with it a
        CSV connection's first read probes the dialect and reads JSON if it differs."""
        self.connection = connection
        self.session = session
        self.run_id = run_id or new_run_id()
        self.api = DataApi(
            session,
            connection,
            retry=retry,
            polling=polling,
            limiter=limiter,
            statement_timeout=statement_timeout,
        )
        self.prefetch = prefetch
        self.csv_dialect = (
            CsvDialectGuard(csv_dialect_cache, connection)
            if csv_dialect_cache is not None
            else None
        )
        self.unload_reader = UnloadReader(self.api, part_concurrency=part_concurrency)
        self.catalog_stats = ReadStats(method="catalog")
        self._local = threading.local()
        # What list_tables saw, so that describing a listed table needs no second listing.
        self._listed_kinds: dict[TableRef, catalog.TableKind] = {}

    @classmethod
    def from_workspace(
        cls,
        workspace: Workspace | Path | str | None = None,
        connection: str | None = None,
        *,
        run_id: str | None = None,
    ) -> RedshiftSource:
        """The source of a workspace's connection (the only one when `connection` is None).

        `workspace` is a Workspace, the path of a workspace folder or of its shiftsync.yaml,
        or None for the folder the process runs in (or the nearest one above it).
        """
        if not isinstance(workspace, Workspace):
            workspace = Workspace.locate(Path(workspace) if workspace is not None else None)
        _name, config = workspace.config.connection(connection)
        from shiftsync.aws.trust import open_session

        # The role must still refuse AssumeRole without the external ID (proven once a day).
        session = open_session(workspace, config, connection_name=_name)
        return cls(
            config,
            session,
            run_id=run_id,
            csv_dialect_cache=workspace.dot_dir / CSV_DIALECT_CACHE,
        )

    @property
    def stats(self) -> ReadStats:
        found: ReadStats | None = getattr(self._local, "stats", None)
        return found if found is not None else ReadStats()

    # -- catalog ---------------------------------------------------------------------------------
    def list_tables(self, schema_pattern: str = "%", table_pattern: str = "%") -> list[TableRef]:
        """Tables and views whose schema and name match the LIKE patterns (every page)."""
        entries = catalog.list_entries(
            self.api, schema_pattern, table_pattern, stats=self.catalog_stats
        )
        self._listed_kinds.update((entry.ref, entry.kind) for entry in entries)
        return [entry.ref for entry in entries]

    def describe(self, ref: TableRef | str) -> TableInfo:
        """Columns, primary key and size estimates; SourceError naming the table if missing."""
        table = ref if isinstance(ref, TableRef) else TableRef.parse(ref)
        kind = self._listed_kinds.get(table)
        return catalog.describe(self.api, table, stats=self.catalog_stats, kind=kind)

    def describe_matching(
        self, schema_pattern: str = "%", table_pattern: str = "%"
    ) -> list[TableInfo | tuple[TableRef, ShiftsyncError]]:
        """Every matching table described; those that fail come back with their error."""
        return catalog.describe_matching(
            self.api, schema_pattern, table_pattern, stats=self.catalog_stats
        )

    def plan(
        self,
        info: TableInfo,
        method: Method = "auto",
        *,
        columns: Sequence[Column] | None = None,
    ) -> ReadPlan:
        """How `read` would read the table. `auto` defers to the connection's method."""
        selected = tuple(columns) if columns is not None else info.columns
        requested = method if method != "auto" else self.connection.method
        return choose_method(
            requested=requested,
            unload_configured=self.connection.unload is not None,
            kind=info.kind,
            estimated_rows=info.estimated_rows,
            estimated_bytes=info.estimated_bytes,
            row_width=estimate_row_width(selected),
            blocker=unload_blocker(info.ref.schema, info.ref.name, selected),
            chunkable=chunk_key(info.columns, info.primary_key) is not None,
        )

    # -- reading ---------------------------------------------------------------------------------
    def read(
        self,
        info: TableInfo,
        *,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        method: Method = "auto",
        progress: Progress | None = None,
        checkpoint: RangeCheckpoint | None = None,
    ) -> Generator[pa.RecordBatch, None, None]:
        """The table's rows as record batches with the contract's schema (at least one batch).

        `columns` picks and orders columns (default: all); `where` is a SQL condition built
        with shiftsync.redshift.sql (quoted identifiers and literals). `progress(rows, bytes)`
        is called with each batch's increment (bytes in Arrow memory). With a `checkpoint`, a
        table read with UNLOAD whose estimate passes `unload.range_mb` is read over key ranges
        that a later read resumes (ranged.py; the caller then deletes the staged ranges with
        `delete_range_area`). The choices are checked now; the reading happens as the
        iterator is consumed.
        """
        selected = self._selected(info, columns)
        plan = self.plan(info, method, columns=selected)
        requested = method if method != "auto" else self.connection.method
        stats = ReadStats(method=plan.method)
        self._local.stats = stats
        return self._batches(info, selected, where, plan, requested, progress, stats, checkpoint)

    def _selected(self, info: TableInfo, names: Sequence[str] | None) -> tuple[Column, ...]:
        table = str(info.ref)
        if names is None:
            chosen = info.columns
        else:
            if len(set(names)) != len(names):
                raise ConfigError(
                    f"table {table}: a column is named twice in {list(names)}",
                    fix="name each column once",
                )
            missing = [name for name in names if info.column(name) is None]
            if missing:
                raise SourceError(
                    f"table {table} has no column {missing[0]!r} (it has "
                    f"{', '.join(column.name for column in info.columns)})",
                    fix="correct the column list, or describe the table again if it changed",
                )
            chosen = tuple(column for name in names if (column := info.column(name)))
        if not chosen:
            raise ConfigError(
                f"table {table}: no columns to read",
                fix="select at least one column, or leave the table out",
            )
        for column in chosen:
            problem = column_problem(column, table=table)
            if problem is not None:
                raise SourceError(
                    problem.message,
                    fix=(problem.fix or "cast it in a view")
                    + f" (exclude it with columns: exclude: [{column.name}] in the sync)",
                )
        return chosen

    def _batches(
        self,
        info: TableInfo,
        columns: tuple[Column, ...],
        where: str | None,
        plan: ReadPlan,
        requested: str,
        progress: Progress | None,
        stats: ReadStats,
        checkpoint: RangeCheckpoint | None = None,
    ) -> Generator[pa.RecordBatch, None, None]:
        produced = False
        if plan.method == "unload":
            batches = self._read_unload(info, columns, where, progress, stats, checkpoint)
        else:
            batches = self._read_data_api(info, columns, where, plan, requested, progress, stats)
        for batch in batches:
            produced = True
            yield batch
        if not produced:
            # Consumers get the schema even from an empty table.
            yield pa.RecordBatch.from_pylist([], schema=arrow_schema(columns))

    def _read_data_api(
        self,
        info: TableInfo,
        columns: tuple[Column, ...],
        where: str | None,
        plan: ReadPlan,
        requested: str,
        progress: Progress | None,
        stats: ReadStats,
    ) -> Iterator[pa.RecordBatch]:
        if plan.chunks > 1:
            key = chunk_key(info.columns, info.primary_key)
            if key is not None:
                yield from self._read_chunked(
                    info, columns, where, key, plan.chunks, progress, stats
                )
                return
        sql = build_select_sql(
            info.ref.schema, info.ref.name, columns, method="data_api", where=where
        )
        produced = False
        try:
            for batch in self._select(info, columns, sql, progress, stats):
                # Its one statement has ended: only its result pages are fetched from here.
                stats.statements_done = produced = True
                yield batch
            return
        except ResultLimitError as error:
            if produced:
                raise
            limit = error
        yield from self._after_limit(info, columns, where, requested, progress, stats, limit)

    def _select(
        self,
        info: TableInfo,
        columns: Sequence[Column],
        sql: str,
        progress: Progress | None,
        stats: ReadStats,
    ) -> Iterator[pa.RecordBatch]:
        return read_select(
            self.api,
            sql,
            columns,
            table=str(info.ref),
            stats=stats,
            result_format=self.result_format(),
            prefetch=self.prefetch,
            progress=progress,
        )

    def result_format(self) -> Literal["csv", "json"]:
        """The connection's result format; CSV only while the dialect probe agrees."""
        if self.connection.result_format == "csv" and self.csv_dialect is not None:
            return self.csv_dialect.result_format(self.api)
        return self.connection.result_format

    def _after_limit(
        self,
        info: TableInfo,
        columns: tuple[Column, ...],
        where: str | None,
        requested: str,
        progress: Progress | None,
        stats: ReadStats,
        error: ResultLimitError,
    ) -> Iterator[pa.RecordBatch]:
        """The Data API refused the result as too big: UNLOAD if allowed, else key chunks."""
        table = str(info.ref)
        blocker = unload_blocker(info.ref.schema, info.ref.name, columns)
        if requested != "data_api" and self.connection.unload is not None and blocker is None:
            stats.note("the Data API refused the result as too large: read with UNLOAD")
            stats.method = "unload"
            log.warning("table %s: %s; reading it with UNLOAD instead", table, error.message)
            yield from self._read_unload(info, columns, where, progress, stats)
            return
        if ROW_SIZE_MESSAGE.lower() in error.message.lower():
            raise ResultLimitError(
                error.message,
                fix="exclude the widest columns, or read the table with UNLOAD (set unload: in "
                "the connection and use method auto or unload)",
            ) from error
        key = chunk_key(info.columns, info.primary_key)
        if key is None:
            raise ResultLimitError(
                f"{error.message}; and table {table} has no integer, date, timestamp or decimal "
                "column to read it in key-range chunks by",
                fix="read it with UNLOAD (set unload: in the connection), or add a filter",
            ) from error
        parts = initial_chunks(info.estimated_rows, estimate_row_width(columns))
        stats.note(f"the Data API refused the result as too large: read in chunks by {key.name}")
        log.warning("table %s: %s; reading it in chunks by %s", table, error.message, key.name)
        yield from self._read_chunked(info, columns, where, key, parts, progress, stats)

    def _read_chunked(
        self,
        info: TableInfo,
        columns: tuple[Column, ...],
        where: str | None,
        key: Column,
        parts: int,
        progress: Progress | None,
        stats: ReadStats,
    ) -> Iterator[pa.RecordBatch]:
        """The table in key-range chunks by `key` (chunked.py)."""

        def select(sql: str) -> Iterator[pa.RecordBatch]:
            return self._select(info, columns, sql, progress, stats)

        return read_chunked(self.api, select, info, columns, where, key, parts, stats)

    def _read_unload(
        self,
        info: TableInfo,
        columns: tuple[Column, ...],
        where: str | None,
        progress: Progress | None,
        stats: ReadStats,
        checkpoint: RangeCheckpoint | None = None,
    ) -> Iterator[pa.RecordBatch]:
        ranged = self._ranged(info, columns, where)
        if checkpoint is not None and ranged is not None:
            stats.method = "unload"
            return read_ranged(self.unload_reader, ranged, checkpoint, stats, progress)
        return _done_at_first_batch(
            self.unload_reader.read_table(
                info, columns, where=where, run_id=self.run_id, stats=stats, progress=progress
            ),
            stats,
        )

    def _ranged(
        self, info: TableInfo, columns: Sequence[Column], where: str | None
    ) -> RangedSelect | None:
        """The ranged read of the table by UNLOAD: cut into key ranges by its size estimate
        above `unload.range_mb` and its key; None when it is one UNLOAD (small, or no key to
        cut by)."""
        unload = self.connection.unload
        parts = range_count(info.estimated_bytes, unload.range_mb if unload else None)
        key = chunk_key(info.columns, info.primary_key)
        if parts <= 1 or key is None:
            return None
        return RangedSelect(info, columns, where, key, parts)

    def unload_ranges(
        self, info: TableInfo, *, where: str | None = None, stats: ReadStats | None = None
    ) -> list[str]:
        """The WHERE conditions an UNLOAD read of this table is cut into (ranged.py: its size
        estimate above `unload.range_mb`, and a key to cut by); [] when it is one UNLOAD."""
        ranged = self._ranged(info, info.columns, where)
        if ranged is None:
            return []
        return range_conditions(self.unload_reader, ranged, stats or self.catalog_stats)

    def start_ranges(
        self,
        info: TableInfo,
        *,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        checkpoint: RangeCheckpoint,
        stats: ReadStats | None = None,
    ) -> tuple[RangedProgress, list[RangeRead]] | None:
        """For readers that run each key range elsewhere (the Ray executor's tasks): the
        checkpointed progress of an UNLOAD read of this table over key ranges (resumed from
        `checkpoint`, else planned with one bounds statement, and saved) and each range's read
        (`stage_range`, `stream_range`); None when the table is read with one UNLOAD. The
        caller records each staged range in the progress and saves it (`finished`)."""
        ranged = self._ranged(info, self._selected(info, columns), where)
        if ranged is None:
            return None
        state = start_ranged(self.unload_reader, ranged, checkpoint, stats or self.catalog_stats)
        return state, range_reads(state, ranged)

    def stage_range(self, info: TableInfo, part: RangeRead) -> StagedRange:
        """One key range staged (ranged.py: an earlier run's files, else its UNLOAD now)."""
        stats = ReadStats(method="unload")
        self._local.stats = stats
        return stage_range(self.unload_reader, part, str(info.ref), stats)

    def stream_range(
        self,
        info: TableInfo,
        staged: StagedRange,
        *,
        columns: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """A staged range's rows (at least one batch, for the schema); its files stay."""
        selected = self._selected(info, columns)
        produced = False
        for batch in self.unload_reader.stream(
            staged.manifest, selected, str(info.ref), self.stats, progress
        ):
            produced = True
            yield batch
        if not produced:
            yield pa.RecordBatch.from_pylist([], schema=arrow_schema(selected))

    def delete_unfinished_ranges(self, state: RangedProgress) -> int:
        """Delete what the ranges `state` has not checkpointed left staged; how many objects."""
        unload = self.connection.unload
        if unload is None:
            return 0
        return delete_unfinished(self.unload_reader, unload, state, self.catalog_stats)

    # -- snapshots -------------------------------------------------------------------------------
    def snapshot(
        self, what: str, *, shared: bool = False, keep_alive_seconds: int | None = None
    ) -> AbstractContextManager[Transaction]:
        """One Redshift transaction for every statement inside the block (snapshot.py): of the
        calling thread, or of every thread (`shared`)."""
        return transaction(
            self.api,
            what=what,
            stats=self.catalog_stats,
            shared=shared,
            keep_alive_seconds=keep_alive_seconds or DEFAULT_KEEP_ALIVE_SECONDS,
        )

    def share_snapshot(self) -> Callable[[], AbstractContextManager[None]]:
        """For a helper thread of the calling thread (the table's verification profile, run
        while the table's rows are written): a context manager under which the helper's
        statements join the calling thread's transaction, if it has one."""
        tx = self.api.current_transaction()
        return lambda: joined(self.api, tx)

    # -- statements ------------------------------------------------------------------------------
    def query(self, sql: str) -> list[Row]:
        """Run a small statement (JSON result format); rows of Python values (str for
        numerics and timestamps, as the Data API gives them)."""
        return query_rows(self.api, sql, what="query", stats=self.catalog_stats)

    @property
    def spend(self) -> Spend:
        return self.api.spend

    def connection_credentials(self) -> Callable[[], ReadOnlyCredentials]:
        return self.session.frozen_credentials

    def query_unbudgeted(self, sql: str) -> list[Row]:
        """`query`, even once the budget is spent, and outside any snapshot (what the run cost:
        the system views as they are now, not as an open transaction saw them)."""
        with self.api.outside_transaction():
            return query_rows(self.api, sql, what="query", stats=self.catalog_stats, budgeted=False)

    def set_budget(self, seconds: float | None, owner: str) -> None:
        """No statement starts once this source's statements have run `seconds` (spend.py)."""
        self.api.spend.budget_seconds = seconds
        self.api.spend.budget_owner = owner

    def interrupt(self) -> None:
        """Stop the statements every thread of this source waits on (the run is stopping)."""
        self.api.cancel_running(self.catalog_stats)

    def watch_statements(self, listener: StatementListener | None) -> None:
        """Tell `listener` of every statement this source submits and of its end."""
        self.api.listener = listener

    def settle_statements(self, statement_ids: Sequence[str]) -> list[str]:
        """Cancel (or wait out) a killed run's statements that still run; those that may."""
        return self.api.settle(
            statement_ids, what="statements of an interrupted run", stats=self.catalog_stats
        )

    def end_sessions(self, session_ids: Sequence[str]) -> int:
        """ROLLBACK a killed run's open transactions (sessions); how many were ended."""
        return self.api.end_sessions(
            session_ids, what="sessions of an interrupted run", stats=self.catalog_stats
        )

    def execute(self, sql: str) -> int:
        """Run a statement without a result set; the rows it affected."""
        return execute_statement(self.api, sql, what="statement", stats=self.catalog_stats)

    # -- staging ---------------------------------------------------------------------------------
    def _staging(self) -> tuple[StagingBucket, UnloadConfig]:
        unload = self.connection.unload
        if unload is None:
            raise ConfigError(
                "the connection has no unload: settings, so nothing is staged",
                fix="add unload: {bucket: …} to the connection, or choose another connection",
            )
        return StagingBucket(self.session, self.api.retry), unload

    def staged_objects(self, *, older_than_hours: float = 24) -> list[StagedObject]:
        """Objects under the unload prefix older than the age."""
        bucket, unload = self._staging()
        return find_staged(
            bucket, unload, older_than_hours=older_than_hours, stats=self.catalog_stats
        )

    def delete_staged(self, objects: Sequence[StagedObject]) -> int:
        """Delete these staged objects (from `staged_objects`); how many were deleted."""
        if not objects:
            return 0
        bucket, unload = self._staging()
        keys = [item.key for item in objects]
        return bucket.delete(unload.bucket, keys, stats=self.catalog_stats)

    def delete_run_staging(self, run_id: str) -> int:
        """Delete what run `run_id` staged under `<prefix><run_id>/`; 0 without unload:."""
        unload = self.connection.unload
        if unload is None:
            return 0
        bucket = StagingBucket(self.session, self.api.retry)
        return bucket.delete_prefix(
            unload.bucket, f"{unload.prefix}{run_id}/", stats=self.catalog_stats
        )

    def delete_table_staging(self, run_id: str, ref: TableRef) -> int:
        """Delete what run `run_id` staged for one table (`<prefix><run_id>/<schema>.<table>/`);
        how many objects (0 without unload:)."""
        unload = self.connection.unload
        if unload is None:
            return 0
        folder = staging_location(unload, run_id, ref.schema, ref.name).name_prefix
        folder = folder[: folder.rindex("/") + 1]
        bucket = StagingBucket(self.session, self.api.retry)
        return bucket.delete_prefix(unload.bucket, folder, stats=self.catalog_stats)

    def delete_range_area(self, area: str) -> int:
        """Delete a ranged read's staged files (its checkpoint's `area`) once its table is
        committed; how many objects."""
        unload = self.connection.unload
        if unload is None:
            return 0
        return delete_range_area(self.unload_reader, unload, area, self.catalog_stats)

    def cleanup_staged(self, *, older_than_hours: float = 24) -> int:
        """Delete staged UNLOAD objects older than the age (a crashed run's); how many."""
        return self.delete_staged(self.staged_objects(older_than_hours=older_than_hours))


def _done_at_first_batch(
    batches: Iterator[pa.RecordBatch], stats: ReadStats
) -> Iterator[pa.RecordBatch]:
    """One UNLOAD's batches: it runs no second statement once its first rows are handed out
    (UnloadReader.read_table runs it again only before that), so the read says so."""
    for batch in batches:
        stats.statements_done = True
        yield batch


def read_table(
    workspace: Workspace | Path | str | None,
    table: str | TableRef,
    connection: str | None = None,
    method: Method = "auto",
    *,
    columns: Sequence[str] | None = None,
    where: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Read one table of a workspace's connection as record batches (see docs/python-api.md)."""
    source = RedshiftSource.from_workspace(workspace, connection)
    info = source.describe(table if isinstance(table, TableRef) else TableRef.parse(table))
    return source.read(info, columns=columns, where=where, method=method)


__all__ = [
    "MAX_CHUNK_DEPTH",
    "Method",
    "ReadPlan",
    "ReadStats",
    "RedshiftSource",
    "TableInfo",
    "TableRef",
    "read_table",
]
