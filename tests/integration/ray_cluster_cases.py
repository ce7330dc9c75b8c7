"""`executor: ray`: table reads as tasks on a real two-node Ray cluster on 127.0.0.1.

Not collected on its own: test_ray_executor.py runs this module in a network namespace of its
own, where the only interface is the loopback (Ray's servers bind every interface of the node).
The cluster is started with `ray start --block` (a head and a second node, one CPU each) in
its own process group, with the stand-in's AWS_* variables as a real node would have its
instance role; it is stopped by signalling that group, never with `ray stop` (which would end
every Ray process of the machine). Each node has a cache folder of its own, as two machines
would: the machine-wide Data API rate limit (a file there) is not shared between them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from bench.workspaces import standin_connection
from shiftsync.destinations.delta import DeltaDestination
from shiftsync.destinations.iceberg import IcebergDestination
from shiftsync.destinations.parquet import ParquetDestination
from shiftsync.destinations.registry import DestinationContext, create_destination
from shiftsync.engine.runs import RunRecord, RunStore
from shiftsync.engine.sync import run_sync
from shiftsync.errors import ConfigError, ShiftsyncError
from shiftsync.executors.ray_source import RaySource, check_reachable
from shiftsync.local.data_api import call_log
from shiftsync.local.data_api.statements import Statement, StatementFailure
from shiftsync.local.postgres import free_port
from shiftsync.local.standin import LAKE_BUCKET, StandIn, StandInInfo
from shiftsync.redshift.rate_limit import BURST_SECONDS
from shiftsync.redshift.source import RedshiftSource
from shiftsync.workspace import Workspace
from tests.integration.test_ranged_unload import unloads_of
from tests.integration.test_sync import (
    assert_same_table,
    make_workspace,
    open_destination,
)
from tests.support import (
    wait_until,
    write_external_id,
    write_sync_config,
)
from tests.support_sync import cli_env, staged_keys, start_paused

pytest.importorskip("ray", reason="the ray extra (pip install 'shiftsync[ray]') is not installed")
RAY = Path(sys.executable).with_name("ray")


def start_node(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(RAY), "start", "--block", "--disable-usage-stats", "--num-cpus=1", *args],
        env={**env, "XDG_CACHE_HOME": str(log.with_suffix(".cache"))},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_nodes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every node at once (each takes seconds to wind down), then SIGKILL to any
    still running after 5 s."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def live_nodes(ray: Any) -> int:
    return sum(1 for node in ray.nodes() if node["Alive"])


def wait_for_nodes(
    address: str, count: int, nodes: list[subprocess.Popen[bytes]], folder: Path
) -> None:
    """Until the cluster has `count` live nodes: a node that is still joining gets no task."""
    import ray

    ray.init(
        address=address,
        logging_level=logging.ERROR,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )

    def joined() -> bool:
        for node in nodes:
            assert node.poll() is None, (folder / "worker.log").read_text()
        return live_nodes(ray) >= count

    wait_until(joined, what=f"the Ray cluster reaching {count} nodes", seconds=180, interval=0.5)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory, info: StandInInfo) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("ray")
    # Ray's socket paths must stay short: a temp dir of its own under /tmp.
    temp = Path(f"/tmp/ss-ray-{os.getpid()}")
    env = {**os.environ, **info.environment(), "RAY_USAGE_STATS_ENABLED": "0"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = start_node(
        [
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
        ],
        env,
        folder / "head.log",
    )
    nodes = [head]
    try:

        def head_up() -> bool:
            try:
                check_reachable(address, timeout=1)
            except ConfigError:
                assert head.poll() is None, (folder / "head.log").read_text()
                return False
            return True

        wait_until(head_up, what="the Ray head coming up", seconds=120, interval=0.5)
        nodes.append(
            start_node(
                [f"--address={address}", "--node-ip-address=127.0.0.1"],
                env,
                folder / "worker.log",
            )
        )
        wait_for_nodes(address, 2, nodes, folder)
        yield address
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        stop_nodes(list(reversed(nodes)))
        shutil.rmtree(temp, ignore_errors=True)


TICKIT_TABLES = ("sales", "listing", "venue", "category")


def tickit_workspace(folder: Path, info: StandInInfo, kind: str, **sync: Any) -> Workspace:
    tables = [
        {"include": "public.sales", "method": "unload"},
        {"include": "public.listing", "method": "data_api"},
        "public.venue",
        "public.category",
    ]
    destinations: dict[str, dict[str, Any]] = {
        "duckdb": {"type": "duckdb", "path": "out.duckdb"},
        "parquet": {"type": "parquet", "path": "lake"},
        "iceberg": {"type": "iceberg", "warehouse": "warehouse"},
        "delta": {"type": "delta", "path": "delta"},
    }
    return make_workspace(folder, info, destinations[kind], tables, **sync)


def pointer_of(lake: Path, table: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((lake / table / "_shiftsync.json").read_text())
    return document


def lake_files(destination: Any, name: str) -> tuple[list[str], object, int]:
    """A lake table's data files (as the workers report them), its schema in the format's
    own terms (Iceberg: with field ids), and how many commits it has."""
    if isinstance(destination, IcebergDestination):
        table = destination.open_table(name)
        assert table is not None
        paths = [task.file.file_path for task in table.scan().plan_files()]
        return paths, table.schema(), len(table.snapshots())
    assert isinstance(destination, DeltaDestination)
    delta = DeltaTable(destination.uri(name), storage_options=destination.options())
    paths = [uri.rsplit("/", 1)[-1] for uri in delta.file_uris()]
    return paths, delta.schema(), delta.version() + 1


def assert_lake_written_by_workers(
    tmp_path: Path, info: StandInInfo, kind: str, workspace: Workspace, source: RaySource
) -> None:
    """Every data file of every table's one commit written by a worker process, on both
    nodes; the tables' schemas and rows those the driver writes in one process."""
    writers = {f.path: (r["node"], r["pid"]) for r in source.written for f in r["files"]}
    alone = tickit_workspace(tmp_path / "alone", info, kind)
    record = run_sync(alone, "main")
    assert record.status == "ok", [(t.table, t.error) for t in record.tables]
    by_driver, by_workers = open_destination(alone), open_destination(workspace)
    try:
        for name in TICKIT_TABLES:
            paths, schema, commits = lake_files(by_workers, name)
            _, expected, _ = lake_files(by_driver, name)
            assert commits == 1
            assert paths
            assert {writers[path][1] for path in paths} & {os.getpid()} == set()
            assert schema == expected
            driver_schema = by_driver.table_schema(name)
            assert driver_schema is not None
            assert driver_schema.equals(by_workers.table_schema(name), check_metadata=True)
            key = driver_schema.names[0]
            assert (
                by_workers.read_table(name)
                .sort_by(key)
                .equals(by_driver.read_table(name).sort_by(key))
            )
    finally:
        by_driver.close()
        by_workers.close()
    assert {node for node, _ in writers.values()} == source.nodes


# Iceberg: the workers write a local warehouse; it adds about 7 s to the cluster cases.
# Delta: the same worker-written files as Iceberg's, about 8 s (README.md, Tests).
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("duckdb", marks=pytest.mark.slow),
        "parquet",
        "iceberg",
        pytest.param("delta", marks=pytest.mark.slow),
    ],
)
def test_a_two_node_cluster_syncs_tickit_equal_to_the_source(
    tmp_path: Path, info: StandInInfo, admin: psycopg.Connection[Any], ray_cluster: str, kind: str
) -> None:
    """Into DuckDB the driver writes the batches the workers stream; into Parquet, Iceberg and
    Delta the workers write the data files (each reports its node and pid) and the driver commits
    once: the files are those the driver writes in one process, types and rows."""
    workspace = tickit_workspace(
        tmp_path / kind, info, kind, executor="ray", ray_address=ray_cluster
    )
    source = RaySource(RedshiftSource.from_workspace(workspace), workspace.external_id, ray_cluster)
    record = run_sync(workspace, "main", source=source)
    assert record.status == "ok", [(t.table, t.error) for t in record.tables]
    assert {t.verification["status"] for t in record.tables if t.verification} == {"ok"}
    assert len(source.nodes) == 2, "both nodes of the cluster read tables"
    written = open_destination(workspace)
    try:
        for name in TICKIT_TABLES:
            assert_same_table(admin, written, name, name)
    finally:
        written.close()
    if kind == "duckdb":
        assert source.written == []
        return
    for table in record.tables:
        assert any("written by the cluster's workers" in note for note in table.notes), table
    if kind in ("iceberg", "delta"):
        assert_lake_written_by_workers(tmp_path, info, kind, workspace, source)
        return
    # Every data file of every table was written by a worker process, on both nodes.
    writers = {f.path: (r["node"], r["pid"]) for r in source.written for f in r["files"]}
    lake = tmp_path / kind / "lake"
    for name in TICKIT_TABLES:
        files = pointer_of(lake, name)["files"]
        assert files
        assert {writers[path][1] for path in files} & {os.getpid()} == set()
    assert {node for node, _ in writers.values()} == source.nodes
    # The same sync in one process (the driver writes): the same files, types and rows.
    alone = tickit_workspace(tmp_path / "alone", info, kind)
    record = run_sync(alone, "main")
    assert record.status == "ok", [(t.table, t.error) for t in record.tables]
    by_driver = open_destination(alone)
    by_workers = open_destination(workspace)
    try:
        for name in TICKIT_TABLES:
            driver_schema = by_driver.table_schema(name)
            assert driver_schema is not None
            assert driver_schema.equals(by_workers.table_schema(name), check_metadata=True)
            file_schemas = {
                pq.read_schema(lake / name / path).to_string(show_schema_metadata=True)
                for path in pointer_of(lake, name)["files"]
            }
            (driver_file,) = pointer_of(tmp_path / "alone" / "lake", name)["files"][:1]
            assert file_schemas == {
                pq.read_schema(tmp_path / "alone" / "lake" / name / driver_file).to_string(
                    show_schema_metadata=True
                )
            }
            key = driver_schema.names[0]
            assert (
                by_workers.read_table(name)
                .sort_by(key)
                .equals(by_driver.read_table(name).sort_by(key))
            )
    finally:
        by_driver.close()
        by_workers.close()


@pytest.mark.slow  # the same worker-written files as TICKIT into Parquet, on S3 (README.md, Tests)
def test_the_workers_write_a_parquet_dataset_in_s3_as_the_connections_role(
    tmp_path: Path, info: StandInInfo, admin: psycopg.Connection[Any], ray_cluster: str
) -> None:
    """An S3 root written as the source connection's role (the default): each worker writes
    its files with its own session of that role, the driver commits; nothing but the role's
    ARN and external ID travels with a task."""
    root = f"s3://{LAKE_BUCKET}/ray-{uuid.uuid4().hex[:10]}"
    workspace = make_workspace(
        tmp_path,
        info,
        {"type": "parquet", "path": root},
        ["public.venue", "public.category"],
        executor="ray",
        ray_address=ray_cluster,
    )
    local = RedshiftSource.from_workspace(workspace)
    source = RaySource(local, workspace.external_id, ray_cluster)
    record = run_sync(workspace, "main", source=source)
    assert record.status == "ok", [(t.table, t.error) for t in record.tables]
    assert {t.verification["status"] for t in record.tables if t.verification} == {"ok"}
    _, config = workspace.config.destination("dest")
    context = DestinationContext(
        workspace.folder, connection_credentials=local.connection_credentials()
    )
    written = create_destination(config, context)
    assert isinstance(written, ParquetDestination)
    writers = {f.path: r["pid"] for r in source.written for f in r["files"]}
    try:
        for name in ("venue", "category"):
            assert_same_table(admin, written, name, name)
            pointer = written.read_pointer(written.filesystem(), name)
            assert pointer is not None
            assert pointer.files
            assert {writers[path] for path in pointer.files} & {os.getpid()} == set()
    finally:
        written.close()


@pytest.mark.slow  # the same worker-written files as TICKIT into a lake, on S3 (README.md, Tests)
@pytest.mark.parametrize("kind", ["iceberg", "delta"])
def test_the_workers_write_a_lake_in_s3_as_the_connections_role(
    tmp_path: Path, info: StandInInfo, admin: psycopg.Connection[Any], ray_cluster: str, kind: str
) -> None:
    """An S3 warehouse or root written as the source connection's role (the default): each
    worker writes its data files with its own session of that role, the driver commits once."""
    warehouse = f"s3://{LAKE_BUCKET}/ray-{kind}-{uuid.uuid4().hex[:10]}"
    destination: dict[str, Any] = (
        {"type": "iceberg", "warehouse": warehouse}
        if kind == "iceberg"
        else {"type": "delta", "path": warehouse, "locking": "conditional_put"}
    )
    workspace = make_workspace(
        tmp_path,
        info,
        destination,
        ["public.venue", "public.category"],
        executor="ray",
        ray_address=ray_cluster,
    )
    local = RedshiftSource.from_workspace(workspace)
    source = RaySource(local, workspace.external_id, ray_cluster)
    record = run_sync(workspace, "main", source=source)
    assert record.status == "ok", [(t.table, t.error) for t in record.tables]
    assert {t.verification["status"] for t in record.tables if t.verification} == {"ok"}
    for table in record.tables:
        assert any("written by the cluster's workers" in note for note in table.notes), table
    _, config = workspace.config.destination("dest")
    context = DestinationContext(
        workspace.folder, connection_credentials=local.connection_credentials()
    )
    written = create_destination(config, context)
    writers = {f.path: r["pid"] for r in source.written for f in r["files"]}
    try:
        for name in ("venue", "category"):
            assert_same_table(admin, written, name, name)
            paths, _, commits = lake_files(written, name)
            assert commits == 1
            assert paths
            if kind == "iceberg":  # Delta's paths are relative to the table's folder
                assert all(path.startswith(f"{warehouse}/") for path in paths)
            assert {writers[path] for path in paths} & {os.getpid()} == set()
    finally:
        written.close()


def test_the_sync_setting_alone_runs_the_reads_on_the_cluster(
    tmp_path: Path, info: StandInInfo, ray_cluster: str
) -> None:
    workspace = make_workspace(
        tmp_path / "ws",
        info,
        {"type": "duckdb", "path": "out.duckdb"},
        ["public.category"],
        executor="ray",
        ray_address=ray_cluster,
    )
    record = run_sync(workspace, "main")
    assert record.status == "ok", [(t.table, t.error) for t in record.tables]


# GetStatementResult calls per second for the rate-limit case, and the arrival jitter allowed
# (as in test_rate_limit.py: the stand-in counts a call when it arrives, the limiter when sent).
RATE = 2.0
ARRIVAL_JITTER = 1.0


@pytest.mark.slow  # rate-limited on purpose: about 10 s (README.md, Tests)
def test_the_driver_and_every_worker_share_one_data_api_rate_limit(
    tmp_path: Path, info: StandInInfo, ray_cluster: str
) -> None:
    """AWS counts the quotas per account and region: the two nodes (two machines, two cache
    folders) and the driver take their tokens from the cluster's one actor, and the stand-in
    never answers more GetStatementResult calls than the configured rate allows. (Tried with
    each process on its own bucket: 8 calls in 2 s against 7 allowed, 15 in 5 s against 13.)"""
    tables = ["category", "venue", "date", "event", "users", "listing"]
    write_external_id(tmp_path, info.external_id)
    write_sync_config(
        tmp_path,
        standin_connection(info, method="data_api", rate_limits={"get_statement_result": RATE}),
        {"dest": {"type": "parquet", "path": "lake"}},
        {
            "destination": "dest",
            "tables": [f"public.{t}" for t in tables],
            "concurrency": 3,
            "executor": "ray",
            "ray_address": ray_cluster,
        },
    )
    workspace = Workspace(tmp_path)
    source = RaySource(RedshiftSource.from_workspace(workspace), workspace.external_id, ray_cluster)
    started = time.monotonic()
    record = run_sync(workspace, "main", source=source)
    assert record.status == "ok", [(t.table, t.error) for t in record.tables]
    log = call_log.current()
    times = log.times("GetStatementResult", started) + log.times("GetStatementResultV2", started)
    assert len(times) >= len(tables)
    capacity = max(1.0, RATE * BURST_SECONDS)
    for window in (1.0, 2.0, 5.0):
        allowed = capacity + RATE * (window + ARRIVAL_JITTER)
        assert call_log.most_in_window(times, window) <= allowed, (window, sorted(times))


@contextlib.contextmanager
def failing_range(standin: StandIn, pattern: str, ready: Callable[[], bool]) -> Iterator[None]:
    """The first UNLOAD matching `pattern` fails ("disk full"), once `ready()` holds (another
    range is checkpointed): without that wait, which ranges finish first is the cluster's race."""
    engine = standin.engine
    assert engine is not None
    original = engine.statement_hook
    lock = threading.Lock()
    chosen: list[str] = []

    def hook(statement: Statement) -> None:
        with lock:
            fails = (
                not chosen
                and re.search(pattern, statement.query_string, re.IGNORECASE | re.DOTALL)
                is not None
            )
            if fails:
                chosen.append(statement.id)
        if fails:
            # Bounded: a run that never checkpoints a range (no resume) still fails here.
            with contextlib.suppress(AssertionError):
                wait_until(ready, what="a key range checkpointed in the run record", seconds=60)
            raise StatementFailure("disk full")
        if original is not None:
            original(statement)

    engine.statement_hook = hook
    try:
        yield
    finally:
        engine.statement_hook = original
    assert chosen, f"no UNLOAD matched {pattern}"


def assert_resumed_and_equal(
    record: RunRecord,
    resumed: int,
    ranges: int,
    done: dict[str, Any],
    workspace: Workspace,
    admin: psycopg.Connection[Any],
) -> None:
    """The rerun ran the UNLOADs of the ranges not checkpointed only, and `sales` ended
    verified and equal to the source."""
    (table,) = record.tables
    assert record.status == "ok", table.error
    assert table.verification is not None
    assert table.verification["status"] == "ok"
    assert resumed == ranges - len(done), (resumed, ranges, done)
    written = open_destination(workspace)
    try:
        assert_same_table(admin, written, "sales", "sales")
    finally:
        written.close()


def checkpointed_ranges(store: RunStore) -> dict[str, Any]:
    """The finished ranges the latest run's checkpoint names (index -> prefix and rows)."""
    try:
        (table,) = store.load("latest").tables
    except (ShiftsyncError, ValueError):
        return {}
    done = (table.ranges or {}).get("done")
    return dict(done) if isinstance(done, dict) else {}


def ranged_sales(
    folder: Path,
    info: StandInInfo,
    admin: psycopg.Connection[Any],
    ray_cluster: str,
    destination: dict[str, Any] | None = None,
) -> tuple[Workspace, int]:
    """A workspace whose sync reads `public.sales` on the cluster in 3 or 4 key ranges (each a
    little larger than a quarter of its estimate) into Parquet (or `destination`); and how
    many ranges."""
    admin.execute("ANALYZE public.sales")
    write_external_id(folder, info.external_id)

    def configure(range_mb: float) -> Workspace:
        write_sync_config(
            folder,
            standin_connection(info, unload={"bucket": info.bucket, "range_mb": range_mb}),
            {"dest": destination or {"type": "parquet", "path": "lake"}},
            {
                "destination": "dest",
                "tables": [{"include": "public.sales", "method": "unload"}],
                "executor": "ray",
                "ray_address": ray_cluster,
            },
        )
        return Workspace(folder)

    estimate = RedshiftSource.from_workspace(configure(0)).describe("public.sales").estimated_bytes
    assert estimate
    workspace = configure(estimate / 4 / (1024 * 1024) * 1.01)
    local = RedshiftSource.from_workspace(workspace)
    ranges = local.unload_ranges(local.describe("public.sales"))
    assert 3 <= len(ranges) <= 4, ranges
    return workspace, len(ranges)


def test_a_big_tables_key_ranges_are_tasks_of_the_cluster_and_resume(
    tmp_path: Path,
    info: StandInInfo,
    admin: psycopg.Connection[Any],
    standin: StandIn,
    s3: Any,
    ray_cluster: str,
) -> None:
    """`sales` above `unload.range_mb`: one bounds statement on the driver, then each key range
    one task and one UNLOAD (counted by the stand-in). A range that fails fails the table with
    nothing written; the ranges whose UNLOAD had finished stay staged, checkpointed by the
    driver in the run record, and nothing else stays staged. The next run UNLOADs only the
    other ranges, reads the finished ones' staged files, and the table arrives whole and
    verified, with nothing left staged."""
    workspace, ranges = ranged_sales(tmp_path, info, admin, ray_cluster)
    local = RedshiftSource.from_workspace(workspace)
    store = RunStore(workspace.runs_dir)
    source = RaySource(local, workspace.external_id, ray_cluster)

    # A version to keep: the table synced whole, its files written by the workers.
    seeded = run_sync(workspace, "main", source=source)
    assert seeded.status == "ok", [(t.table, t.error) for t in seeded.tables]
    lake = tmp_path / "lake"
    previous = pointer_of(lake, "sales")
    previous_files = sorted((lake / "sales").rglob("*"))
    assert source.written

    # A run in which a range with both bounds fails its UNLOAD once another range's UNLOAD
    # has finished and is checkpointed. The table fails whole and nothing of it is written:
    # the previous version stays, and no file of the failed run is left beside it.
    before = unloads_of(standin, "sales")
    with failing_range(
        standin, r"UNLOAD .*sales.*>=.* AND .*<", lambda: bool(checkpointed_ranges(store))
    ):
        failed = run_sync(workspace, "main", source=source)
    first = unloads_of(standin, "sales") - before
    (table,) = failed.tables
    assert table.status == "failed"
    assert "disk full" in (table.error or "")
    assert pointer_of(lake, "sales") == previous
    assert sorted((lake / "sales").rglob("*")) == previous_files
    written = open_destination(workspace)
    try:
        assert_same_table(admin, written, "sales", "sales")
    finally:
        written.close()
    done = checkpointed_ranges(store)
    assert 1 <= len(done) < ranges, done
    # Kept for the next run: the checkpointed ranges' files, and only theirs.
    kept = tuple(str(entry["prefix"]) for entry in done.values())
    staged = staged_keys(s3, info.bucket)
    assert staged
    assert [key for key in staged if not key.startswith(kept)] == []

    record = run_sync(workspace, "main", source=source)

    # Only the ranges the failed run had not finished run again.
    resumed = unloads_of(standin, "sales") - before - first
    assert_resumed_and_equal(record, len(resumed), ranges, done, workspace, admin)
    assert record.tables[0].ranges is None  # committed: the checkpoint is dropped
    assert staged_keys(s3, info.bucket) == []


@pytest.mark.slow  # a failed range and its resume, into a lake: 10-15 s each (README.md, Tests)
@pytest.mark.parametrize("kind", ["iceberg", "delta"])
def test_a_failed_range_leaves_a_lake_table_as_it_was_and_no_worker_file(
    tmp_path: Path,
    info: StandInInfo,
    admin: psycopg.Connection[Any],
    standin: StandIn,
    s3: Any,
    ray_cluster: str,
    kind: str,
) -> None:
    """`sales` in key ranges into Iceberg or Delta, the workers writing the data files: a run
    whose range fails once another has finished fails the table, commits nothing, and leaves
    none of its workers' files in the table's folder; the rerun resumes and commits."""
    destination: dict[str, Any] = (
        {"type": "iceberg", "warehouse": "warehouse"}
        if kind == "iceberg"
        else {"type": "delta", "path": "delta"}
    )
    workspace, _ = ranged_sales(tmp_path, info, admin, ray_cluster, destination)
    store = RunStore(workspace.runs_dir)
    source = RaySource(RedshiftSource.from_workspace(workspace), workspace.external_id, ray_cluster)
    seeded = run_sync(workspace, "main", source=source)
    assert seeded.status == "ok", [(t.table, t.error) for t in seeded.tables]
    assert source.written
    folder = tmp_path / destination.get("warehouse", destination.get("path", ""))
    files = sorted(p for p in folder.rglob("*.parquet"))
    assert files

    with failing_range(
        standin, r"UNLOAD .*sales.*>=.* AND .*<", lambda: bool(checkpointed_ranges(store))
    ):
        failed = run_sync(workspace, "main", source=source)
    (table,) = failed.tables
    assert table.status == "failed"
    assert "disk full" in (table.error or "")
    # The finished ranges' workers had written files: the abort deleted them all.
    assert sorted(p for p in folder.rglob("*.parquet")) == files
    written = open_destination(workspace)
    try:
        assert_same_table(admin, written, "sales", "sales")
        _, _, commits = lake_files(written, "sales")
        assert commits == 1
    finally:
        written.close()
    # The rerun resumes the checkpointed ranges and commits; nothing stays staged.
    record = run_sync(workspace, "main", source=source)
    assert record.status == "ok", [(t.table, t.error) for t in record.tables]
    written = open_destination(workspace)
    try:
        assert_same_table(admin, written, "sales", "sales")
        _, _, commits = lake_files(written, "sales")
        assert commits > 1  # Iceberg: the replace's delete and append snapshots
    finally:
        written.close()
    assert staged_keys(s3, info.bucket) == []


@pytest.mark.slow  # a CLI driver of its own, killed: 8-13 s (README.md, Tests)
def test_a_killed_driver_resumes_with_the_ranges_it_had_checkpointed(
    tmp_path: Path,
    info: StandInInfo,
    admin: psycopg.Connection[Any],
    standin: StandIn,
    s3: Any,
    ray_cluster: str,
) -> None:
    """`shiftsync sync` (the driver) killed -9 after the table's first batch: the ranges it had
    checkpointed by then are resumed by the next run, whose UNLOADs (counted by the stand-in)
    are only the other ranges'; the table ends verified and equal, nothing left staged."""
    workspace, ranges = ranged_sales(tmp_path, info, admin, ray_cluster)
    env = cli_env(info)
    before = unloads_of(standin, "sales")
    driver = start_paused(tmp_path, env, "after_first_batch_read", "public.sales")
    engine = standin.engine
    assert engine is not None

    def every_range_unloaded() -> bool:
        # Tasks stream ahead of a paused driver: once every range's UNLOAD has ended, the
        # killed run submits none after the kill.
        ids = unloads_of(standin, "sales") - before
        return len(ids) == ranges and all(engine.statements[i].done.is_set() for i in ids)

    wait_until(every_range_unloaded, what="every key range's UNLOAD ending", seconds=120)
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=30)
    killed = unloads_of(standin, "sales") - before
    done = checkpointed_ranges(RunStore(workspace.runs_dir))
    # The first batch's range at least (its report comes before its rows); not those whose
    # report the paused driver had not read yet (in practice all but one or two).
    assert 1 <= len(done) <= ranges, done

    source = RaySource(RedshiftSource.from_workspace(workspace), workspace.external_id, ray_cluster)
    record = run_sync(workspace, "main", source=source)

    resumed = unloads_of(standin, "sales") - before - killed
    assert_resumed_and_equal(record, len(resumed), ranges, done, workspace, admin)
    # The killed run's ranges, checkpointed or not, are deleted once the table is committed.
    assert staged_keys(s3, info.bucket) == []
