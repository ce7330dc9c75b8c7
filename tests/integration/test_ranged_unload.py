"""A big table read as several UNLOADs over key ranges, resumed after a kill -9.

The stand-in counts the UNLOAD statements: the run after the kill runs only the ranges the
killed run had not finished, commits the table once, and ends equal to the source with nothing
left staged.
"""

from __future__ import annotations

import json
import math
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from shiftsync.engine.runs import RunStore
from shiftsync.local.standin import StandIn, StandInInfo
from shiftsync.redshift.source import RedshiftSource
from shiftsync.workspace import Workspace
from tests.integration.test_sync import (
    assert_same_table,
    cli_env,
    open_destination,
    run_cli,
    staged_keys,
    start_paused,
)
from tests.support import standin_connection, write_external_id, write_sync_config

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


def test_a_killed_ranged_read_resumes_with_the_ranges_left(
    tmp_path: Path,
    standin: StandIn,
    info: StandInInfo,
    admin: psycopg.Connection[Any],
    copies: Callable[[str, str], str],
    s3: Any,
) -> None:
    table = copies("sales", "ranged")
    admin.execute(f'ANALYZE public."{table}"')
    folder = tmp_path / "ws"
    workspace = ranged_workspace(folder, info, table, 0)
    estimate = RedshiftSource.from_workspace(workspace).describe(f"public.{table}").estimated_bytes
    assert estimate is not None
    assert estimate > 0
    # Ranges a little larger than a quarter of the estimate: RANGES of them.
    range_mb = estimate / RANGES / MIB * 1.01
    assert math.ceil(estimate / (range_mb * MIB)) == RANGES
    ranged_workspace(folder, info, table, range_mb)
    env = cli_env(info)

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

    destination = open_destination(Workspace(folder))
    try:
        assert_same_table(admin, destination, table, table)
    finally:
        destination.close()
    # The staged ranges, the killed run's among them, are deleted once the table is committed.
    assert staged_keys(s3, info.bucket) == []

    # A further run starts over: one bounds statement, RANGES new UNLOADs, nothing resumed.
    again = run_cli(folder, env, "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(unloads_of(standin, table) - before - killed - resumed) == RANGES
    assert staged_keys(s3, info.bucket) == []


def test_a_failed_ranged_read_keeps_its_ranges_for_the_next_run(
    tmp_path: Path,
    standin: StandIn,
    info: StandInInfo,
    admin: psycopg.Connection[Any],
    copies: Callable[[str, str], str],
    s3: Any,
) -> None:
    table = copies("sales", "rangedfail")
    admin.execute(f'ANALYZE public."{table}"')
    folder = tmp_path / "ws"
    workspace = ranged_workspace(folder, info, table, 0)
    estimate = RedshiftSource.from_workspace(workspace).describe(f"public.{table}").estimated_bytes
    assert estimate is not None
    ranged_workspace(folder, info, table, estimate / RANGES / MIB * 1.01)
    env = cli_env(info)
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
    assert staged_keys(s3, info.bucket) != []

    rerun = run_cli(folder, env, "--json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert len(unloads_of(standin, table) - before - first) == RANGES - 1
    destination = open_destination(Workspace(folder))
    try:
        assert_same_table(admin, destination, table, table)
    finally:
        destination.close()
    assert staged_keys(s3, info.bucket) == []
