"""Helpers for tests that run syncs on the stand-in: a workspace with one sync, the source
tables' changes, the destination read back and compared with the stand-in's PostgreSQL, and
`shiftsync sync` as a subprocess.

Imported as `from tests.support_sync import …`.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
import yaml
from psycopg import sql

from shiftsync.destinations.base import Destination
from shiftsync.destinations.registry import DestinationContext, create_destination
from shiftsync.engine.sync import PAUSE_ENV, PAUSE_MARKER
from shiftsync.local.postgres import TempPostgres
from shiftsync.local.standin import StandInInfo
from shiftsync.workspace import Workspace
from tests.support import standin_connection, write_external_id, write_sync_config


def destination_config(kind: str, folder: Path, postgres: TempPostgres | None) -> dict[str, Any]:
    if kind == "duckdb":
        return {"type": "duckdb", "path": "out.duckdb"}
    if kind == "postgres":
        assert postgres is not None
        return {
            "type": "postgres",
            "dsn": postgres.dsn("postgres"),
            "schema": f"s_{uuid.uuid4().hex[:8]}",
        }
    if kind == "iceberg":  # the SQLite catalog in the workspace, a warehouse folder beside it
        return {"type": "iceberg", "warehouse": "warehouse"}
    if kind == "delta":
        return {"type": "delta", "path": "delta"}
    return {"type": "parquet", "path": "lake"}


def make_workspace(
    folder: Path,
    info: StandInInfo,
    destination: Mapping[str, Any],
    tables: Sequence[Any],
    **sync: Any,
) -> Workspace:
    write_external_id(folder, info.external_id)
    write_config(folder, info, destination, tables, **sync)
    return Workspace(folder)


def write_config(
    folder: Path,
    info: StandInInfo,
    destination: Mapping[str, Any],
    tables: Sequence[Any],
    **sync: Any,
) -> None:
    write_sync_config(
        folder,
        standin_connection(info, unload={"bucket": info.bucket}),
        {"dest": dict(destination)},
        {"destination": "dest", "concurrency": 4, "tables": list(tables), **sync},
    )


def open_destination(workspace: Workspace) -> Destination:
    _, config = workspace.config.destination("dest")
    return create_destination(config, DestinationContext(folder=workspace.folder))


def canonical(value: Any) -> Any:
    """One form for a value from psycopg and from Arrow (NaN, TIMETZ text, JSON text)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, clock_time) and value.tzinfo is not None:
        return value.isoformat()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).isoformat()
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def source_rows(
    admin: psycopg.Connection[Any], table: str
) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = admin.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("public", table)))
    names = [d.name for d in cursor.description or ()]
    return names, [tuple(canonical(v) for v in row) for row in cursor.fetchall()]


def destination_rows(
    destination: Destination, target: str, names: Sequence[str]
) -> list[tuple[Any, ...]]:
    table = destination.read_table(target)
    json_columns = {
        f.name
        for f in table.schema
        if isinstance(f.type, pa.BaseExtensionType) and f.type.extension_name == "arrow.json"
    }
    rows = []
    for row in table.to_pylist():
        rows.append(
            tuple(
                json.loads(row[n])
                if n in json_columns and row[n] is not None
                else canonical(row[n])
                for n in names
            )
        )
    return rows


def sort_key(row: tuple[Any, ...]) -> str:
    return repr(row)


def as_float32(value: Any) -> Any:
    # psycopg reads REAL as its shortest text, parsed as a double; Arrow keeps the float32.
    if isinstance(value, float):
        return struct.unpack("<f", struct.pack("<f", value))[0]
    return value


def assert_same_table(
    admin: psycopg.Connection[Any], destination: Destination, table: str, target: str
) -> None:
    names, expected = source_rows(admin, table)
    schema = destination.table_schema(target)
    assert schema is not None, target
    singles = [i for i, n in enumerate(names) if schema.field(n).type == pa.float32()]
    expected = [
        tuple(as_float32(v) if i in singles else v for i, v in enumerate(row)) for row in expected
    ]
    actual = destination_rows(destination, target, names)
    assert sorted(actual, key=sort_key) == sorted(expected, key=sort_key), table


def staged_keys(s3: Any, bucket: str, run_prefix: str = "shiftsync/") -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=run_prefix)
    return [item["Key"] for item in listed.get("Contents", ())]


def cli_env(info: StandInInfo) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIFTSYNC_DEBUG")}
    env.update(info.environment())
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


def run_cli(folder: Path, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shiftsync", "sync", *args],
        cwd=folder,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_paused(
    folder: Path, env: Mapping[str, str], point: str, table: str, *args: str
) -> subprocess.Popen[str]:
    """Start `shiftsync sync` and return once it printed the pause marker at `point`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "shiftsync", "sync", *args],
        cwd=folder,
        env={**env, PAUSE_ENV: f"{point}:{table}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 90
    for line in process.stderr:
        seen.append(line)
        if line.startswith(f"{PAUSE_MARKER} {point} {table}"):
            return process
        if time.monotonic() > deadline:
            break
    process.kill()
    process.wait()
    pytest.fail(f"no pause marker at {point}; stderr was:\n{''.join(seen)}")


# --- changes to a source table, and what a destination holds -------------------------------


def incremental(table: str, tracking_field: str = "saletime", **settings: Any) -> dict[str, Any]:
    """A `tables:` entry reading `public.<table>` incrementally by `tracking_field`."""
    return {
        "include": f"public.{table}",
        "mode": "incremental",
        "tracking_field": tracking_field,
        **settings,
    }


def update_rows(admin: psycopg.Connection[Any], table: str, assignments: str, where: str) -> None:
    """`UPDATE public.<table> SET <assignments> WHERE <where>` (both SQL the test wrote)."""
    statement = f"UPDATE {{}} SET {assignments} WHERE {where}"
    admin.execute(sql.SQL(statement).format(sql.Identifier("public", table)))


def add_sales_rows(admin: psycopg.Connection[Any], table: str, saletime: str) -> None:
    """Three new rows in a copy of public.sales (salesid + 5,000,000), `saletime` an SQL
    expression over the seed row's columns (NULL, or a later time)."""
    statement = (
        "INSERT INTO {} SELECT salesid + 5000000, listid, sellerid, buyerid, eventid, dateid, "
        f"qtysold, pricepaid, commission, {saletime} FROM public.sales WHERE salesid <= 3"
    )
    admin.execute(sql.SQL(statement).format(sql.Identifier("public", table)))


@contextmanager
def opened(workspace: Workspace) -> Iterator[Destination]:
    """The workspace's destination `dest`, closed afterwards."""
    destination = open_destination(workspace)
    try:
        yield destination
    finally:
        destination.close()


def holds_the_source(
    admin: psycopg.Connection[Any], workspace: Workspace, table: str, target: str | None = None
) -> None:
    """The destination table `target` (default: the table's name) equals public.<table>."""
    with opened(workspace) as destination:
        assert_same_table(admin, destination, table, target or table)


def write_syncs(
    folder: Path,
    info: StandInInfo,
    destination: Mapping[str, Any],
    syncs: Mapping[str, Sequence[Any]],
) -> Workspace:
    """A workspace whose syncs (name → its tables) all read the stand-in and write `dest`."""
    write_external_id(folder, info.external_id)
    config = {
        "connections": {"warehouse": standin_connection(info)},
        "destinations": {"dest": dict(destination)},
        "syncs": {
            name: {"source": "warehouse", "destination": "dest", "tables": list(tables)}
            for name, tables in syncs.items()
        },
    }
    (folder / "shiftsync.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return Workspace(folder)


@dataclass(frozen=True)
class Stand:
    """One test's syncs on the stand-in (the `stand` fixture): its folder, the stand-in, a
    superuser connection to the stand-in's PostgreSQL and throwaway copies of seed tables."""

    folder: Path
    info: StandInInfo
    admin: psycopg.Connection[Any]
    # `copy(seed_table, kind)` → a fresh copy's name (the `copies` fixture).
    copy: Callable[[str, str], str]
    # The module's PostgreSQL destination server, started when first asked for.
    postgres: Callable[[], TempPostgres]

    def destination(self, kind: str) -> dict[str, Any]:
        """A destination of `kind` (duckdb, postgres, parquet) of its own."""
        return destination_config(
            kind, self.folder, self.postgres() if kind == "postgres" else None
        )

    def workspace(
        self, destination: Mapping[str, Any], tables: Sequence[Any], **sync: Any
    ) -> Workspace:
        """The workspace `<folder>/ws` whose sync `main` copies `tables` into `destination`."""
        return make_workspace(self.folder / "ws", self.info, destination, tables, **sync)

    def holds_the_source(self, workspace: Workspace, table: str, target: str | None = None) -> None:
        holds_the_source(self.admin, workspace, table, target)
