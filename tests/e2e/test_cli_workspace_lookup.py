"""Finding the workspace from `--workspace` (and `init`), as a user runs the commands (through
`main()`): the folder or its shiftsync.yaml, never another file quietly read in its place, and
never a workspace further up because the nearer shiftsync.yaml is not a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Cli


@pytest.mark.parametrize("command", [["runs"], ["policy"], ["check"]])
def test_workspace_option_naming_another_yaml_is_refused(
    cli: Cli, tmp_path: Path, command: list[str]
) -> None:
    # `-w w1/prod.yaml` used to load w1/shiftsync.yaml without a word.
    assert cli("init", str(tmp_path / "w1")).code == 0
    prod = tmp_path / "w1" / "prod.yaml"
    prod.write_text("connections: {}\n")
    ran = cli(*command, "-w", str(prod))
    assert ran.code == 2, ran
    assert "Traceback" not in ran.err
    assert ran.err.startswith(f"error: {prod} is a file, not a workspace")
    assert "--workspace takes the workspace folder or its shiftsync.yaml" in ran.err
    assert "\n  fix: " in ran.err


def test_workspace_option_may_name_the_shiftsync_yaml(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", str(tmp_path / "w1")).code == 0
    ran = cli("runs", "-w", str(tmp_path / "w1" / "shiftsync.yaml"))
    assert ran.code == 0, ran
    assert "no runs yet" in ran.err


def test_a_shiftsync_yaml_folder_stops_the_lookup(cli: Cli, tmp_path: Path) -> None:
    # It used to be skipped: the lookup climbed to outer/ and used that workspace.
    assert cli("init", str(tmp_path / "outer")).code == 0
    inner = tmp_path / "outer" / "inner"
    (inner / "shiftsync.yaml").mkdir(parents=True)
    for where in (inner, inner / "shiftsync.yaml"):
        ran = cli("runs", "-w", str(where))
        assert ran.code == 2, ran
        assert ran.err.startswith(f"error: {inner / 'shiftsync.yaml'} is a folder")
        assert "must be a regular file" in ran.err


def test_init_refuses_a_shiftsync_yaml_folder(cli: Cli, tmp_path: Path) -> None:
    # `init` used to print "kept …/shiftsync.yaml" and exit 0.
    (tmp_path / "shiftsync.yaml").mkdir()
    ran = cli("init", str(tmp_path))
    assert ran.code == 2, ran
    assert "kept" not in ran.out
    assert ran.err.startswith(f"error: {tmp_path / 'shiftsync.yaml'} is a folder")
    assert "fix: move" in ran.err
    assert (tmp_path / "shiftsync.yaml").is_dir()
