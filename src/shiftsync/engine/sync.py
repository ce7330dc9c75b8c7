"""Run a sync: plan → per table read → load → commit with state → verify → record.

Why nothing is lost or doubled, whatever moment the run stops at:
- a full refresh loads into a stage and swaps it in at commit (LoadMode.REPLACE): readers and
  a killed run see the old table or the new one;
- an incremental table reads `low <= tracking_field <= high`, with `high` fixed by one
  `SELECT max()` when the table starts, and commits the rows AND the new cursor (`high`) in
  one transaction (`Load.commit(state)`). A run killed before that commit changed nothing, so
  the next run reads the same rows again. With a primary key the low bound is inclusive and
  rows are merged by key (a row read twice is written once); without one the low bound is
  exclusive and rows are appended (a cursor value is never read twice);
- the first run of an incremental table (or a reset cursor) replaces the table with every
  row `<= high`, so leftovers of an earlier configuration cannot double.

Tables run in parallel (`concurrency` threads) on one source and one destination object; a
table's failure is recorded and the others go on. Each table is verified after its commit:
row count and per-column checksums computed in SQL on Redshift and in the destination
(engine/verify.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import os
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal, Protocol

import pyarrow as pa

from shiftsync.config import Method, RedshiftServerlessConfig, SyncConfig
from shiftsync.destinations.base import Destination, Load, LoadMode, LoadSpec
from shiftsync.engine.runs import RunRecord, RunStore, TableRun, new_run_id, utc_now
from shiftsync.engine.selection import (
    Selection,
    TableJob,
    TablePlan,
    load_schema,
    resolve_table,
    select_tables,
    shape_batch,
)
from shiftsync.engine.state import (
    TableState,
    Window,
    build_high_water_sql,
    full_refresh_window,
    incremental_window,
    parse_state,
)
from shiftsync.engine.verify import (
    ProfileColumn,
    VerificationResult,
    build_duplicate_key_sql,
    build_profile_sql,
    compare_profiles,
    parse_source_profile,
    raise_for_mismatch,
)
from shiftsync.errors import EXIT_FAILED, EXIT_OK, ConfigError, ShiftsyncError, StateError
from shiftsync.redshift.types import Column
from shiftsync.workspace import Workspace, write_new_text

PAUSE_ENV: Final = "SHIFTSYNC_DEBUG_PAUSE_AT"
PAUSE_SECONDS_ENV: Final = "SHIFTSYNC_DEBUG_PAUSE_SECONDS"
RESUME_FILE_ENV: Final = "SHIFTSYNC_DEBUG_RESUME_FILE"
PAUSE_MARKER: Final = "SHIFTSYNC_PAUSED"
PausePoint = Literal[
    "after_first_batch_read", "after_first_batch_written", "before_commit", "before_verify"
]
PAUSE_POINTS: Final[tuple[str, ...]] = (
    "after_first_batch_read",
    "after_first_batch_written",
    "before_commit",
    "before_verify",
)
SALT_FILE: Final = "hash_salt"


# --- what the engine needs of the source (RedshiftSource satisfies it) ------------------------


class _Ref(Protocol):
    @property
    def schema(self) -> str: ...

    @property
    def name(self) -> str: ...


class _Info(Protocol):
    @property
    def ref(self) -> Any: ...

    @property
    def kind(self) -> str: ...

    @property
    def columns(self) -> tuple[Column, ...]: ...

    @property
    def primary_key(self) -> tuple[str, ...]: ...

    @property
    def estimated_rows(self) -> int | None: ...

    @property
    def estimated_bytes(self) -> int | None: ...


class _Plan(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def reason(self) -> str: ...


class Source(Protocol):
    """The part of `shiftsync.redshift.source.RedshiftSource` the engine uses."""

    def list_tables(self, schema_pattern: str = "%", table_pattern: str = "%") -> Sequence[Any]: ...

    def describe(self, ref: Any) -> Any: ...

    def plan(
        self, info: Any, method: Method = "auto", *, columns: Sequence[Column] | None = None
    ) -> Any: ...

    def read(
        self,
        info: Any,
        *,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        method: Method = "auto",
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[pa.RecordBatch]: ...

    def query(self, sql: str) -> list[tuple[Any, ...]]: ...


# --- options, observer ------------------------------------------------------------------


@dataclass(frozen=True)
class SyncOptions:
    tables: tuple[str, ...] = ()
    full_refresh: bool = False
    dry_run: bool = False
    verify: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "tables": list(self.tables),
            "full_refresh": self.full_refresh,
            "dry_run": self.dry_run,
            "verify": self.verify,
        }


class SyncObserver:
    """Hooks the CLI uses to show progress; every method may be called from worker threads."""

    def run_planned(self, record: RunRecord) -> None:
        """The tables of the run are known (with estimates on a dry run)."""

    def table_started(self, table: TableRun) -> None:
        """A table's read starts; `table.method` and `table.load` are set."""

    def table_progress(self, table: TableRun, rows: int, bytes_read: int) -> None:
        """Cumulative rows and bytes read so far."""

    def table_finished(self, table: TableRun) -> None:
        """A table ended (status ok or failed)."""


def exit_code_of(record: RunRecord) -> int:
    """0 when every table is ok, else 1. (A run that cannot start at all raises instead: its
    error carries exit code 2 for configuration, 3 for AWS access.)"""
    return EXIT_OK if record.status == "ok" else EXIT_FAILED


# --- debug pause: lets the crash tests stop a run at a chosen point ---------------------------


def debug_pause(point: PausePoint, table: str, *, stream: IO[str] | None = None) -> None:
    """When SHIFTSYNC_DEBUG_PAUSE_AT=<point>[:<table pattern>] matches, print a marker line and
    wait (SHIFTSYNC_DEBUG_PAUSE_SECONDS, default 300, or until SHIFTSYNC_DEBUG_RESUME_FILE
    exists). Does nothing when the variable is unset."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted:
        return
    wanted_point, _, pattern = wanted.partition(":")
    if wanted_point != point or (pattern and not fnmatch.fnmatchcase(table, pattern)):
        return
    out = stream or sys.stderr
    print(f"{PAUSE_MARKER} {point} {table}", file=out, flush=True)
    deadline = time.monotonic() + float(os.environ.get(PAUSE_SECONDS_ENV, "300"))
    resume = os.environ.get(RESUME_FILE_ENV)
    while time.monotonic() < deadline:
        if resume and Path(resume).exists():
            return
        time.sleep(0.02)


# --- the run ----------------------------------------------------------------------------


@dataclass
class _Context:
    workspace: Workspace
    sync_name: str
    sync: SyncConfig
    options: SyncOptions
    source: Source
    destination: Destination
    record: RunRecord
    store: RunStore | None
    observer: SyncObserver
    salt: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set on Ctrl-C: running tables stop at their next batch and roll back.
    stop: threading.Event = field(default_factory=threading.Event)

    def save(self) -> None:
        if self.store is not None:
            with self.lock:
                self.store.save(self.record)


def hash_salt(workspace: Workspace) -> str:
    """The workspace's hashing salt, created once (never printed)."""
    path = workspace.dot_dir / SALT_FILE
    try:
        workspace.dot_dir.mkdir(parents=True, exist_ok=True)
        write_new_text(path, secrets.token_hex(32) + "\n")
        value = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(
            f"cannot read or create the hashing salt {path}: {error.strerror or error}",
            fix="check that the workspace's .shiftsync folder is writable",
        ) from error
    if len(value) < 16:
        raise ConfigError(
            f"{path} holds a salt shorter than 16 characters",
            fix="restore the file from a backup; a new salt changes every hashed value",
        )
    return value


@contextlib.contextmanager
def sync_lock(workspace: Workspace, sync_name: str) -> Iterator[None]:
    """One run of a sync at a time in a workspace; the OS drops the lock if the run dies."""
    folder = workspace.runs_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".lock-{sync_name}"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateError(
                f"another run of sync {sync_name} is in progress in {workspace.folder}",
                fix="wait for it to finish (`shiftsync runs` lists it), then run again",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fail(table: TableRun, error: BaseException) -> None:
    table.status = "failed"
    if isinstance(error, ShiftsyncError):
        table.error = error.message
        table.fix = error.fix
        table.error_type = type(error).__name__
    else:
        # A bug, not a data problem: keep the traceback's last line for the report.
        table.error = f"internal error: {type(error).__name__}: {error}"
        table.fix = "this is a bug in shiftsync: report it with the run record"
        table.error_type = "InternalError"
        table.notes.append("".join(traceback.format_exception_only(error)).strip())


def _select(ctx: _Context, connection_method: Method) -> Selection:
    refs = ctx.source.list_tables()
    return select_tables(
        ctx.sync_name,
        ctx.sync,
        refs,
        connection_method=connection_method,
        only=ctx.options.tables,
        full_refresh=ctx.options.full_refresh,
    )


def _table_runs(selection: Selection) -> tuple[list[tuple[TableJob, TableRun]], list[TableRun]]:
    jobs = [
        (job, TableRun(table=job.name, target=job.target, mode=job.mode)) for job in selection.jobs
    ]
    problems = []
    for problem in selection.problems:
        run = TableRun(table=problem.table, target="", mode="")
        _fail(run, problem.error)
        problems.append(run)
    return jobs, problems


def run_sync(
    workspace: Workspace,
    sync_name: str | None = None,
    options: SyncOptions | None = None,
    *,
    source: Source | None = None,
    destination: Destination | None = None,
    observer: SyncObserver | None = None,
) -> RunRecord:
    """Run (or plan, with `dry_run`) one sync of the workspace and return its record.

    Problems with one table fail that table; the record says which and why. Problems that
    stop the whole run before any table (unknown sync, refused role, bad --tables, an
    unreachable catalog) are recorded, then raised. `source` and `destination` are built from
    the configuration unless given (tests inject them).
    """
    options = options or SyncOptions()
    observer = observer or SyncObserver()
    config = workspace.config
    name, sync = config.sync(sync_name)
    _, connection = config.connection(sync.source)
    _, destination_config = config.destination(sync.destination)
    record = RunRecord(
        run_id=new_run_id(), sync=name, started_at=utc_now(), options=options.to_json()
    )
    store = None if options.dry_run else RunStore(workspace.runs_dir)
    with contextlib.ExitStack() as stack:
        if store is not None:
            stack.enter_context(sync_lock(workspace, name))
            store.save(record)
        try:
            if source is None:
                source = _build_source(workspace, connection, record.run_id)
            if destination is None:
                from shiftsync.destinations.registry import DestinationContext, create_destination

                destination = create_destination(
                    destination_config, DestinationContext(folder=workspace.folder)
                )
                stack.callback(destination.close)
            ctx = _Context(
                workspace, name, sync, options, source, destination, record, store, observer
            )
            if options.dry_run:
                _dry_run(ctx, connection.method)
            else:
                _run(ctx, connection.method)
        except BaseException as error:
            if store is not None:
                record.finish(error=str(error) if isinstance(error, Exception) else "interrupted")
                with contextlib.suppress(ShiftsyncError):
                    store.save(record)
            raise
    return record


def _build_source(
    workspace: Workspace, connection: RedshiftServerlessConfig, run_id: str
) -> Source:
    from shiftsync.aws.session import AssumedRoleSession
    from shiftsync.redshift.source import RedshiftSource

    session = AssumedRoleSession(
        connection.role_arn,
        workspace.external_id,
        connection.region,
        duration_seconds=connection.session_duration_seconds,
    )
    source: Source = RedshiftSource(connection, session, run_id=run_id)
    return source


def clean_interrupted_runs(ctx: _Context) -> None:
    """Delete what killed runs of this sync left staged in S3, and mark them interrupted.

    A run's UNLOAD files live under `<prefix><run_id>/`; a run whose process is gone (kill -9,
    a crash) never reached its `finally`. Only runs of the same sync are handled: they used
    this connection's bucket, and the sync's lock says none of them is still going. Other
    syncs' runs, and other workspaces', are left alone.
    """
    if ctx.store is None:
        return
    from shiftsync.redshift.data_api import ReadStats
    from shiftsync.redshift.unload import StagingBucket

    connection = getattr(ctx.source, "connection", None)
    unload = getattr(connection, "unload", None)
    session = getattr(ctx.source, "session", None)
    api = getattr(ctx.source, "api", None)
    for summary in ctx.store.list():
        if summary["status"] != "interrupted" or summary["sync"] != ctx.sync_name:
            continue
        try:
            if unload is not None and session is not None and api is not None:
                bucket = StagingBucket(session, api.retry)
                prefix = f"{unload.prefix}{summary['run_id']}/"
                deleted = bucket.delete_prefix(unload.bucket, prefix, stats=ReadStats())
                if deleted:
                    ctx.record.notes.append(
                        f"deleted {deleted} staged object(s) of interrupted run {summary['run_id']}"
                    )
            old = ctx.store.load(str(summary["run_id"]))
            old.finish(error="interrupted: the process ended before the run finished")
            old.status = "interrupted"
            ctx.store.save(old)
        except ShiftsyncError as error:
            ctx.record.notes.append(
                f"could not clean up interrupted run {summary['run_id']}: {error.message}"
            )


def _dry_run(ctx: _Context, connection_method: Method) -> None:
    selection = _select(ctx, connection_method)
    jobs, problems = _table_runs(selection)
    ctx.record.tables = [run for _, run in jobs] + problems

    def plan_one(item: tuple[TableJob, TableRun]) -> None:
        job, table = item
        try:
            info = ctx.source.describe(_ref(job))
            plan = resolve_table(
                job, info.columns, info.primary_key, normalize=ctx.sync.normalize_names
            )
            table.method = str(ctx.source.plan(info, job.method, columns=plan.columns).method)
            table.estimated_rows = info.estimated_rows
            table.estimated_bytes = info.estimated_bytes
            if job.mode == "full_refresh":
                table.load = str(LoadMode.REPLACE)
            elif job.full_refresh:
                table.load = str(LoadMode.REPLACE)
                table.notes.append("--full-refresh: the stored cursor is ignored")
            else:
                table.load = str(LoadMode.MERGE if plan.primary_key else LoadMode.APPEND)
                table.notes.append("replace instead when no cursor is stored yet")
        except Exception as error:
            _fail(table, error)

    with ThreadPoolExecutor(max_workers=ctx.sync.concurrency) as pool:
        list(pool.map(plan_one, jobs))
    ctx.record.finish()
    ctx.observer.run_planned(ctx.record)


def _ref(job: TableJob) -> Any:
    from shiftsync.redshift.catalog import TableRef

    return TableRef(job.schema, job.table)


def _run(ctx: _Context, connection_method: Method) -> None:
    record = ctx.record
    clean_interrupted_runs(ctx)
    selection = _select(ctx, connection_method)
    jobs, problems = _table_runs(selection)
    record.tables = [run for _, run in jobs] + problems
    ctx.save()
    ctx.observer.run_planned(record)
    for problem in problems:
        ctx.observer.table_finished(problem)
    if any(job.columns is not None and job.columns.hash for job, _ in jobs):
        ctx.salt = hash_salt(ctx.workspace)
    try:
        ctx.destination.check()
    except ShiftsyncError as error:
        for _, table in jobs:
            _fail(table, error)
            ctx.observer.table_finished(table)
        jobs = []

    def run_one(item: tuple[TableJob, TableRun]) -> None:
        job, table = item
        started = time.monotonic()
        try:
            _TableSync(ctx, job, table).run()
            table.status = "ok"
        except BaseException as error:  # recorded for this table; the run goes on
            _fail(table, error)
            if not isinstance(error, Exception):
                raise
        finally:
            table.duration_seconds = round(time.monotonic() - started, 3)
            ctx.save()
            ctx.observer.table_finished(table)

    pool = ThreadPoolExecutor(max_workers=ctx.sync.concurrency, thread_name_prefix="sync")
    try:
        for future in [pool.submit(run_one, item) for item in jobs]:
            future.result()
    except BaseException:
        ctx.stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    record.finish()
    ctx.save()


class _TableSync:
    """One table of a run, start to end."""

    def __init__(self, ctx: _Context, job: TableJob, table: TableRun) -> None:
        self.ctx, self.job, self.table = ctx, job, table
        self.rows = 0
        self.bytes = 0
        self._progress_lock = threading.Lock()

    def progress(self, rows: int, bytes_read: int) -> None:
        with self._progress_lock:
            self.rows += rows
            self.bytes += bytes_read
            self.table.rows, self.table.bytes = self.rows, self.bytes
        self.ctx.observer.table_progress(self.table, self.rows, self.bytes)

    def run(self) -> None:
        ctx, job, table = self.ctx, self.job, self.table
        source, destination = ctx.source, ctx.destination
        info = source.describe(_ref(job))
        plan = resolve_table(
            job, info.columns, info.primary_key, normalize=ctx.sync.normalize_names
        )
        # The plan is what the read starts with; the read itself may switch (a result too big
        # for the Data API goes through UNLOAD or key chunks), so it gets the configured method.
        table.method = str(source.plan(info, job.method, columns=plan.columns).method)
        table.estimated_rows = info.estimated_rows
        table.estimated_bytes = info.estimated_bytes
        window = self.window(plan)
        table.load = str(window.load)
        table.cursor_from, table.cursor_to = window.cursor_from, window.cursor_to
        table.notes.extend(window.notes)
        if window.read and job.mode == "incremental" and plan.primary_key:
            self.check_unique_key(plan, window.where)
        schema = load_schema(plan)
        spec = LoadSpec(
            target=job.target,
            schema=schema,
            mode=window.load,
            primary_key=plan.target_key if window.load is LoadMode.MERGE else (),
            schema_changes=ctx.sync.schema_changes,
            state_key=job.state_key,
        )
        ctx.observer.table_started(table)
        load = destination.start_load(spec)
        try:
            if window.read:
                self.copy(info, plan, schema, load, window.where)
            debug_pause("before_commit", job.name)
            state = TableState(
                mode=job.mode,
                cursor=window.cursor_to,
                tracking_field=plan.tracking.name if plan.tracking else None,
                run_id=ctx.record.run_id,
            )
            outcome = load.commit(state.to_json())
        except BaseException:
            load.abort()
            raise
        table.rows = outcome.rows_written if window.read else 0
        table.bytes = self.bytes
        table.schema_changes = [
            {"kind": c.kind, "column": c.column, "old_type": c.old_type, "new_type": c.new_type}
            for c in outcome.schema_changes
        ]
        added = [c.column for c in outcome.schema_changes if c.kind == "add_column"]
        if added and window.load is not LoadMode.REPLACE:
            table.notes.append(
                f"new column(s) {', '.join(added)}: rows not read in this run hold NULL there; "
                "run with --full-refresh if the source filled them"
            )
        # The source keeps the counters of the last read started in this thread: this one's.
        stats = getattr(source, "stats", None)
        if window.read and stats is not None:
            retries, method = getattr(stats, "retries", None), getattr(stats, "method", None)
            table.retries = retries if isinstance(retries, int) else 0
            table.method = method if isinstance(method, str) and method else table.method
        debug_pause("before_verify", job.name)
        if ctx.options.verify:
            self.verify(plan, window.verify_where)
        else:
            table.verification = VerificationResult("skipped", note="--no-verify").to_json()

    def window(self, plan: TablePlan) -> Window:
        job, ctx = self.job, self.ctx
        if job.mode == "full_refresh":
            return full_refresh_window(job.filter)
        tracking = plan.tracking
        assert tracking is not None
        where = f"{job.schema}.{job.table} in {ctx.destination.kind}"
        state = parse_state(where, ctx.destination.read_state(job.state_key))
        low = None if state is None or job.full_refresh else state.cursor_for(tracking.name)
        rows = ctx.source.query(
            build_high_water_sql(job.schema, job.table, tracking, low, job.filter)
        )
        high, at_or_above = rows[0] if rows else (None, None)
        return incremental_window(
            tracking,
            has_key=bool(plan.primary_key),
            low=low,
            high=None if high is None else str(high),
            at_or_above_low=None if at_or_above is None else int(at_or_above),
            filter_sql=job.filter,
        )

    def check_unique_key(self, plan: TablePlan, where: str | None) -> None:
        job = self.job
        sql = build_duplicate_key_sql(job.schema, job.table, plan.primary_key, where)
        rows = self.ctx.source.query(sql)
        if not rows:
            return
        *values, count = rows[0]
        shown = ", ".join(f"{k}={v!r}" for k, v in zip(plan.primary_key, values, strict=True))
        raise ConfigError(
            f"table {job.name}: primary key ({', '.join(plan.primary_key)}) is not unique: "
            f"{count} rows have {shown}; merging by it would silently keep only one of them",
            fix="set primary_key for this table to columns that are unique together (Redshift "
            "does not enforce primary keys)",
        )

    def copy(
        self,
        info: Any,
        plan: TablePlan,
        schema: pa.Schema,
        load: Load,
        where: str | None,
    ) -> None:
        job = self.job
        batches = self.ctx.source.read(
            info,
            columns=[c.name for c in plan.columns],
            where=where,
            method=job.method,
            progress=self.progress,
        )
        first = True
        try:
            for batch in batches:
                if self.ctx.stop.is_set():
                    raise ShiftsyncError(
                        f"table {job.name}: the run was interrupted; nothing was committed",
                        fix="run the sync again",
                    )
                if first:
                    debug_pause("after_first_batch_read", job.name)
                load.write(shape_batch(plan, batch, schema, self.ctx.salt))
                if first:
                    debug_pause("after_first_batch_written", job.name)
                    first = False
        finally:
            # Closing the generator ends the read at once: staged UNLOAD files are deleted.
            close = getattr(batches, "close", None)
            if callable(close):
                close()

    def verify(self, plan: TablePlan, where: str | None) -> None:
        job, table = self.job, self.table
        present = self.ctx.destination.table_schema(job.target)
        names = set(present.names) if present is not None else set()
        columns = [
            ProfileColumn(c, plan.target_of(c.name), hashed=c.name in plan.hashed)
            for c in plan.columns
            if plan.target_of(c.name) in names
        ]
        destination_profile = self.ctx.destination.profile(job.target, [c.target for c in columns])
        rows = self.ctx.source.query(build_profile_sql(job.schema, job.table, columns, where))
        source_profile = parse_source_profile(rows[0], columns)
        result = compare_profiles(columns, source_profile, destination_profile)
        table.verification = result.to_json()
        raise_for_mismatch(job.name, job.target, result, incremental=job.mode == "incremental")


__all__ = [
    "PAUSE_ENV",
    "PAUSE_MARKER",
    "PAUSE_POINTS",
    "RESUME_FILE_ENV",
    "Source",
    "SyncObserver",
    "SyncOptions",
    "debug_pause",
    "exit_code_of",
    "run_sync",
]
