"""Where a table's ranged read keeps its checkpoint: the table's entry in the run record.

A run that reads a table over key ranges (redshift/ranged.py) saves the progress in its run
record after each range; the next run of the sync finds it in the last run that had the table,
unless that run committed it, and the read resumes from there. Once the table is committed the
staged ranges are deleted and the checkpoint dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

from shiftsync.engine.run_context import RunContext
from shiftsync.engine.runs import RunStore, TableRun
from shiftsync.errors import ShiftsyncError
from shiftsync.json_types import JsonObject, JsonValue


def previous_progress(
    store: RunStore | None, sync_name: str, run_id: str, table: str
) -> JsonObject | None:
    """The ranged-read checkpoint the last earlier run of `table` left, if it did not finish."""
    if store is None:
        return None
    for summary in store.list(sync=sync_name):
        if summary["run_id"] == run_id:
            continue
        try:
            record = store.load(str(summary["run_id"]))
        except ShiftsyncError:
            continue
        for entry in record.tables:
            # A table the run never started (killed before it) tells nothing: look further.
            if entry.table == table and (entry.status != "planned" or entry.ranges):
                return None if entry.status == "ok" else entry.ranges
    return None


class TableCheckpoint:
    """A `RangeCheckpoint` over one table's entry in the run record."""

    def __init__(
        self, ctx: RunContext, table: TableRun, previous: Mapping[str, JsonValue] | None
    ) -> None:
        self.ctx = ctx
        self.table = table
        self.previous = dict(previous) if previous is not None else None
        if previous is not None:
            # Kept in this run's record until the read takes it over: a run that fails
            # before reading must not lose the staged ranges of the one before.
            table.ranges = dict(previous)

    def resume(self) -> Mapping[str, JsonValue] | None:
        return self.previous

    def save(self, progress: Mapping[str, JsonValue]) -> None:
        self.table.ranges = dict(progress)
        self.ctx.save()

    def release(self) -> None:
        """The table is committed: delete its staged ranges, and drop the checkpoint."""
        progress = self.table.ranges
        if progress is None:
            return
        area = progress.get("area")
        try:
            if isinstance(area, str):
                self.ctx.source.delete_range_area(area)
        except ShiftsyncError as error:
            self.table.note(
                f"the staged key ranges under {area} could not be deleted ({error.message}); "
                "`shiftsync cleanup` removes them"
            )
        self.table.ranges = None
