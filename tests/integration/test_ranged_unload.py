"""A big table read as several UNLOADs over key ranges, resumed after a kill -9.

The stand-in counts the UNLOAD statements: the run after the kill runs only the ranges the
killed run had not finished, commits the table once, and ends equal to the source with nothing
left staged.
"""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Any

import psycopg

from shiftsync.engine.runs import RunStore
from shiftsync.local.standin import StandIn, StandInInfo
from shiftsync.redshift.source import RedshiftSource
from shiftsync.workspace import Workspace
from tests.support import standin_connection, write_external_id, write_sync_config
from tests.support_sync import (
    Stand,
    cli_env,
    run_cli,
    staged_keys,
    start_paused,
)

MIB = 1024 * 1024
RANGES = 4


def unloads_of(standin: StandIn, table: str) -> set[str]:
    engine = standin.engine
    assert engine is not None
    return {
        statement.id
        for statement in list(engine.statements.values())
        if statement.query_string.lstrip().upper().startswith("UNLOAD")
        and table in statement.query_string
    }


def ranged_workspace(folder: Path, info: StandInInfo, table: str, range_mb: float) -> Workspace:
    write_external_id(folder, info.external_id)
    write_sync_config(
        folder,
        standin_connection(info, unload={"bucket": info.bucket, "range_mb": range_mb}),
        {"dest": {"type": "duckdb", "path": "out.duckdb"}},
        {
            "destination": "dest",
            "tables": [{"include": f"public.{table}", "method": "unload"}],
        },
    )
    return Workspace(folder)


def read_in_ranges(
    admin: psycopg.Connection[Any], folder: Path, info: StandInInfo, table: str
) -> tuple[int, float]:
    """public.<table> analysed, and the workspace's sync reading it in RANGES ranges (each a
    little larger than a quarter of the estimate): (the estimate in bytes, range_mb)."""
    admin.execute(f'ANALYZE public."{table}"')
    workspace = ranged_workspace(folder, info, table, 0)
    estimate = RedshiftSource.from_workspace(workspace).describe(f"public.{table}").estimated_bytes
    assert estimate is not None
    range_mb = estimate / RANGES / MIB * 1.01
    ranged_workspace(folder, info, table, range_mb)
    return estimate, range_mb


def test_a_killed_ranged_read_resumes_with_the_ranges_left(
    standin: StandIn, s3: Any, stand: Stand
) -> None:
    table = stand.copy("sales", "ranged")
    folder = stand.folder / "ws"
    estimate, range_mb = read_in_ranges(stand.admin, folder, stand.info, table)
    assert estimate > 0
    assert math.ceil(estimate / (range_mb * MIB)) == RANGES
    env = cli_env(stand.info)

    before = unloads_of(standin, table)
    process = start_paused(folder, env, "after_first_batch_read", f"public.{table}")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    killed = unloads_of(standin, table) - before
    assert len(killed) == 1  # the first range was staged and checkpointed, then the kill

    store = RunStore(Workspace(folder).runs_dir)
    (killed_run,) = store.list()
    progress = store.load(str(killed_run["run_id"])).tables[0].ranges
    assert progress is not None
    ranges, done = progress["ranges"], progress["done"]
    assert isinstance(ranges, list)
    assert len(ranges) == RANGES
    assert isinstance(done, dict)
    assert list(done) == ["0"]

    rerun = run_cli(folder, env, "--json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    resumed = unloads_of(standin, table) - before - killed
    assert len(resumed) == RANGES - 1, (
        rerun.stderr
    )  # only the ranges the killed run had not finished
    document = json.loads(rerun.stdout)
    (entry,) = document["tables"]
    assert entry["verification"]["status"] == "ok"
    assert entry["ranges"] is None  # committed: the checkpoint is dropped

    stand.holds_the_source(Workspace(folder), table)
    # The staged ranges, the killed run's among them, are deleted once the table is committed.
    assert staged_keys(s3, stand.info.bucket) == []

    # A further run starts over: one bounds statement, RANGES new UNLOADs, nothing resumed.
    again = run_cli(folder, env, "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(unloads_of(standin, table) - before - killed - resumed) == RANGES
    assert staged_keys(s3, stand.info.bucket) == []


def test_a_failed_ranged_read_keeps_its_ranges_for_the_next_run(
    standin: StandIn, s3: Any, stand: Stand
) -> None:
    table = stand.copy("sales", "rangedfail")
    folder = stand.folder / "ws"
    read_in_ranges(stand.admin, folder, stand.info, table)
    env = cli_env(stand.info)
    # The second range (the first with both bounds) fails once.
    fault = standin.faults.add(
        "fail_statement", sql=rf"UNLOAD .*{table}.*>=.* AND .*<", message="disk full"
    )

    before = unloads_of(standin, table)
    failed = run_cli(folder, env, "--json")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert standin.faults.counts()[fault] == 1
    (entry,) = json.loads(failed.stdout)["tables"]
    assert entry["status"] == "failed"
    assert list(entry["ranges"]["done"]) == ["0"]
    first = unloads_of(standin, table) - before
    assert len(first) == 2  # range 0, then range 1 which failed
    # Kept for the next run: the finished range's files.
    assert staged_keys(s3, stand.info.bucket) != []

    rerun = run_cli(folder, env, "--json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert len(unloads_of(standin, table) - before - first) == RANGES - 1
    stand.holds_the_source(Workspace(folder), table)
    assert staged_keys(s3, stand.info.bucket) == []
