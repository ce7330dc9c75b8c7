"""Table reads as Ray tasks: a worker assumes the role, reads and decodes; batches stream back.

`RaySource` is the engine's `Source` with `read` sent to the cluster; listing, describing,
planning and the small queries stay on the driver (they are a few statements each). Each
worker assumes the connection's role itself, with the workspace's external ID: no credential
crosses the cluster, only the role's ARN and the ID, and the worker's own platform identity
(its instance role, or the AWS_* variables the node was started with) must be trusted by the
role, as the driver's is.

A big table's key ranges are tasks of their own. With a checkpoint (a sync's table), the driver
plans them from it (ranged.py), each task reports where its UNLOAD staged before its rows, and
the driver alone saves that in the run record: a failed or killed run is resumed from there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol, TypeAlias, TypedDict, cast

import pyarrow as pa
from botocore.credentials import ReadOnlyCredentials

from shiftsync.config import Method, RedshiftServerlessConfig
from shiftsync.destinations.file_sink import FileSink
from shiftsync.errors import ConfigError, ShiftsyncError
from shiftsync.executors.ray_files import FilesReport, Shape, write_parts, writer_name
from shiftsync.executors.ray_limiter import ActorLimiter, BucketsActor, cluster_buckets
from shiftsync.redshift.catalog import TableInfo, TableRef
from shiftsync.redshift.data_api import StatementListener, quota_scope
from shiftsync.redshift.data_api_results import Row
from shiftsync.redshift.plan import ReadPlan
from shiftsync.redshift.ranged import RangeCheckpoint, RangedProgress, RangeRead
from shiftsync.redshift.source import RedshiftSource
from shiftsync.redshift.spend import Spend
from shiftsync.redshift.stats import ReadStats
from shiftsync.redshift.types import Column

if TYPE_CHECKING:
    from ray import ObjectRef

COUNTERS: Final = (
    "statements",
    "retries",
    "pages",
    "rows",
    "bytes_received",
    "chunks",
    "parts",
    "staged_deleted",
    "cancelled",
)
# How long the cluster's address may take to answer before the run stops with an error.
CONNECT_TIMEOUT_SECONDS: Final = 10.0
RAY_FIX: Final = (
    "start the cluster (`ray start --head --node-ip-address 127.0.0.1`) or correct "
    "executor.address in shiftsync.yaml (or --ray-address)"
)


@dataclass(frozen=True)
class ReadTask:
    """Everything a worker needs to read one table: no secret among it."""

    connection: RedshiftServerlessConfig
    external_id: str
    run_id: str
    info: TableInfo
    columns: tuple[str, ...] | None
    where: str | None
    method: Method
    # The cluster's Data API rate limit (ray_limiter.py); None: the worker's machine-wide one
    # (`rate_limits.shared: false` keeps each process to its own).
    limiter: BucketsActor | None = None
    # One key range of a checkpointed ranged read (ranged.py): the task stages it (or finds an
    # earlier run's files), reports where, then streams its rows.
    part: RangeRead | None = None
    # Where the task writes its rows as data files (ray_files.py), shaped by `shape`, in its
    # folder `writer` of the load's version; None: its batches stream to the driver.
    sink: FileSink | None = None
    shape: Shape | None = None
    writer: str = ""


class WorkerStats(TypedDict):
    """A worker read's counters, sent back as plain values (ReadStats holds a lock)."""

    node: str
    method: str
    fallbacks: list[str]
    counters: dict[str, int]


class StagedReport(TypedDict):
    """Where a range task's UNLOAD staged its files, sent before its rows: the driver keeps it
    in the checkpoint (workers never write the run record)."""

    index: int
    prefix: str
    rows: int


# What a worker read yields: (a range's staging,) its batches (or, when it writes them, each
# batch's rows and bytes, then its files), then its counters.
WorkerItem: TypeAlias = (
    tuple[Literal["batch"], pa.RecordBatch]
    | tuple[Literal["staged"], StagedReport]
    | tuple[Literal["written"], tuple[int, int]]
    | tuple[Literal["files"], FilesReport]
    | tuple[Literal["stats"], WorkerStats]
)


class StreamedItems(Protocol):
    """A streaming task's answers (Ray's ObjectRefGenerator): one object ref per item."""

    def __iter__(self) -> Iterator[ObjectRef[WorkerItem]]: ...


def read_on_worker(task: ReadTask) -> Iterator[WorkerItem]:
    """Runs inside the Ray worker: ("batch", RecordBatch)… then ("stats", ReadStats)."""
    from shiftsync.aws.session import AssumedRoleSession

    connection = task.connection
    session = AssumedRoleSession(
        connection.role_arn,
        task.external_id,
        connection.region,
        duration_seconds=connection.session_duration_seconds,
    )
    limiter = ActorLimiter(task.limiter) if task.limiter is not None else None
    source = RedshiftSource(connection, session, run_id=task.run_id, limiter=limiter)
    if task.part is not None:
        staged = source.stage_range(task.info, task.part)
        staging: StagedReport = {
            "index": staged.index,
            "prefix": staged.prefix,
            "rows": staged.rows,
        }
        yield "staged", staging
        batches = source.stream_range(task.info, staged, columns=task.columns)
    else:
        batches = source.read(task.info, columns=task.columns, where=task.where, method=task.method)
    import ray

    node = ray.get_runtime_context().get_node_id()
    if task.sink is not None and task.shape is not None:
        yield from write_parts(
            iter(batches), task.sink, task.shape, task.writer, node, session.frozen_credentials
        )
    else:
        for batch in batches:
            yield "batch", batch
    stats = source.stats  # holds a lock: sent back as plain values
    report: WorkerStats = {
        "node": node,
        "method": stats.method,
        "fallbacks": list(stats.fallbacks),
        "counters": {name: int(getattr(stats, name)) for name in COUNTERS},
    }
    yield "stats", report


def node_ip_for(address: str) -> str | None:
    """127.0.0.1 when the cluster is on this machine's loopback; else Ray's own choice."""
    host = address.removeprefix("ray://").rpartition(":")[0].strip("[]")
    return "127.0.0.1" if host in {"127.0.0.1", "localhost"} else None


def ray_address(configured: str | None) -> str:
    """The cluster to use: the configured address, else RAY_ADDRESS; refused when neither."""
    address = configured or os.environ.get("RAY_ADDRESS")
    if not address:
        raise ConfigError(
            "executor: ray needs the address of a Ray cluster",
            fix="set ray_address: '<head-host>:6379' on the sync (or --ray-address, or "
            "RAY_ADDRESS)",
        )
    return address


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """Fail at once, with a fix, when nothing answers at `host:port`."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(
            f"the Ray address {address!r} is not host:port",
            fix="give the head node's address, e.g. executor: {type: ray, address: "
            "'127.0.0.1:6379'}",
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as error:
        raise ConfigError(
            f"the Ray cluster at {address} cannot be reached: {error.strerror or error}",
            fix=RAY_FIX,
        ) from error


class RaySource:
    """A Source whose reads run on a Ray cluster (see the module docstring)."""

    def __init__(self, local: RedshiftSource, external_id: str, address: str) -> None:
        check_reachable(address)
        import ray

        if not ray.is_initialized():
            # The driver joins as 127.0.0.1, so that no part of the cluster's traffic from
            # here leaves the loopback of a one-machine cluster (Ray would pick the LAN address).
            ray.init(
                address=address,
                logging_level=logging.ERROR,
                log_to_driver=False,
                _node_ip_address=node_ip_for(address),
            )
        self._ray = ray
        self._remote = ray.remote(num_returns="streaming", max_retries=0)(read_on_worker)
        # AWS counts the quotas per account and region, not per machine: the driver and every
        # worker take their Data API tokens from one actor of the cluster.
        self.limiter: BucketsActor | None = None
        if local.connection.rate_limits.shared:
            scope = quota_scope(local.connection)
            self.limiter = cluster_buckets(scope.account, scope.region, scope.rates, scope.endpoint)
            local.api.limiter = ActorLimiter(self.limiter)
        self.local = local
        self.external_id = external_id
        self._local = threading.local()
        self._running: set[StreamedItems] = set()
        self._lock = threading.Lock()
        # The cluster nodes whose workers read a table of this run.
        self.nodes: set[str] = set()
        # What the workers reported writing in this run (ray_files.py), every table's.
        self.written: list[FilesReport] = []

    @property
    def stats(self) -> ReadStats:
        found: ReadStats | None = getattr(self._local, "stats", None)
        return found if found is not None else ReadStats()

    def list_tables(self, schema_pattern: str = "%", table_pattern: str = "%") -> list[TableRef]:
        return self.local.list_tables(schema_pattern, table_pattern)

    def describe(self, ref: TableRef | str) -> TableInfo:
        return self.local.describe(ref)

    def plan(
        self, info: TableInfo, method: Method = "auto", *, columns: Sequence[Column] | None = None
    ) -> ReadPlan:
        return self.local.plan(info, method, columns=columns)

    def query(self, sql: str) -> list[Row]:
        return self.local.query(sql)

    def delete_run_staging(self, run_id: str) -> int:
        return self.local.delete_run_staging(run_id)

    def delete_range_area(self, area: str) -> int:
        return self.local.delete_range_area(area)

    def watch_statements(self, listener: StatementListener | None) -> None:
        # Only the driver's statements (catalog, counts): the workers' run in other processes.
        self.local.watch_statements(listener)

    def settle_statements(self, statement_ids: Sequence[str]) -> list[str]:
        return self.local.settle_statements(statement_ids)

    def end_sessions(self, session_ids: Sequence[str]) -> int:
        return self.local.end_sessions(session_ids)

    def snapshot(self, what: str, *, shared: bool = False) -> AbstractContextManager[None]:
        # Workers read in sessions of their own: no transaction spans them (docs/ray.md).
        return contextlib.nullcontext()

    def share_snapshot(self) -> Callable[[], AbstractContextManager[None]]:
        return self.local.share_snapshot()

    def set_budget(self, seconds: float | None, owner: str) -> None:
        self.local.set_budget(seconds, owner)

    @property
    def spend(self) -> Spend:
        return self.local.spend

    def query_unbudgeted(self, sql: str) -> list[Row]:
        return self.local.query_unbudgeted(sql)

    def connection_credentials(self) -> Callable[[], ReadOnlyCredentials]:
        return self.local.connection_credentials()

    def interrupt(self) -> None:
        with self._lock:
            running = list(self._running)
        for generator in running:
            # The worker's task is interrupted; its read's own cleanup cancels the statement.
            self._ray.cancel(generator)
        self.local.interrupt()

    def read(
        self,
        info: TableInfo,
        *,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        method: Method = "auto",
        progress: Callable[[int, int], None] | None = None,
        checkpoint: RangeCheckpoint | None = None,
    ) -> Generator[pa.RecordBatch, None, None]:
        tasks, stats, ranged = self._tasks(info, columns, where, method, checkpoint)
        return self._stream(tasks, stats, progress, info.ref, ranged)

    def write_files(
        self,
        info: TableInfo,
        sink: FileSink,
        shape: Shape,
        *,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        method: Method = "auto",
        progress: Callable[[int, int], None] | None = None,
        checkpoint: RangeCheckpoint | None = None,
    ) -> list[FilesReport]:
        """The table read as `read` would, each task writing its rows into `sink` (see
        ray_files.py); their reports, once every task has ended well. A failure raises."""
        planned, stats, ranged = self._tasks(info, columns, where, method, checkpoint)
        tasks = [
            dataclasses.replace(task, sink=sink, shape=shape, writer=writer_name(index))
            for index, task in enumerate(planned)
        ]
        reports: list[FilesReport] = []
        for _ in self._stream(tasks, stats, progress, info.ref, ranged, reports):
            pass  # the tasks send no rows, only their progress and files
        with self._lock:
            self.written.extend(reports)
        return reports

    def _tasks(
        self,
        info: TableInfo,
        columns: Sequence[str] | None,
        where: str | None,
        method: Method,
        checkpoint: RangeCheckpoint | None,
    ) -> tuple[list[ReadTask], ReadStats, RangedRead | None]:
        """The tasks that read the table (one, or one per key range), its counters, and a
        checkpointed ranged read's progress."""
        stats = ReadStats(method=self.plan(info, method).method)
        self._local.stats = stats
        picked = tuple(columns) if columns is not None else None
        if stats.method == "unload" and checkpoint is not None:
            started = self.local.start_ranges(
                info, columns=columns, where=where, checkpoint=checkpoint, stats=stats
            )
            if started is not None:
                state, parts = started
                tasks = [self._task(info, picked, where, "unload", part) for part in parts]
                stats.add(chunks=len(tasks))
                stats.note(f"read in {len(tasks)} key ranges, each a task of the cluster")
                return tasks, stats, RangedRead(state, checkpoint)
        conditions: list[str | None] = [where]
        if stats.method == "unload":
            # No checkpoint to keep them in (a delete pass's read of the keys): the ranges are
            # tasks all the same, and the next such read reads them all again.
            conditions = [*self.local.unload_ranges(info, where=where, stats=stats)] or [where]
        tasks = [
            self._task(info, picked, condition, "unload" if len(conditions) > 1 else method)
            for condition in conditions
        ]
        if len(tasks) > 1:
            stats.add(chunks=len(tasks))
            stats.note(f"read in {len(tasks)} key ranges, each a task of the cluster")
        return tasks, stats, None

    def _task(
        self,
        info: TableInfo,
        columns: tuple[str, ...] | None,
        where: str | None,
        method: Method,
        part: RangeRead | None = None,
    ) -> ReadTask:
        return ReadTask(
            self.local.connection,
            self.external_id,
            self.local.run_id,
            info,
            columns,
            where,
            method,
            self.limiter,
            part,
        )

    def _stream(
        self,
        tasks: Sequence[ReadTask],
        stats: ReadStats,
        progress: Callable[[int, int], None] | None,
        ref: TableRef,
        ranged: RangedRead | None = None,
        reports: list[FilesReport] | None = None,
    ) -> Generator[pa.RecordBatch, None, None]:
        """The tasks' batches as they come, whichever task sends them; the first failure ends
        the read, cancels the other tasks and, once they have ended, deletes what any of them
        left staged for the table, but for the ranges checkpointed in `ranged` (the next run
        resumes from them)."""
        # A task of num_returns="streaming" answers with an ObjectRefGenerator; Ray's stubs
        # type the call as one ObjectRef of the function's result.
        generators = [cast("StreamedItems", self._remote.remote(task)) for task in tasks]
        with self._lock:
            self._running.update(generators)
        answers: queue.Queue[Answer] = queue.Queue(maxsize=ANSWERS_WAITING)
        stop = threading.Event()
        pumps = [
            threading.Thread(
                target=self._pump, args=(g, answers, stop), name="ray-part", daemon=True
            )
            for g in generators
        ]
        for pump in pumps:
            pump.start()
        finished = False
        try:
            for item in _answers(answers, len(pumps)):
                batch = self._take(item, stats, ranged, reports)
                if batch is None:
                    if item[0] == "written" and progress is not None:
                        progress(*item[1])
                    continue
                if progress is not None:
                    progress(batch.num_rows, batch.nbytes)
                yield batch
            finished = True
        finally:
            stop.set()
            for generator in generators:
                # Ended tasks ignore it; running ones are interrupted and clean up after them.
                self._ray.cancel(generator)
            # A pump ends when its task has ended: after that no task of this read writes.
            while any(pump.is_alive() for pump in pumps):
                _drain(answers)
                for pump in pumps:
                    pump.join(timeout=0.05)
            with self._lock:
                self._running.difference_update(generators)
            if not finished:
                # A task interrupted between its UNLOAD and its own cleanup leaves its files;
                # a range task's are kept if the checkpoint names them, else deleted here.
                with contextlib.suppress(ShiftsyncError):
                    if ranged is not None:
                        self.local.delete_unfinished_ranges(ranged.state)
                    else:
                        self.local.delete_table_staging(self.local.run_id, ref)

    def _pump(
        self, generator: StreamedItems, answers: queue.Queue[Answer], stop: threading.Event
    ) -> None:
        """One task's items into the shared queue, then its end (or its error)."""
        try:
            for ref in generator:
                if stop.is_set():
                    return
                answers.put(("item", self._ray.get(ref)))
        except BaseException as error:  # handed to the reading thread, which raises it
            answers.put(("error", error))
            return
        answers.put(("end", None))

    def _take(
        self,
        item: WorkerItem,
        stats: ReadStats,
        ranged: RangedRead | None,
        reports: list[FilesReport] | None,
    ) -> pa.RecordBatch | None:
        """A batch; or None once a range's staging is checkpointed, a task's files are kept
        in `reports`, or a task's counters are added to the table's."""
        if item[0] == "batch":
            return item[1]
        if item[0] == "written":
            return None
        if item[0] == "files":
            if reports is not None:
                reports.append(item[1])
            return None
        if item[0] == "staged":
            if ranged is not None:
                ranged.finished(item[1])
            return None
        report = item[1]
        stats.add(**report["counters"])
        stats.method = report["method"] or stats.method
        with self._lock:
            self.nodes.add(report["node"])
        for fallback in report["fallbacks"]:
            stats.note(fallback)
        return None


@dataclass(frozen=True)
class RangedRead:
    """A checkpointed ranged read on the driver: its progress, and where it is kept."""

    state: RangedProgress
    checkpoint: RangeCheckpoint

    def finished(self, report: StagedReport) -> None:
        """A range task's UNLOAD has staged its files: saved at once (the run may be killed)."""
        if self.state.finished(report["index"], report["prefix"], report["rows"]):
            self.checkpoint.save(self.state.to_json())


# What a pump thread hands the reading thread: an item of its task, its end, or its error.
Answer: TypeAlias = (
    tuple[Literal["item"], WorkerItem]
    | tuple[Literal["end"], None]
    | tuple[Literal["error"], BaseException]
)
# Items the pumps may hold ahead of the reader: a bound on the batches in memory at once.
ANSWERS_WAITING: Final = 4


def _answers(answers: queue.Queue[Answer], tasks: int) -> Iterator[WorkerItem]:
    """Every task's items, until each has ended; a task's error is raised here."""
    ended = 0
    while ended < tasks:
        answer = answers.get()
        if answer[0] == "item":
            yield answer[1]
        elif answer[0] == "end":
            ended += 1
        else:
            raise answer[1]


def _drain(answers: queue.Queue[Answer]) -> None:
    with contextlib.suppress(queue.Empty):
        while True:
            answers.get_nowait()


__all__ = [
    "RAY_FIX",
    "RaySource",
    "ReadTask",
    "check_reachable",
    "ray_address",
    "read_on_worker",
]
