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
import logging
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from shiftsync.aws.retry_log import RetryTally, counting_retries
from shiftsync.config import Method, RedshiftServerlessConfig, SyncConfig
from shiftsync.config.alerts import AlertsConfig
from shiftsync.destinations.base import Destination, LoadMode
from shiftsync.destinations.scratch import remove_stale_scratch

# The `X as X` imports keep names that were public here before the split importable from here.
from shiftsync.engine.change_checks import check_change_options
from shiftsync.engine.cost_watch import CostWatch
from shiftsync.engine.departed import report_departed
from shiftsync.engine.guardrails import check_window
from shiftsync.engine.housekeeping import SALT_FILE as SALT_FILE
from shiftsync.engine.housekeeping import clean_interrupted_runs as clean_interrupted_runs
from shiftsync.engine.housekeeping import hash_salt as hash_salt
from shiftsync.engine.housekeeping import sync_lock as sync_lock
from shiftsync.engine.listing import EVERYTHING, listing_patterns, misses_a_named_table
from shiftsync.engine.observer import SyncObserver, SyncOptions
from shiftsync.engine.pause import (
    PAUSE_ENV,
    PAUSE_MARKER,
    PAUSE_POINTS,
    RESUME_FILE_ENV,
    debug_pause,
)
from shiftsync.engine.pause import PAUSE_SECONDS_ENV as PAUSE_SECONDS_ENV
from shiftsync.engine.pause import PausePoint as PausePoint
from shiftsync.engine.run_context import RunContext, Source
from shiftsync.engine.runs import (
    DEFAULT_RETENTION,
    RunRecord,
    RunStore,
    TableRun,
    new_run_id,
    utc_now,
)
from shiftsync.engine.selection import Selection, TableJob, resolve_table, select_tables
from shiftsync.engine.statement_journal import StatementJournal
from shiftsync.engine.table_sync import TableSync, table_ref
from shiftsync.engine.writers import check_one_writer
from shiftsync.errors import (
    EXIT_ACCESS,
    EXIT_FAILED,
    EXIT_OK,
    AccessError,
    ConfigError,
    ShiftsyncError,
    out_of_space_in_chain,
)
from shiftsync.workspace import Workspace, secure_dot_dir

log = logging.getLogger("shiftsync.sync")


def exit_code_of(record: RunRecord) -> int:
    """0 when every table is ok; 3 when AWS refused access to a table (a permission lost or
    missing: the fix is in IAM, not in the data); else 1. (A run that cannot start at all
    raises instead: its error carries exit code 2 for configuration, 3 for AWS access.)"""
    if record.status == "ok":
        return EXIT_OK
    if any(t.status == "failed" and t.error_type == AccessError.__name__ for t in record.tables):
        return EXIT_ACCESS
    return EXIT_FAILED


def _fail(table: TableRun, error: BaseException) -> None:
    # A full disk is the machine's state, not a bug nor the destination's: say which file and
    # what to do (a destination's wrapper may name only the destination).
    error = out_of_space_in_chain(error) or error
    if isinstance(error, ShiftsyncError):
        table.update(
            status="failed", error=error.message, fix=error.fix, error_type=type(error).__name__
        )
        return
    if not isinstance(error, Exception):
        table.update(
            status="failed",
            error=f"table {table.table}: the run was interrupted; nothing was committed",
            fix="run the sync again",
            error_type="Interrupted",
        )
        return
    # A bug, not a data problem: keep the traceback's last line for the report.
    table.update(
        status="failed",
        error=f"internal error: {type(error).__name__}: {error}",
        fix="this is a bug in shiftsync: report it with the run record",
        error_type="InternalError",
    )
    table.note("".join(traceback.format_exception_only(error)).strip())


def _select(ctx: RunContext, connection_method: Method) -> Selection:
    patterns = listing_patterns(ctx.sync)
    refs = [ref for schema, table in patterns for ref in ctx.source.list_tables(schema, table)]
    if patterns != [EVERYTHING] and misses_a_named_table(
        ctx.sync, ((ref.schema, ref.name) for ref in refs)
    ):
        refs = list(ctx.source.list_tables())
    claims = check_one_writer(ctx.workspace.config, ctx.sync_name, ctx.destination.kind)
    selection = select_tables(
        ctx.sync_name,
        ctx.sync,
        refs,
        connection_method=connection_method,
        only=ctx.options.tables,
        full_refresh=ctx.options.full_refresh,
        destination_kind=ctx.destination.kind,
        claimed={key: claim.describe() for key, claim in claims.items()},
    )
    # On every run, in its record and its summary: a typo in a pattern copies nothing quietly.
    ctx.record.notes.extend(selection.warnings)
    return selection


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
    run_id: str | None = None,
) -> RunRecord:
    """Run (or plan, with `dry_run`) one sync of the workspace and return its record.

    Problems with one table fail that table; the record says which and why. Problems that
    stop the whole run before any table (unknown sync, refused role, bad --tables, an
    unreachable catalog) are recorded, then raised. `source` and `destination` are built from
    the configuration unless given (tests inject them). `run_id` (from `new_run_id()`) lets a
    caller that answers before the run starts, such as `shiftsync serve`, name the run.
    """
    options = options or SyncOptions()
    observer = observer or SyncObserver()
    config = workspace.config
    name, sync = config.sync(sync_name)
    if not options.dry_run:
        check_window(name, sync)
    _, connection = config.connection(sync.source)
    _, destination_config = config.destination(sync.destination)
    record = RunRecord(
        run_id=run_id or new_run_id(), sync=name, started_at=utc_now(), options=options.to_json()
    )
    store = None if options.dry_run else RunStore(workspace.runs_dir)
    if store is not None:
        # Workspaces of older versions: owner-only files, hash_salt ignored by git.
        record.notes.extend(secure_dot_dir(workspace))
    previous: str | None = None
    with contextlib.ExitStack() as stack:
        if store is not None:
            stack.enter_context(sync_lock(workspace, name))
            previous = _last_status(store, name)
            store.save(record)
        try:
            if source is None:
                source = _build_source(workspace, connection, record.run_id, sync, options)
            source.set_budget(sync.max_compute_seconds, f"sync {name}")
            if store is not None:
                journal = StatementJournal(store.folder, record.run_id)
                source.watch_statements(journal)
                stack.callback(journal.close)
            if destination is None:
                from shiftsync.destinations.registry import DestinationContext, create_destination

                # A destination in S3 with `credentials: connection` writes as the source's
                # assumed role.
                destination = create_destination(
                    destination_config,
                    DestinationContext(
                        folder=workspace.folder,
                        connection_credentials=source.connection_credentials(),
                    ),
                )
                stack.callback(destination.close)
            ctx = RunContext(
                workspace, name, sync, options, source, destination, record, store, observer
            )
            if options.dry_run:
                _dry_run(ctx, connection.method)
            else:
                _run(ctx, connection.method)
                if store is not None:
                    # The history would grow forever otherwise; its failure is not the run's.
                    with contextlib.suppress(ShiftsyncError):
                        store.prune(DEFAULT_RETENTION)
        except BaseException as error:
            if store is not None:
                stopped = not isinstance(error, Exception)
                record.finish(
                    error="interrupted (Ctrl-C or a signal)" if stopped else str(error),
                    interrupted=stopped,
                )
                if not stopped:
                    _alert(config.alerts, previous, record)
                with contextlib.suppress(ShiftsyncError):
                    store.save(record)
            raise
    if store is not None and _alert(config.alerts, previous, record):
        with contextlib.suppress(ShiftsyncError):
            store.save(record)
    return record


def _last_status(store: RunStore, sync_name: str) -> str | None:
    runs = store.list(limit=1, sync=sync_name)
    return str(runs[0]["status"]) if runs else None


def _alert(alerts: AlertsConfig | None, previous: str | None, record: RunRecord) -> bool:
    """Send the run's alert, if any; True when the record changed (an undelivered alert)."""
    if alerts is None:
        return False
    from shiftsync.engine.alerts import alert_after_run

    notes = len(record.notes)
    alert_after_run(alerts, previous, record)
    return len(record.notes) != notes


def _build_source(
    workspace: Workspace,
    connection: RedshiftServerlessConfig,
    run_id: str,
    sync: SyncConfig,
    options: SyncOptions,
) -> Source:
    from shiftsync.aws.trust import open_session
    from shiftsync.redshift.csv_probe import CACHE_FILE_NAME as CSV_DIALECT_CACHE
    from shiftsync.redshift.source import RedshiftSource

    # The role must still refuse AssumeRole without the external ID (proven once a day).
    session = open_session(workspace, connection, connection_name=sync.source)
    local = RedshiftSource(
        connection,
        session,
        run_id=run_id,
        csv_dialect_cache=workspace.dot_dir / CSV_DIALECT_CACHE,
    )
    if (options.executor or sync.executor) != "ray":
        return local
    from shiftsync.executors.ray_source import RaySource, ray_address

    return RaySource(
        local, workspace.external_id, ray_address(options.ray_address or sync.ray_address)
    )


def _dry_run(ctx: RunContext, connection_method: Method) -> None:
    selection = _select(ctx, connection_method)
    jobs, problems = _table_runs(selection)
    ctx.record.tables = [run for _, run in jobs] + problems

    def plan_one(item: tuple[TableJob, TableRun]) -> None:
        job, table = item
        try:
            info = ctx.source.describe(table_ref(job))
            plan = resolve_table(
                job,
                info.columns,
                info.primary_key,
                normalize=ctx.sync.normalize_names,
                destination_kind=ctx.destination.kind,
            )
            check_change_options(job, info.kind, plan, ctx.destination)
            table.method = str(ctx.source.plan(info, job.method, columns=plan.columns).method)
            table.estimated_rows = info.estimated_rows
            table.estimated_bytes = info.estimated_bytes
            if job.mode == "full_refresh":
                table.load = str(LoadMode.REPLACE)
            elif job.full_refresh:
                table.load = str(LoadMode.REPLACE)
                table.note("--full-refresh: the stored cursor is ignored")
            else:
                table.load = str(LoadMode.MERGE if plan.primary_key else LoadMode.APPEND)
                table.note("replace instead when no cursor is stored yet")
        except Exception as error:
            _fail(table, error)

    with ThreadPoolExecutor(max_workers=ctx.sync.concurrency) as pool:
        list(pool.map(plan_one, jobs))
    ctx.record.finish()
    ctx.observer.run_planned(ctx.record)


def _consistent_snapshot(ctx: RunContext) -> contextlib.AbstractContextManager[object] | None:
    """`snapshot: consistent`: one transaction for every table of the run, shared by the
    worker thread (tables then run one after another: a session runs one statement at once)."""
    if ctx.sync.snapshot != "consistent":
        return None
    return ctx.source.snapshot(f"sync {ctx.sync_name}", shared=True)


def _run(ctx: RunContext, connection_method: Method) -> None:
    record = ctx.record
    clean_interrupted_runs(ctx)
    for folder in remove_stale_scratch():
        record.notes.append(f"deleted {folder}, left by a shiftsync process that ended")
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
    except ConfigError:
        raise  # the destination's settings are wrong: the run cannot start (exit 2)
    except ShiftsyncError as error:
        for _, table in jobs:
            _fail(table, error)
            ctx.observer.table_finished(table)
        jobs = []
    watch = _cost_watch(ctx, [job.name for job, _ in jobs])
    ctx.on_reads_done = watch.reads_done

    def run_one(item: tuple[TableJob, TableRun]) -> None:
        job, table = item
        started = time.monotonic()
        tally = RetryTally()
        one = TableSync(ctx, job, table)
        try:
            with counting_retries() as tally:
                one.run()
            table.status = "ok"
        except BaseException as error:  # recorded for this table; the run goes on
            _fail(table, error)
            if not one.committed and table.rows:
                # The record counts rows in the destination: these were read, then rolled back.
                table.note(f"{table.rows:,} row(s) read were not committed")
                table.update(rows=0)
            if not isinstance(error, Exception):
                raise
        finally:
            # A table that failed before its reads ended runs no more statements either.
            ctx.reads_done(job.name)
            # The read's counters miss botocore's own retries and those of the table's other
            # calls (catalog, cursor, verification): the tally of its thread has them.
            table.update(retries=max(table.retries, tally.count))
            table.duration_seconds = round(time.monotonic() - started, 3)
            ctx.save()
            ctx.observer.table_finished(table)

    consistent = _consistent_snapshot(ctx) if jobs else None
    workers = 1 if consistent is not None else ctx.sync.concurrency
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync")
    with consistent if consistent is not None else contextlib.nullcontext():
        try:
            for future in [pool.submit(run_one, item) for item in jobs]:
                future.result()
        except BaseException as error:
            ctx.stop.set()
            if not isinstance(error, Exception):
                log.warning(
                    "interrupted: the tables being read stop at their next batch and roll back; "
                    "nothing more is committed"
                )
            # Workers notice `stop` between batches; one waiting on a long statement would not
            # until it ends, so its statement is cancelled now.
            ctx.source.interrupt()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    with contextlib.suppress(ShiftsyncError, OSError):  # a note only: never fails the run
        record.notes += report_departed(
            ctx.workspace,
            ctx.sync_name,
            ctx.destination,
            {job.name: job.target for job in selection.jobs},
            narrowed=bool(ctx.options.tables),
        )
    _record_cost(ctx, watch)
    record.finish()
    ctx.save()


def _cost_watch(ctx: RunContext, tables: list[str]) -> CostWatch:
    """What the run cost is asked once its tables' Redshift statements are done, while the
    workgroup is awake (engine/cost_watch.py)."""
    _, connection = ctx.workspace.config.connection(ctx.sync.source)  # read at the run's start
    started = datetime.fromisoformat(ctx.record.started_at)
    return CostWatch(ctx.source, started, tables, serverless=not connection.is_cluster)


def _record_cost(ctx: RunContext, watch: CostWatch) -> None:
    """What the run's statements cost Redshift, into the record (never fails the run)."""
    try:
        ctx.record.cost = watch.final(datetime.now(UTC))
    except ShiftsyncError as error:
        ctx.record.notes.append(f"what the run cost could not be read: {error.message}")
        return
    spend = ctx.source.spend
    if spend.refused:
        ctx.record.notes.append(
            f"the budget (max_compute_seconds: {spend.budget_seconds:g}) was spent: "
            f"{spend.refused} statement(s) were not started"
        )


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
