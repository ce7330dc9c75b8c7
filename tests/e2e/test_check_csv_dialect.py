"""`shiftsync check` probes the connection's CSV dialect and says which format it reads."""

from __future__ import annotations

import json
from pathlib import Path

from shiftsync.local.standin import StandInInfo
from shiftsync.redshift.csv_probe import CACHE_FILE_NAME
from tests.support import Cli, write_role_workspace


def test_check_keeps_csv_when_it_reads_as_json(cli: Cli, info: StandInInfo, tmp_path: Path) -> None:
    workspace = write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    ran = cli("check", "-w", str(tmp_path))
    assert ran.code == 0, ran.out + ran.err
    assert "CSV results: csv: the Data API's CSV reads as its JSON results" in ran.out
    assert (workspace.dot_dir / CACHE_FILE_NAME).exists()


def test_check_switches_to_json_when_the_dialect_differs(
    cli: Cli, info: StandInInfo, tmp_path: Path, null_as_text: None
) -> None:
    write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    ran = cli("check", "--json", "-w", str(tmp_path))
    assert ran.code == 0, ran.err
    dialect = json.loads(ran.out)["csv_dialect"]
    assert dialect["result_format"] == "json"
    assert "null" in dialect["detail"]
    assert dialect["detail"].endswith("reading JSON results")
