"""The workspace folder: init, find, the external ID."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shiftsync.config import config_template
from shiftsync.errors import ConfigError
from shiftsync.workspace import (
    EXTERNAL_ID_RE,
    Workspace,
    atomic_write_text,
    is_valid_external_id,
    new_external_id,
    write_new_text,
)


def test_init_creates_the_layout(tmp_path: Path) -> None:
    folder = tmp_path / "project" / "nested"
    workspace = Workspace.init(folder)
    assert workspace.folder == folder.resolve()
    assert workspace.config_path == folder / "shiftsync.yaml"
    assert workspace.config_path.read_text(encoding="utf-8") == config_template()
    assert workspace.state_dir == folder / ".shiftsync" / "state"
    assert workspace.runs_dir == folder / ".shiftsync" / "runs"
    assert workspace.state_dir.is_dir()
    assert workspace.runs_dir.is_dir()
    ignored = (folder / ".shiftsync" / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "state/" in ignored
    assert "runs/" in ignored
    assert "external_id" not in ignored


def test_external_id_has_the_sts_shape(tmp_path: Path) -> None:
    external_id = Workspace.init(tmp_path).external_id
    assert EXTERNAL_ID_RE.fullmatch(external_id)
    assert external_id.startswith("shiftsync-")
    assert len(external_id) >= 32
    assert (tmp_path / ".shiftsync" / "external_id").read_text() == external_id + "\n"


def test_init_twice_keeps_the_id_and_the_config(tmp_path: Path) -> None:
    first = Workspace.init(tmp_path)
    first.config_path.write_text("# edited by hand\n", encoding="utf-8")
    external_id = first.external_id
    second = Workspace.init(tmp_path)
    assert second.external_id == external_id
    assert second.config_path.read_text(encoding="utf-8") == "# edited by hand\n"


def test_init_keeps_an_existing_config(tmp_path: Path) -> None:
    (tmp_path / "shiftsync.yaml").write_text("connections: {}\n", encoding="utf-8")
    workspace = Workspace.init(tmp_path)
    assert workspace.config_path.read_text(encoding="utf-8") == "connections: {}\n"
    assert is_valid_external_id(workspace.external_id)


def test_each_workspace_gets_its_own_id(tmp_path: Path) -> None:
    ids = {Workspace.init(tmp_path / str(index)).external_id for index in range(5)}
    assert len(ids) == 5


def test_init_leaves_no_temporary_files(tmp_path: Path) -> None:
    Workspace.init(tmp_path)
    Workspace.init(tmp_path)
    names = {path.name for path in tmp_path.rglob("*")}
    assert not [name for name in names if name.endswith(".tmp")]


def test_missing_external_id_is_an_error_not_a_new_id(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path)
    workspace.external_id_path.unlink()
    with pytest.raises(ConfigError) as info:
        _ = workspace.external_id
    assert str(workspace.external_id_path) in info.value.message
    assert "missing" in info.value.message
    assert info.value.fix is not None
    assert "trust policy" in info.value.fix
    assert not workspace.external_id_path.exists()


@pytest.mark.parametrize("content", ["", "x", "has space", "a" * 1225, "caf\u00e9-id", "a\nb"])
def test_malformed_external_id_is_an_error(tmp_path: Path, content: str) -> None:
    workspace = Workspace.init(tmp_path)
    workspace.external_id_path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match="does not hold a valid external ID"):
        _ = workspace.external_id
    assert workspace.external_id_path.read_text(encoding="utf-8") == content


def test_init_refuses_a_damaged_external_id(tmp_path: Path) -> None:
    (tmp_path / ".shiftsync").mkdir()
    (tmp_path / ".shiftsync" / "external_id").write_text("bad id\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="does not hold a valid external ID"):
        Workspace.init(tmp_path)


def test_external_id_written_by_hand_is_accepted(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path)
    workspace.external_id_path.write_text("a1efa791-4530-43a0-962d-74e2ccf18309\n")
    assert workspace.external_id == "a1efa791-4530-43a0-962d-74e2ccf18309"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("ab", True),
        ("a" * 1224, True),
        ("Org_1+=,.@:/-x", True),
        ("a", False),
        ("a" * 1225, False),
        ("a b", False),
        ("a\tb", False),
        ("é-accent", False),
        ("semi;colon", False),
    ],
)
def test_external_id_rule(value: str, ok: bool) -> None:
    assert is_valid_external_id(value) is ok


def test_new_external_ids_are_valid_and_random() -> None:
    ids = [new_external_id() for _ in range(100)]
    assert all(is_valid_external_id(value) for value in ids)
    assert len(set(ids)) == 100


def test_find_walks_up(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "project")
    deep = tmp_path / "project" / "a" / "b"
    deep.mkdir(parents=True)
    assert Workspace.find(deep).folder == (tmp_path / "project").resolve()
    assert Workspace.find(tmp_path / "project").folder == (tmp_path / "project").resolve()
    config = tmp_path / "project" / "shiftsync.yaml"
    assert Workspace.find(config).folder == (tmp_path / "project").resolve()


@pytest.mark.parametrize("name", ["prod.yaml", "notes.txt"])
def test_find_refuses_a_file_other_than_shiftsync_yaml(tmp_path: Path, name: str) -> None:
    # `-w w1/prod.yaml` used to load w1/shiftsync.yaml without a word.
    Workspace.init(tmp_path / "w1")
    other = tmp_path / "w1" / name
    other.write_text("connections: {}\n")
    with pytest.raises(ConfigError) as info:
        Workspace.find(other)
    assert str(other) in info.value.message
    assert "--workspace takes the workspace folder or its shiftsync.yaml" in info.value.message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("kind", ["folder", "dangling link"])
def test_find_stops_at_a_shiftsync_yaml_that_is_not_a_file(tmp_path: Path, kind: str) -> None:
    # It used to be skipped, and the lookup climbed to the workspace further up.
    Workspace.init(tmp_path / "outer")
    inner = tmp_path / "outer" / "inner"
    inner.mkdir()
    odd = inner / "shiftsync.yaml"
    if kind == "folder":
        odd.mkdir()
    else:
        odd.symlink_to(inner / "gone.yaml")
    for start in (inner, odd):
        with pytest.raises(ConfigError) as info:
            Workspace.find(start)
        assert f"{odd} is a " in info.value.message
        assert "must be a regular file" in info.value.message
        assert info.value.fix is not None


def test_init_refuses_a_shiftsync_yaml_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "shiftsync.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"shiftsync\.yaml is a folder") as info:
        Workspace.init(tmp_path)
    assert info.value.exit_code == 2
    assert not (tmp_path / ".shiftsync").exists()


def test_init_writes_the_given_config_text_only_when_there_is_none(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path, config_text="# mine\n")
    assert workspace.config_path.read_text(encoding="utf-8") == "# mine\n"
    Workspace.init(tmp_path, config_text="# other\n")
    assert workspace.config_path.read_text(encoding="utf-8") == "# mine\n"


def test_find_takes_the_nearest_workspace(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "outer")
    Workspace.init(tmp_path / "outer" / "inner")
    found = Workspace.find(tmp_path / "outer" / "inner")
    assert found.folder == (tmp_path / "outer" / "inner").resolve()


def test_find_without_a_workspace_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Workspace.find(tmp_path)
    assert "no shiftsync.yaml" in info.value.message
    assert "shiftsync init" in str(info.value.fix)


def test_config_loads_lazily(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path)
    config = workspace.config
    assert config.connection(None)[0] == "warehouse"
    assert workspace.config is config


def test_config_errors_surface_on_first_use(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path)
    workspace.config_path.write_text("connections: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"connections: empty"):
        _ = workspace.config


def test_init_on_a_file_is_a_config_error(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(ConfigError, match="cannot set up a workspace"):
        Workspace.init(target)


def test_write_new_text_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert write_new_text(path, "one") is True
    assert write_new_text(path, "two") is False
    assert path.read_text() == "one"
    assert os.listdir(tmp_path) == ["f"]


def test_atomic_write_text_replaces(tmp_path: Path) -> None:
    path = tmp_path / "f"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert os.listdir(tmp_path) == ["f"]
