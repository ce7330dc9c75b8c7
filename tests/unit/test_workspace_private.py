"""`.shiftsync/` is owner-only whatever the umask, and git never sees the hashing salt."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from shiftsync.engine.housekeeping import hash_salt
from shiftsync.workspace import Workspace, private_write_text, secure_dot_dir


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(folder: Path) -> dict[str, int]:
    return {
        str(path.relative_to(folder)): stat.S_IMODE(path.stat().st_mode)
        for path in [folder, *folder.rglob("*")]
    }


@pytest.mark.usefixtures("loose_umask")
def test_init_and_the_salt_are_owner_only_and_ignored_by_git(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path)
    hash_salt(workspace)
    private_write_text(workspace.dot_dir / "trust_checked.json", "{}\n")
    for name, mode in modes(workspace.dot_dir).items():
        is_dir = (workspace.dot_dir / name).is_dir()
        assert mode == (0o700 if is_dir else 0o600), name
    ignored = (workspace.dot_dir / ".gitignore").read_text().splitlines()
    assert {"hash_salt", "trust_checked.json", "state/", "runs/"} <= set(ignored)
    assert "external_id" not in ignored  # it may be committed
    assert secure_dot_dir(workspace) == []  # nothing to fix: no note


@pytest.mark.usefixtures("loose_umask")
def test_an_old_workspace_is_fixed_once_with_notes(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path)
    (workspace.dot_dir / ".gitignore").write_text("# old\nstate/\nruns/")
    (workspace.dot_dir / "hash_salt").write_text("0123456789abcdef0123456789abcdef\n")
    for path in [workspace.dot_dir, *workspace.dot_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    notes = secure_dot_dir(workspace)
    assert len(notes) == 2
    assert "owner-only" in notes[0]
    assert "hash_salt" in notes[1]
    assert all(
        mode == (0o700 if (workspace.dot_dir / name).is_dir() else 0o600)
        for name, mode in modes(workspace.dot_dir).items()
    )
    assert (workspace.dot_dir / ".gitignore").read_text().startswith("# old\nstate/\nruns/\n")
    assert secure_dot_dir(workspace) == []
