"""The Ray executor's targets of issue 12, measured in one run on this machine.

    python -m bench.ray_bench [--scale 5.8] [--reps 3] [--out bench/results]

(a) decode and write on 2 workers against 1: `public.sales` read as 4 key ranges whose UNLOADs
    have already run (a checkpoint names them all finished, as a resumed run's would), each
    range a task that reads its staged parts, decodes them and writes Parquet files through
    the load's sink (executors/ray_files.py); timed from the tasks' submission to the last
    report, on a one-node cluster of 1 CPU, then of 2 CPUs, each after one untimed read that
    starts its workers. Target: ≥ 1.6×.
(b) a whole sync of `public.sales` (~10^6 rows at scale 5.8) by UNLOAD into Parquet, verification
    off: `run_sync` in one process against `run_sync` with `executor: ray` on a one-machine
    cluster of 2 CPUs (the workers write the files), after one untimed sync of each.
    Target: Ray within 10% of in-process.

Ray's servers bind every interface of a node, so the run re-executes itself inside a network
namespace of its own whose only interface is the loopback (`unshare --net`, root), the
stand-in and the cluster with it. Every Ray node is started here and stopped by its process
group. Repetitions are interleaved; the report gives medians and min–max, and is written as
`ray-YYYY-MM-DD-HHMM.md` and `.json` under --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

import pyarrow as pa

from bench.standin_process import StandInProcess, StandInSpec
from shiftsync.json_types import JsonValue
from shiftsync.local.info import StandInInfo

IN_NAMESPACE: Final = "SHIFTSYNC_RAY_BENCH_NETNS"
RAY: Final = Path(sys.executable).with_name("ray")
RANGES: Final = 4
SYNC: Final = "bench"


def log(message: str) -> None:
    print(f"[ray-bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- a one-node cluster of N CPUs --------------------------------------------------------------


@contextmanager
def cluster(cpus: int, env: Mapping[str, str], folder: Path) -> Iterator[str]:
    """A head node of `cpus` CPUs on 127.0.0.1 (its own process group), and this process
    joined to it as the driver; stopped on the way out."""
    import ray

    from shiftsync.errors import ConfigError
    from shiftsync.executors.ray_source import check_reachable
    from shiftsync.local.postgres import free_port

    port = free_port()
    address = f"127.0.0.1:{port}"
    # Ray's socket paths must stay short: a folder of its own directly under the temp dir.
    temp = Path(tempfile.mkdtemp(prefix=f"ss-ray-bench-{cpus}-"))
    log_file = folder / f"ray-{cpus}cpu.log"
    head = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--block",
            "--head",
            "--disable-usage-stats",
            f"--num-cpus={cpus}",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
        ],
        env={**env, "XDG_CACHE_HOME": str(folder / f"cache-{cpus}")},
        stdout=log_file.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert head.poll() is None, log_file.read_text()
            try:
                check_reachable(address, timeout=1)
                break
            except ConfigError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        ray.init(
            address=address,
            logging_level=logging.ERROR,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
        resources = cast("Callable[[], dict[str, float]]", ray.cluster_resources)
        while resources().get("CPU", 0) < cpus:
            assert head.poll() is None, log_file.read_text()
            time.sleep(0.5)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGTERM)
            try:
                head.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(head.pid, signal.SIGKILL)
                head.wait(30)
        shutil.rmtree(temp, ignore_errors=True)


# --- the workspace ----------------------------------------------------------------------------


def write_workspace(folder: Path, info: StandInInfo, range_mb: float) -> Path:
    from shiftsync.workspace import Workspace

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shiftsync.yaml").write_text(
        "connections:\n"
        "  standin:\n"
        "    type: redshift_serverless\n"
        f"    region: {info.region}\n"
        f"    workgroup: {info.workgroup}\n"
        f"    database: {info.database}\n"
        f"    role_arn: {info.role_arn}\n"
        "    method: unload\n"
        "    unload:\n"
        f"      bucket: {info.bucket}\n"
        "      prefix: shiftsync-ray-bench/\n"
        f"      range_mb: {range_mb}\n"
        "destinations:\n"
        "  lake:\n"
        "    type: parquet\n"
        "    path: lake\n"
        "syncs:\n"
        f"  {SYNC}:\n"
        "    source: standin\n"
        "    destination: lake\n"
        "    concurrency: 1\n"
        "    tables:\n"
        '      - {include: "public.sales", method: unload}\n'
    )
    dot = folder / ".shiftsync"
    dot.mkdir(exist_ok=True)
    (dot / "external_id").write_text(info.external_id + "\n")
    Workspace.init(folder)
    return folder


class MemoryCheckpoint:
    """A ranged read's checkpoint kept in memory: the staged ranges outlive each measured read."""

    def __init__(self) -> None:
        self.progress: Mapping[str, JsonValue] | None = None

    def resume(self) -> Mapping[str, JsonValue] | None:
        return self.progress

    def save(self, progress: Mapping[str, JsonValue]) -> None:
        self.progress = dict(progress)


def unchanged(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch


# --- (a) decode and write on 1 and 2 workers ----------------------------------------------------


def staged_write(
    folder: Path, info: StandInInfo, address: str, checkpoint: MemoryCheckpoint
) -> dict[str, Any]:
    """One read of every staged range, each a task writing its files; the load is aborted (its
    files deleted), the staging kept. Seconds, rows, files, and the nodes' processes."""
    from shiftsync.destinations.base import LoadMode, LoadSpec
    from shiftsync.destinations.parquet import ParquetDestination
    from shiftsync.executors.ray_source import RaySource
    from shiftsync.redshift.source import RedshiftSource
    from shiftsync.redshift.types import arrow_schema
    from shiftsync.workspace import Workspace

    workspace = Workspace(folder)
    local = RedshiftSource.from_workspace(workspace)
    source = RaySource(local, workspace.external_id, address)
    table = local.describe("public.sales")
    schema = arrow_schema(table.columns)
    load = ParquetDestination(str(folder / "lake")).start_load(
        LoadSpec("sales", schema, LoadMode.REPLACE)
    )
    sink = load.file_sink()
    assert sink is not None
    try:
        started = time.perf_counter()
        reports = source.write_files(table, sink, unchanged, method="unload", checkpoint=checkpoint)
        seconds = time.perf_counter() - started
    finally:
        load.abort()
    files = [f for r in reports for f in r["files"]]
    stats = source.stats
    return {
        "seconds": seconds,
        "rows": sum(f.rows for f in files),
        "files": len(files),
        "tasks": len(reports),
        "writers": len({r["pid"] for r in reports}),
        # Statements the tasks ran: 0 when every range was read from its staged files.
        "statements": stats.statements,
    }


def stage_once(folder: Path, info: StandInInfo, address: str) -> MemoryCheckpoint:
    """Every range's UNLOAD run once (not measured): later reads find their files."""
    checkpoint = MemoryCheckpoint()
    first = staged_write(folder, info, address, checkpoint)
    log(f"staged {first['tasks']} ranges, {first['rows']:,} rows")
    return checkpoint


# --- (b) a whole sync in one process and on the cluster ----------------------------------------


def whole_sync(folder: Path, address: str | None) -> dict[str, Any]:
    from shiftsync.engine.observer import SyncOptions
    from shiftsync.engine.sync import run_sync
    from shiftsync.workspace import Workspace

    options = SyncOptions(verify=False, full_refresh=True)
    if address is not None:
        options = SyncOptions(verify=False, full_refresh=True, executor="ray", ray_address=address)
    started = time.perf_counter()
    record = run_sync(Workspace(folder), SYNC, options)
    seconds = time.perf_counter() - started
    (table,) = record.tables
    assert record.status == "ok", table.error
    return {"seconds": seconds, "rows": table.rows, "notes": list(table.notes)}


# --- the run ----------------------------------------------------------------------------------


def summary(samples: Sequence[dict[str, Any]]) -> dict[str, float]:
    seconds = [s["seconds"] for s in samples]
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    results: dict[str, Any] = {
        "scale": args.scale,
        "reps": args.reps,
        "cpus": os.cpu_count(),
        # Other work on the machine skews every figure: the load before and after the run.
        "load_average": [[round(x, 2) for x in os.getloadavg()]],
    }
    try:
        with StandInProcess(StandInSpec(args.scale), work / "standin") as stand_in:
            info = stand_in.info
            env = {**os.environ, **info.environment(), "RAY_USAGE_STATS_ENABLED": "0"}
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
            os.environ.update(info.environment())
            from shiftsync.redshift.source import RedshiftSource
            from shiftsync.workspace import Workspace

            probe = write_workspace(work / "probe", info, 0)
            estimate = (
                RedshiftSource.from_workspace(Workspace(probe))
                .describe("public.sales")
                .estimated_bytes
            )
            assert estimate, "the stand-in gave no size estimate for public.sales"
            ranged = write_workspace(work / "ranged", info, estimate / RANGES / 2**20 * 1.01)
            whole = write_workspace(work / "whole", info, 0)

            log("(a) staging the ranges")
            staged: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            with cluster(2, env, work) as address:
                checkpoint = stage_once(ranged, info, address)
            for rep in range(args.reps):
                for cpus in (1, 2):
                    with cluster(cpus, env, work) as address:
                        # Untimed: the workers' processes start and import once, as in a
                        # cluster that is up before a sync.
                        staged_write(ranged, info, address, checkpoint)
                        cpu = stand_in.cpu_seconds()
                        sample = staged_write(ranged, info, address, checkpoint)
                        # The stand-in serves the staged parts from the same two cores.
                        sample["standin_cpu"] = stand_in.cpu_seconds() - cpu
                    staged[cpus].append(sample)
                    log(
                        f"(a) rep {rep + 1}, {cpus} worker(s): {sample['seconds']:.2f} s, "
                        f"{sample['statements']} statement(s), {sample['writers']} writer(s), "
                        f"stand-in {sample['standin_cpu']:.2f} CPU s"
                    )
            one, two = summary(staged[1]), summary(staged[2])
            results["staged"] = {
                "samples": {str(k): v for k, v in staged.items()},
                "one_worker": one,
                "two_workers": two,
                "speedup": one["median"] / two["median"],
            }

            log("(b) whole syncs")
            syncs: dict[str, list[dict[str, Any]]] = {"in_process": [], "ray": []}
            with cluster(2, env, work) as address:
                whole_sync(whole, None)  # untimed warm-ups: imports, the workers' processes
                whole_sync(whole, address)
                for rep in range(args.reps):
                    for case, where in (("in_process", None), ("ray", address)):
                        sample = whole_sync(whole, where)
                        syncs[case].append(sample)
                        log(f"(b) rep {rep + 1}, {case}: {sample['seconds']:.2f} s")
            alone, on_ray = summary(syncs["in_process"]), summary(syncs["ray"])
            results["sync"] = {
                "samples": syncs,
                "in_process": alone,
                "ray": on_ray,
                "ratio": on_ray["median"] / alone["median"],
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_average"].append([round(x, 2) for x in os.getloadavg()])
    return results


def cpu_median(staged: Mapping[str, Any], workers: str) -> float:
    return float(statistics.median(s["standin_cpu"] for s in staged["samples"][workers]))


def report(results: Mapping[str, Any]) -> str:
    staged, sync = results["staged"], results["sync"]
    rows = staged["samples"]["2"][0]["rows"]

    def span(s: Mapping[str, float]) -> str:
        return f"{s['median']:.2f} s ({s['min']:.2f}–{s['max']:.2f})"

    return "\n".join(
        [
            f"# Ray executor benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"Machine: {results['cpus']} cores; TICKIT scale {results['scale']}; "
            f"{results['reps']} interleaved repetitions; medians (min–max). Load average "
            f"(1, 5, 15 min) before {results['load_average'][0]}, after "
            f"{results['load_average'][1]}.",
            "",
            "| measure | result | target |",
            "|---|---|---|",
            f"| (a) {RANGES} staged ranges of sales ({rows:,} rows) decoded and written as "
            f"Parquet, 1 worker | {span(staged['one_worker'])} | |",
            f"| (a) the same, 2 workers | {span(staged['two_workers'])} | |",
            f"| (a) speed-up, 2 workers against 1 | {staged['speedup']:.2f}× | ≥ 1.6× |",
            "| (a) the stand-in's CPU seconds while serving the parts, 1 / 2 workers | "
            f"{cpu_median(staged, '1'):.2f} / {cpu_median(staged, '2'):.2f} | |",
            f"| (b) whole sync of sales by UNLOAD into Parquet, in one process | "
            f"{span(sync['in_process'])} | |",
            f"| (b) the same on a one-machine Ray cluster (2 CPUs) | {span(sync['ray'])} | |",
            f"| (b) Ray against in-process | {sync['ratio']:.2f}× | ≤ 1.10× |",
            "",
        ]
    )


def in_namespace(argv: Sequence[str]) -> int:
    """This run again, inside a network namespace whose only interface is the loopback."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None or os.geteuid() != 0:
        print(
            "error: the Ray benchmark runs its cluster in a private network namespace\n"
            "fix: run it as root on a machine with unshare and ip (util-linux, iproute2)",
            file=sys.stderr,
        )
        return 2
    script = f'{ip} link set lo up && exec "$@"'
    command = [sys.executable, "-m", "bench.ray_bench", *argv]
    env = {**os.environ, IN_NAMESPACE: "1"}
    return subprocess.run(
        [unshare, "--net", "sh", "-c", script, "sh", *command], env=env
    ).returncode


def main(argv: Sequence[str] | None = None, write: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ray_bench", description=__doc__)
    parser.add_argument("--scale", type=float, default=5.8, help="TICKIT scale (5.8: 10^6 sales)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    if os.environ.get(IN_NAMESPACE) != "1":
        return in_namespace(list(argv if argv is not None else sys.argv[1:]))
    results = run(args)
    text = report(results)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"ray-{datetime.now(UTC):%Y-%m-%d-%H%M}"
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
