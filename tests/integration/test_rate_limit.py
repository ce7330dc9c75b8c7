"""One Data API rate limit per account and region: two shiftsync processes syncing at once
share one token bucket, and the stand-in, counting every call it answers, never sees more
GetStatementResult calls than the configured rate allows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import shiftsync
from shiftsync.aws.session import AssumedRoleSession
from shiftsync.local.data_api import call_log
from shiftsync.local.standin import StandIn, StandInInfo
from shiftsync.redshift.rate_limit import BURST_SECONDS, FileRateLimiter
from shiftsync.redshift.source import RedshiftSource
from shiftsync.workspace import Workspace
from tests.support import standin_connection, write_external_id, write_sync_config

RATE = 4.0
# The stand-in counts a call when it arrives, the limiter when it is sent: on a loaded machine
# calls wait in the stand-in's threads and arrive bunched (one fresh-clone run counted 7 in a
# second where the bound allows 5). A second of that is allowed; two processes each keeping
# their own bucket still break the bound (15 calls in one second against 9 allowed, when tried).
ARRIVAL_JITTER = 1.0
TABLES = ["public.category", "public.venue", "public.date", "public.event", "public.users"]


def cli_env(info: StandInInfo, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIFTSYNC_DEBUG")}
    env.update(info.environment())
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["XDG_CACHE_HOME"] = str(cache)
    # The processes import this checkout's shiftsync, wherever they run.
    env["PYTHONPATH"] = str(Path(shiftsync.__file__).resolve().parents[1])
    return env


def make_workspace(folder: Path, info: StandInInfo, **limits: Any) -> Path:
    folder.mkdir()
    write_external_id(folder, info.external_id)
    write_sync_config(
        folder,
        standin_connection(info, method="data_api", rate_limits=limits),
        {"dest": {"type": "duckdb", "path": "out.duckdb"}},
        {"destination": "dest", "tables": TABLES},
    )
    return folder


def test_two_processes_never_pass_the_shared_get_statement_result_rate(
    tmp_path: Path, info: StandInInfo
) -> None:
    env = cli_env(info, tmp_path / "cache")
    folders = [make_workspace(tmp_path / name, info, get_statement_result=RATE) for name in "ab"]
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "shiftsync", "sync"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in folders
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    log = call_log.current()
    times = log.times("GetStatementResult", started) + log.times("GetStatementResultV2", started)
    # Both runs fetched results (at least one page per table each, and their queries).
    assert len(times) >= 2 * len(TABLES)
    capacity = max(1.0, RATE * BURST_SECONDS)
    for window in (1.0, 2.0, 5.0):
        allowed = capacity + RATE * (window + ARRIVAL_JITTER)
        assert call_log.most_in_window(times, window) <= allowed, window
    # The shared bucket is the user's own: folder 0700, files 0600.
    folder = tmp_path / "cache" / "shiftsync" / "rate-limits"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o600}


def test_throttling_slows_the_shared_bucket_down(
    tmp_path: Path, info: StandInInfo, standin: StandIn
) -> None:
    """A ThrottlingException answer (botocore retries it by itself) halves the shared rate
    that every process of the machine then follows."""
    folder = make_workspace(tmp_path / "ws", info, get_statement_result=RATE)
    config = Workspace(folder).config
    _, connection = config.connection("warehouse")
    session = AssumedRoleSession(connection.role_arn, info.external_id, connection.region)
    limiter = FileRateLimiter(tmp_path / "cache", "throttled", connection.rate_limits.rates())
    source = RedshiftSource(connection, session, limiter=limiter)
    assert limiter.current_rate("GetStatementResult") == RATE
    fault = standin.faults.add("throttle", operation="GetStatementResult", times=1)
    assert source.query("select 1") == [(1,)]
    assert standin.faults.counts()[fault] == 1
    assert limiter.current_rate("GetStatementResult") == RATE / 2
    # Another process (another limiter on the same file) sees the slower rate too.
    other = FileRateLimiter(tmp_path / "cache", "throttled", connection.rate_limits.rates())
    assert other.current_rate("GetStatementResult") == RATE / 2
