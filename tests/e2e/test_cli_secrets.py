"""Secrets at rest: after runs that hash a column, hit a duplicate hashed key, and write to
PostgreSQL with a DSN holding a password and an SSL key passphrase (one run succeeding, one
failing), neither the hashing salt, nor a DSN secret, nor a hashed column's plain value is in
any output or any file of the workspace; .shiftsync/ is owner-only and git ignores the salt."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from shiftsync.local.postgres import TempPostgres
from shiftsync.local.standin import StandInInfo
from shiftsync.workspace import Workspace
from tests.support import (
    ROLE_DB_USER,
    Cli,
    standin_connection,
    write_category_sync,
    write_external_id,
)

PASSWORD = "pw-" + uuid.uuid4().hex
SSL_PASSPHRASE = "key-passphrase-" + uuid.uuid4().hex
PLAIN_EMAIL = "alice.h15@example.com"


@pytest.fixture
def people(admin: psycopg.Connection[Any]) -> Iterator[str]:
    """public.people_<hex>: an e-mail (to be hashed) held by two rows, and an id."""
    name = f"people_{uuid.uuid4().hex[:8]}"
    table = sql.Identifier("public", name)
    admin.execute(sql.SQL("CREATE TABLE {} (email varchar(64), id int)").format(table))
    admin.execute(
        sql.SQL("INSERT INTO {} VALUES (%s, 1), (%s, 2), ('bob@example.com', 3)").format(table),
        (PLAIN_EMAIL, PLAIN_EMAIL),
    )
    admin.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(ROLE_DB_USER)))
    yield name
    admin.execute(sql.SQL("DROP TABLE {}").format(table))


def every_file(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file():
            yield path


def test_no_secret_or_hashed_value_in_any_output_or_file(
    cli: Cli, info: StandInInfo, postgres: TempPostgres, people: str, tmp_path: Path
) -> None:
    Workspace.init(tmp_path)
    write_external_id(tmp_path, info.external_id)
    secrets_dsn = f"{postgres.dsn()} password={PASSWORD} sslpassword={SSL_PASSPHRASE}"
    bad_dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/postgres?sslpassword={SSL_PASSPHRASE}"
    hashed = {
        "include": f"public.{people}",
        "mode": "incremental",
        "tracking_field": "id",
        "primary_key": ["email"],
        "columns": {"hash": ["email"]},
    }
    config = {
        "connections": {"warehouse": standin_connection(info)},
        "destinations": {
            "local": {"type": "duckdb", "path": "out.duckdb"},
            "pg": {"type": "postgres", "dsn": secrets_dsn, "schema": "h15"},
            "down": {"type": "postgres", "dsn": bad_dsn},
        },
        "syncs": {
            "people": {"source": "warehouse", "destination": "local", "tables": [hashed]},
            "copy": {"source": "warehouse", "destination": "pg", "tables": ["public.category"]},
            "broken": {"source": "warehouse", "destination": "down", "tables": ["public.venue"]},
        },
    }
    (tmp_path / "shiftsync.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    folder = str(tmp_path)
    outputs = []
    dup = cli("sync", "people", "--json", "-w", folder)
    outputs.append(dup)
    assert dup.code == 1, dup.out + dup.err
    (table,) = json.loads(dup.out)["tables"]
    assert "is not unique" in table["error"]
    assert "sha256:" in table["error"]  # the hash the destination would hold, instead
    ok = cli("sync", "copy", "--json", "-w", folder)
    outputs.append(ok)
    assert ok.code == 0, ok.out + ok.err
    failed = cli("sync", "broken", "-w", folder)
    outputs.append(failed)
    assert failed.code != 0
    for args in (("sync", "broken", "--json"), ("runs", "--json"), ("check", "--json")):
        outputs.append(cli(*args, "-w", folder))
    assert "<secret>" in failed.err or "***" in failed.err or "port=1" in failed.err
    salt = (tmp_path / ".shiftsync" / "hash_salt").read_text().strip()
    forbidden = {
        "salt": salt,
        "password": PASSWORD,
        "sslpassword": SSL_PASSPHRASE,
        "hashed value": PLAIN_EMAIL,
    }
    for ran in outputs:
        for what, value in forbidden.items():
            assert value not in ran.out + ran.err, (what, ran)
    for path in every_file(tmp_path):
        if path.name in ("shiftsync.yaml", "hash_salt"):
            continue  # the configuration holds the DSN the user wrote; the salt file, the salt
        data = path.read_bytes()
        for what, value in forbidden.items():
            assert value.encode() not in data, (what, path)
    # .shiftsync/ is owner-only, and git ignores the salt from init on.
    dot = tmp_path / ".shiftsync"
    for path in [dot, *dot.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    assert "hash_salt" in (dot / ".gitignore").read_text().splitlines()


def test_an_old_workspace_is_tightened_on_its_next_run_with_a_note(
    cli: Cli, info: StandInInfo, tmp_path: Path
) -> None:
    workspace = Workspace.init(tmp_path)
    write_external_id(tmp_path, info.external_id)
    # As an older version left it: world-readable, and a .gitignore without the salt.
    (workspace.dot_dir / ".gitignore").write_text("state/\nruns/\n")
    (workspace.dot_dir / "hash_salt").write_text("0123456789abcdef0123456789abcdef\n")
    for path in [workspace.dot_dir, *workspace.dot_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    write_category_sync(tmp_path, info)
    ran = cli("sync", "--json", "-w", str(tmp_path))
    assert ran.code == 0, ran.out + ran.err
    notes = " ".join(json.loads(ran.out)["notes"])
    assert "owner-only" in notes
    assert "hash_salt" in notes
    assert "hash_salt" in (workspace.dot_dir / ".gitignore").read_text().splitlines()
    assert stat.S_IMODE(os.stat(workspace.dot_dir / "hash_salt").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(workspace.dot_dir).st_mode) == 0o700


def _modes(folder: Path) -> dict[str, int]:
    return {
        str(path.relative_to(folder)): stat.S_IMODE(path.stat().st_mode)
        for path in folder.rglob("*")
        if ".shiftsync" not in path.parts and path.name != "shiftsync.yaml"
    }


@pytest.mark.parametrize(
    ("setting", "file_mode", "folder_mode"),
    [(None, 0o600, 0o700), ("0640", 0o640, 0o750)],
    ids=["default", "0640"],
)
def test_destination_files_are_created_with_the_chosen_mode(
    cli: Cli,
    info: StandInInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: str | None,
    file_mode: int,
    folder_mode: int,
) -> None:
    if setting is None:
        monkeypatch.delenv("SHIFTSYNC_FILE_MODE", raising=False)
    else:
        monkeypatch.setenv("SHIFTSYNC_FILE_MODE", setting)
    write_external_id(tmp_path, info.external_id)
    config = {
        "connections": {"warehouse": standin_connection(info)},
        "destinations": {
            "local": {"type": "duckdb", "path": "out/db.duckdb"},
            "lake": {"type": "parquet", "path": "lake"},
        },
        "syncs": {
            "main": {"source": "warehouse", "destination": "local", "tables": ["public.category"]},
            "files": {"source": "warehouse", "destination": "lake", "tables": ["public.category"]},
        },
    }
    (tmp_path / "shiftsync.yaml").write_text(yaml.safe_dump(config))
    before = os.umask(0o022)  # what a default shell has
    os.umask(before)
    for name in ("main", "files"):
        ran = cli("sync", name, "-w", str(tmp_path))
        assert ran.code == 0, ran.out + ran.err
    assert os.umask(before) == before  # the command left the process's umask as it was
    modes = _modes(tmp_path)
    assert "out/db.duckdb" in modes
    assert any(name.endswith(".parquet") for name in modes)
    for name, mode in modes.items():
        expected = folder_mode if (tmp_path / name).is_dir() else file_mode
        assert mode == expected, (name, oct(mode))


def test_a_bad_file_mode_is_a_configuration_error(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIFTSYNC_FILE_MODE", "rw-r--r--")
    ran = cli("init", str(tmp_path))
    assert ran.code == 2
    assert "error: SHIFTSYNC_FILE_MODE='rw-r--r--' is not a file mode" in ran.err
    assert "fix:" in ran.err
