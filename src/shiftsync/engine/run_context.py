"""What a run carries: the source it reads, its options, its observer, and the shared context.

`Source` is the part of the Redshift source the engine uses (tests inject stand-ins for it);
`RunContext` is what the orchestration and every table's sync share, across worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa
from botocore.credentials import ReadOnlyCredentials

from shiftsync.config import Method, SyncConfig
from shiftsync.destinations.base import Destination
from shiftsync.engine.observer import SyncObserver, SyncOptions
from shiftsync.engine.runs import RunRecord, RunStore
from shiftsync.redshift.catalog import TableInfo, TableRef
from shiftsync.redshift.data_api import StatementListener
from shiftsync.redshift.data_api_results import Row
from shiftsync.redshift.plan import ReadPlan
from shiftsync.redshift.ranged import RangeCheckpoint
from shiftsync.redshift.spend import Spend
from shiftsync.redshift.stats import ReadStats
from shiftsync.redshift.types import Column
from shiftsync.workspace import Workspace

# --- what the engine needs of the source (RedshiftSource satisfies it) ------------------------


class Source(Protocol):
    """The part of `shiftsync.redshift.source.RedshiftSource` the engine uses."""

    @property
    def stats(self) -> ReadStats:
        """The counters of the last read started in the calling thread."""

    def list_tables(
        self, schema_pattern: str = "%", table_pattern: str = "%"
    ) -> Sequence[TableRef]: ...

    def describe(self, ref: TableRef | str) -> TableInfo: ...

    def plan(
        self, info: TableInfo, method: Method = "auto", *, columns: Sequence[Column] | None = None
    ) -> ReadPlan: ...

    def read(
        self,
        info: TableInfo,
        *,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        method: Method = "auto",
        progress: Callable[[int, int], None] | None = None,
        checkpoint: RangeCheckpoint | None = None,
    ) -> Generator[pa.RecordBatch, None, None]: ...

    def query(self, sql: str) -> list[Row]: ...

    def interrupt(self) -> None:
        """Cancel what the source's threads wait on: the run is stopping (Ctrl-C)."""

    def delete_run_staging(self, run_id: str) -> int:
        """Delete what a run staged for UNLOAD (a killed run's files); how many objects."""

    def delete_range_area(self, area: str) -> int:
        """Delete a ranged read's staged files once its table is committed; how many."""

    def watch_statements(self, listener: StatementListener | None) -> None:
        """Tell `listener` of every statement the source submits and of its end."""

    def settle_statements(self, statement_ids: Sequence[str]) -> list[str]:
        """Cancel, or wait out, a killed run's statements still running; those that may be."""

    def end_sessions(self, session_ids: Sequence[str]) -> int:
        """ROLLBACK a killed run's open transactions, so their locks go now."""

    def snapshot(self, what: str, *, shared: bool = False) -> AbstractContextManager[object]:
        """One Redshift transaction for the statements inside the block (a no-op where the
        reads cannot share one, as on Ray workers)."""

    def share_snapshot(self) -> Callable[[], AbstractContextManager[object]]:
        """For a helper thread of the calling thread: a context manager under which the
        helper's statements join the calling thread's snapshot (if it has one)."""

    def set_budget(self, seconds: float | None, owner: str) -> None:
        """No statement starts once the source's statements have run `seconds`."""

    @property
    def spend(self) -> Spend:
        """What the driver's statements have cost so far (ids, seconds, the budget)."""

    def query_unbudgeted(self, sql: str) -> list[Row]:
        """`query`, even once the budget is spent (what the run cost, after its tables)."""

    def connection_credentials(self) -> Callable[[], ReadOnlyCredentials] | None:
        """The assumed role's current keys (for destinations that write S3 as the
        connection), or None when the source has no AWS session."""


@dataclass
class RunContext:
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
    # Told the name of each table that runs no more Redshift statements (engine/cost_watch.py).
    on_reads_done: Callable[[str], None] | None = None

    def reads_done(self, table: str) -> None:
        if self.on_reads_done is not None:
            self.on_reads_done(table)

    def save(self) -> None:
        if self.store is not None:
            with self.lock:
                self.store.save(self.record)
