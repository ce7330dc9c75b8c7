"""The command-line defects of issue 13, each as a user meets it (in-process, through
`main()`, or as a process where a signal is involved), against the stand-in."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shiftsync.cli.output import rich_table
from shiftsync.local.standin import StandInInfo
from tests.e2e.test_cli_config import write_config
from tests.support import Cli, checkout_env, lines_until, start_shiftsync

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIFTSYNC_TEST_UNSET_DSN", "SHIFTSYNC_CONFIG", "SHIFTSYNC_ENV"):
        monkeypatch.delenv(name, raising=False)


# --- rich tables keep run ids whole ---------------------------------------------------------


def test_run_ids_never_wrap_at_80_columns() -> None:
    from rich.console import Console

    ids = ["20261207T091704Z-1a2b3c", "20261207T091705Z-4d5e6f"]
    rows = [
        [run_id, "a_rather_long_sync_name", "2026-12-07T09:17:04.123Z", "12.5s", "partial", "10",
         "3", "1,234,567"]
        for run_id in ids
    ]  # fmt: skip
    headers = ["run", "sync", "started", "time", "status", "tables", "failed", "rows"]
    console = Console(width=80, record=True, color_system=None)
    console.print(rich_table(headers, rows))
    text = console.export_text()
    for run_id in ids:
        assert run_id in text, text


# --- help ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [[], ["sync"], ["runs"], ["runs", "show"], ["runs", "prune"], ["discover"], ["local", "up"],
     ["schedule"], ["demo"], ["init"]],
)  # fmt: skip
def test_help_shows_plain_metavars_and_takes_h(cli: Cli, command: list[str]) -> None:
    ran = cli(*command, "-h")
    assert ran.code == 0, ran
    assert "Usage:" in ran.out
    assert not re.search(r"<(bool|str|int|float|path|list\[[a-z]+\])( range)?>", ran.out), ran.out
    assert cli(*command, "--help").out == ran.out


# --- schedule --------------------------------------------------------------------------------


def test_schedule_once_says_when_nothing_is_due_with_timestamps(
    cli: Cli, tmp_path: Path, info: StandInInfo
) -> None:
    path = write_config(tmp_path / "shiftsync.yaml", info)
    config = yaml.safe_load(path.read_text())
    config["syncs"] = {"local_copy": {**config["syncs"]["local_copy"], "schedule": "0 0 1 1 *"}}
    path.write_text(yaml.safe_dump(config))
    first = cli("schedule", "--once", "-w", str(tmp_path))
    assert first.code == 0, first
    assert re.search(rf"^{STAMP} local_copy: due at \d{{4}}-01-01 00:00 UTC, running$", first.err,
                     re.M), first.err  # fmt: skip
    assert re.search(rf"^{STAMP} local_copy: run \S+ ok$", first.err, re.M), first.err
    # It used to print nothing at all here.
    again = cli("schedule", "--once", "-w", str(tmp_path))
    assert again.code == 0, again
    assert re.fullmatch(
        rf"{STAMP} nothing due at \S+ \S+ UTC \(local_copy '0 0 1 1 \*'\); next slot at "
        r"\d{4}-01-01 00:00 UTC\n",
        again.err,
    ), again.err


# --- runs --sync and sync --json ----------------------------------------------------------------


def test_runs_of_an_unknown_sync_is_an_error(cli: Cli, tmp_path: Path, info: StandInInfo) -> None:
    write_config(tmp_path / "shiftsync.yaml", info)
    ran = cli("runs", "--sync", "nope", "-w", str(tmp_path))
    assert ran.code == 2, ran
    assert "no runs yet" not in ran.err
    assert f"{tmp_path / 'shiftsync.yaml'} has no sync named 'nope'" in ran.err
    assert "fix: use one of: local_copy, report" in ran.err
    known = cli("runs", "--sync", "local_copy", "-w", str(tmp_path))
    assert (known.code, known.err) == (
        0,
        "no runs of sync local_copy yet: `shiftsync sync local_copy` records one\n",
    )


def test_sync_json_of_an_unknown_sync_prints_json(
    cli: Cli, tmp_path: Path, info: StandInInfo
) -> None:
    write_config(tmp_path / "shiftsync.yaml", info)
    ran = cli("sync", "nope", "--json", "-w", str(tmp_path))
    assert ran.code == 2, ran
    document = json.loads(ran.out)
    assert document["status"] == "error"
    assert document["exit_code"] == 2
    assert document["error_type"] == "ConfigError"
    assert "'nope'" in document["error"]
    assert document["fix"].startswith("use one of:")
    assert ran.err.startswith("error: ")


def test_summary_says_1_row_and_1_table(cli: Cli, tmp_path: Path, info: StandInInfo) -> None:
    path = write_config(tmp_path / "shiftsync.yaml", info)
    config = yaml.safe_load(path.read_text())
    config["syncs"]["local_copy"]["tables"] = [
        {"include": "public.category", "filter": "catid = 1"}
    ]
    path.write_text(yaml.safe_dump(config))
    ran = cli("sync", "local_copy", "-w", str(tmp_path))
    assert ran.code == 0, ran
    assert re.search(r"^run \S+: ok, 1 table, 1 row$", ran.out, re.M), ran.out
    assert "1 rows" not in ran.out + ran.err
    assert "public.category: ok, 1 row," in ran.err


# --- Ctrl-C ------------------------------------------------------------------------------------


def test_ctrl_c_records_an_interrupted_run_without_uncommitted_rows(
    tmp_path: Path, info: StandInInfo
) -> None:
    # It used to be recorded `failed`, with the rows read but never committed counted.
    write_config(tmp_path / "shiftsync.yaml", info)
    resume = tmp_path / "resume"
    env = checkout_env(
        info,
        SHIFTSYNC_DEBUG_PAUSE_AT="before_commit:public.category",
        SHIFTSYNC_DEBUG_RESUME_FILE=str(resume),
        TERM="dumb",
    )
    run = start_shiftsync(tmp_path, env, "sync", "local_copy")
    lines_until(
        run.stderr, lambda line: line.startswith("SHIFTSYNC_PAUSED before_commit public.category")
    )
    run.send_signal(signal.SIGINT)
    # The table is resumed once the run has heard the interrupt (it then must not commit).
    lines_until(run.stderr, lambda line: "WARNING shiftsync.sync: interrupted:" in line)
    resume.touch()
    run.communicate(timeout=120)
    assert run.returncode != 0
    shown = subprocess.run(
        [sys.executable, "-m", "shiftsync", "runs", "show", "latest", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    record = json.loads(shown.stdout)
    assert record["status"] == "interrupted"
    (table,) = record["tables"]
    assert table["status"] == "failed"
    assert table["rows"] == 0
    assert "11 row(s) read were not committed" in table["notes"]
    assert "interrupted" in table["error"]
    assert not (tmp_path / "out.duckdb").exists() or _count(tmp_path / "out.duckdb") == 0
    listed = subprocess.run(
        [sys.executable, "-m", "shiftsync", "runs", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    (summary,) = json.loads(listed.stdout)
    assert (summary["status"], summary["rows"]) == ("interrupted", 0)


def _count(path: Path) -> int:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as db:
        found = db.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'category'"
        ).fetchone()
    return int(found[0]) if found else 0


def test_schedule_names_a_sync_it_cannot_read(cli: Cli, tmp_path: Path, info: StandInInfo) -> None:
    path = write_config(tmp_path / "shiftsync.yaml", info)
    config = yaml.safe_load(path.read_text())
    config["syncs"]["local_copy"]["schedule"] = "0 0 1 1 *"
    config["syncs"]["report"]["schedule"] = "${SHIFTSYNC_TEST_UNSET_CRON}"
    path.write_text(yaml.safe_dump(config))
    ran = cli("schedule", "--once", "-w", str(tmp_path))
    assert ran.code == 0, ran
    assert re.search(
        rf"^{STAMP} WARNING shiftsync\.schedule: sync report is not scheduled: it needs "
        r"SHIFTSYNC_TEST_UNSET_CRON \(export it and restart\)$",
        ran.err,
        re.M,
    ), ran.err
