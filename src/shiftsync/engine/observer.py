"""What a caller gives a run besides the workspace: its options and an observer of progress.

Kept apart from the engine so that the command line can subclass the observer without loading
boto3, pyarrow and DuckDB before it knows which command runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftsync.engine.runs import RunRecord, TableRun
from shiftsync.json_types import JsonObject


@dataclass(frozen=True)
class SyncOptions:
    tables: tuple[str, ...] = ()
    full_refresh: bool = False
    dry_run: bool = False
    verify: bool = True
    # Overrides of the sync's executor and ray_address (`--executor`, `--ray-address`).
    executor: str | None = None
    ray_address: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "tables": list(self.tables),
            "full_refresh": self.full_refresh,
            "dry_run": self.dry_run,
            "verify": self.verify,
            "executor": self.executor,
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


__all__ = ["SyncObserver", "SyncOptions"]
