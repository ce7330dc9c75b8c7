"""What a run carries: the source it reads, its options, its observer, and the shared context.

`Source` is the part of the Redshift source the engine uses (tests inject stand-ins for it);
`_Context` is what the orchestration and every table's sync share, across worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from shiftsync.config import Method, SyncConfig
from shiftsync.destinations.base import Destination
from shiftsync.engine.observer import SyncObserver, SyncOptions
from shiftsync.engine.runs import RunRecord, RunStore
from shiftsync.redshift.types import Column
from shiftsync.workspace import Workspace

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

    def interrupt(self) -> None:
        """Cancel what the source's threads wait on: the run is stopping (Ctrl-C)."""


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
