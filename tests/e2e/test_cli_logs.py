"""Logs of `shiftsync sync` as a user sees them: every retry said and counted, a heartbeat
during a long statement, JSON lines and a log file; against the stand-in's faults."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from shiftsync.local.standin import StandIn, StandInInfo
from tests.e2e.test_cli_config import write_config
from tests.support import Cli, checkout_env, start_shiftsync

RETRY_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ WARNING shiftsync\.retry: retrying ExecuteStatement "
    r"\((?P<attempt>\d+)/(?P<of>\d+)\) in \d+\.\d s: ThrottlingException$"
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIFTSYNC_TEST_UNSET_DSN", "SHIFTSYNC_CONFIG", "SHIFTSYNC_ENV"):
        monkeypatch.delenv(name, raising=False)


def test_throttling_retries_are_logged_and_counted(
    cli: Cli, tmp_path: Path, info: StandInInfo, standin: StandIn
) -> None:
    # Six throttles used to leave `"retries": 0` in the run record, and no line at all; three
    # prove it (each retry waits twice as long as the one before: six took about 15 s).
    write_config(tmp_path / "shiftsync.yaml", info)
    fault = standin.faults.add("throttle", operation="ExecuteStatement", times=3)
    ran = cli("sync", "local_copy", "--json", "-w", str(tmp_path))
    assert ran.code == 0, ran
    assert standin.faults.counts()[fault] == 3
    retried = [m for m in map(RETRY_LINE.match, ran.err.splitlines()) if m]
    assert len(retried) == 3, ran.err
    assert {m["of"] for m in retried} == {"7"}
    (table,) = json.loads(ran.out)["tables"]
    assert table["retries"] == 3
    record = json.loads(cli("runs", "show", "latest", "--json", "-w", str(tmp_path)).out)
    assert record["tables"][0]["retries"] == 3


def test_json_log_lines_to_a_file(
    cli: Cli, tmp_path: Path, info: StandInInfo, standin: StandIn
) -> None:
    write_config(tmp_path / "shiftsync.yaml", info)
    standin.faults.add("throttle", operation="ExecuteStatement", times=1)
    log_file = tmp_path / "logs" / "shiftsync.log"
    ran = cli(
        "--log-format", "json", "--log-file", str(log_file),
        "sync", "local_copy", "--json", "-w", str(tmp_path),
    )  # fmt: skip
    assert ran.code == 0, ran
    assert ran.err == ""
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    events = [(line["logger"], line.get("event")) for line in lines]
    assert ("shiftsync.progress", "table_started") in events
    assert ("shiftsync.progress", "table_finished") in events
    retry = next(line for line in lines if line["logger"] == "shiftsync.retry")
    assert retry["level"] == "warning"
    assert (retry["operation"], retry["attempt"], retry["reason"]) == (
        "ExecuteStatement",
        2,
        "ThrottlingException",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", retry["time"])
    finished = next(line for line in lines if line.get("event") == "table_finished")
    assert (finished["table"], finished["status"], finished["rows"]) == (
        "public.category",
        "ok",
        11,
    )


def test_a_long_statement_gets_heartbeat_lines(
    cli: Cli,
    tmp_path: Path,
    info: StandInInfo,
    standin: StandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A non-TTY run used to print nothing while a statement ran for 20 s.
    write_config(tmp_path / "shiftsync.yaml", info)
    monkeypatch.setenv("SHIFTSYNC_HEARTBEAT_SECONDS", "0.2")
    standin.faults.add("delay", sql=r"FROM\s+\"?public\"?\.\"?category\"?", seconds=3, times=1)
    ran = cli("sync", "local_copy", "-w", str(tmp_path))
    assert ran.code == 0, ran
    beats = [line for line in ran.err.splitlines() if "public.category: still reading" in line]
    assert beats, ran.err
    assert re.search(r"still reading \(data_api\), \d+ rows? so far, \d+ s$", beats[0])
    assert "ok, 11 rows," in ran.err
    assert "(1/1 tables)" in ran.err
    assert ran.out.rstrip().endswith(", 1 table, 11 rows")


def test_bad_log_options_are_usage_errors(cli: Cli, tmp_path: Path) -> None:
    ran = cli("--log-level", "loud", "runs", "-w", str(tmp_path))
    assert ran.code == 2
    assert ran.err.startswith("error: --log-level 'loud' is not a level")
    ran = cli("--log-format", "xml", "runs", "-w", str(tmp_path))
    assert ran.code == 2
    assert "use --log-format text or --log-format json" in ran.err


def test_an_unreachable_data_api_says_so_at_once(tmp_path: Path, info: StandInInfo) -> None:
    # It used to retry for 56 s without a word.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    write_config(tmp_path / "shiftsync.yaml", info)
    env = checkout_env(info, AWS_ENDPOINT_URL_REDSHIFT_DATA=f"http://127.0.0.1:{closed}")
    env.pop("SHIFTSYNC_TEST_UNSET_DSN", None)
    child = start_shiftsync(tmp_path, env, "discover", "--table", "category")
    try:
        assert child.stderr is not None
        first = child.stderr.readline()
    finally:
        child.kill()
        child.wait(timeout=30)
    assert " WARNING shiftsync.retry: retrying ListTables (2/7) in " in first, first
    assert "EndpointConnectionError" in first or "ConnectionRefused" in first, first
