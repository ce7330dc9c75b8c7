"""`shiftsync schedule --once` runs what its cron expressions say is due, and only that."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shiftsync.cli.app import app
from shiftsync.engine.runs import RunStore
from shiftsync.local.standin import StandInInfo


def scheduled_workspace(folder: Path, info: StandInInfo, schedule: str | None) -> Path:
    (folder / ".shiftsync").mkdir(parents=True)
    (folder / ".shiftsync" / "external_id").write_text(info.external_id + "\n")
    sync: dict[str, object] = {
        "source": "warehouse",
        "destination": "local",
        "tables": ["public.category"],
    }
    if schedule is not None:
        sync["schedule"] = schedule
    config = {
        "connections": {
            "warehouse": {
                "type": "redshift_serverless",
                "region": info.region,
                "workgroup": info.workgroup,
                "database": info.database,
                "role_arn": info.role_arn,
            }
        },
        "destinations": {"local": {"type": "duckdb", "path": "out.duckdb"}},
        "syncs": {"yearly": sync},
    }
    (folder / "shiftsync.yaml").write_text(yaml.safe_dump(config))
    return folder


def run_once(folder: Path) -> int:
    with pytest.raises(SystemExit) as ended:
        app(["schedule", "--once", "-w", str(folder)], standalone_mode=False)
    return int(ended.value.code or 0)


def test_once_runs_a_due_sync_and_not_again_within_its_slot(
    tmp_path: Path, info: StandInInfo
) -> None:
    folder = scheduled_workspace(tmp_path / "ws", info, "0 0 1 1 *")
    assert run_once(folder) == 0
    runs = RunStore(folder / ".shiftsync" / "runs").list()
    assert [(r["sync"], r["status"]) for r in runs] == [("yearly", "ok")]
    # The slot (January 1st) is older than that run: nothing is due now.
    assert run_once(folder) == 0
    assert len(RunStore(folder / ".shiftsync" / "runs").list()) == 1


def test_without_any_schedule_it_is_a_config_error(tmp_path: Path, info: StandInInfo) -> None:
    from shiftsync.errors import ConfigError

    folder = scheduled_workspace(tmp_path / "ws", info, None)
    with pytest.raises(ConfigError, match="no sync has a schedule"):
        app(["schedule", "--once", "-w", str(folder)], standalone_mode=False)
