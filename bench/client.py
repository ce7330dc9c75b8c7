"""One measured case, in a fresh process: `python -m bench.client CASE --context FILE --table S.T`.

A fresh process per run makes peak RSS (ru_maxrss) belong to that run alone. The measured
section starts after the imports and ends when the rows are where the case puts them; its
wall time, CPU (getrusage RUSAGE_SELF, user + system, every thread) and the process's peak RSS
are printed as one line `BENCH_RESULT {json}` on stdout, which the orchestrator reads.

The context file (written by the orchestrator, mode 0600) holds the stand-in's endpoints and
keys; they go into this process's environment as the standard AWS variables, never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from bench.memory import RssSampler
from bench.report import CASES
from shiftsync.local.info import StandInInfo

if TYPE_CHECKING:
    from mypy_boto3_redshift_data.type_defs import DescribeStatementResponseTypeDef

    from shiftsync.aws.session import AssumedRoleSession
    from shiftsync.redshift.catalog import TableInfo

RESULT_MARKER: Final = "BENCH_RESULT "
CONNECTION: Final = "standin"
DESTINATION: Final = "duck"
SYNC: Final = "bench"
STAGING_PREFIX: Final = "shiftsync-bench/"
FLOOR_PREFIX: Final = "bench-floor/"
# The part size shiftsync's UNLOAD asks for (redshift/unload.py), so the floor reads the same files.
FLOOR_PART_MB: Final = 64
POLL_SECONDS: Final = 0.02
STATEMENT_TIMEOUT_SECONDS: Final = 3600.0
PRELOADED: Final = ("shiftsync.redshift.source", "shiftsync.destinations.registry", "duckdb")


# Not shiftsync.local.standin: importing the stand-in would load moto into every measured
# process and count its memory against the client. shiftsync.local.info imports no moto.
StandInAccess = StandInInfo


@dataclass(frozen=True)
class CaseContext:
    """What every case gets: the stand-in, the table, a scratch folder of its own."""

    info: StandInAccess
    schema: str
    table: str
    scratch: Path

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass
class Outcome:
    """What a case reports besides time and memory."""

    rows: int
    bytes: int = 0
    # For floor-statement cases: the statement's own duration, as DescribeStatement reports it.
    server_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # A peer run as a child process: its own CPU and peak RSS (getrusage RUSAGE_CHILDREN).
    child_cpu_s: float | None = None
    child_peak_rss_mb: float | None = None


@dataclass(frozen=True)
class Prepared:
    """A case ready to run: `run` is measured; `after` (not measured) may finish the outcome."""

    run: Callable[[], Outcome]
    after: Callable[[Outcome], None] | None = None


@dataclass(frozen=True)
class Measurement:
    case: str
    table: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    rss_before_mb: float
    rows: int
    bytes: int
    server_seconds: float | None
    extra: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "table": self.table,
            "wall_s": round(self.wall_s, 4),
            "cpu_s": round(self.cpu_s, 4),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "rss_before_mb": round(self.rss_before_mb, 1),
            "rows": self.rows,
            "bytes": self.bytes,
            "server_seconds": None
            if self.server_seconds is None
            else round(self.server_seconds, 4),
            "extra": self.extra,
        }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(
    case: str,
    context: CaseContext,
    prepared: Prepared,
    *,
    profile: Path | None = None,
    sampler: RssSampler | None = None,
) -> Measurement:
    gc.collect()
    rss_before = current_rss_mb()
    with profiled(profile):
        if sampler is not None:
            sampler.mark("measured section starts")
        cpu_start, wall_start = cpu_seconds(), time.perf_counter()
        outcome = prepared.run()
        wall = time.perf_counter() - wall_start
        cpu = cpu_seconds() - cpu_start
        if sampler is not None:
            sampler.mark("measured section ends")
    peak = peak_rss_mb()
    if outcome.child_cpu_s is not None and outcome.child_peak_rss_mb is not None:
        cpu, peak = outcome.child_cpu_s, outcome.child_peak_rss_mb
    if prepared.after is not None:
        prepared.after(outcome)
    return Measurement(
        case=case,
        table=context.name,
        wall_s=wall,
        cpu_s=cpu,
        peak_rss_mb=peak,
        rss_before_mb=rss_before,
        rows=outcome.rows,
        bytes=outcome.bytes,
        server_seconds=outcome.server_seconds,
        extra=outcome.extra,
    )


# --- shared set-up (outside the measured section) -------------------------------------------


DUCKDB_DESTINATION: Final = "    type: duckdb\n    path: bench.duckdb\n"
# The lake case: an Iceberg table in a local warehouse, SQLite catalog in the workspace.
ICEBERG_DESTINATION: Final = "    type: iceberg\n    warehouse: iceberg\n"


def workspace_yaml(
    info: StandInAccess,
    *,
    method: str,
    result_format: str,
    include: str,
    snapshot: str | None = None,
    destination: str = DUCKDB_DESTINATION,
) -> str:
    """shiftsync.yaml for one table, one method, into a DuckDB file beside it (or into
    `destination`: the destination's keys, indented by four spaces)."""
    return (
        "connections:\n"
        f"  {CONNECTION}:\n"
        "    type: redshift_serverless\n"
        f"    region: {info.region}\n"
        f"    workgroup: {info.workgroup}\n"
        f"    database: {info.database}\n"
        f"    role_arn: {info.role_arn}\n"
        f"    method: {method}\n"
        f"    result_format: {result_format}\n"
        "    unload:\n"
        f"      bucket: {info.bucket}\n"
        f"      prefix: {STAGING_PREFIX}\n"
        "destinations:\n"
        f"  {DESTINATION}:\n"
        f"{destination}"
        "syncs:\n"
        f"  {SYNC}:\n"
        f"    source: {CONNECTION}\n"
        f"    destination: {DESTINATION}\n"
        "    concurrency: 1\n"
        + (f"    snapshot: {snapshot}\n" if snapshot else "")
        + "    tables:\n"
        f'      - "{include}"\n'
    )


def make_workspace(
    context: CaseContext,
    *,
    method: str,
    result_format: str,
    snapshot: str | None = None,
    destination: str = DUCKDB_DESTINATION,
) -> Path:
    from shiftsync.workspace import Workspace

    folder = context.scratch / "workspace"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shiftsync.yaml").write_text(
        workspace_yaml(
            context.info,
            method=method,
            result_format=result_format,
            include=context.name,
            snapshot=snapshot,
            destination=destination,
        )
    )
    dot = folder / ".shiftsync"
    dot.mkdir(exist_ok=True)
    (dot / "external_id").write_text(context.info.external_id + "\n")
    Workspace.init(folder)
    return folder


def assumed_session(info: StandInAccess) -> AssumedRoleSession:
    from shiftsync.aws.session import AssumedRoleSession

    return AssumedRoleSession(info.role_arn, info.external_id, info.region)


def describe_table(context: CaseContext, session: AssumedRoleSession) -> TableInfo:
    """The table's columns as shiftsync sees them (catalog calls, outside the measured part)."""
    from shiftsync.redshift.catalog import TableRef, describe
    from shiftsync.redshift.data_api import DataApi, ReadStats

    folder = make_workspace(context, method="data_api", result_format="csv")
    from shiftsync.workspace import Workspace

    _, connection = Workspace(folder).config.connection(CONNECTION)
    api = DataApi(session, connection)
    return describe(api, TableRef(context.schema, context.table), stats=ReadStats())


def select_sql(info: TableInfo, method: Literal["data_api", "unload"]) -> str:
    from shiftsync.redshift.sql import build_select_sql

    ref = info.ref
    return build_select_sql(ref.schema, ref.name, info.columns, method=method)


# --- shiftsync ------------------------------------------------------------------------------


def _sync_case(
    method: str,
    result_format: str,
    *,
    snapshot: str | None = None,
    verify: bool = False,
    postgres: bool = False,
    iceberg: bool = False,
) -> Callable[[CaseContext], Prepared]:
    """End to end into DuckDB (or, with `postgres`, into the PostgreSQL database the Sling
    case writes to; with `iceberg`, into an Iceberg table), as `shiftsync sync` does it
    (verification off unless `verify`: it reads the table a second time on both sides).
    `snapshot` sets the sync's snapshot."""

    def prepare(context: CaseContext) -> Prepared:
        from shiftsync.engine.sync import SyncOptions, run_sync
        from shiftsync.workspace import Workspace

        destination = DUCKDB_DESTINATION
        if postgres:
            dsn = peer_database(context.info.postgres_dsn)
            destination = f"    type: postgres\n    dsn: {dsn}\n    schema: shiftsync_bench\n"
        if iceberg:
            destination = ICEBERG_DESTINATION
            importlib.import_module("shiftsync.destinations.iceberg")
        folder = make_workspace(
            context,
            method=method,
            result_format=result_format,
            snapshot=snapshot,
            destination=destination,
        )
        # run_sync imports these lazily: imported now, the measured part does not pay for it.
        for module in PRELOADED:
            importlib.import_module(module)

        def run() -> Outcome:
            record = run_sync(Workspace(folder), SYNC, SyncOptions(verify=verify))
            if record.status != "ok" or len(record.tables) != 1:
                errors = "; ".join(str(t.error) for t in record.tables if t.error)
                raise RuntimeError(f"the sync of {context.name} failed: {errors}")
            (table,) = record.tables
            return Outcome(
                rows=table.rows,
                bytes=table.bytes,
                extra={"method": table.method, "retries": table.retries},
            )

        return Prepared(run)

    return prepare


def _cli_case(method: str) -> Callable[[CaseContext], Prepared]:
    """`shiftsync sync` as a whole process into DuckDB (interpreter start and imports
    included), like for like with the peers, which are measured as whole processes."""

    def prepare(context: CaseContext) -> Prepared:
        folder = make_workspace(context, method=method, result_format="csv")
        argv = [sys.executable, "-m", "shiftsync", "sync", SYNC, "--no-verify", "--json"]

        def run() -> Outcome:
            stdout, cpu, peak = run_child(argv, os.environ, "shiftsync sync", cwd=folder)
            document = json.loads(stdout)
            if document["status"] != "ok" or len(document["tables"]) != 1:
                raise RuntimeError(f"the sync of {context.name} failed: {stdout[-500:]}")
            (table,) = document["tables"]
            return Outcome(
                rows=int(table["rows"]),
                bytes=int(table.get("bytes") or 0),
                extra={"method": table.get("method")},
                child_cpu_s=cpu,
                child_peak_rss_mb=peak,
            )

        return Prepared(run)

    return prepare


def _to_arrow(context: CaseContext) -> Prepared:
    """The Data API (CSV) into one Arrow table in memory, like awswrangler into a DataFrame."""
    import pyarrow as pa

    from shiftsync.redshift.source import RedshiftSource, TableRef
    from shiftsync.workspace import Workspace

    folder = make_workspace(context, method="data_api", result_format="csv")
    _, connection = Workspace(folder).config.connection(CONNECTION)

    def run() -> Outcome:
        session = assumed_session(context.info)
        source = RedshiftSource(connection, session)
        info = source.describe(TableRef(context.schema, context.table))
        received = [0]

        def progress(_rows: int, size: int) -> None:
            received[0] += size

        batches = list(source.read(info, method="data_api", progress=progress))
        table = pa.Table.from_batches(batches) if batches else pa.table({})
        return Outcome(rows=table.num_rows, bytes=received[0], extra={"arrow_bytes": table.nbytes})

    return Prepared(run)


def _awswrangler(context: CaseContext) -> Prepared:
    """awswrangler's Data API reader into a pandas DataFrame, with the same query and role, as
    a whole process of the peers' interpreter (bench/peers.py: its pins would change the
    project's pyarrow)."""
    from bench.peers import AWSWRANGLER_SCRIPT, PeersMissing, installed, python_of

    if not installed():
        raise PeersMissing(python_of().parents[1])
    session = assumed_session(context.info)
    sql = select_sql(describe_table(context, session), "data_api")
    script = context.scratch / "awswrangler_peer.py"
    script.write_text(AWSWRANGLER_SCRIPT)
    argv = [str(python_of()), str(script), context.info.workgroup, context.info.database, sql]

    def run() -> Outcome:
        # The role is assumed in the measured part, as shiftsync's cases do; the child gets
        # its temporary credentials (never the stand-in's long-term keys).
        credentials = assumed_session(context.info).frozen_credentials()
        env = {
            **client_env(),
            **context.info.environment(),
            "AWS_ACCESS_KEY_ID": str(credentials.access_key),
            "AWS_SECRET_ACCESS_KEY": str(credentials.secret_key),
            "AWS_SESSION_TOKEN": credentials.token or "",
        }
        stdout, cpu, peak = run_child(argv, env, "awswrangler")
        found = dict(line.split()[:2] for line in stdout.splitlines() if line.startswith("PEER_"))
        return Outcome(
            rows=int(found["PEER_ROWS"]),
            extra={"dataframe_bytes": int(found["PEER_DATAFRAME_BYTES"])},
            child_cpu_s=cpu,
            child_peak_rss_mb=peak,
        )

    return Prepared(run)


# --- the direct-wire peers (bench/peers.py) -------------------------------------------------

PEER_DATABASE: Final = "bench_peers"


def peer_database(dsn: str) -> str:
    """The stand-in's PostgreSQL URL with the database the PostgreSQL targets write to."""
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{PEER_DATABASE}"


def ensure_peer_database(dsn: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (PEER_DATABASE,)
        ).fetchone()
        if found is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PEER_DATABASE)))


def run_child(
    argv: list[str], env: Mapping[str, str], what: str, *, cwd: Path | None = None
) -> tuple[str, float, float]:
    """Run a whole process; its stdout, CPU seconds and peak RSS (MB) from RUSAGE_CHILDREN
    (the client starts no other child, so the peak is this one's)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        argv, env=dict(env), cwd=cwd, capture_output=True, text=True, check=False, timeout=3600
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"{what} exited with {done.returncode}: {tail}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return done.stdout, cpu, after.ru_maxrss / 1024


def _dlt_case(backend: str) -> Callable[[CaseContext], Prepared]:
    """dlt's `sql_table` reading the stand-in's PostgreSQL directly into DuckDB, as a whole
    process of the peers' interpreter (its imports are in its time)."""

    def prepare(context: CaseContext) -> Prepared:
        from bench.peers import DLT_SCRIPT, PeersMissing, installed, python_of

        if not installed():
            raise PeersMissing(python_of().parents[1])
        script = context.scratch / "dlt_peer.py"
        script.write_text(DLT_SCRIPT)
        work = context.scratch / "dlt"
        argv = [
            str(python_of()),
            str(script),
            context.info.postgres_dsn,
            context.schema,
            context.table,
            backend,
            str(context.scratch / "dlt_out.duckdb"),
            str(work),
        ]
        env = {**client_env(), "DLT_DATA_DIR": str(work), "RUNTIME__LOG_LEVEL": "WARNING"}

        def run() -> Outcome:
            stdout, cpu, peak = run_child(argv, env, f"dlt ({backend})")
            rows = next(
                int(line.split()[1]) for line in stdout.splitlines() if line.startswith("PEER_ROWS")
            )
            return Outcome(rows=rows, child_cpu_s=cpu, child_peak_rss_mb=peak)

        return Prepared(run)

    return prepare


def _sling_case(context: CaseContext) -> Prepared:
    """Sling PostgreSQL → PostgreSQL (its DuckDB target downloads the DuckDB CLI at run time,
    which an offline machine refuses), full refresh into another database of the same server."""
    import psycopg
    from psycopg import sql

    from bench.peers import sling_binary

    binary = sling_binary()
    source = context.info.postgres_dsn
    ensure_peer_database(source)
    target = peer_database(source)
    target_table = f"sling_{context.table}"
    quoted = sql.Identifier("public", target_table)
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(quoted))
    env = {
        **client_env(),
        "SLING_SRC": f"{source}?sslmode=disable",
        "SLING_TGT": f"{target}?sslmode=disable",
        "SLING_HOME_DIR": str(context.scratch / "sling"),
        "SLING_DISABLE_TELEMETRY": "true",
    }
    argv = [
        str(binary),
        "run",
        "--src-conn",
        "SLING_SRC",
        "--src-stream",
        context.name,
        "--tgt-conn",
        "SLING_TGT",
        "--tgt-object",
        f"public.{target_table}",
        "--mode",
        "full-refresh",
    ]

    def run() -> Outcome:
        _, cpu, peak = run_child(argv, env, "sling")
        with psycopg.connect(target) as connection:
            row = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(quoted)).fetchone()
        return Outcome(rows=int(row[0]) if row else 0, child_cpu_s=cpu, child_peak_rss_mb=peak)

    return Prepared(run)


def _shiftsync_postgres(context: CaseContext) -> Prepared:
    ensure_peer_database(context.info.postgres_dsn)
    return _sync_case("unload", "csv", postgres=True)(context)


def client_env() -> dict[str, str]:
    """The environment a peer gets: no AWS settings (it reads PostgreSQL only)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


# --- the floor ------------------------------------------------------------------------------


def _run_statement(
    session: AssumedRoleSession,
    info: StandInAccess,
    sql: str,
    result_format: Literal["CSV", "JSON"],
) -> DescribeStatementResponseTypeDef:
    """ExecuteStatement, then DescribeStatement until it ends; the final description."""
    client = session.client("redshift-data")
    started = client.execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sql=sql, ResultFormat=result_format
    )
    deadline = time.monotonic() + STATEMENT_TIMEOUT_SECONDS
    while True:
        described = client.describe_statement(Id=started["Id"])
        if described["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"statement {started['Id']} did not end in time")
        time.sleep(POLL_SECONDS)
    if described["Status"] != "FINISHED":
        raise RuntimeError(f"statement {started['Id']} ended {described['Status']}")
    return described


def _floor_statement(context: CaseContext) -> Prepared:
    """The stand-in's time to run the SELECT and store its CSV result (no page fetched)."""
    session = assumed_session(context.info)
    sql = select_sql(describe_table(context, session), "data_api")

    def run() -> Outcome:
        described = _run_statement(session, context.info, sql, "CSV")
        return Outcome(
            rows=int(described["ResultRows"]),
            bytes=int(described["ResultSize"]),
            server_seconds=described["Duration"] / 1e9,
        )

    return Prepared(run)


def _parts_folder(context: CaseContext) -> Path:
    # Shared by floor-unload (writes) and floor-duckdb-parquet (reads) of the same table: the
    # orchestrator gives every run of one table a scratch folder in the same parent.
    return context.scratch.parent / "parts"


def _floor_unload(context: CaseContext) -> Prepared:
    """The stand-in's time to UNLOAD the table to Parquet; the parts are then downloaded for
    floor-duckdb-parquet (not measured) and deleted from S3."""
    from shiftsync.redshift.sql import build_unload_sql

    session = assumed_session(context.info)
    sql = select_sql(describe_table(context, session), "unload")
    prefix = f"{FLOOR_PREFIX}{uuid.uuid4().hex}/"
    unload = build_unload_sql(
        sql,
        f"s3://{context.info.bucket}/{prefix}",
        context.info.role_arn,
        max_file_size_mb=FLOOR_PART_MB,
    )

    def run() -> Outcome:
        described = _run_statement(session, context.info, unload, "JSON")
        return Outcome(
            rows=int(described["ResultRows"]), server_seconds=described["Duration"] / 1e9
        )

    def keep_parts(outcome: Outcome) -> None:
        outcome.bytes = _fetch_parts(session, context.info.bucket, prefix, _parts_folder(context))

    return Prepared(run, after=keep_parts)


def _fetch_parts(session: AssumedRoleSession, bucket: str, prefix: str, folder: Path) -> int:
    """Download the Parquet parts under prefix into folder, delete them all; bytes fetched."""
    s3 = session.client("s3")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    keys: list[str] = []
    size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    for number, key in enumerate(sorted(keys)):
        if key.endswith("manifest"):
            continue
        target = folder / f"part-{number:05d}.parquet"
        s3.download_file(bucket, key, str(target))
        size += target.stat().st_size
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk]})
    return size


def _floor_duckdb(context: CaseContext) -> Prepared:
    """DuckDB's own ingest of the UNLOAD's Parquet parts from local disk, into a table."""
    import duckdb

    folder = _parts_folder(context)
    parts = sorted(str(p) for p in folder.glob("*.parquet"))
    if not parts:
        raise RuntimeError(f"no Parquet parts in {folder}: run floor-unload first")
    database = context.scratch / "floor.duckdb"
    database.unlink(missing_ok=True)

    def run() -> Outcome:
        with duckdb.connect(str(database)) as connection:
            connection.execute("CREATE TABLE floor AS SELECT * FROM read_parquet(?)", [parts])
            row = connection.execute("SELECT count(*) FROM floor").fetchone()
        assert row is not None
        return Outcome(rows=int(row[0]), bytes=sum(Path(p).stat().st_size for p in parts))

    return Prepared(run)


def _floor_copy(context: CaseContext) -> Prepared:
    """PostgreSQL's `COPY (query) TO STDOUT` of the same SELECT, straight from the server."""
    import psycopg

    sql = select_sql(describe_table(context, assumed_session(context.info)), "data_api")
    command = f"COPY ({sql}) TO STDOUT (FORMAT csv)"

    def run() -> Outcome:
        size = rows = 0
        with (
            psycopg.connect(context.info.postgres_dsn) as connection,
            connection.cursor() as cursor,
            cursor.copy(command.encode()) as copy,
        ):
            for block in copy:
                size += len(block)
            rows = cursor.rowcount
        return Outcome(rows=rows, bytes=size)

    return Prepared(run)


def _probe(context: CaseContext) -> Prepared:
    """What `auto` picks for the table, and its estimates (not a timing)."""
    from shiftsync.redshift.source import RedshiftSource, TableRef
    from shiftsync.workspace import Workspace

    folder = make_workspace(context, method="auto", result_format="csv")
    _, connection = Workspace(folder).config.connection(CONNECTION)

    def run() -> Outcome:
        source = RedshiftSource(connection, assumed_session(context.info))
        info = source.describe(TableRef(context.schema, context.table))
        plan = source.plan(info, "auto")
        return Outcome(
            rows=info.estimated_rows or 0,
            bytes=info.estimated_bytes or 0,
            extra={
                "auto_method": plan.method,
                "auto_reason": plan.reason,
                "auto_chunks": plan.chunks,
                "columns": len(info.columns),
                "estimated_rows": info.estimated_rows,
                "estimated_bytes": info.estimated_bytes,
            },
        )

    return Prepared(run)


Prepare = Callable[[CaseContext], Prepared]

CASE_FUNCTIONS: Final[Mapping[str, Prepare]] = {
    "shiftsync-csv-duckdb": _sync_case("data_api", "csv"),
    "shiftsync-json-duckdb": _sync_case("data_api", "json"),
    "shiftsync-unload-duckdb": _sync_case("unload", "csv"),
    "shiftsync-unload-iceberg": _sync_case("unload", "csv", iceberg=True),
    "shiftsync-cli-unload-duckdb": _cli_case("unload"),
    "shiftsync-csv-arrow": _to_arrow,
    "awswrangler-pandas": _awswrangler,
    "shiftsync-unload-postgres": _shiftsync_postgres,
    "dlt-connectorx-duckdb": _dlt_case("connectorx"),
    "dlt-pyarrow-duckdb": _dlt_case("pyarrow"),
    "sling-postgres": _sling_case,
    "floor-statement-csv": _floor_statement,
    "floor-pg-copy": _floor_copy,
    "floor-unload": _floor_unload,
    "floor-duckdb-parquet": _floor_duckdb,
    "probe": _probe,
    **{
        f"snapshot-{snapshot}-{name}": _sync_case(method, "csv", snapshot=snapshot, verify=True)
        for name, method in (("csv", "data_api"), ("unload", "unload"))
        for snapshot in ("none", "table", "consistent")
    },
}
assert set(CASE_FUNCTIONS) == set(CASES), "bench.report.CASES and the case functions differ"


# --- the process ----------------------------------------------------------------------------


def load_context_file(path: Path) -> StandInAccess:
    info = StandInAccess.from_json(json.loads(path.read_text()))
    os.environ.update(info.environment())
    # Nothing of the machine's own AWS configuration may leak into a case.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        os.environ.pop(name, None)
    return info


@contextlib.contextmanager
def profiled(path: Path | None) -> Iterator[None]:
    """Run the block under pyinstrument (a development tool: `pip install pyinstrument`)."""
    if path is None:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))


def run_case(
    case: str,
    context: CaseContext,
    *,
    profile: Path | None = None,
    rss_timeline: Path | None = None,
) -> Measurement:
    """Prepare and measure `case`; with `rss_timeline`, the process's memory is sampled from
    before the case's set-up to its end and written there (bench/memory.py)."""
    if rss_timeline is None:
        return measure(case, context, CASE_FUNCTIONS[case](context), profile=profile)
    sampler = RssSampler(mallinfo=os.environ.get("SHIFTSYNC_BENCH_MALLINFO") == "1")
    sampler.start()
    try:
        prepared = CASE_FUNCTIONS[case](context)
        return measure(case, context, prepared, profile=profile, sampler=sampler)
    finally:
        sampler.stop()
        sampler.write(rss_timeline)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark case and print its numbers.")
    parser.add_argument("case", choices=sorted(CASE_FUNCTIONS))
    parser.add_argument("--context", type=Path, required=True, help="the stand-in's JSON file")
    parser.add_argument("--table", required=True, help="schema.table")
    parser.add_argument("--scratch", type=Path, required=True, help="a folder for this run")
    parser.add_argument("--profile", type=Path, help="write a pyinstrument profile here")
    parser.add_argument(
        "--rss-timeline", type=Path, help="write a timeline of resident memory here (JSON)"
    )
    args = parser.parse_args(argv)
    schema, _, table = str(args.table).partition(".")
    info = load_context_file(args.context)
    args.scratch.mkdir(parents=True, exist_ok=True)
    context = CaseContext(info, schema, table, args.scratch)
    try:
        measurement = run_case(
            args.case, context, profile=args.profile, rss_timeline=args.rss_timeline
        )
    except Exception as error:  # reported to the orchestrator as a failed case
        print(RESULT_MARKER + json.dumps({"case": args.case, "error": f"{error!r}"[:2000]}))
        return 1
    print(RESULT_MARKER + json.dumps(measurement.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
