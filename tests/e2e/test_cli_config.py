"""--config, --env and ${VAR} of unrelated entries, as a user runs the commands (in-process,
through `main()`), against the stand-in."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

import shiftsync
from shiftsync.local.standin import StandInInfo
from tests.support import Cli, standin_connection, write_external_id


def write_config(path: Path, info: StandInInfo, **syncs_extra: Any) -> Path:
    """A DuckDB sync `local_copy`, and a sync `report` to a PostgreSQL destination whose DSN
    comes from a variable nobody set on this machine."""
    config = {
        "connections": {"warehouse": standin_connection(info)},
        "destinations": {
            "local": {"type": "duckdb", "path": "out.duckdb"},
            "reporting": {"type": "postgres", "dsn": "${SHIFTSYNC_TEST_UNSET_DSN}"},
        },
        "syncs": {
            "local_copy": {
                "source": "warehouse",
                "destination": "local",
                "tables": ["public.category"],
            },
            "report": {"source": "warehouse", "destination": "reporting", "tables": ["public.*"]},
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    write_external_id(path.parent, info.external_id)
    return path


@pytest.fixture
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIFTSYNC_TEST_UNSET_DSN", raising=False)
    monkeypatch.delenv("SHIFTSYNC_CONFIG", raising=False)
    monkeypatch.delenv("SHIFTSYNC_ENV", raising=False)


def test_unset_variable_of_another_destination_blocks_nothing(
    cli: Cli, tmp_path: Path, info: StandInInfo, unset: None
) -> None:
    # It used to stop every command with "environment variable ... is not set; edit shiftsync.yaml".
    write_config(tmp_path / "shiftsync.yaml", info)
    ran = cli("sync", "local_copy", "--json", "-w", str(tmp_path))
    assert ran.code == 0, ran
    assert json.loads(ran.out)["status"] == "ok"
    ran = cli("discover", "--table", "category", "--json", "-w", str(tmp_path))
    assert ran.code == 0, ran
    batches = list(shiftsync.read_table(tmp_path, "public.category"))
    assert sum(batch.num_rows for batch in batches) > 0


def test_the_sync_that_needs_it_says_export(
    cli: Cli, tmp_path: Path, info: StandInInfo, unset: None
) -> None:
    write_config(tmp_path / "shiftsync.yaml", info)
    ran = cli("sync", "report", "-w", str(tmp_path))
    assert ran.code == 2, ran
    assert "Traceback" not in ran.err
    assert ran.err.startswith("error: destination reporting needs SHIFTSYNC_TEST_UNSET_DSN:")
    assert "\n  fix: export SHIFTSYNC_TEST_UNSET_DSN=" in ran.err
    assert "edit " not in ran.err


def test_config_option_names_a_file_of_any_name(
    cli: Cli, tmp_path: Path, info: StandInInfo, unset: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path / "conf" / "warehouse-copy.yml", info)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ran = cli("--config", str(path), "sync", "local_copy", "--json")
    assert ran.code == 0, ran
    assert (tmp_path / "conf" / "out.duckdb").is_file()
    # The run is recorded in the workspace of the file, and SHIFTSYNC_CONFIG finds it too.
    monkeypatch.setenv("SHIFTSYNC_CONFIG", str(path))
    ran = cli("runs", "--json")
    assert ran.code == 0, ran
    assert [run["sync"] for run in json.loads(ran.out)] == ["local_copy"]


def test_env_overlay_switches_the_destination(
    cli: Cli, tmp_path: Path, info: StandInInfo, unset: None
) -> None:
    write_config(tmp_path / "shiftsync.yaml", info)
    (tmp_path / "shiftsync.prod.yaml").write_text(
        "destinations:\n  local:\n    path: prod.duckdb\n"
    )
    ran = cli("--env", "prod", "sync", "local_copy", "--json", "-w", str(tmp_path))
    assert ran.code == 0, ran
    assert (tmp_path / "prod.duckdb").is_file()
    assert not (tmp_path / "out.duckdb").exists()
    with duckdb.connect(str(tmp_path / "prod.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM category").fetchone() != (0,)
    ran = cli("--env", "staging", "sync", "local_copy", "-w", str(tmp_path))
    assert ran.code == 2, ran
    assert "shiftsync.staging.yaml does not exist" in ran.err


def test_runs_prune_and_the_default_retention(
    cli: Cli, tmp_path: Path, info: StandInInfo, unset: None
) -> None:
    from shiftsync.engine.runs import RunRecord, RunStore

    write_config(tmp_path / "shiftsync.yaml", info)
    store = RunStore(tmp_path / ".shiftsync" / "runs")
    for run_id, started in (
        ("20200101T000000Z-aaaaaa", "2020-01-01T00:00:00.000Z"),
        ("20200102T000000Z-bbbbbb", "2020-01-02T00:00:00.000Z"),
    ):
        store.save(RunRecord(run_id=run_id, sync="local_copy", started_at=started, status="ok"))
    ran = cli("runs", "prune", "--older-than", "3650w", "--dry-run", "-w", str(tmp_path))
    assert (ran.code, ran.out, ran.err) == (0, "", "would delete 0 runs older than 3650w\n")
    ran = cli("runs", "prune", "--older-than", "soon", "-w", str(tmp_path))
    assert ran.code == 2, ran
    assert "--older-than 'soon' is not an age" in ran.err
    ran = cli("runs", "prune", "--older-than", "52w", "-w", str(tmp_path))
    assert ran.code == 0, ran
    assert ran.out == (
        "deleted run 20200102T000000Z-bbbbbb (local_copy, 2020-01-02T00:00:00.000Z)\n"
        "deleted run 20200101T000000Z-aaaaaa (local_copy, 2020-01-01T00:00:00.000Z)\n"
    )
    assert ran.err == "deleted 2 runs older than 52w\n"
    assert store.list() == []
    # Without a prune, the default retention (90 days) removes an old run after each sync.
    store.save(
        RunRecord(
            run_id="20200103T000000Z-cccccc",
            sync="local_copy",
            started_at="2020-01-03T00:00:00.000Z",
            status="ok",
        )
    )
    assert cli("sync", "local_copy", "--json", "-w", str(tmp_path)).code == 0
    assert [run["started_at"][:4] for run in store.list()] == [str(datetime.now(UTC).year)]


@pytest.mark.parametrize("command", [["local", "up"], ["demo", "--folder", "x"]])
def test_the_stand_in_without_its_extra_says_install_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    import sys

    # As in a virtualenv where `pip install shiftsync` left out the `standin` extra.
    monkeypatch.setitem(sys.modules, "moto", None)
    for name in [m for m in sys.modules if m.startswith("shiftsync.local")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.chdir(tmp_path)
    ran = cli(*command)
    assert ran.code == 4, ran
    assert ran.err == (
        "error: the local stand-in needs the `standin` extra (moto is not installed)\n"
        "  fix: pip install 'shiftsync[standin]'\n"
    )
