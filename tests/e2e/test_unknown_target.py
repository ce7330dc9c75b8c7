"""An unknown database or workgroup is a configuration error at once, with a did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiftsync.errors import ConfigError
from shiftsync.local.standin import StandInInfo
from tests.support import Cli, write_role_workspace


def _workspace(tmp_path: Path, info: StandInInfo, old: str, new: str) -> None:
    workspace = write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    text = workspace.config_path.read_text()
    workspace.config_path.write_text(text.replace(old, new))


@pytest.mark.parametrize("command", ["discover", "sync"])
def test_an_unknown_database_names_the_ones_that_exist(
    cli: Cli, info: StandInInfo, tmp_path: Path, command: str
) -> None:
    _workspace(tmp_path, info, f"database: {info.database}\n", "database: dve\n")
    ran = cli(command, "-w", str(tmp_path))
    assert ran.code == ConfigError.exit_code, ran.out + ran.err
    assert "database dve does not exist" in ran.err
    assert f"did you mean {info.database}?" in ran.err
    assert f"database: {info.database}" in ran.err
    assert "Traceback" not in ran.err


def test_an_unknown_workgroup_is_a_configuration_error(
    cli: Cli, info: StandInInfo, tmp_path: Path
) -> None:
    _workspace(tmp_path, info, f"workgroup: {info.workgroup}\n", "workgroup: no-such-wg\n")
    ran = cli("discover", "-w", str(tmp_path))
    assert ran.code == ConfigError.exit_code, ran.out + ran.err
    assert "no-such-wg" in ran.err
    assert "Traceback" not in ran.err
