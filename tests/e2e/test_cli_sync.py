"""`shiftsync sync` and `shiftsync runs` as a user runs them: a subprocess in a workspace folder,
reaching the stand-in through the standard AWS variables only."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from shiftsync.local.standin import StandInInfo
from tests.support import standin_connection, write_external_id, write_sync_config


def write_workspace(
    folder: Path,
    info: StandInInfo,
    tables: Sequence[Any],
    *,
    external_id: str | None = None,
    destination: str = "local",
) -> Path:
    write_external_id(folder, external_id or info.external_id)
    write_sync_config(
        folder,
        standin_connection(info),
        {"local": {"type": "duckdb", "path": "out.duckdb"}},
        {"destination": destination, "tables": list(tables)},
    )
    return folder


def environment(info: StandInInfo) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIFTSYNC_DEBUG")}
    env.update(info.environment())
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["TERM"] = "xterm"
    return env


def shiftsync(
    folder: Path, info: StandInInfo, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shiftsync", *args],
        cwd=folder,
        env=dict(env or environment(info)),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory, info: StandInInfo) -> tuple[Path, Any]:
    """A workspace whose sync ran once (two tables) with --json, and that JSON document."""
    folder = write_workspace(
        tmp_path_factory.mktemp("synced"), info, ["public.venue", "public.category"]
    )
    done = shiftsync(folder, info, "sync", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return folder, json.loads(done.stdout)


def test_sync_json_is_one_document(synced: tuple[Path, Any]) -> None:
    _, document = synced
    assert document["exit_code"] == 0
    assert document["status"] == "ok"
    tables = {t["table"]: t for t in document["tables"]}
    assert set(tables) == {"public.venue", "public.category"}
    venue = tables["public.venue"]
    assert (venue["rows"], venue["method"], venue["load"]) == (202, "data_api", "replace")
    assert venue["verification"]["status"] == "ok"
    assert venue["verification"]["source_rows"] == 202


def test_sync_prints_progress_lines_and_a_summary(
    synced: tuple[Path, Any], info: StandInInfo
) -> None:
    folder, _ = synced
    done = shiftsync(folder, info, "sync", "main")
    assert done.returncode == 0, done.stderr
    # Progress: plain lines on stderr (not a terminal).
    assert "public.venue: reading (data_api, full_refresh/replace)" in done.stderr
    assert "public.venue: ok, 202 rows" in done.stderr
    assert "verified" in done.stderr
    # Summary: a plain table and a last line on stdout.
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "table", "target", "mode", "method", "rows", "MB", "time", "check", "status",
    ]  # fmt: skip
    venue = next(line for line in lines if line.startswith("public.venue"))
    assert venue.split()[:5] == ["public.venue", "venue", "full_refresh/replace", "data_api", "202"]
    assert venue.split()[-2:] == ["verified", "ok"]
    assert lines[-1].startswith("run ")
    assert lines[-1].endswith(": ok, 2 tables, 213 rows")
    assert (folder / "out.duckdb").is_file()


def test_runs_list_and_show(synced: tuple[Path, Any], info: StandInInfo) -> None:
    synced_folder, _ = synced
    listed = shiftsync(synced_folder, info, "runs", "--json", "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    (latest,) = json.loads(listed.stdout)
    assert latest["sync"] == "main"
    assert latest["status"] == "ok"

    table = shiftsync(synced_folder, info, "runs")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split()[:5] == ["run", "sync", "started", "time", "status"]
    assert latest["run_id"] in table.stdout

    shown = shiftsync(synced_folder, info, "runs", "show", latest["run_id"][:20])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"run {latest['run_id']} of sync main: ok")
    assert "verification: ok, rows source 202 / destination 202" in shown.stdout

    as_json = shiftsync(synced_folder, info, "runs", "show", "latest", "--json")
    record = json.loads(as_json.stdout)
    assert record["run_id"] == latest["run_id"]
    assert {"method", "load", "rows", "bytes", "duration_seconds", "retries", "schema_changes",
            "verification", "error"} <= set(record["tables"][0])  # fmt: skip
    assert (synced_folder / ".shiftsync" / "runs" / f"{latest['run_id']}.json").is_file()

    unknown = shiftsync(synced_folder, info, "runs", "show", "19990101")
    assert unknown.returncode == 2
    assert "no run '19990101'" in unknown.stderr


def test_dry_run_moves_nothing(tmp_path: Path, info: StandInInfo) -> None:
    folder = write_workspace(
        tmp_path,
        info,
        [
            "public.*",
            {"include": "public.sales", "mode": "incremental", "tracking_field": "saletime"},
        ],
    )
    done = shiftsync(folder, info, "sync", "--dry-run", "--tables", "public.s*")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("plan of sync main (dry run: no data moved)")
    sales = next(line for line in done.stdout.splitlines() if line.startswith("public.sales "))
    assert sales.split()[:4] == ["public.sales", "sales", "data_api", "incremental/merge"]
    assert "public.sales_summary" in done.stdout
    assert "public.users" not in done.stdout
    assert not (folder / "out.duckdb").exists()
    assert shiftsync(folder, info, "runs", "--json").stdout.strip() == "[]"


def test_a_failed_table_exits_1_and_says_the_fix(tmp_path: Path, info: StandInInfo) -> None:
    tables = [
        "public.venue",
        {"include": "public.sales", "mode": "incremental", "tracking_field": "no_such_column"},
    ]
    done = shiftsync(write_workspace(tmp_path, info, tables), info, "sync")
    assert done.returncode == 1
    assert "error: public.sales: table public.sales: tracking_field names column " in done.stdout
    assert "'no_such_column'" in done.stdout
    assert "  fix: correct tracking_field in shiftsync.yaml" in done.stdout
    assert done.stdout.splitlines()[-1].endswith(": partial, 2 tables (1 failed), 202 rows")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sync", "nightly"), "nightly"),
        (("sync", "--tables", "a.b.c"), "--tables 'a.b.c' is not a table pattern"),
        (("sync", "--tables", "public.nosuch"), "matches none of the tables of sync main"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, info: StandInInfo, args: tuple[str, ...], message: str
) -> None:
    done = shiftsync(write_workspace(tmp_path, info, ["public.venue"]), info, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_destination_exits_2(tmp_path: Path, info: StandInInfo) -> None:
    folder = write_workspace(tmp_path, info, ["public.venue"], destination="nowhere")
    done = shiftsync(folder, info, "sync")
    assert done.returncode == 2
    assert "nowhere" in done.stderr


def test_refused_role_exits_3_and_is_recorded(tmp_path: Path, info: StandInInfo) -> None:
    folder = write_workspace(tmp_path, info, ["public.venue"], external_id="shiftsync-wrong-id")
    done = shiftsync(folder, info, "sync")
    assert done.returncode == 3, done.stderr
    assert "sts:AssumeRole" in done.stderr
    assert "fix:" in done.stderr
    (run,) = json.loads(shiftsync(folder, info, "runs", "--json").stdout)
    assert run["status"] == "failed"


def test_live_progress_on_a_terminal(tmp_path: Path, info: StandInInfo) -> None:
    folder = write_workspace(tmp_path, info, ["public.venue"])
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "shiftsync", "sync"],
        cwd=folder,
        env={**environment(info), "COLUMNS": "160"},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    received = b""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            received += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    assert process.wait(timeout=30) == 0, received.decode(errors="replace")
    text = received.decode(errors="replace")
    assert "public.venue [ok]" in text  # the live line of the table
    assert "rows" in text
    assert "data_api" in text
