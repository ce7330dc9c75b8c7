"""A big table's ranged read killed half way, then resumed: how much of the table moves again.

    python -m bench.resume                  # sales at 10^7 rows (TICKIT scale 58), 8 ranges
    python -m bench.resume --scale 5.8      # 10^6 rows, for a shared machine

The stand-in runs in its own process (bench/standin_process.py). `public.sales` is synced by
UNLOAD into a DuckDB file with `unload.range_mb` set so that it is read in `--ranges` key ranges.

1. `shiftsync sync` is started and killed with SIGKILL as soon as its run record checkpoints
   half of the ranges. The bytes staged by the ranges it checkpointed are listed in S3.
2. `shiftsync sync` again, paused before its commit (the debug pause of the crash tests): the
   bytes its own UNLOADs staged are listed (every prefix of the range area but the killed run's
   checkpointed ones). Then it commits, and the DuckDB table is counted against the source.

The table's bytes as UNLOADed are the two runs' together (each range staged once by one of
them); the target of issue 12 is that the resumed run moves at most 55% of them again. The
resumed run still downloads every range's files (the table is committed once, from all of
them). Results go to bench/results/resume-YYYY-MM-DD-HHMM.md and .json. Exit 1 if the
target is missed or the table is not equal.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import boto3
import duckdb
import psycopg

from bench.report import write_checked
from bench.standin_process import StandInProcess, StandInSpec
from bench.workspaces import standin_connection
from bench.workspaces import write_workspace as write_config
from shiftsync.engine.pause import PAUSE_ENV, PAUSE_MARKER, RESUME_FILE_ENV
from shiftsync.engine.runs import RunStore
from shiftsync.local.info import StandInInfo
from shiftsync.redshift.source import RedshiftSource
from shiftsync.workspace import Workspace

RESULTS: Final = Path(__file__).resolve().parent / "results"
TABLE: Final = "public.sales"
TARGET: Final = 0.55
MIB: Final = 1024 * 1024
POLL_SECONDS: Final = 0.05
RUN_TIMEOUT: Final = 1800.0


def write_workspace(folder: Path, info: StandInInfo, range_mb: float) -> Workspace:
    config = {
        "connections": {
            "warehouse": standin_connection(
                info, unload={"bucket": info.bucket, "range_mb": range_mb}
            )
        },
        "destinations": {"dest": {"type": "duckdb", "path": "out.duckdb"}},
        "syncs": {
            "main": {
                "source": "warehouse",
                "destination": "dest",
                "tables": [{"include": TABLE, "method": "unload"}],
            }
        },
    }
    return write_config(folder, info, config)


def cli_env(info: StandInInfo, extra: Mapping[str, str] = {}) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIFTSYNC_DEBUG")}
    env.update(info.environment())
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env.update(extra)
    return env


def sync_process(folder: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shiftsync", "sync", "--json"],
        cwd=folder,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def checkpointed(store: RunStore) -> dict[str, Any]:
    """The newest run's checkpointed ranges ({index: {prefix, rows}}), {} if none yet."""
    try:
        runs = store.list(limit=1)
        if not runs:
            return {}
        ranges = store.load(str(runs[0]["run_id"])).tables[0].ranges
    except (OSError, ValueError, IndexError, KeyError):
        return {}  # the record is being written or has no table yet
    done = ranges.get("done") if ranges else None
    return dict(done) if isinstance(done, dict) else {}


def staged_bytes(s3: Any, bucket: str, prefix: str = "shiftsync/") -> dict[str, int]:
    sizes: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            sizes[str(item["Key"])] = int(item["Size"])
    return sizes


def by_range(sizes: Mapping[str, int]) -> dict[str, int]:
    """Staged bytes per range prefix (`…/r<index>-<attempt>_`), for the report."""
    ranged: dict[str, int] = {}
    for key, size in sizes.items():
        name = key.rsplit("/", 1)[-1]
        prefix = name.split("_", 1)[0] if name.startswith("r") else "(other)"
        ranged[prefix] = ranged.get(prefix, 0) + size
    return dict(sorted(ranged.items()))


def role_s3(info: StandInInfo) -> Any:
    """An S3 client as the role (the runner's own keys may not read the staging bucket)."""
    sts = boto3.client(
        "sts",
        endpoint_url=info.endpoint,
        region_name=info.region,
        aws_access_key_id=info.access_key_id,
        aws_secret_access_key=info.secret_access_key,
    )
    granted = sts.assume_role(
        RoleArn=info.role_arn, RoleSessionName="bench-resume", ExternalId=info.external_id
    )["Credentials"]
    return boto3.client(
        "s3",
        endpoint_url=info.endpoint,
        region_name=info.region,
        aws_access_key_id=granted["AccessKeyId"],
        aws_secret_access_key=granted["SecretAccessKey"],
        aws_session_token=granted["SessionToken"],
    )


def kill_after_half(folder: Path, env: Mapping[str, str], ranges: int) -> dict[str, Any]:
    """Run `shiftsync sync` and kill it -9 once half the ranges are checkpointed."""
    store = RunStore(Workspace(folder).runs_dir)
    started = time.monotonic()
    process = sync_process(folder, env)
    try:
        while len(done := checkpointed(store)) < ranges / 2:
            if process.poll() is not None:
                _, err = process.communicate()
                raise SystemExit(f"the run ended before it was killed:\n{err[-2000:]}")
            if time.monotonic() - started > RUN_TIMEOUT:
                raise SystemExit("the run checkpointed no half of its ranges in time")
            time.sleep(POLL_SECONDS)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    return {"seconds": round(time.monotonic() - started, 2), "done": done}


def resume_paused(folder: Path, env: Mapping[str, str], s3: Any, bucket: str) -> dict[str, Any]:
    """Run `shiftsync sync` to its commit, list what is staged there, then let it commit."""
    resume = folder / "resume-now"
    started = time.monotonic()
    process = sync_process(
        folder, {**env, PAUSE_ENV: f"before_commit:{TABLE}", RESUME_FILE_ENV: str(resume)}
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith(f"{PAUSE_MARKER} before_commit"):
            break
    else:
        process.wait()
        raise SystemExit(f"the resumed run ended before its commit (exit {process.returncode})")
    at_commit = staged_bytes(s3, bucket)
    done = checkpointed(RunStore(Workspace(folder).runs_dir))
    resume.touch()
    out, err = process.communicate(timeout=RUN_TIMEOUT)
    if process.returncode != 0:
        raise SystemExit(f"the resumed run failed (exit {process.returncode}):\n{err[-2000:]}")
    return {
        "seconds": round(time.monotonic() - started, 2),
        "staged_at_commit": at_commit,
        "prefixes": tuple(str(entry["prefix"]) for entry in done.values()),
        "record": json.loads(out),
    }


def count_equal(folder: Path, dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM public.sales").fetchone()
    assert row is not None
    with duckdb.connect(str(folder / "out.duckdb"), read_only=True) as db:
        written = db.execute("SELECT count(*) FROM sales").fetchone()
    assert written is not None
    return int(row[0]), int(written[0])


def run(scale: float, ranges: int, work: Path) -> dict[str, Any]:
    with StandInProcess(StandInSpec(scale), work / "standin") as standin:
        info = standin.info
        # This process describes the table as shiftsync does (for the range size).
        os.environ.update(cli_env(info))
        with psycopg.connect(info.postgres_dsn, autocommit=True) as admin:
            admin.execute("ANALYZE public.sales")
        folder = work / "ws"
        estimate = (
            RedshiftSource.from_workspace(write_workspace(folder, info, 0))
            .describe(TABLE)
            .estimated_bytes
        )
        if not estimate:
            raise SystemExit("public.sales has no size estimate: ANALYZE did not take")
        range_mb = estimate / ranges / MIB * 1.01
        write_workspace(folder, info, range_mb)
        env = cli_env(info)
        s3 = role_s3(info)

        killed = kill_after_half(folder, env, ranges)
        kept_prefixes = tuple(str(entry["prefix"]) for entry in killed["done"].values())
        after_kill = staged_bytes(s3, info.bucket)
        kept = sum(size for key, size in after_kill.items() if key.startswith(kept_prefixes))
        resumed = resume_paused(folder, env, s3, info.bucket)
        # Its own UNLOADs: the ranges its checkpoint names that the killed run's did not. An
        # UNLOAD of the killed run that ended after the kill staged files too: the killed run
        # moved those, and the commit deletes them with the area.
        own = tuple(p for p in resumed["prefixes"] if p not in kept_prefixes)
        at_commit = resumed["staged_at_commit"]
        moved = sum(size for key, size in at_commit.items() if key.startswith(own))
        stray = sum(
            size for key, size in at_commit.items() if not key.startswith((*own, *kept_prefixes))
        )
        (entry,) = resumed["record"]["tables"]
        source_rows, written_rows = count_equal(folder, info.postgres_dsn)
        left = staged_bytes(s3, info.bucket)
        return {
            "scale": scale,
            "rows": source_rows,
            "ranges": ranges,
            "range_mb": round(range_mb, 3),
            "estimate_bytes": estimate,
            "killed": {
                "seconds": killed["seconds"],
                "checkpointed": len(killed["done"]),
                "kept_bytes": kept,
                "staged_bytes_after_kill": sum(after_kill.values()),
                "staged_by_range": by_range(after_kill),
            },
            "resumed": {
                "seconds": resumed["seconds"],
                "unloaded_bytes": moved,
                "killed_runs_late_unload_bytes": stray,
                "staged_by_range_at_commit": by_range(resumed["staged_at_commit"]),
                "statements": entry.get("statements"),
                "verification": (entry.get("verification") or {}).get("status"),
                "rows_written": written_rows,
                "staged_left": sum(left.values()),
            },
            "table_bytes": kept + moved,
            "moved_again": moved / (kept + moved) if kept + moved else None,
        }


def checks(result: Mapping[str, Any]) -> list[tuple[str, bool]]:
    moved = result["moved_again"]
    resumed = result["resumed"]
    return [
        (
            f"resumed run UNLOADs at most {TARGET:.0%} of the table's bytes again",
            moved is not None and moved <= TARGET,
        ),
        ("the table is equal to the source (rows)", resumed["rows_written"] == result["rows"]),
        ("verification ok", resumed["verification"] == "ok"),
        ("nothing left staged", resumed["staged_left"] == 0),
    ]


def report(result: Mapping[str, Any]) -> str:
    killed, resumed = result["killed"], result["resumed"]
    lines = [
        f"# A ranged read killed half way, then resumed: `{TABLE}`, {result['rows']:,} rows "
        f"(TICKIT scale {result['scale']}), {result['ranges']} key ranges",
        "",
        f"`unload.range_mb` {result['range_mb']} against an estimate of "
        f"{result['estimate_bytes']:,} bytes. Load average at the end: {os.getloadavg()[0]:.2f}.",
        "",
        "| run | seconds | ranges checkpointed | bytes staged by its UNLOADs |",
        "|---|---|---|---|",
        f"| killed -9 at half | {killed['seconds']} | {killed['checkpointed']} of "
        f"{result['ranges']} | {killed['kept_bytes']:,} kept for the next run |",
        f"| resumed | {resumed['seconds']} | the rest | {resumed['unloaded_bytes']:,} |",
        "",
        f"An UNLOAD of the killed run that ended after the kill staged "
        f"{resumed['killed_runs_late_unload_bytes']:,} bytes (not checkpointed: the range ran "
        "again; the commit deleted them with the area).",
        "",
        f"The table as UNLOADed: {result['table_bytes']:,} bytes of Parquet. The resumed run "
        f"UNLOADed **{result['moved_again']:.1%}** of them again; it downloaded all of them "
        "(every range's files, the checkpointed ones too: the table commits once, from all). "
        f"Rows written {resumed['rows_written']:,} of {result['rows']:,}; verification "
        f"{resumed['verification']}; bytes left staged after the commit: {resumed['staged_left']}.",
        "",
        "| check | met |",
        "|---|---|",
    ]
    lines += [f"| {name} | {'yes' if ok else 'NO'} |" for name, ok in checks(result)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resume", description=__doc__)
    parser.add_argument("--scale", type=float, default=58.0, help="TICKIT scale (58: 10^7 sales)")
    parser.add_argument("--ranges", type=int, default=8, help="key ranges to read the table in")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shiftsync-bench-resume-") as work:
        result = run(args.scale, args.ranges, Path(work))
    checked = [ok for _, ok in checks(result)]
    return write_checked(args.out, "resume", report(result), result, checked)


if __name__ == "__main__":
    raise SystemExit(main())
