"""Table names as they are: `tables:` takes double-quoted names (dots, spaces, capitals) next
to the wildcard form, "[" is an ordinary character, and `discover` prints each name in the form
`tables:` takes. The tables are made by the test, so any seed works."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from psycopg import sql

from shiftsync.local.standin import StandInInfo
from tests.support import ROLE_DB_USER, Cli, write_role_workspace


@pytest.fixture
def odd_schema(admin: psycopg.Connection[Any]) -> Iterator[str]:
    """A schema "odd schema <hex>" with tables "mixed.case", "mixed case", "t[1]" and "t1".

    Lower case: a default Redshift folds even quoted identifiers to lower case, and so does
    the stand-in; spaces, dots and brackets are what `tables:` must take as they are."""
    schema = f"odd schema {uuid.uuid4().hex[:6]}"
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    for number, table in enumerate(("mixed.case", "mixed case", "t[1]", "t1")):
        ident = sql.Identifier(schema, table)
        admin.execute(sql.SQL("CREATE TABLE {} (id int primary key, v text)").format(ident))
        admin.execute(sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(ident), (number, table))
    reader = sql.Identifier(ROLE_DB_USER)
    admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), reader))
    admin.execute(
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
            sql.Identifier(schema), reader
        )
    )
    yield schema
    admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def synced_values(folder: Path) -> set[str]:
    """Every value of column v in the destination's tables (shiftsync's own left out)."""
    with duckdb.connect(str(folder / "shiftsync.duckdb"), read_only=True) as con:
        listed = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        values: set[str] = set()
        for schema, table in listed:
            if table.startswith("_shiftsync"):
                continue
            quoted = '"' + schema.replace('"', '""') + '"."' + table.replace('"', '""') + '"'
            values.update(row[0] for row in con.execute(f"SELECT v FROM {quoted}").fetchall())
        return values


def test_quoted_names_are_selected_exactly(
    cli: Cli, info: StandInInfo, odd_schema: str, tmp_path: Path
) -> None:
    quoted = f'"{odd_schema}"."mixed.case"'
    write_role_workspace(
        tmp_path, info, info.role_arn, external_id=info.external_id, tables=[quoted]
    )
    ran = cli("sync", "--json", "-w", str(tmp_path))
    assert ran.code == 0, ran.out + ran.err
    (table,) = json.loads(ran.out)["tables"]
    assert table["table"] == quoted
    assert synced_values(tmp_path) == {"mixed.case"}


def test_a_bracket_is_an_ordinary_character(
    cli: Cli, info: StandInInfo, odd_schema: str, tmp_path: Path
) -> None:
    write_role_workspace(
        tmp_path, info, info.role_arn, external_id=info.external_id, tables=[f'"{odd_schema}".t[1]']
    )
    ran = cli("sync", "--json", "-w", str(tmp_path))
    assert ran.code == 0, ran.out + ran.err
    assert synced_values(tmp_path) == {"t[1]"}  # not t1


def test_discover_prints_names_tables_accepts(
    cli: Cli, info: StandInInfo, odd_schema: str, tmp_path: Path
) -> None:
    write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    ran = cli("discover", "--schema", odd_schema, "--json", "-w", str(tmp_path))
    assert ran.code == 0, ran.out + ran.err
    names = sorted(t["table"] for t in json.loads(ran.out)["tables"])
    assert names == sorted(
        f'"{odd_schema}".{table}' for table in ('"mixed case"', '"mixed.case"', "t1", "t[1]")
    )
    text = cli("discover", "--schema", odd_schema, "-w", str(tmp_path))
    assert f'"{odd_schema}"."mixed case"' in text.out
    # Each printed name, put in `tables:`, selects that table and no other.
    for name in names:
        folder = tmp_path / uuid.uuid4().hex[:8]
        write_role_workspace(
            folder, info, info.role_arn, external_id=info.external_id, tables=[name]
        )
        planned = cli("sync", "--dry-run", "--json", "-w", str(folder))
        assert planned.code == 0, planned.out + planned.err
        assert [t["table"] for t in json.loads(planned.out)["tables"]] == [name]


@pytest.mark.parametrize("shape", ["folder", "under a file"])
def test_an_unusable_duckdb_path_gets_its_own_fix(
    cli: Cli, info: StandInInfo, tmp_path: Path, shape: str
) -> None:
    workspace = write_role_workspace(
        tmp_path, info, info.role_arn, external_id=info.external_id, tables=["public.category"]
    )
    if shape == "folder":
        (tmp_path / "data").mkdir()
        path, fix = "data", str(tmp_path / "data" / "shiftsync.duckdb")
    else:
        (tmp_path / "notes.txt").write_text("a file")
        path, fix = "notes.txt/db.duckdb", str(tmp_path / "db.duckdb")
    text = workspace.config_path.read_text().replace(
        "local: {type: duckdb}", f"local: {{type: duckdb, path: {path}}}"
    )
    workspace.config_path.write_text(text)
    ran = cli("sync", "-w", str(tmp_path))
    assert ran.code == 2, ran.out + ran.err
    assert "locked" not in ran.err
    assert "disk" not in ran.err
    assert fix in ran.err
    assert "Traceback" not in ran.err
