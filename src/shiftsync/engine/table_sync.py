"""One table of a run, start to end: plan, window, read, load, commit with state, verify.

The run's orchestration (engine/sync.py) gives each table a `_TableSync` in a worker thread;
the module docstring there says why nothing is lost or doubled whatever moment a run stops at.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pyarrow as pa

from shiftsync.destinations.base import Load, LoadMode, LoadSpec
from shiftsync.engine.pause import debug_pause
from shiftsync.engine.run_context import _Context
from shiftsync.engine.runs import TableRun
from shiftsync.engine.selection import TableJob, TablePlan, load_schema, resolve_table, shape_batch
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
from shiftsync.errors import ConfigError, ShiftsyncError
from shiftsync.redshift.catalog import TableInfo


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


def _ref(job: TableJob) -> Any:
    from shiftsync.redshift.catalog import TableRef

    return TableRef(job.schema, job.table)


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
            self.table.update(rows=self.rows, bytes=self.bytes)
        self.ctx.observer.table_progress(self.table, self.rows, self.bytes)

    def run(self) -> None:
        ctx, job, table = self.ctx, self.job, self.table
        source, destination = ctx.source, ctx.destination
        info = source.describe(_ref(job))
        plan = resolve_table(
            job, info.columns, info.primary_key, normalize=ctx.sync.normalize_names
        )
        window = self.window(plan)
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
            debug_pause("before_commit", job.name, stop=self.ctx.stop)
            state = TableState(
                mode=job.mode,
                cursor=window.cursor_to,
                tracking_field=plan.tracking.name if plan.tracking else None,
                run_id=ctx.record.run_id,
                target=job.target,
            )
            outcome = load.commit(state.to_json())
        except BaseException:
            load.abort()
            raise
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
        debug_pause("before_verify", job.name, stop=self.ctx.stop)
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
        state = parse_state(where, ctx.destination.read_state(job.state_key, job.target))
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
        rows = ctx.source.query(
            build_high_water_sql(job.schema, job.table, tracking, low, job.filter)
        )
        high, at_or_above = rows[0] if rows else (None, None)
        window = incremental_window(
            tracking,
            has_key=bool(plan.primary_key),
            low=low,
            high=None if high is None else str(high),
            at_or_above_low=None if at_or_above is None else int(at_or_above),
            filter_sql=job.filter,
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
        return ()

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
                    debug_pause("after_first_batch_read", job.name, stop=self.ctx.stop)
                load.write(shape_batch(plan, batch, schema, self.ctx.salt))
                if first:
                    debug_pause("after_first_batch_written", job.name, stop=self.ctx.stop)
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
