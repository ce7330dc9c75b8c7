"""The same class of mistake exits with the same code (configuration = 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiftsync.local.standin import StandInInfo
from tests.support import Cli, write_role_workspace


@pytest.mark.parametrize(
    ("key", "value"), [("workgroup", "no-such-workgroup"), ("database", "no_such_database")]
)
def test_a_wrong_workgroup_or_database_is_a_configuration_error(
    cli: Cli, info: StandInInfo, tmp_path: Path, key: str, value: str
) -> None:
    workspace = write_role_workspace(
        tmp_path, info, info.role_arn, external_id=info.external_id, tables=["public.category"]
    )
    current = info.workgroup if key == "workgroup" else info.database
    text = workspace.config_path.read_text()
    workspace.config_path.write_text(text.replace(f"{key}: {current}", f"{key}: {value}"))
    for command in ("sync", "discover"):
        ran = cli(command, "-w", str(tmp_path))
        assert ran.code == 2, (command, ran.out + ran.err)
        assert value in ran.err
        assert "fix:" in ran.err
        assert "Traceback" not in ran.err


def test_a_negative_scale_is_a_usage_error(cli: Cli) -> None:
    ran = cli("local", "up", "--scale", "-1")
    assert ran.code == 2
    assert "--scale" in ran.err
