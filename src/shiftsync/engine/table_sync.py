"""One table of a run, start to end: plan, window, read, load, commit with state, verify.

The run's orchestration (engine/sync.py) gives each table a `TableSync` in a worker thread;
the module docstring there says why nothing is lost or doubled whatever moment a run stops at.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

import pyarrow as pa

from shiftsync.destinations.base import Load, LoadMode, LoadSpec, TableProfile
from shiftsync.destinations.schema_change import SchemaPolicy
from shiftsync.engine.batch_shape import BatchShape
from shiftsync.engine.change_checks import check_change_options
from shiftsync.engine.deletes import (
    delete_key,
    deleted_at_field,
    deletes_wanted,
    run_delete_pass,
    soft_window,
)
from shiftsync.engine.housekeeping import hash_salt
from shiftsync.engine.load_columns import with_load_columns
from shiftsync.engine.lookback import Lookback, lowered_cursor
from shiftsync.engine.pause import debug_pause
from shiftsync.engine.range_resume import TableCheckpoint, previous_progress
from shiftsync.engine.run_context import RunContext
from shiftsync.engine.runs import TableRun
from shiftsync.engine.selection import (
    TableJob,
    TablePlan,
    hash_values,
    load_schema,
    resolve_table,
)
from shiftsync.engine.source_figures import PrefetchedQuery, SourceFigures
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
    column_chunks,
    compare_profiles,
    full_refresh_command,
    merge_profiles,
    parse_source_profile,
    raise_for_mismatch,
)
from shiftsync.engine.writers import foreign_writer, last_writer_elsewhere, load_identity
from shiftsync.errors import ConfigError, ShiftsyncError, StateError, VerificationError
from shiftsync.json_types import JsonValue
from shiftsync.redshift.catalog import TableInfo, TableRef
from shiftsync.redshift.data_api_results import FieldValue, field_int
from shiftsync.redshift.deletes_sql import build_key_summary_sql
from shiftsync.redshift.types import Column


def sized_for_window(info: TableInfo, window: Window) -> TableInfo:
    """The table as big as this run's read of it: an incremental run reads only its window,
    and the planner should choose the method for that many rows, not for the whole table."""
    rows = window.rows_estimate
    if rows is None:
        return info
    stored = info.estimated_bytes
    scaled = (
        None if stored is None or not info.estimated_rows else stored * rows // info.estimated_rows
    )
    return dataclasses.replace(info, estimated_rows=rows, estimated_bytes=scaled)


def load_policy(policy: SchemaPolicy, load: LoadMode) -> SchemaPolicy:
    """`recreate` rebuilds only a table that the load replaces whole; merges evolve."""
    return "evolve" if policy == "recreate" and load is not LoadMode.REPLACE else policy


def table_ref(job: TableJob) -> TableRef:
    """The source table of a job."""
    return TableRef(job.schema, job.table)


class TableSync:
    """One table of a run, start to end."""

    def __init__(self, ctx: RunContext, job: TableJob, table: TableRun) -> None:
        self.ctx, self.job, self.table = ctx, job, table
        self.rows = 0
        self.bytes = 0
        # Whether the table's load was committed (its rows are in the destination).
        self.committed = False
        self._progress_lock = threading.Lock()
        self.healed = False  # on_mismatch: full_refresh copied the table again
        # The table's snapshot, ended as soon as its last Redshift statement is done
        # (end_reads), not after its write: see engine/source_figures.py.
        self._reads = contextlib.ExitStack()
        self._reading = False
        # How many times the read had begun its transaction again when the profile started.
        self._restarts_at_profile = 0

    def progress(self, rows: int, bytes_read: int) -> None:
        with self._progress_lock:
            self.rows += rows
            self.bytes += bytes_read
            self.table.update(rows=self.rows, bytes=self.bytes)
        self.ctx.observer.table_progress(self.table, self.rows, self.bytes)

    def run(self) -> None:
        with self._reads:
            self.begin_reads()
            self._run()

    def begin_reads(self) -> None:
        """The table's Redshift statements from here on read one snapshot (`snapshot`)."""
        self._reads.enter_context(self.snapshot())
        self._reading = True

    def end_reads(self) -> None:
        """The table's Redshift statements are all done: its snapshot ends now (COMMIT sent,
        the session back to the run's pool), not after the destination's write and commit,
        which can take minutes for a big table (and outlast the session's keep-alive); and the
        run learns it, to ask what it cost while the workgroup is awake (engine/cost_watch.py)."""
        if self._reading:
            self._reads.close()
            self._reading = False
        self.ctx.reads_done(self.job.name)

    def snapshot(self) -> AbstractContextManager[object]:
        """The table's own Redshift transaction (`snapshot: table`): its high-water mark, rows
        and verification figures from one snapshot. None when the run holds one for all
        tables (`consistent`), the sync asks for none, or the source cannot give one."""
        if self.ctx.sync.snapshot != "table":
            return contextlib.nullcontext()
        return self.ctx.source.snapshot(f"table {self.job.name}")

    def _run(self) -> None:
        ctx, job, table = self.ctx, self.job, self.table
        source, destination = ctx.source, ctx.destination
        info = source.describe(table_ref(job))
        plan = resolve_table(
            job,
            info.columns,
            info.primary_key,
            normalize=ctx.sync.normalize_names,
            destination_kind=ctx.destination.kind,
        )
        key_columns = delete_key(plan)
        lookback = check_change_options(job, info.kind, plan, destination)
        window = self.window(plan, lookback)
        window = soft_window(window, job.deletes, destination.table_schema(job.target))
        info = sized_for_window(info, window)
        # The plan is what the read starts with; the read itself may switch (a result too big
        # for the Data API goes through UNLOAD or key chunks), so it gets the configured method.
        table.update(
            method=str(source.plan(info, job.method, columns=plan.columns).method),
            estimated_rows=info.estimated_rows,
            estimated_bytes=info.estimated_bytes,
            load=str(window.load),
            cursor_from=window.cursor_from,
            cursor_to=window.cursor_to,
        )
        table.note(*window.notes)
        merging = job.mode == "incremental" or window.load is LoadMode.MERGE
        if window.read and merging and plan.primary_key:
            self.check_unique_key(plan, window.where)
        # The columns shape_batch writes; soft deletes' mark and the load columns follow them.
        schema = self.base_schema = load_schema(plan)
        if job.deletes == "soft":
            schema = schema.append(deleted_at_field())
        if ctx.sync.load_columns:
            schema = with_load_columns(job.name, schema)
        spec = LoadSpec(
            target=job.target,
            schema=schema,
            mode=window.load,
            primary_key=plan.target_key if window.load is LoadMode.MERGE else (),
            schema_changes=load_policy(ctx.sync.schema_changes, window.load),
            state_key=job.state_key,
            identity=load_identity(job.state_key, ctx.record.run_id),
            # Only an incremental table's key is checked unique in the source (Redshift does
            # not enforce keys), so only its destination table carries it as a PRIMARY KEY.
            table_key=plan.target_key if job.mode == "incremental" else (),
            not_null=tuple(plan.target_of(c.name) for c in plan.columns if not c.nullable),
            # Lake tables lay their files out by key, so a merge of a few keys rewrites few.
            sort_key=plan.target_key,
        )
        other = last_writer_elsewhere(destination, job.target, job.state_key)
        if other is not None:
            table.note(
                f"warning: destination table {job.target!r} was last written by {other}, not "
                "by this sync's table: two writers undo each other's rows (give one of them "
                "its own target)"
            )
        ctx.observer.table_started(table)
        checkpoint = TableCheckpoint(
            ctx, table, previous_progress(ctx.store, ctx.sync_name, ctx.record.run_id, job.name)
        )
        load = destination.start_load(spec)
        # A delete pass reads the source after the commit, in the read's snapshot (so that a
        # row deleted after the read is not taken from the destination, unlike the figures).
        pass_after_commit = deletes_wanted(job.deletes, window.load)
        # The source's side of the verification, and the delete pass's key summary, run with
        # the read (source_figures.py).
        figures = self.source_figures(plan, window.verify_where) if ctx.options.verify else None
        summary = self.key_summary(info, key_columns, window) if pass_after_commit else None
        helpers: list[SourceFigures | PrefetchedQuery] = [
            h for h in (figures, summary) if h is not None
        ]

        def with_read() -> None:
            self._restarts_at_profile = self.restarts()
            for helper in helpers:
                helper.start()

        def between_batches() -> None:
            # A read of one statement (a SELECT, an UNLOAD) sends no more once its rows flow:
            # its snapshot ends as soon as the figures are in, not after the whole write.
            if (
                self._reading
                and not pass_after_commit
                and self.ctx.source.stats.statements_done
                and all(h.done for h in helpers)
            ):
                self.end_reads()

        try:
            if window.read:
                self.copy(
                    info, plan, schema, load, window.where, checkpoint, with_read, between_batches
                )
            if any(h.started for h in helpers) and self.restarts() > self._restarts_at_profile:
                # The read began its transaction again after they started: the rows after
                # that come from a later snapshot; ask again in that one.
                for helper in helpers:
                    helper.abandon()
                if figures is not None:
                    figures = self.source_figures(plan, window.verify_where)
                if summary is not None:
                    summary = self.key_summary(info, key_columns, window)
                helpers = [h for h in (figures, summary) if h is not None]
            for helper in helpers:
                helper.settle()
            if not pass_after_commit:
                self.end_reads()
            debug_pause("before_commit", job.name, stop=self.ctx.stop)
            state = TableState(
                mode=job.mode,
                cursor=window.cursor_to,
                tracking_field=plan.tracking.name if plan.tracking else None,
                run_id=ctx.record.run_id,
                target=job.target,
                table_id=spec.identity,
            )
            # Stopped (Ctrl-C) while the last batch was read: roll back, do not commit.
            self.stop_if_interrupted()
            outcome = load.commit(state.to_json())
            self.committed = True
        except BaseException:
            for helper in helpers:
                helper.abandon()
            load.abort()
            raise
        checkpoint.release()
        if pass_after_commit:
            self.delete_pass(info, plan, key_columns, window, state.to_json(), summary)
            self.end_reads()
        table.update(
            rows=outcome.rows_written if window.read else 0,
            bytes=self.bytes,
            schema_changes=[
                {"kind": c.kind, "column": c.column, "old_type": c.old_type, "new_type": c.new_type}
                for c in outcome.schema_changes
            ],
        )
        added = [c.column for c in outcome.schema_changes if c.kind == "add_column"]
        if added and window.load is not LoadMode.REPLACE:
            table.note(
                f"new column(s) {', '.join(added)}: rows not read in this run hold NULL there; "
                "run with --full-refresh if the source filled them"
            )
        # The source keeps the counters of the last read started in this thread: this one's.
        if window.read:
            stats = source.stats
            table.update(
                retries=stats.retries,
                statements=stats.statements,
                method=stats.method or table.method,
            )
            table.note(*(f for f in stats.fallbacks if "transaction began again" in f))
        debug_pause("before_verify", job.name, stop=self.ctx.stop)
        if figures is not None:
            try:
                self.verify(figures, live_only=job.deletes == "soft")
            except VerificationError as mismatch:
                if not self.copy_again(mismatch):
                    raise
        else:
            table.verification = VerificationResult("skipped", note="--no-verify").to_json()

    def copy_again(self, mismatch: VerificationError) -> bool:
        """`on_mismatch: full_refresh`: copy the table again in full, once, in this run."""
        if self.job.on_mismatch != "full_refresh" or self.healed:
            return False
        self.healed = True
        self.table.note(
            f"verification found a mismatch ({mismatch.message}); on_mismatch: full_refresh "
            "copied the table again in full in this run"
        )
        self.job = dataclasses.replace(self.job, full_refresh=True)
        self.rows = self.bytes = 0
        if not self._reading:
            # The copy and its figures read one snapshot again (a new one: the first ended).
            self.begin_reads()
        self._run()
        return True

    def window(self, plan: TablePlan, lookback: Lookback | None = None) -> Window:
        job, ctx = self.job, self.ctx
        if job.mode == "full_refresh":
            return full_refresh_window(job.filter)
        tracking = plan.tracking
        assert tracking is not None
        where = f"{job.schema}.{job.table} in {ctx.destination.kind}"
        try:
            state = parse_state(where, ctx.destination.read_state(job.state_key, job.target))
        except StateError as error:
            raise StateError(
                error.message,
                fix=f"run `{full_refresh_command(ctx.sync_name, job.name)}` to replace the "
                "table and write a new state",
            ) from error
        low = None if state is None or job.full_refresh else state.cursor_for(tracking.name)
        notes: tuple[str, ...] = ()
        if state is None and not job.full_refresh:
            # Destinations return only a state committed with this target, so a changed
            # target finds none: say why the table loads in full, as a user who renamed it
            # may expect the old cursor to carry over.
            notes = (
                f"no cursor is stored for table {job.target!r} (its first incremental run, or "
                "the target changed): the table is loaded in full",
            )
        elif state is not None and low is not None:
            notes = self.unusable_cursor(state)
            low = None if notes else low
        if low is not None and lookback is not None:
            # Rows committed late sit just below the cursor: read them again (merged by key).
            stored, low = low, lowered_cursor(low, tracking, lookback)
            notes = (
                *notes,
                f"lookback {lookback.text}: rows from {low} are read again (stored cursor "
                f"{stored})",
            )
        rows = ctx.source.query(
            build_high_water_sql(job.schema, job.table, tracking, low, job.filter)
        )
        high, at_or_above, nulls = rows[0] if rows else (None, None, 0)
        window = incremental_window(
            tracking,
            has_key=bool(plan.primary_key),
            low=low,
            high=None if high is None else str(high),
            at_or_above_low=None if at_or_above is None else int(at_or_above),
            filter_sql=job.filter,
            null_rows=int(nulls or 0),
            carry_nulls=job.null_tracking == "carry",
        )
        return dataclasses.replace(window, notes=(*notes, *window.notes))

    def unusable_cursor(self, state: TableState) -> tuple[str, ...]:
        """Why a stored cursor cannot resume this table (then it loads in full), or nothing.

        Merging or appending only the rows after a cursor is right only into the table whose
        rows the cursor describes: another target's, or a table no longer there, would be
        left holding just the latest rows.
        """
        job = self.job
        if not state.belongs_to(job.target):
            return (
                f"the stored cursor is of target {state.target!r}, not {job.target!r} (the "
                "target changed): the table is loaded in full",
            )
        # A state from before states named their target (or a table dropped by hand) can
        # still point at a table that is not there.
        if self.ctx.destination.table_schema(job.target) is None:
            return (
                f"a cursor is stored but table {job.target!r} is not in the destination: "
                "the table is loaded in full",
            )
        writer = foreign_writer(self.ctx.destination, job.target, state.table_id)
        if writer is not None:
            return (
                f"table {job.target!r} was replaced or changed by {writer} after this sync's "
                "last run, so the stored cursor no longer says which rows it holds: the table "
                "is loaded in full",
            )
        return ()

    def check_unique_key(self, plan: TablePlan, where: str | None) -> None:
        job = self.job
        sql = build_duplicate_key_sql(job.schema, job.table, plan.primary_key, where)
        rows = self.ctx.source.query(sql)
        if not rows:
            return
        *values, count = rows[0]
        shown = ", ".join(
            f"{key}={self.shown_key_value(plan, key, value)}"
            for key, value in zip(plan.primary_key, values, strict=True)
        )
        raise ConfigError(
            f"table {job.name}: primary key ({', '.join(plan.primary_key)}) is not unique: "
            f"{field_int(count)} rows have {shown}; merging by it would silently keep only one "
            "of them",
            fix="set primary_key for this table to columns that are unique together (Redshift "
            "does not enforce primary keys)",
        )

    def shown_key_value(self, plan: TablePlan, column: str, value: FieldValue) -> str:
        """A key value fit for messages and run records: a hashed column's value is shown as
        the hash the destination holds, never as its plain text."""
        if column not in plan.hashed:
            return repr(value)
        if value is None:
            return "NULL"
        salt = self.ctx.salt or hash_salt(self.ctx.workspace)
        digest = hash_values(pa.array([str(value)], pa.string()), salt)[0].as_py()
        return f"sha256:{digest} (hashed)"

    def copy(
        self,
        info: TableInfo,
        plan: TablePlan,
        schema: pa.Schema,
        load: Load,
        where: str | None,
        checkpoint: TableCheckpoint | None = None,
        with_read: Callable[[], None] | None = None,
        between_batches: Callable[[], None] | None = None,
    ) -> None:
        """`with_read()` is called once the read's first rows are in (its statement ended),
        `between_batches()` after each batch written."""
        job = self.job
        if self.written_by_workers(info, plan, load, where, checkpoint, with_read):
            return
        batches = self.ctx.source.read(
            info,
            columns=[c.name for c in plan.columns],
            where=where,
            method=job.method,
            progress=self.progress,
            checkpoint=checkpoint,
        )
        first = True
        try:
            for batch in batches:
                self.stop_if_interrupted()
                if first:
                    # The read's statement has ended (its first rows are here): the source's
                    # figures are queried now, while the rows are downloaded and written.
                    if with_read is not None:
                        with_read()
                    debug_pause("after_first_batch_read", job.name, stop=self.ctx.stop)
                load.write(self.shaped(plan, batch))
                if between_batches is not None:
                    between_batches()
                if first:
                    debug_pause("after_first_batch_written", job.name, stop=self.ctx.stop)
                    first = False
        finally:
            # Closing the generator ends the read at once: staged UNLOAD files are deleted.
            batches.close()

    def stop_if_interrupted(self) -> None:
        """Ctrl-C asked the run to stop: this table ends here, before its commit."""
        if self.ctx.stop.is_set():
            raise ShiftsyncError(
                f"table {self.job.name}: the run was interrupted; nothing was committed",
                fix="run the sync again",
            )

    def written_by_workers(
        self,
        info: TableInfo,
        plan: TablePlan,
        load: Load,
        where: str | None,
        checkpoint: TableCheckpoint | None,
        with_read: Callable[[], None] | None = None,
    ) -> bool:
        """Under Ray, a file destination's data files written by the workers, the load
        committing them (executors/ray_files.py); False: the driver is to write the rows."""
        from shiftsync.executors.ray_files import write_on_cluster

        job, first = self.job, [True]

        def progress(rows: int, bytes_read: int) -> None:
            # As the driver-fed loop does between batches: stop, or pause for the crash tests.
            self.stop_if_interrupted()
            self.progress(rows, bytes_read)
            if first[0]:
                first[0] = False
                if with_read is not None:  # a worker's statement has ended: as in `copy`
                    with_read()
                debug_pause("after_first_batch_read", job.name, stop=self.ctx.stop)

        # The salt never leaves the driver: a table with hashed columns is driver-fed.
        shape = dataclasses.replace(self.shape(plan), salt=None)
        files = write_on_cluster(
            self.ctx.source,
            load,
            shape,
            info,
            hashed=bool(plan.hashed),
            columns=[c.name for c in plan.columns],
            where=where,
            method=job.method,
            progress=progress,
            checkpoint=checkpoint,
        )
        if files is None:
            return False
        self.table.note(f"{len(files)} data file(s) written by the cluster's workers")
        return True

    def delete_pass(
        self,
        info: TableInfo,
        plan: TablePlan,
        key: tuple[Column, ...],
        window: Window,
        state: Mapping[str, JsonValue],
        summary: PrefetchedQuery | None = None,
    ) -> None:
        """Rows gone from the source leave the destination (or are marked): engine/deletes.py.
        `summary` holds the source's key summary, queried with the read."""
        job, source = self.job, self.ctx.source

        def read_source_keys() -> tuple[pa.Table, int, int]:
            names = [c.name for c in key]
            batches = list(source.read(info, columns=names, where=job.filter, method=job.method))
            table = pa.Table.from_batches(batches) if batches else pa.table({})
            stats = source.stats  # this thread's last read: this one
            return table, stats.bytes_received or table.nbytes, stats.statements or 1

        report = run_delete_pass(
            info=info,
            policy=job.deletes,
            key=key,
            key_targets=plan.target_key,
            target=job.target,
            state_key=job.state_key,
            state=state,
            where=job.filter,
            window=self.pass_window(window),
            query=summary.query if summary is not None else source.query,
            read_source_keys=read_source_keys,
            destination=self.ctx.destination,
            stop=self.ctx.stop,
        )
        self.table.update(deletes=report.to_json())

    def shaped(self, plan: TablePlan, batch: pa.RecordBatch) -> pa.RecordBatch:
        """A batch as written (see BatchShape)."""
        return self.shape(plan)(batch)

    def shape(self, plan: TablePlan) -> BatchShape:
        """How a batch as read becomes a batch as written, for the driver or a worker."""
        stamp = None
        if self.ctx.sync.load_columns:
            record = self.ctx.record
            started = datetime.fromisoformat(record.started_at.replace("Z", "+00:00"))
            stamp = (record.run_id, started)
        soft = self.job.deletes == "soft"
        return BatchShape(plan, self.base_schema, self.ctx.salt, soft, stamp)

    def restarts(self) -> int:
        """How many times this thread's read began its transaction again (snapshot.restart)."""
        return sum("transaction began again" in note for note in self.ctx.source.stats.fallbacks)

    def source_profile(self, columns: Sequence[ProfileColumn], where: str | None) -> TableProfile:
        sql = build_profile_sql(self.job.schema, self.job.table, columns, where)
        return parse_source_profile(self.ctx.source.query(sql)[0], columns)

    def pass_window(self, window: Window) -> str | None:
        """The incremental window the delete pass's summary also counts (deletes.py)."""
        return window.verify_where if self.job.mode == "incremental" else None

    def key_summary(
        self, info: TableInfo, key: Sequence[Column], window: Window
    ) -> PrefetchedQuery:
        """The delete pass's first statement (the source's key count and checksum), to send
        with the read: when nothing was deleted, the pass then sends none after the commit."""
        sql = build_key_summary_sql(
            info.ref.schema, info.ref.name, key, self.job.filter, window=self.pass_window(window)
        )
        return PrefetchedQuery(sql, self.ctx.source.query, self.ctx.source.share_snapshot())

    def source_figures(self, plan: TablePlan, where: str | None) -> SourceFigures:
        """The source's profile of every column read, over the selection `where`: the
        destination's columns are known only after the commit (`freeze` leaves new ones
        out), so `verify` compares those it holds."""
        columns = [
            ProfileColumn(c, plan.target_of(c.name), hashed=c.name in plan.hashed)
            for c in plan.columns
        ]
        return SourceFigures(
            f"table {self.job.name}",
            columns,
            lambda chunk: self.source_profile(chunk, where),
            self.ctx.source.share_snapshot(),
        )

    def verify(self, figures: SourceFigures, *, live_only: bool = False) -> None:
        """The destination's profile after the commit, against the source's of the read."""
        job, table = self.job, self.table
        source_profile = figures.result()
        present = self.ctx.destination.table_schema(job.target)
        names = set(present.names) if present is not None else set()
        columns = [c for c in figures.columns if c.target in names]
        # In column chunks: one statement of a wide table's profile passes SQL's limits.
        chunks = column_chunks(columns)

        def destination_chunk(chunk: Sequence[ProfileColumn]) -> TableProfile:
            targets = [c.target for c in chunk]
            if live_only:  # soft deletes: the marked rows are not the source's any more
                return self.ctx.destination.profile(job.target, targets, live_only=True)
            return self.ctx.destination.profile(job.target, targets)

        destination_profile = merge_profiles(
            f"destination table {job.target!r}", [destination_chunk(chunk) for chunk in chunks]
        )
        result = compare_profiles(columns, source_profile, destination_profile)
        table.verification = result.to_json()
        raise_for_mismatch(
            job.name,
            job.target,
            result,
            incremental=job.mode == "incremental",
            sync_name=self.ctx.sync_name,
        )
