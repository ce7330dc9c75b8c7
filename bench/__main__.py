"""`python -m bench [--large | --quick] [--reps N]`: shiftsync against awswrangler and the floor.

One stand-in process serves the whole run (bench/standin_process.py); every measured run is a
fresh client process (bench/client.py); the results go to bench/results/YYYY-MM-DD-HHMM.{md,json}
(bench/report.py). Repetitions are interleaved (rep 1 of every case, then rep 2 …) so that a
slow moment of the machine spreads over the cases instead of landing on one.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from bench.client import RESULT_MARKER
from bench.memory import summarize
from bench.peers import peer_versions
from bench.profiling import parse_collapsed, py_spy, summarize_collapsed
from bench.report import CASES, RunReport, TableSpec, write_results
from bench.standin_process import StandInProcess, StandInSpec
from shiftsync.local.data_api.results import Limits
from shiftsync.local.standin import ROLE_NAME

REPO: Final = Path(__file__).resolve().parent.parent
RESULTS: Final = REPO / "bench" / "results"
DB_USER: Final = f"IAMR:{ROLE_NAME}"
BENCH_SCHEMA: Final = "bench"
SALES_PER_SCALE: Final = 172_456
CLIENT_TIMEOUT_SECONDS: Final = 3600.0
# One statement's CSV passes the Data API's 500 MB result limit beyond about this many sales
# rows (~60 bytes a row): such tables are read by chunks or UNLOAD only, and the one-statement
# cases (awswrangler, JSON, the CSV statement floor) cannot run.
ONE_STATEMENT_MAX_ROWS: Final = 5_000_000
ONE_STATEMENT_CASES: Final = frozenset(
    {"shiftsync-json-duckdb", "shiftsync-csv-arrow", "awswrangler-pandas", "floor-statement-csv"}
)
# The measured cases in run order; floor-unload leaves the Parquet parts floor-duckdb reads.
RUN_ORDER: Final = (
    "floor-pg-copy",
    "floor-statement-csv",
    "floor-unload",
    "floor-duckdb-parquet",
    "shiftsync-csv-duckdb",
    "shiftsync-json-duckdb",
    "shiftsync-unload-duckdb",
    "shiftsync-unload-iceberg",
    "shiftsync-csv-arrow",
    "awswrangler-pandas",
    "snapshot-none-csv",
    "snapshot-table-csv",
    "snapshot-consistent-csv",
    "snapshot-none-unload",
    "snapshot-table-unload",
    "snapshot-consistent-unload",
    "shiftsync-unload-postgres",
    "shiftsync-cli-unload-duckdb",
    "dlt-connectorx-duckdb",
    "dlt-pyarrow-duckdb",
    "sling-postgres",
)
# What one snapshot per read costs is measured on the sales tables only.
SNAPSHOT_CASES: Final = frozenset(c for c in RUN_ORDER if c.startswith("snapshot-"))
CLIENT_RATE: Final = 200
SERVER_RATE: Final = 100
PROFILED_CASES: Final = (
    "shiftsync-csv-duckdb",
    "shiftsync-json-duckdb",
    "shiftsync-unload-duckdb",
    "shiftsync-csv-arrow",
    "awswrangler-pandas",
)


@dataclass(frozen=True)
class SalesTable:
    size: str
    rows: int | None  # None: the whole of public.sales


@dataclass(frozen=True)
class Mode:
    name: str
    scale: float
    sales: tuple[SalesTable, ...]
    wide_rows: int
    small_reps: int
    big_reps: int
    wide_reps: int

    def reps_for(self, table: TableSpec, override: int | None) -> int:
        if override is not None:
            return override
        if table.family == "wide":
            return self.wide_reps
        return self.small_reps if table.rows <= 300_000 else self.big_reps

    def reps_text(self) -> str:
        return (
            f"sales: {self.small_reps} up to 300,000 rows, {self.big_reps} above; wide: "
            f"{self.wide_reps}"
        )


MODES: Final = {
    # sales at scale 5.8 is 1,000,245 rows. The wide table has 10^5 rows and 3 repetitions:
    # its JSON cases (shiftsync JSON, awswrangler) take about half a minute each per run.
    "default": Mode(
        "default",
        5.8,
        (SalesTable("1e5", 100_000), SalesTable("1e6", None)),
        wide_rows=100_000,
        small_reps=5,
        big_reps=3,
        wide_reps=3,
    ),
    # scale 58 is 10,002,448 rows.
    "large": Mode(
        "large",
        58.0,
        (SalesTable("1e5", 100_000), SalesTable("1e6", 1_000_000), SalesTable("1e7", None)),
        wide_rows=100_000,
        small_reps=5,
        big_reps=3,
        wide_reps=3,
    ),
    "quick": Mode(
        "quick",
        0.02,
        (SalesTable("1e3", 1_000), SalesTable("all", None)),
        wide_rows=500,
        small_reps=1,
        big_reps=1,
        wide_reps=1,
    ),
}


# --- the tables (superuser SQL on the stand-in's PostgreSQL) ----------------------------------


def sales_subset_sql(rows: int) -> tuple[str, list[str]]:
    """The table `bench.sales_<rows>`: the first `rows` sales, keyed and readable as in TICKIT."""
    name = f"sales_{rows}"
    table = sql.Identifier(BENCH_SCHEMA, name)
    statements = [
        sql.SQL("DROP TABLE IF EXISTS {}").format(table),
        sql.SQL("CREATE TABLE {} AS SELECT * FROM public.sales WHERE salesid <= {}").format(
            table, sql.Literal(rows)
        ),
        sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (salesid)").format(table),
    ]
    return f"{BENCH_SCHEMA}.{name}", [s.as_string() for s in statements]


# 20 columns of mixed types; NULLs, quotes and commas where CSV has to work for them.
WIDE_COLUMNS: Final = (
    ("id", "bigint", "g"),
    ("qty", "smallint", "(g % 1000)::smallint"),
    ("code", "integer", "((g * 2654435761) % 2147483647)::integer"),
    ("big", "bigint", "g * 1000003"),
    ("amount", "numeric(38,10)", "(g * 12345.6789012345)::numeric(38,10)"),
    ("price", "numeric(18,4)", "((g % 100000) * 1.2345)::numeric(18,4)"),
    ("ratio", "numeric(12,2)", "CASE WHEN g % 10 = 0 THEN NULL ELSE (g % 9999) / 7.0 END"),
    ("score", "double precision", "g * 0.001 + 1.0 / (g + 1)"),
    ("weight", "real", "((g % 1000) / 3.0)::real"),
    ("flag", "boolean", "g % 3 = 0"),
    ("active", "boolean", "CASE WHEN g % 7 = 0 THEN NULL ELSE g % 2 = 0 END"),
    ("day", "date", "DATE '2020-01-01' + (g % 2000)::integer"),
    (
        "created",
        "timestamp",
        "TIMESTAMP '2020-01-01' + g * INTERVAL '1 second'"
        " + (g % 999983) * INTERVAL '1 microsecond'",
    ),
    ("updated", "timestamptz", "TIMESTAMPTZ '2021-06-01 00:00:00+00' + g * INTERVAL '37 s'"),
    ("name", "varchar(64)", "'customer-' || g"),
    (
        "city",
        "varchar(256)",
        """CASE WHEN g % 50 = 0 THEN 'Quote "q", comma' ELSE md5(g::text) END""",
    ),
    ("note", "varchar(1024)", "CASE WHEN g % 4 = 0 THEN NULL ELSE repeat(md5(g::text), 2) END"),
    ("grade", "char(4)", "chr(65 + (g % 26)::integer) || 'x'"),
    ("tax", "numeric(38,10)", "CASE WHEN g % 5 = 0 THEN NULL ELSE g / 3.0 END"),
    (
        "seen_on",
        "date",
        "CASE WHEN g % 6 = 0 THEN NULL ELSE DATE '2019-01-01' + (g % 500)::integer END",
    ),
)


def wide_table_sql(rows: int) -> tuple[str, list[str]]:
    """`bench.wide`: `rows` rows of the 20 WIDE_COLUMNS, keyed by id."""
    table = sql.Identifier(BENCH_SCHEMA, "wide")
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
        for name, kind, _ in WIDE_COLUMNS
    )
    values = sql.SQL(", ").join(
        sql.SQL("({})::{}").format(sql.SQL(expression), sql.SQL(kind))
        for _, kind, expression in WIDE_COLUMNS
    )
    statements = [
        sql.SQL("DROP TABLE IF EXISTS {}").format(table),
        sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY (id))").format(table, columns),
        sql.SQL("INSERT INTO {} SELECT {} FROM generate_series(1::bigint, {}) AS s(g)").format(
            table, values, sql.Literal(rows)
        ),
    ]
    return f"{BENCH_SCHEMA}.wide", [s.as_string() for s in statements]


def grant_sql(table: str) -> list[str]:
    schema, _, name = table.partition(".")
    user = sql.Identifier(DB_USER)
    return [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), user).as_string(),
        sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(schema, name), user).as_string(),
        sql.SQL("ANALYZE {}").format(sql.Identifier(schema, name)).as_string(),
    ]


def prepare_tables(dsn: str, mode: Mode) -> list[TableSpec]:
    tables: list[TableSpec] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(BENCH_SCHEMA)))
        for sales in mode.sales:
            statements: list[str] = []
            if sales.rows is None:
                name = "public.sales"
            else:
                name, statements = sales_subset_sql(sales.rows)
            for statement in [*statements, *grant_sql(name)]:
                conn.execute(statement.encode())
            rows = _count(conn, name)
            tables.append(TableSpec(name, "sales", sales.size, rows))
        name, statements = wide_table_sql(mode.wide_rows)
        for statement in [*statements, *grant_sql(name)]:
            conn.execute(statement.encode())
        tables.append(TableSpec(name, "wide", "wide", _count(conn, name)))
    return tables


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    schema, _, name = table.partition(".")
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


# --- running the clients -----------------------------------------------------------------------


def cases_for(table: TableSpec, selected: Sequence[str]) -> list[str]:
    cases = [c for c in RUN_ORDER if c in selected]
    if table.rows > ONE_STATEMENT_MAX_ROWS:
        cases = [c for c in cases if c not in ONE_STATEMENT_CASES]
    if table.family != "sales":
        cases = [c for c in cases if c not in SNAPSHOT_CASES]
    # The DuckDB floor reads the parts floor-unload leaves.
    if "floor-duckdb-parquet" in cases and "floor-unload" not in cases:
        cases.remove("floor-duckdb-parquet")
    return cases


def client_environment() -> dict[str, str]:
    """This process's environment without AWS settings: each client sets the stand-in's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def parse_client_output(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            parsed: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return parsed
    return None


def run_client(
    stand_in: StandInProcess,
    case: str,
    table: str,
    scratch: Path,
    *,
    profile: Path | None = None,
    rss_timeline: Path | None = None,
    wrapper: Sequence[str] = (),
) -> dict[str, Any]:
    argv = [
        *wrapper,
        sys.executable,
        "-m",
        "bench.client",
        case,
        "--context",
        str(stand_in.ready_file),
        "--table",
        table,
        "--scratch",
        str(scratch),
    ]
    if profile is not None:
        argv += ["--profile", str(profile)]
    if rss_timeline is not None:
        argv += ["--rss-timeline", str(rss_timeline)]
    server_cpu = stand_in.cpu_seconds()
    try:
        done = subprocess.run(
            argv,
            cwd=REPO,
            env=client_environment(),
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {
            "case": case,
            "table": table,
            "error": f"timed out after {CLIENT_TIMEOUT_SECONDS} s",
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    server_cpu = stand_in.cpu_seconds() - server_cpu
    result = parse_client_output(done.stdout)
    if result is None:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        result = {"case": case, "error": f"exit code {done.returncode}: {tail}"}
    result["table"] = table
    result["server_cpu_s"] = round(server_cpu, 3)
    return result


def environment_info(mode: Mode, page_bytes: int, reps: str) -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    memory_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pyarrow": version("pyarrow"),
        "duckdb": version("duckdb"),
        "boto3": version("boto3"),
        "peers": peer_versions(),
        "scale": mode.scale,
        "page_bytes": page_bytes,
        "reps": reps,
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: other work on the machine skews the timings."""
    return [round(x, 2) for x in os.getloadavg()]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> RunReport:
    mode = MODES["large" if args.large else "quick" if args.quick else "default"]
    selected = list(args.cases or RUN_ORDER)
    started = datetime.datetime.now().replace(microsecond=0)
    reps_text = str(args.reps) if args.reps is not None else mode.reps_text()
    report = RunReport(
        started_at=started.isoformat(),
        mode=mode.name,
        environment=environment_info(mode, args.page_bytes, reps_text),
        tables=[],
    )
    work = Path(tempfile.mkdtemp(prefix="shiftsync-bench-"))
    wanted = args.profile or args.rss_timeline
    profiles = args.out / "profiles" / started.strftime("%Y-%m-%d-%H%M") if wanted else None
    try:
        log(f"bench: starting the stand-in (TICKIT scale {mode.scale}) …")
        with StandInProcess(StandInSpec(mode.scale, args.page_bytes), work / "standin") as stand_in:
            report.environment["standin_startup_seconds"] = round(stand_in.startup_seconds, 1)
            log(f"bench: stand-in up in {stand_in.startup_seconds:.1f} s; preparing tables …")
            prepared = prepare_tables(stand_in.info.postgres_dsn, mode)
            report.tables = [t for t in prepared if not args.tables or t.size in args.tables]
            report.environment["load_average_at_start"] = load_average()
            for table in report.tables:
                run_table(stand_in, report, table, mode, args, work, selected, profiles)
            report.environment["load_average_at_end"] = load_average()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def run_table(
    stand_in: StandInProcess,
    report: RunReport,
    table: TableSpec,
    mode: Mode,
    args: argparse.Namespace,
    work: Path,
    selected: Sequence[str],
    profiles: Path | None,
) -> None:
    folder = work / table.name
    probe = run_client(stand_in, "probe", table.name, folder / "probe")
    report.auto[table.name] = dict(probe.get("extra") or {"error": probe.get("error")})
    cases = cases_for(table, selected)
    reps = mode.reps_for(table, args.reps)
    log(f"bench: {table.label}: {len(cases)} cases × {reps} reps; auto: {probe.get('extra')}")
    for rep in range(1, reps + 1):
        for case in cases:
            sample = run_client(stand_in, case, table.name, folder / f"{case}-{rep}")
            sample["rep"] = rep
            report.samples.append(sample)
            shown = sample.get("error") or (
                f"{sample.get('server_seconds') or sample['wall_s']:.3f} s, "
                f"cpu {sample['cpu_s']:.2f} s, rss {sample['peak_rss_mb']:.0f} MB"
            )
            log(f"  {table.name} rep {rep} {case}: {shown}")
    if profiles is not None and args.profile:
        for case in (c for c in PROFILED_CASES if c in cases):
            for path in profile_case(stand_in, case, table.name, folder, profiles):
                report.profiles.append(
                    str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
                )
    if profiles is not None and args.rss_timeline:
        for case in (c for c in cases if c.startswith("shiftsync-")):
            path = rss_timeline_case(stand_in, case, table.name, folder, profiles)
            report.profiles.append(
                str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
            )
    shutil.rmtree(folder, ignore_errors=True)


def profile_case(
    stand_in: StandInProcess, case: str, table: str, folder: Path, profiles: Path
) -> list[Path]:
    """One more run of the case under py-spy, client and stand-in both (every thread); the
    summaries are written as text. Without py-spy: pyinstrument, client main thread only."""
    profiles.mkdir(parents=True, exist_ok=True)
    stem = profiles / f"{table}-{case}"
    scratch = folder / f"{case}-profile"
    spy = py_spy()
    if spy is None:
        if importlib.util.find_spec("pyinstrument") is None:
            print(
                f"bench: no profile of {case}: --profile needs py-spy or pyinstrument "
                "(.venv/bin/pip install py-spy)",
                file=sys.stderr,
            )
            return []
        path = stem.with_name(stem.name + "-client-pyinstrument.txt")
        run_client(stand_in, case, table, scratch, profile=path)
        return [path]
    raw_client, raw_server = folder / f"{case}-client.raw", folder / f"{case}-server.raw"
    server_spy = [spy, "record", "--nonblocking", "-r", str(SERVER_RATE), "-f", "raw"]
    server = subprocess.Popen(
        [*server_spy, "-p", str(stand_in.pid), "-o", str(raw_server)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client_spy = [spy, "record", "--nonblocking", "-r", str(CLIENT_RATE), "-f", "raw"]
        run_client(
            stand_in, case, table, scratch, wrapper=[*client_spy, "-o", str(raw_client), "--"]
        )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    written = []
    for raw, side, rate in (
        (raw_client, "client", CLIENT_RATE),
        (raw_server, "standin", SERVER_RATE),
    ):
        if not raw.exists():
            continue
        with raw.open() as lines:
            summary = summarize_collapsed(parse_collapsed(lines))
        path = stem.with_name(f"{stem.name}-{side}.txt")
        path.write_text(
            f"py-spy profile of {case} on {table}, {side} process\n" + summary.text(rate)
        )
        written.append(path)
    return written


def rss_timeline_case(
    stand_in: StandInProcess, case: str, table: str, folder: Path, profiles: Path
) -> Path:
    """One more run of the case with its resident memory sampled (bench/memory.py); the
    timeline is kept as JSON and summarized as text (when it peaks, and what ran then)."""
    profiles.mkdir(parents=True, exist_ok=True)
    # Not with_suffix: the table's name has a dot of its own (public.sales).
    timeline = profiles / f"{table}-{case}-rss.json"
    result = run_client(stand_in, case, table, folder / f"{case}-rss", rss_timeline=timeline)
    summary = profiles / f"{table}-{case}-rss.txt"
    title = (
        f"RSS timeline of {case} on {table} (ru_maxrss {result.get('peak_rss_mb')} MB, "
        f"{result.get('wall_s')} s; the sampler slows the run)"
    )
    if timeline.exists():
        summary.write_text(summarize(json.loads(timeline.read_text()), title=title))
    else:
        summary.write_text(f"{title}\nno timeline: {result.get('error')}\n")
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark shiftsync against awswrangler and the floor, on the stand-in.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--large", action="store_true", help="add sales at 10^7 rows (long)")
    size.add_argument("--quick", action="store_true", help="a smoke run: tiny tables, 1 rep")
    parser.add_argument("--reps", type=int, help="repetitions of every case (default 5 / 3)")
    parser.add_argument(
        "--page-bytes",
        type=int,
        default=Limits().page_bytes,
        help="the stand-in's Data API page size (default 1 MiB)",
    )
    parser.add_argument(
        "--cases", nargs="+", choices=RUN_ORDER, help="run only these cases (default: all)"
    )
    parser.add_argument(
        "--tables", nargs="+", help="run only these sizes (1e5, 1e6, 1e7, wide; quick: 1e3, all)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile one more run of each shiftsync and awswrangler case (py-spy)",
    )
    parser.add_argument(
        "--rss-timeline",
        action="store_true",
        help="also sample the resident memory of one more run of each shiftsync case "
        "(bench/memory.py): when it peaks and what ran then",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    args = parser.parse_args(argv)
    if args.reps is not None and args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # SystemExit unwinds through the `with StandInProcess` and `finally` blocks, so a
    # terminated run stops its stand-in and removes its folder; the default action would not.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.monotonic()
    report = run(args)
    markdown, document = write_results(report, args.out)
    failed = [s for s in report.samples if s.get("error")]
    log(
        f"bench: done in {time.monotonic() - started:.0f} s; {len(report.samples)} runs, "
        f"{len(failed)} failed; wrote {markdown} and {document}"
    )
    print(markdown.read_text())
    assert set(RUN_ORDER) | {"probe"} == set(CASES)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
