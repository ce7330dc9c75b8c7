"""Configuration files and environments: --config, overlays, ${VAR} resolved only where used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shiftsync.config import load_config
from shiftsync.config.loading import merge_overlay, overlay_path
from shiftsync.errors import ConfigError
from shiftsync.workspace import Workspace

ROLE = "arn:aws:iam::123456789012:role/shiftsync-reader"
CONNECTION = {
    "type": "redshift_serverless",
    "region": "us-east-1",
    "workgroup": "analytics",
    "database": "dev",
    "role_arn": ROLE,
}
BASE: dict[str, Any] = {
    "connections": {"warehouse": CONNECTION},
    "destinations": {
        "local": {"type": "duckdb", "path": "out.duckdb"},
        "reporting": {"type": "postgres", "dsn": "${REPORTING_DSN}"},
    },
    "syncs": {
        "nightly": {"source": "warehouse", "destination": "local", "tables": ["public.*"]},
        "report": {"source": "warehouse", "destination": "reporting", "tables": ["public.a"]},
    },
}


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# --- ${VAR} only where a command uses it -------------------------------------------------------


def test_unset_variable_of_an_unrelated_destination_does_not_block(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "shiftsync.yaml", BASE), env={})
    name, sync = config.sync("nightly")
    assert (name, sync.destination) == ("nightly", "local")
    assert config.destination("local")[0] == "local"
    assert config.connection()[0] == "warehouse"


def test_using_the_entry_says_export_the_variable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "shiftsync.yaml", BASE), env={})
    with pytest.raises(ConfigError) as info:
        config.destination("reporting")
    error = info.value
    assert error.exit_code == 2
    assert error.message.startswith("destination reporting needs REPORTING_DSN:")
    assert "destinations.reporting.dsn: environment variable REPORTING_DSN is not set" in (
        error.message
    )
    assert error.fix is not None
    assert error.fix.startswith("export REPORTING_DSN=")
    assert "edit" not in error.fix


def test_the_sync_itself_loads_when_only_its_destination_waits(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "shiftsync.yaml", BASE), env={})
    _, sync = config.sync("report")
    with pytest.raises(ConfigError, match="export REPORTING_DSN="):
        config.destination(sync.destination)


def test_an_unset_variable_in_a_sync_defers_that_sync(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["syncs"]["report"]["tables"] = ["${REPORT_SCHEMA}.*"]
    config = load_config(
        write(tmp_path / "shiftsync.yaml", data), env={"REPORTING_DSN": "postgresql://u@h/d"}
    )
    assert config.sync("nightly")[0] == "nightly"
    with pytest.raises(ConfigError, match="sync report needs REPORT_SCHEMA"):
        config.sync("report")
    # Not chosen silently either: "the only sync" counts the deferred one.
    with pytest.raises(ConfigError, match="defines 2 syncs"):
        config.sync()


def test_only_entry_waiting_is_named_when_picked_by_default(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["destinations"] = {"reporting": BASE["destinations"]["reporting"]}
    data["syncs"] = {"report": BASE["syncs"]["report"]}
    config = load_config(write(tmp_path / "shiftsync.yaml", data), env={})
    with pytest.raises(ConfigError, match="destination reporting needs REPORTING_DSN"):
        config.destination()


def test_set_variable_still_resolves_and_validates(tmp_path: Path) -> None:
    env = {"REPORTING_DSN": "mysql://u:p@h/d"}
    with pytest.raises(ConfigError, match=r"destinations\.reporting\.dsn: not a PostgreSQL URL"):
        load_config(write(tmp_path / "shiftsync.yaml", BASE), env=env)


def test_other_problems_are_still_reported_at_load(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["syncs"]["nightly"]["concurrency"] = 0
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "shiftsync.yaml", data), env={})
    assert "syncs.nightly.concurrency" in info.value.message
    assert "REPORTING_DSN" not in info.value.message


def test_every_connection_waiting_is_reported_at_load(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["connections"]["warehouse"]["workgroup"] = "${WG}"
    with pytest.raises(
        ConfigError, match=r"connections\.warehouse\.workgroup: environment variable"
    ):
        load_config(
            write(tmp_path / "shiftsync.yaml", data), env={"REPORTING_DSN": "postgresql://u@h/d"}
        )


# --- overlays --------------------------------------------------------------------------------


def test_merge_overlay_rules() -> None:
    base = {"a": {"x": 1, "y": [1, 2], "z": {"deep": 1, "keep": 2}}, "b": 1, "c": 3}
    overlay = {"a": {"y": [3], "z": {"deep": 9}}, "b": None, "d": 4}
    assert merge_overlay(base, overlay) == {
        "a": {"x": 1, "y": [3], "z": {"deep": 9, "keep": 2}},
        "c": 3,
        "d": 4,
    }
    assert merge_overlay(base, None) == base
    assert base["b"] == 1  # the base is not changed in place


def test_merge_overlay_refuses_a_document_that_is_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"shiftsync\.prod\.yaml: the document is not a mapping"):
        merge_overlay({"a": 1}, ["x"], "shiftsync.prod.yaml")


def test_overlay_path_is_next_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "shiftsync.prod.yaml").write_text("{}\n")
    assert overlay_path(tmp_path / "shiftsync.yaml", "prod") == tmp_path / "shiftsync.prod.yaml"


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x y"])
def test_environment_names_are_checked(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="is not an environment name"):
        overlay_path(tmp_path / "shiftsync.yaml", name)


def test_missing_overlay_names_the_file(tmp_path: Path) -> None:
    write(tmp_path / "shiftsync.yaml", BASE)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "shiftsync.yaml", env={}, environment="prod")
    assert f"{tmp_path / 'shiftsync.prod.yaml'} does not exist" in info.value.message
    assert info.value.exit_code == 2


def test_environment_overlay_changes_only_its_keys(tmp_path: Path) -> None:
    write(tmp_path / "shiftsync.yaml", BASE)
    write(
        tmp_path / "shiftsync.prod.yaml",
        {
            "connections": {"warehouse": {"workgroup": "production"}},
            "destinations": {"local": {"path": "prod.duckdb"}, "reporting": None},
            "syncs": {"report": None},
        },
    )
    config = load_config(tmp_path / "shiftsync.yaml", env={}, environment="prod")
    assert config.connections["warehouse"].workgroup == "production"
    assert config.connections["warehouse"].database == "dev"
    assert set(config.destinations) == {"local"}
    assert set(config.syncs) == {"nightly"}
    plain = load_config(tmp_path / "shiftsync.yaml", env={})
    assert plain.connections["warehouse"].workgroup == "analytics"


def test_problem_lines_name_both_files(tmp_path: Path) -> None:
    write(tmp_path / "shiftsync.yaml", BASE)
    write(tmp_path / "shiftsync.prod.yaml", {"syncs": {"nightly": {"concurrency": 0}}})
    with pytest.raises(ConfigError) as info:
        load_config(
            tmp_path / "shiftsync.yaml",
            env={"REPORTING_DSN": "postgresql://u@h/d"},
            environment="prod",
        )
    assert info.value.message.startswith("shiftsync.yaml + shiftsync.prod.yaml: syncs.nightly")


def test_empty_overlay_changes_nothing(tmp_path: Path) -> None:
    write(tmp_path / "shiftsync.yaml", BASE)
    (tmp_path / "shiftsync.dev.yaml").write_text("# nothing differs\n")
    config = load_config(tmp_path / "shiftsync.yaml", env={}, environment="dev")
    assert set(config.syncs) == {"nightly", "report"}


# --- --config and the environment variables ---------------------------------------------------


def test_locate_takes_a_config_file_of_any_name(tmp_path: Path) -> None:
    path = write(tmp_path / "prod-config.yaml", BASE)
    workspace = Workspace.locate(config=path)
    assert workspace.folder == tmp_path.resolve()
    assert workspace.config_path == path.resolve()
    assert workspace.runs_dir == tmp_path.resolve() / ".shiftsync" / "runs"


def test_locate_reads_the_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "elsewhere.yaml", BASE)
    write(tmp_path / "elsewhere.prod.yaml", {"syncs": {"report": None}})
    monkeypatch.setenv("SHIFTSYNC_CONFIG", str(path))
    monkeypatch.setenv("SHIFTSYNC_ENV", "prod")
    monkeypatch.chdir("/")
    workspace = Workspace.locate()
    assert (workspace.config_path, workspace.environment) == (path.resolve(), "prod")
    assert set(workspace.config.syncs) == {"nightly"}


def test_locate_refuses_a_missing_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        Workspace.locate(config=tmp_path / "nope.yaml")
    assert info.value.exit_code == 2


def test_locate_refuses_both_workspace_and_config(tmp_path: Path) -> None:
    path = write(tmp_path / "x.yaml", BASE)
    with pytest.raises(ConfigError, match="pass only --config"):
        Workspace.locate(tmp_path, config=path)
