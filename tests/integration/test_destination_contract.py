"""One contract every destination passes: DuckDB, PostgreSQL, and Parquet, Iceberg and Delta in
a folder and in S3.

Each test runs once per destination. PostgreSQL is a throwaway cluster (one per module, one
schema per test); S3 is the stand-in's, reached through AWS_ENDPOINT_URL_S3 the
way a user's configuration would reach it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import boto3
import duckdb
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable as DeltaTableReader
from deltalake.exceptions import TableNotFoundError
from psycopg import sql

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.config import (
    DuckDBDestinationConfig,
    ParquetDestinationConfig,
    PostgresDestinationConfig,
)
from shiftsync.destinations.base import (
    ColumnProfile,
    Destination,
    LoadMode,
    LoadOutcome,
    LoadSpec,
    is_stage_of,
    render_sum,
    render_temporal,
    stage_table_name,
)
from shiftsync.destinations.delta import DeltaDestination, DeltaSettings
from shiftsync.destinations.duckdb import DuckDBDestination
from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings
from shiftsync.destinations.parquet import DatasetPointer, ParquetDestination
from shiftsync.destinations.postgres import PostgresDestination
from shiftsync.destinations.registry import FACTORIES, DestinationContext, create_destination
from shiftsync.destinations.schema_change import SchemaChange
from shiftsync.errors import ConfigError, DestinationError
from shiftsync.json_types import JsonValue
from shiftsync.local.postgres import TempPostgres, free_port
from shiftsync.local.standin import BUCKET as STANDIN_BUCKET
from shiftsync.local.standin import StandIn

JSON = pa.json_(pa.string())
DURATION = pa.duration("us")  # the type contract's INTERVAL (DAY TO SECOND)
MONTH_DAY_NANO = pa.month_day_nano_interval()
INSTANT = pa.timestamp("us", tz="UTC")
REDSHIFT = b"shiftsync.redshift_type"
BUCKET = STANDIN_BUCKET
EVERY_KIND = [
    "duckdb",
    "postgres",
    "parquet",
    "parquet-s3",
    "iceberg",
    "iceberg-s3",
    "delta",
    "delta-s3",
]
# The file formats on the stand-in's S3 take a minute or more each over the whole contract:
# there they run behind the slow marker (`make test-slow`). `make test` keeps one case of each
# on S3, the test that takes EVERY_KIND (`@pytest.mark.parametrize("harness", EVERY_KIND,
# indirect=True)`): commits, an abort and the state, through the S3 credentials (and the
# lake's locking); and runs the whole contract for each on disk.
SLOW_KINDS = ("parquet-s3", "iceberg-s3", "delta-s3")
KINDS = [
    pytest.param(kind, marks=pytest.mark.slow) if kind in SLOW_KINDS else kind
    for kind in EVERY_KIND
]


# --- one harness per destination ---------------------------------------------------------------


@dataclass
class Harness:
    """How a test reaches one destination's storage, independently of the destination."""

    kind: str
    open: Callable[[], Destination]
    leftovers: Callable[[str], list[str]]  # stage tables / unused version folders of a target
    recipe: list[str]  # argv for a child process that opens the same storage
    crash_leaves_stage: bool
    keeps_field_metadata: bool
    stores_month_day_nano: bool = False  # only Parquet: DuckDB/PostgreSQL read back durations


@pytest.fixture(scope="module")
def s3_endpoint(standin: StandIn, assumed: AssumedRoleSession) -> Iterator[str]:
    """The stand-in's S3, written with the assumed role's keys, as shiftsync's runs do."""
    credentials = assumed.frozen_credentials()
    # An assumed role's credentials hold all three (botocore types each as optional).
    assert credentials.access_key
    assert credentials.secret_key
    assert credentials.token
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key)
    patch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_key)
    patch.setenv("AWS_SESSION_TOKEN", credentials.token)
    try:
        yield standin.info.endpoint
    finally:
        patch.undo()


def _duckdb_leftovers(path: Path) -> Callable[[str], list[str]]:
    def leftovers(target: str) -> list[str]:
        with duckdb.connect(str(path)) as connection:
            names = connection.execute(
                "SELECT table_name FROM information_schema.tables"
            ).fetchall()
        return [name for (name,) in names if is_stage_of(name, target)]

    return leftovers


def _postgres_leftovers(dsn: str, schema: str) -> Callable[[str], list[str]]:
    def leftovers(target: str) -> list[str]:
        with psycopg.connect(dsn) as connection:
            names = connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall()
        return [name for (name,) in names if is_stage_of(name, target)]

    return leftovers


def _unused_folders(folders: Sequence[str], pointer: dict[str, Any] | None) -> list[str]:
    used = set()
    if pointer is not None:
        files = [*pointer["files"], *pointer["previous"]["files"]]
        used = {path.split("/", 1)[0] for path in files}
    return sorted(f for f in folders if f.startswith("v") and f not in used)


def _local_leftovers(root: Path) -> Callable[[str], list[str]]:
    def leftovers(target: str) -> list[str]:
        folder = root / target
        pointer_file = folder / "_shiftsync.json"
        pointer = json.loads(pointer_file.read_text()) if pointer_file.exists() else None
        folders = [p.name for p in folder.iterdir() if p.is_dir()] if folder.exists() else []
        return _unused_folders(folders, pointer)

    return leftovers


def _s3_leftovers(prefix: str) -> Callable[[str], list[str]]:
    def leftovers(target: str) -> list[str]:
        s3 = boto3.Session().client("s3")
        base = f"{prefix}/{target}/"
        listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=base, Delimiter="/")
        folders = [p["Prefix"][len(base) :].rstrip("/") for p in listing.get("CommonPrefixes", [])]
        try:
            body = s3.get_object(Bucket=BUCKET, Key=f"{base}_shiftsync.json")["Body"].read()
        except s3.exceptions.NoSuchKey:
            return _unused_folders(folders, None)
        return _unused_folders(folders, json.loads(body))

    return leftovers


def _iceberg_leftovers(open_: Callable[[], Destination]) -> Callable[[str], list[str]]:
    """Data files in the table's folder that no snapshot references."""

    def leftovers(target: str) -> list[str]:
        destination = open_()
        assert isinstance(destination, IcebergDestination)
        try:
            table = destination.catalog().load_table(destination.identifier(target))
        except Exception:  # no table: nothing of it can be left over
            return []
        used = {
            task.file.file_path
            for snapshot in table.snapshots()
            for task in table.scan(snapshot_id=snapshot.snapshot_id).plan_files()
        }
        io, data = table.io, f"{table.location()}/data"
        fs = io.fs_by_scheme(*_scheme_netloc(data))  # type: ignore[attr-defined]
        found = fs.get_file_info(
            pafs.FileSelector(data.split("://", 1)[1], recursive=True, allow_not_found=True)
        )
        on_disk = {
            f"{data.split('://', 1)[0]}://{info.path}"
            for info in found
            if info.type == pafs.FileType.File
        }
        destination.close()
        return sorted(on_disk - used)

    return leftovers


def _scheme_netloc(url: str) -> tuple[str, str | None]:
    scheme, _, rest = url.partition("://")
    return scheme, rest.split("/", 1)[0] if scheme == "s3" else None


def _delta_leftovers(open_: Callable[[], Destination]) -> Callable[[str], list[str]]:
    """Data files in the table's folder that no version of its log references."""

    def leftovers(target: str) -> list[str]:
        destination = open_()
        assert isinstance(destination, DeltaDestination)
        uri, options = destination.uri(target), destination.options()
        try:
            table = DeltaTableReader(uri, storage_options=options)
        except TableNotFoundError:
            return []
        used: set[str] = set()
        for version in range(table.version() + 1):
            past = DeltaTableReader(uri, version=version, storage_options=options)
            used.update(u.rsplit(f"/{target}/", 1)[-1] for u in past.file_uris())
        if uri.startswith("s3://"):
            bucket, _, prefix = uri[len("s3://") :].partition("/")
            s3 = boto3.Session().client("s3")
            listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
            keys = [o["Key"][len(prefix) + 1 :] for o in listing.get("Contents", [])]
        else:
            keys = [str(p.relative_to(uri)) for p in Path(uri).rglob("*") if p.is_file()]
        return sorted(k for k in keys if k.endswith(".parquet") and k not in used)

    return leftovers


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    kind: str = request.param
    opened: list[Destination] = []

    def track(make: Callable[[], Destination]) -> Callable[[], Destination]:
        def open_() -> Destination:
            destination = make()
            opened.append(destination)
            return destination

        return open_

    if kind == "duckdb":
        path = tmp_path / "warehouse.duckdb"
        made = Harness(
            kind,
            track(lambda: DuckDBDestination(path)),
            _duckdb_leftovers(path),
            ["duckdb", str(path)],
            crash_leaves_stage=True,
            keeps_field_metadata=False,
        )
    elif kind == "postgres":
        server: TempPostgres = request.getfixturevalue("postgres")
        schema = f"contract_{uuid.uuid4().hex[:10]}"
        dsn = server.dsn()
        made = Harness(
            kind,
            track(lambda: PostgresDestination(dsn, schema)),
            _postgres_leftovers(dsn, schema),
            ["postgres", dsn, schema],
            # A load is one transaction: a dead connection rolls the stage back with it.
            crash_leaves_stage=False,
            keeps_field_metadata=False,
        )
    elif kind == "parquet":
        folder = tmp_path / "datasets"
        made = Harness(
            kind,
            track(lambda: ParquetDestination(str(folder))),
            _local_leftovers(folder),
            ["parquet", str(folder)],
            crash_leaves_stage=True,
            keeps_field_metadata=True,
            stores_month_day_nano=True,
        )
    elif kind in ("iceberg", "iceberg-s3"):
        if kind == "iceberg":
            warehouse = str(tmp_path / "warehouse")
        else:
            request.getfixturevalue("s3_endpoint")
            warehouse = f"s3://{BUCKET}/lake/{uuid.uuid4().hex[:10]}"
        catalog = f"sqlite:///{tmp_path / 'iceberg_catalog.db'}"

        def open_iceberg() -> Destination:
            return IcebergDestination(IcebergSettings("sql", warehouse=warehouse, uri=catalog))

        made = Harness(
            kind,
            track(open_iceberg),
            _iceberg_leftovers(open_iceberg),
            ["iceberg", warehouse, catalog],
            # Rows wait in a local stage; the warehouse sees files only inside the commit.
            crash_leaves_stage=False,
            keeps_field_metadata=True,
        )
    elif kind in ("delta", "delta-s3"):
        if kind == "delta":
            root, locking = str(tmp_path / "delta"), ""
        else:
            request.getfixturevalue("s3_endpoint")
            root, locking = f"s3://{BUCKET}/lake/{uuid.uuid4().hex[:10]}", "conditional_put"

        def open_delta() -> Destination:
            return DeltaDestination(DeltaSettings(root, locking=locking or None))  # type: ignore[arg-type]

        made = Harness(
            kind,
            track(open_delta),
            _delta_leftovers(open_delta),
            ["delta", root, locking],
            crash_leaves_stage=False,
            keeps_field_metadata=True,
        )
    else:
        request.getfixturevalue("s3_endpoint")
        prefix = f"runs/{uuid.uuid4().hex[:10]}"
        url = f"s3://{BUCKET}/{prefix}"
        made = Harness(
            kind,
            track(lambda: ParquetDestination(url)),
            _s3_leftovers(prefix),
            ["parquet", url],
            # Parts are spooled locally and uploaded whole: a crash uploads nothing.
            crash_leaves_stage=False,
            keeps_field_metadata=True,
            stores_month_day_nano=True,
        )
    yield made
    for destination in opened:
        destination.close()


@pytest.fixture
def dest(harness: Harness) -> Destination:
    destination = harness.open()
    destination.check()
    return destination


# --- helpers -----------------------------------------------------------------------------------

SIMPLE = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])


def batch(schema: pa.Schema, **columns: list[Any]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(columns, schema=schema)


def simple(ids: Sequence[int], values: Sequence[str | None]) -> pa.RecordBatch:
    return batch(SIMPLE, id=list(ids), v=list(values))


def load(
    destination: Destination,
    target: str,
    batches: Sequence[pa.RecordBatch],
    mode: LoadMode = LoadMode.REPLACE,
    *,
    schema: pa.Schema | None = None,
    state: dict[str, Any] | None = None,
    primary_key: tuple[str, ...] = (),
    policy: str = "evolve",
    state_key: str = "",
) -> LoadOutcome:
    spec = LoadSpec(
        target=target,
        schema=schema if schema is not None else batches[0].schema,
        mode=mode,
        primary_key=primary_key,
        schema_changes=policy,  # type: ignore[arg-type]
        state_key=state_key,
    )
    running = destination.start_load(spec)
    for b in batches:
        running.write(b)
    return running.commit(state)


def rows(destination: Destination, target: str, by: str = "id") -> list[dict[str, Any]]:
    table = destination.read_table(target)
    return table.sort_by(by).to_pylist()  # type: ignore[no-any-return]


def pairs(destination: Destination, target: str) -> list[tuple[Any, ...]]:
    return [tuple(row.values()) for row in rows(destination, target)]


def same(left: Any, right: Any) -> bool:
    """Value equality that also tells NaN from NaN and -0.0 from 0.0."""
    if isinstance(left, float) and isinstance(right, float):
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    return (type(left) is type(right) and left == right) or (left is None and right is None)


# --- first load -------------------------------------------------------------------------------


ROW_MODES = [m for m in LoadMode if m is not LoadMode.DELETE]


@pytest.mark.parametrize("mode", ROW_MODES)
def test_first_load_of_any_mode_creates_the_table(dest: Destination, mode: LoadMode) -> None:
    assert dest.table_schema("fresh") is None
    outcome = load(dest, "fresh", [simple([1, 2], ["a", "b"])], mode, primary_key=("id",))
    assert outcome.rows_written == 2
    assert outcome.schema_changes == ()
    created = dest.table_schema("fresh")
    assert created is not None
    assert [(f.name, f.type) for f in created] == [("id", pa.int64()), ("v", pa.string())]
    assert pairs(dest, "fresh") == [(1, "a"), (2, "b")]


def test_read_table_of_some_columns(dest: Destination) -> None:
    load(dest, "t", [simple([1, 2], ["a", "b"])])
    reader: Any = dest
    assert reader.read_table("t", columns=["id"]).to_pylist() in (
        [{"id": 1}, {"id": 2}],
        [{"id": 2}, {"id": 1}],
    )
    with pytest.raises(DestinationError, match="no column 'nope'"):
        reader.read_table("t", columns=["nope"])


def test_a_delete_load_removes_the_keys_with_the_state(dest: Destination) -> None:
    load(dest, "t", [simple([1, 2, 3], ["a", "b", "c"])], state={"run": 1})
    keys = pa.schema([SIMPLE.field("id")])
    assert dest.supports_deletes
    outcome = load(
        dest,
        "t",
        [batch(keys, id=[3, 1, 9])],
        LoadMode.DELETE,
        schema=keys,
        primary_key=("id",),
        state={"run": 2},
    )
    assert outcome.rows_written == 3
    assert pairs(dest, "t") == [(2, "b")]
    assert dest.read_state("t", "t") == {"run": 2}
    assert [f.name for f in dest.table_schema("t") or ()] == ["id", "v"]


def test_the_table_keeps_the_stamp_of_its_last_load(dest: Destination) -> None:
    """A stored cursor holds only while the table carries its load's stamp (engine/writers.py):
    a destination that lost it would make every incremental run load in full."""
    for stamp, mode in (("main:t@run1", LoadMode.REPLACE), ("main:t@run2", LoadMode.MERGE)):
        spec = LoadSpec("t", SIMPLE, mode, primary_key=("id",), identity=stamp)
        running = dest.start_load(spec)
        running.write(simple([1], ["a"]))
        running.commit({"run": stamp})
        assert dest.table_identity("t") == stamp


# --- every type, exactly ----------------------------------------------------------------------


def _field(name: str, data_type: pa.DataType, redshift: str) -> pa.Field:
    return pa.field(name, data_type, metadata={REDSHIFT: redshift.encode()})


ALL_TYPES = pa.schema(
    [
        _field("id", pa.int64(), "bigint"),
        _field("i16", pa.int16(), "smallint"),
        _field("i32", pa.int32(), "integer"),
        _field("i64", pa.int64(), "bigint"),
        _field("d38", pa.decimal128(38, 10), "numeric(38,10)"),
        _field("d38_0", pa.decimal128(38, 0), "numeric(38,0)"),
        _field("d5", pa.decimal128(5, 2), "numeric(5,2)"),
        _field("f32", pa.float32(), "real"),
        _field("f64", pa.float64(), "double precision"),
        _field("flag", pa.bool_(), "boolean"),
        _field("text", pa.string(), "character varying(256)"),
        _field("bytes", pa.binary(), "varbyte(64)"),
        _field("day", pa.date32(), "date"),
        _field("at", pa.timestamp("us"), "timestamp without time zone"),
        _field("instant", INSTANT, "timestamp with time zone"),
        _field("clock", pa.time64("us"), "time without time zone"),
        _field("doc", JSON, "super"),
        _field("span", DURATION, "interval day to second"),
    ]
)
D38_MAX = Decimal("9999999999999999999999999999.9999999999")
D38_MIN = Decimal("-9999999999999999999999999999.9999999999")  # not -D38_MAX: that rounds
NINES = Decimal("9" * 38)
UTC = dt.UTC
ALL_VALUES: dict[str, list[Any]] = {
    "id": [1, 2, 3, 4, 5, 6],
    "i16": [32767, -32768, 0, None, 1, -1],
    "i32": [2**31 - 1, -(2**31), 0, None, 1, -1],
    "i64": [2**63 - 1, -(2**63), 0, None, 1, -1],
    "d38": [D38_MAX, D38_MIN, Decimal("0.0000000001"), None, Decimal("-0.0000000001"), Decimal(0)],
    "d38_0": [NINES, Decimal("-" + "9" * 38), Decimal(0), None, Decimal(1), Decimal(-1)],
    "d5": [Decimal("999.99"), Decimal("-999.99"), Decimal("0.01"), None, Decimal("0.1"), Decimal()],
    "f32": [3.4028234663852886e38, -1.401298464324817e-45, 0.5, None, float("-inf"), float("nan")],
    "f64": [1.7976931348623157e308, 5e-324, 0.1, None, -0.0, float("inf")],
    "flag": [True, False, True, None, False, True],
    "text": [
        "",
        'é😀中\u0301 "quoted", comma\nnew line\\back\tslash',
        "\\.",
        None,
        "NULL",
        "\\N",
    ],
    "bytes": [b"\x00", b'\xff\x00\\x\n,"', b"", None, b"NULL", bytes(range(256))],
    "day": [dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(1969, 12, 31), None,
            dt.date(2024, 2, 29), dt.date(1900, 1, 1)],
    "at": [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
           dt.datetime(1970, 1, 1, 0, 0, 0, 1), None, dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
           dt.datetime(2000, 1, 1)],
    "instant": [dt.datetime(1900, 1, 1, tzinfo=UTC),
                dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                dt.datetime(2024, 2, 29, 12, 34, 56, 789012, tzinfo=UTC), None,
                dt.datetime(2020, 6, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                dt.datetime(2262, 4, 11, tzinfo=UTC)],
    "clock": [dt.time(0, 0), dt.time(23, 59, 59, 999999), dt.time(12, 0, 0, 500000), None,
              dt.time(0, 0, 0, 1), dt.time(6)],
    "doc": ['{"b":  1,\n "a": [1, 2.50]}', '"just a string"', "[]", None, "null", '{"é": "😀"}'],
    "span": [dt.timedelta(days=40, microseconds=1), dt.timedelta(microseconds=-1),
             dt.timedelta(0), None, dt.timedelta(days=999_999, hours=23),
             dt.timedelta(days=-999_999, seconds=1)],
}  # fmt: skip


def all_types_batch() -> pa.RecordBatch:
    arrays = []
    for f in ALL_TYPES:
        if f.type == JSON:
            arrays.append(pa.ExtensionArray.from_storage(JSON, pa.array(ALL_VALUES[f.name])))
        else:
            arrays.append(pa.array(ALL_VALUES[f.name], f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=ALL_TYPES)


def test_every_type_round_trips_exactly(dest: Destination, harness: Harness) -> None:
    sent = all_types_batch()
    load(dest, "all_types", [sent.slice(0, 3), sent.slice(3)])

    stored = dest.table_schema("all_types")
    assert stored is not None
    assert [(f.name, f.type) for f in stored] == [(f.name, f.type) for f in ALL_TYPES]
    back = dest.read_table("all_types").sort_by("id")
    assert [(f.name, f.type) for f in back.schema] == [(f.name, f.type) for f in ALL_TYPES]
    expected = pa.Table.from_batches([sent]).to_pylist()
    for got_row, sent_row in zip(back.to_pylist(), expected, strict=True):
        for name, value in sent_row.items():
            assert same(got_row[name], value), (name, got_row[name], value)
    if harness.keeps_field_metadata:
        assert stored.field("d38").metadata == {REDSHIFT: b"numeric(38,10)"}
        assert stored.field("doc").metadata == {REDSHIFT: b"super"}


def test_month_day_nano_intervals_are_exact_or_refused(dest: Destination, harness: Harness) -> None:
    schema = pa.schema([("id", pa.int64()), ("span", MONTH_DAY_NANO)])
    values = [pa.MonthDayNano([14, -3, 86_399_999_999_001]), None, pa.MonthDayNano([-1, 0, 0])]
    sent = batch(schema, id=[1, 2, 3], span=values)
    if not harness.stores_month_day_nano:
        with pytest.raises(DestinationError, match="'span'"):
            load(dest, "mdn", [sent])
        assert dest.table_schema("mdn") is None
        return
    load(dest, "mdn", [sent])
    load(dest, "mdn", [batch(schema, id=[3], span=[pa.MonthDayNano([0, 1, 2000])])],
         LoadMode.MERGE, primary_key=("id",))  # fmt: skip
    assert [r["span"] for r in rows(dest, "mdn")] == [
        values[0],
        None,
        pa.MonthDayNano([0, 1, 2000]),
    ]


# --- replace ----------------------------------------------------------------------------------


def test_replace_swaps_the_whole_table(dest: Destination) -> None:
    load(dest, "t", [simple([1, 2, 3], ["a", "b", "c"])], state={"run": 1})
    outcome = load(dest, "t", [simple([7], ["x"]), simple([8], ["y"])], state={"run": 2})
    assert outcome.rows_written == 2
    assert pairs(dest, "t") == [(7, "x"), (8, "y")]
    assert dest.read_state("t", "t") == {"run": 2}


def test_replace_aborted_midway_leaves_the_old_rows(dest: Destination, harness: Harness) -> None:
    load(dest, "t", [simple([1, 2], ["a", "b"])], state={"run": 1})
    running = dest.start_load(LoadSpec("t", SIMPLE, LoadMode.REPLACE))
    running.write(simple([5], ["new"]))
    running.write(simple([6], ["newer"]))
    running.abort()
    assert pairs(dest, "t") == [(1, "a"), (2, "b")]
    assert dest.read_state("t", "t") == {"run": 1}
    assert harness.leftovers("t") == []
    running.abort()  # a second abort is harmless
    with pytest.raises(DestinationError, match="already committed or aborted"):
        running.write(simple([9], ["late"]))


def test_crash_leaves_old_table_and_the_next_load_cleans_the_stage(harness: Harness) -> None:
    first = harness.open()
    load(first, "t", [simple([1, 2], ["a", "b"])], state={"run": 1})
    crashed = first.start_load(LoadSpec("t", SIMPLE, LoadMode.REPLACE))
    crashed.write(simple([5, 6], ["lost", "lost"]))
    del crashed  # no commit, no abort: the process just stops
    first.close()

    second = harness.open()
    assert pairs(second, "t") == [(1, "a"), (2, "b")]
    assert second.read_state("t", "t") == {"run": 1}
    assert bool(harness.leftovers("t")) is harness.crash_leaves_stage

    load(second, "t", [simple([3], ["c"])], state={"run": 2})
    assert pairs(second, "t") == [(3, "c")]
    assert harness.leftovers("t") == []


_CHILD = """
import sys
import pyarrow as pa
from pathlib import Path
from shiftsync.destinations.base import LoadMode, LoadSpec
kind, *args = sys.argv[1:]
if kind == "duckdb":
    from shiftsync.destinations.duckdb import DuckDBDestination
    destination = DuckDBDestination(Path(args[0]))
elif kind == "postgres":
    from shiftsync.destinations.postgres import PostgresDestination
    destination = PostgresDestination(args[0], args[1])
elif kind == "iceberg":
    from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings
    destination = IcebergDestination(IcebergSettings("sql", warehouse=args[0], uri=args[1]))
elif kind == "delta":
    from shiftsync.destinations.delta import DeltaDestination, DeltaSettings
    destination = DeltaDestination(DeltaSettings(args[0], locking=args[1] or None))
else:
    from shiftsync.destinations.parquet import DatasetPointer, ParquetDestination
    destination = ParquetDestination(args[0])
schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
load = destination.start_load(LoadSpec("t", schema, LoadMode.REPLACE))
load.write(pa.RecordBatch.from_pydict({"id": [9, 10], "v": ["lost", "lost"]}, schema=schema))
print("written", flush=True)
sys.stdin.read()
"""


def test_killed_process_leaves_the_old_table(harness: Harness, tmp_path: Path) -> None:
    first = harness.open()
    load(first, "t", [simple([1, 2], ["a", "b"])], state={"run": 1})
    first.close()  # DuckDB allows one writing process per file
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *harness.recipe],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # a killed child cannot clean its spool
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "written"
    finally:
        child.kill()  # SIGKILL: no cleanup code runs
        child.wait(timeout=30)

    second = harness.open()
    assert pairs(second, "t") == [(1, "a"), (2, "b")]
    assert second.read_state("t", "t") == {"run": 1}
    load(second, "t", [simple([3], ["c"])])
    assert pairs(second, "t") == [(3, "c")]
    assert harness.leftovers("t") == []


# --- merge ------------------------------------------------------------------------------------


def test_merge_upserts_by_key_and_the_last_written_row_wins(dest: Destination) -> None:
    load(dest, "t", [simple([1, 2, 3], ["a", "b", "c"])])
    outcome = load(
        dest,
        "t",
        [simple([2, 4], ["x", "y"]), simple([4, 2, 4], ["z", "w", "last"])],
        LoadMode.MERGE,
        primary_key=("id",),
        state={"cursor": "2024-01-01"},
    )
    assert outcome.rows_written == 2
    assert pairs(dest, "t") == [(1, "a"), (2, "w"), (3, "c"), (4, "last")]
    assert dest.read_state("t", "t") == {"cursor": "2024-01-01"}


def test_merge_with_a_composite_key(dest: Destination) -> None:
    schema = pa.schema([("k1", pa.string()), ("k2", pa.int32()), ("v", pa.int64())])
    first = batch(schema, k1=["a", "a", "b"], k2=[1, 2, 1], v=[1, 2, 3])
    load(dest, "t", [first], LoadMode.MERGE, primary_key=("k1", "k2"))
    second = batch(schema, k1=["a", "b", "b"], k2=[2, 2, 2], v=[20, 30, 31])
    load(dest, "t", [second], LoadMode.MERGE, primary_key=("k1", "k2"))
    got = sorted((r["k1"], r["k2"], r["v"]) for r in dest.read_table("t").to_pylist())
    assert got == [("a", 1, 1), ("a", 2, 20), ("b", 1, 3), ("b", 2, 31)]


def test_merge_without_a_primary_key_is_refused(dest: Destination) -> None:
    with pytest.raises(DestinationError, match="primary key") as caught:
        dest.start_load(LoadSpec("t", SIMPLE, LoadMode.MERGE))
    assert caught.value.fix
    assert dest.table_schema("t") is None


def test_merge_refuses_null_keys_and_leaves_the_table(dest: Destination) -> None:
    load(dest, "t", [simple([1], ["a"])])
    running = dest.start_load(LoadSpec("t", SIMPLE, LoadMode.MERGE, primary_key=("id",)))
    with pytest.raises(DestinationError, match="'id' holds NULL"):
        running.write(batch(SIMPLE, id=[2, None], v=["b", "c"]))
    running.abort()
    assert pairs(dest, "t") == [(1, "a")]


# --- append -----------------------------------------------------------------------------------


def test_append_adds_rows_and_keeps_the_old_ones(dest: Destination) -> None:
    load(dest, "t", [simple([1, 2], ["a", "b"])], LoadMode.APPEND)
    outcome = load(dest, "t", [simple([3], ["c"]), simple([2], ["b again"])], LoadMode.APPEND)
    assert outcome.rows_written == 2
    got = sorted(pairs(dest, "t"))
    assert got == [(1, "a"), (2, "b"), (2, "b again"), (3, "c")]
    load(dest, "t", [simple([4], ["d"])], LoadMode.APPEND)
    assert len(dest.read_table("t")) == 5


# --- state ------------------------------------------------------------------------------------


@pytest.mark.parametrize("harness", EVERY_KIND, indirect=True)
def test_state_is_committed_with_the_data_and_not_when_aborted(dest: Destination) -> None:
    key = "redshift:dev.public.orders"
    assert dest.read_state(key, "orders") is None
    load(
        dest,
        "orders",
        [simple([1], ["a"])],
        state={"cursor": 10, "nested": [1, "x"]},
        state_key=key,
    )
    assert dest.read_state(key, "orders") == {"cursor": 10, "nested": [1, "x"]}

    running = dest.start_load(LoadSpec("orders", SIMPLE, LoadMode.APPEND, state_key=key))
    running.write(simple([2], ["b"]))
    running.abort()
    assert dest.read_state(key, "orders") == {"cursor": 10, "nested": [1, "x"]}
    assert pairs(dest, "orders") == [(1, "a")]

    load(dest, "orders", [simple([3], ["c"])], LoadMode.APPEND, state_key=key)  # state None
    assert dest.read_state(key, "orders") == {"cursor": 10, "nested": [1, "x"]}
    load(dest, "orders", [simple([4], ["d"])], LoadMode.APPEND, state={"cursor": 20}, state_key=key)
    assert dest.read_state(key, "orders") == {"cursor": 20}
    assert dest.read_state("someone-else", "orders") is None


def test_a_target_never_reads_the_state_another_target_committed(dest: Destination) -> None:
    # One source table, its entry's target changed from `sales` to `sales_v2`: the state key
    # stays, but a cursor describes the rows of the table it was committed with.
    key = "nightly:public.sales"
    load(dest, "sales", [simple([1, 2, 3], ["a", "b", "c"])], state={"cursor": 3}, state_key=key)
    assert dest.read_state(key, "sales") == {"cursor": 3}
    assert dest.read_state(key, "sales_v2") is None
    assert dest.read_state(key, "never_loaded") is None

    rows_1_to_6 = simple(range(1, 7), list("abcdef"))
    load(dest, "sales_v2", [rows_1_to_6], state={"cursor": 6}, state_key=key)
    assert dest.read_state(key, "sales_v2") == {"cursor": 6}
    # `sales` still ends at 3: it may keep its own state (Parquet keeps it in its pointer) or
    # have none (one row per key), never the state of `sales_v2`.
    assert dest.read_state(key, "sales") in (None, {"cursor": 3})
    load(dest, "sales_v2", [simple([7], ["g"])], LoadMode.APPEND, state_key=key)  # state None
    assert dest.read_state(key, "sales_v2") == {"cursor": 6}


def test_state_that_is_not_json_is_refused_before_anything_changes(dest: Destination) -> None:
    load(dest, "t", [simple([1], ["a"])], state={"run": 1})
    running = dest.start_load(LoadSpec("t", SIMPLE, LoadMode.REPLACE))
    running.write(simple([2], ["b"]))
    with pytest.raises(DestinationError, match="JSON"):
        # A caller outside the types (the engine's state is built at run time) is refused too.
        running.commit(cast("dict[str, JsonValue]", {"when": dt.datetime(2024, 1, 1)}))
    running.abort()
    assert pairs(dest, "t") == [(1, "a")]
    assert dest.read_state("t", "t") == {"run": 1}


# --- schema changes ---------------------------------------------------------------------------

OLD = pa.schema([("id", pa.int32()), ("a", pa.string()), ("gone", pa.int16())])
NEW = pa.schema([("id", pa.int64()), ("a", pa.string()), ("added", pa.bool_())])


@pytest.mark.parametrize("mode", [LoadMode.APPEND, LoadMode.MERGE, LoadMode.REPLACE])
def test_evolve_adds_widens_and_keeps_dropped_columns(dest: Destination, mode: LoadMode) -> None:
    load(dest, "t", [batch(OLD, id=[1, 2], a=["x", "y"], gone=[7, 8])])
    incoming = batch(NEW, id=[2**40, 2], a=["big", "y2"], added=[True, None])
    outcome = load(dest, "t", [incoming], mode, primary_key=("id",))

    assert set(outcome.schema_changes) == {
        SchemaChange("widen", "id", "int32", "int64"),
        SchemaChange("keep_dropped", "gone", "int16", None),
        SchemaChange("add_column", "added", None, "bool"),
    }
    stored = dest.table_schema("t")
    assert stored is not None
    assert [(f.name, f.type) for f in stored] == [
        ("id", pa.int64()),
        ("a", pa.string()),
        ("gone", pa.int16()),
        ("added", pa.bool_()),
    ]
    expected = {
        LoadMode.APPEND: [(1, "x", 7, None), (2, "y", 8, None), (2, "y2", None, None),
                          (2**40, "big", None, True)],
        LoadMode.MERGE: [(1, "x", 7, None), (2, "y2", None, None), (2**40, "big", None, True)],
        LoadMode.REPLACE: [(2, "y2", None, None), (2**40, "big", None, True)],
    }[mode]  # fmt: skip
    assert sorted(pairs(dest, "t"), key=lambda r: (r[0], r[1])) == expected


def test_freeze_keeps_the_table_schema_and_skips_new_columns(dest: Destination) -> None:
    load(dest, "t", [simple([1], ["a"])])
    wider = pa.schema([("id", pa.int64()), ("v", pa.string()), ("extra", pa.float64())])
    outcome = load(
        dest, "t", [batch(wider, id=[2], v=["b"], extra=[1.5])], LoadMode.APPEND, policy="freeze"
    )
    assert outcome.schema_changes == (SchemaChange("ignore_column", "extra", None, "double"),)
    stored = dest.table_schema("t")
    assert stored is not None
    assert stored.names == ["id", "v"]
    assert pairs(dest, "t") == [(1, "a"), (2, "b")]

    widened = pa.schema([("id", pa.int64()), ("v", pa.string())])
    load(dest, "n", [batch(pa.schema([("id", pa.int32()), ("v", pa.string())]), id=[1], v=["a"])])
    with pytest.raises(DestinationError, match="widened from int32 to int64"):
        load(dest, "n", [batch(widened, id=[2], v=["b"])], LoadMode.APPEND, policy="freeze")
    assert pairs(dest, "n") == [(1, "a")]


def test_fail_refuses_any_change_and_leaves_the_table(dest: Destination) -> None:
    load(dest, "t", [simple([1], ["a"])])
    wider = pa.schema([("id", pa.int64()), ("v", pa.string()), ("extra", pa.int64())])
    with pytest.raises(DestinationError, match="new column 'extra'"):
        load(dest, "t", [batch(wider, id=[2], v=["b"], extra=[3])], LoadMode.APPEND, policy="fail")
    load(dest, "t", [simple([2], ["b"])], LoadMode.APPEND, policy="fail")
    assert pairs(dest, "t") == [(1, "a"), (2, "b")]


def test_incompatible_change_names_table_column_and_types(dest: Destination) -> None:
    load(dest, "t", [simple([1], ["a"])])
    clash = pa.schema([("id", pa.int64()), ("v", pa.int64())])
    with pytest.raises(DestinationError) as caught:
        load(dest, "t", [batch(clash, id=[2], v=[3])], LoadMode.APPEND)
    assert "'t'" in str(caught.value)
    assert "'v'" in str(caught.value)
    assert "string" in str(caught.value)
    assert "int64" in str(caught.value)
    assert pairs(dest, "t") == [(1, "a")]


# --- profile ----------------------------------------------------------------------------------

PROFILED = pa.schema(
    [
        ("id", pa.int64()),
        ("i16", pa.int16()),
        ("d38", pa.decimal128(38, 10)),
        ("d12", pa.decimal128(12, 2)),
        ("f64", pa.float64()),
        ("flag", pa.bool_()),
        ("text", pa.string()),
        ("bytes", pa.binary()),
        ("doc", JSON),
        ("day", pa.date32()),
        ("at", pa.timestamp("us")),
        ("instant", INSTANT),
        ("clock", pa.time64("us")),
        ("span", DURATION),
        ("empty", pa.int32()),
    ]
)


def profiled_batch() -> pa.RecordBatch:
    values: dict[str, list[Any]] = {
        "id": [1, 2, 3, 4],
        "i16": [-5, None, 32767, 1],
        "d38": [D38_MAX, D38_MAX, Decimal("-0.0000000001"), None],
        "d12": [Decimal("1.50"), Decimal("2.25"), None, Decimal("-0.05")],
        "f64": [0.1, None, float("nan"), 2.0],
        "flag": [True, False, None, True],
        "text": ["", "é", "😀", None],
        "bytes": [b"\x00", b"", None, b"abc"],
        "doc": ['{"a": 1}', None, "[ ]", None],
        "day": [dt.date(2024, 2, 29), None, dt.date(1900, 1, 1), dt.date(1969, 12, 31)],
        "at": [dt.datetime(1969, 12, 31, 23, 59, 59, 500000), dt.datetime(2020, 1, 1), None,
               dt.datetime(1999, 1, 1, 0, 0, 0, 1)],
        "instant": [dt.datetime(2020, 6, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                    None, None, dt.datetime(2020, 6, 1, 11, 30, tzinfo=UTC)],
        "clock": [dt.time(23, 59, 59, 999999), dt.time(0, 0), None, dt.time(12, 0, 0, 5)],
        "span": [dt.timedelta(days=1, microseconds=3), None, None, None],
        "empty": [None, None, None, None],
    }  # fmt: skip
    arrays = [
        pa.ExtensionArray.from_storage(JSON, pa.array(values[f.name]))
        if f.type == JSON
        else pa.array(values[f.name], f.type)
        for f in PROFILED
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=PROFILED)


EXPECTED_PROFILE = {
    "id": ColumnProfile(4, "10"),
    "i16": ColumnProfile(3, "32763"),
    "d38": ColumnProfile(3, "19999999999999999999999999999.9999999997"),
    "d12": ColumnProfile(3, "3.70"),
    "f64": ColumnProfile(3),
    "flag": ColumnProfile(3, "2"),
    "text": ColumnProfile(3, "6"),  # '' + é (2 bytes) + 😀 (4 bytes)
    "bytes": ColumnProfile(3, "4"),
    "doc": ColumnProfile(2, "11"),
    "day": ColumnProfile(3, None, "1900-01-01", "2024-02-29"),
    "at": ColumnProfile(3, None, "1969-12-31 23:59:59.500000", "2020-01-01 00:00:00.000000"),
    "instant": ColumnProfile(2, None, "2020-06-01 10:00:00.000000", "2020-06-01 11:30:00.000000"),
    "clock": ColumnProfile(3, None, "00:00:00.000000", "23:59:59.999999"),
    "span": ColumnProfile(1),
    "empty": ColumnProfile(0, "0"),
}


def test_profile_equals_hand_computed_values(dest: Destination) -> None:
    load(dest, "p", [profiled_batch()], LoadMode.APPEND)
    profile = dest.profile("p", PROFILED.names)
    assert profile.rows == 4
    assert dict(profile.columns) == EXPECTED_PROFILE


def test_profile_of_a_subset_and_of_unknown_things(dest: Destination) -> None:
    load(dest, "p", [profiled_batch()])
    profile = dest.profile("p", ["d12", "text"])
    assert profile.rows == 4
    assert dict(profile.columns) == {
        "d12": EXPECTED_PROFILE["d12"],
        "text": EXPECTED_PROFILE["text"],
    }
    with pytest.raises(DestinationError, match="no column 'nope'"):
        dest.profile("p", ["nope"])
    with pytest.raises(DestinationError, match="'missing' does not exist"):
        dest.profile("missing", ["id"])
    with pytest.raises(DestinationError, match="'missing' does not exist"):
        dest.read_table("missing")


def test_profile_of_an_empty_table(dest: Destination) -> None:
    load(dest, "e", [simple([], [])])
    assert dest.read_table("e").num_rows == 0
    profile = dest.profile("e", ["id", "v"])
    assert profile.rows == 0
    assert dict(profile.columns) == {"id": ColumnProfile(0, "0"), "v": ColumnProfile(0, "0")}


# --- threads ----------------------------------------------------------------------------------


def test_parallel_loads_from_threads(dest: Destination) -> None:
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            target = f"table_{n}"
            load(dest, target, [simple(range(i * 10, i * 10 + 10), ["r"] * 10) for i in range(5)])
            merge = [simple([0, 1000 + n], [f"merged {n}", "new"])]
            load(dest, target, merge, LoadMode.MERGE, primary_key=("id",), state={"n": n})
        except BaseException as exc:  # handed to the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for n in range(4):
        got = pairs(dest, f"table_{n}")
        assert len(got) == 51
        assert got[0] == (0, f"merged {n}")
        assert got[-1] == (1000 + n, "new")
        assert dest.read_state(f"table_{n}", f"table_{n}") == {"n": n}


# --- the profile's text form (what the engine reproduces on the Redshift side) -----------------


@pytest.mark.parametrize(
    ("value", "data_type", "text"),
    [
        (None, pa.int64(), "0"),
        (-12, pa.int32(), "-12"),
        (Decimal("3.7"), pa.decimal128(12, 2), "3.70"),
        (Decimal("-0.000"), pa.decimal128(12, 3), "0.000"),
        ("19999999999999999999999999999.9999999997", pa.decimal128(38, 10),
         "19999999999999999999999999999.9999999997"),
        (Decimal("1E+40"), pa.decimal128(38, 0), "1" + "0" * 40),
        (None, pa.decimal128(5, 2), "0.00"),
    ],
)  # fmt: skip
def test_render_sum_is_exact(value: Any, data_type: pa.DataType, text: str) -> None:
    assert render_sum(value, data_type) == text


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("2024-02-29", "2024-02-29"),
        ("2020-01-01 00:00:00", "2020-01-01 00:00:00.000000"),
        ("1969-12-31 23:59:59.5", "1969-12-31 23:59:59.500000"),
        ("12:00:00.000001", "12:00:00.000001"),
        ("0044-03-15 12:00:00.5 BC", "0044-03-15 12:00:00.500000 BC"),  # PostgreSQL
        ("0044-03-15 (BC) 12:00:00.5", "0044-03-15 12:00:00.500000 BC"),  # DuckDB
        ("0044-03-15 (BC)", "0044-03-15 BC"),
        (None, None),
    ],
)
def test_render_temporal_has_six_fraction_digits(raw: str | None, text: str | None) -> None:
    assert render_temporal(raw) == text


def test_stage_names_fit_postgres_and_never_match_another_target() -> None:
    name = stage_table_name("orders", "0123abcd")
    assert name == "_shiftsync_stage_orders_0123abcd"
    assert is_stage_of(name, "orders")
    assert not is_stage_of(name, "order")
    assert not is_stage_of(stage_table_name("orders_2", "0123abcd"), "orders")
    long_target = "a_very_long_table_name_that_goes_on_and_on_" * 2 + "é"
    long_name = stage_table_name(long_target, "0123abcd")
    assert len(long_name.encode()) <= 63
    assert is_stage_of(long_name, long_target)
    assert not is_stage_of(long_name, long_target + "x")


# --- one destination at a time: what the shared suite cannot express ---------------------------


def test_postgres_connection_error_names_the_server_but_not_the_password() -> None:
    dsn = f"postgresql://loader:hunter2-secret@127.0.0.1:{free_port()}/warehouse?connect_timeout=5"
    destination = PostgresDestination(dsn, "analytics")
    with pytest.raises(DestinationError) as caught:
        destination.check()
    shown = f"{caught.value} {caught.value.fix} {destination!r}"
    assert "hunter2-secret" not in shown
    assert "127.0.0.1" in shown
    assert "loader" in shown
    assert caught.value.fix


def test_postgres_dsn_that_does_not_parse_is_not_echoed() -> None:
    destination = PostgresDestination("host=h password=hunter2-secret oops", "s")
    with pytest.raises(DestinationError, match="does not parse") as caught:
        destination.check()
    assert "hunter2-secret" not in str(caught.value)


def test_duckdb_check_reports_a_folder_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="is a file, not a folder") as caught:
        DuckDBDestination(blocker / "warehouse.duckdb").check()
    assert str(blocker) in str(caught.value)
    assert str(tmp_path / "warehouse.duckdb") in (caught.value.fix or "")


def test_duckdb_check_reports_a_folder_given_as_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, not a database file") as caught:
        DuckDBDestination(tmp_path).check()
    assert str(tmp_path / "shiftsync.duckdb") in (caught.value.fix or "")


def test_duckdb_loads_in_a_small_pool_and_merges_what_that_pool_could_not(
    tmp_path: Path,
) -> None:
    # Appending keeps DuckDB's pool at the load's bound (duckdb_memory.py: 16 MB and 512 KB
    # a column), so memory stays flat with the table; a merge of 4 million staged keys runs
    # out of memory in that pool, so the commit raises it, then lets it down again.
    destination = DuckDBDestination(tmp_path / "warehouse.duckdb")
    n = 4_000_000
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.int64())])
    ids = pa.array(range(n), pa.int64())

    def limit() -> str:
        cursor = destination._cursor()
        try:
            row = cursor.execute("SELECT current_setting('memory_limit')").fetchone()
            assert row is not None
            return str(row[0])
        finally:
            cursor.close()

    try:
        load(destination, "t", [pa.record_batch([ids, ids], schema=schema)])
        assert limit() == "16.0 MiB"
        spec = LoadSpec(target="t", schema=schema, mode=LoadMode.MERGE, primary_key=("id",))
        running = destination.start_load(spec)
        running.write(pa.record_batch([ids, pc.add(ids, 1)], schema=schema))
        assert limit() == "17.0 MiB"  # 16 MB + 3 columns (the sequence too), whole MiB
        assert running.commit(None).rows_written == n
        assert limit() == "16.0 MiB"
        profile = destination.profile("t", ["v"])
        assert profile.rows == n
        assert profile.columns["v"].total == str(sum(range(1, n + 1)))
    finally:
        destination.close()


def test_parquet_check_reports_a_root_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DestinationError, match="probe") as caught:
        ParquetDestination(str(blocker / "datasets")).check()
    assert caught.value.fix


@pytest.mark.parametrize("target", ["", ".", "..", "a/b", "a\\b"])
def test_parquet_refuses_a_target_that_is_not_a_folder_name(tmp_path: Path, target: str) -> None:
    destination = ParquetDestination(str(tmp_path))
    with pytest.raises(DestinationError, match=r"dataset folder name|without a target"):
        destination.start_load(LoadSpec(target, SIMPLE, LoadMode.REPLACE))


def test_parquet_layout_pointer_and_version_retention(tmp_path: Path) -> None:
    destination = ParquetDestination(str(tmp_path), rows_per_file=2)
    load(destination, "orders", [simple([1, 2, 3], ["a", "b", "c"])], state={"run": 1})
    load(destination, "orders", [simple([4], ["d"])], LoadMode.APPEND, state={"run": 2})
    pointer = json.loads((tmp_path / "orders" / "_shiftsync.json").read_text())
    first, second = pointer["history"][0]["current"], pointer["current"]
    # APPEND references the first version's two files and adds its own.
    assert pointer["files"] == [
        f"{first}/part-00000.parquet",
        f"{first}/part-00001.parquet",
        f"{second}/part-00000.parquet",
    ]
    assert pointer["rows"] == 4
    assert pointer["state"] == {"orders": {"run": 2}}
    assert [c["name"] for c in pointer["schema"]] == ["id", "v"]
    assert pointer["version"] == 2

    load(destination, "orders", [simple([9], ["z"])])  # REPLACE: a third version
    load(destination, "orders", [simple([10], ["y"])])  # and a fourth
    pointer = json.loads((tmp_path / "orders" / "_shiftsync.json").read_text())
    folders = sorted(p.name for p in (tmp_path / "orders").iterdir() if p.is_dir())
    # Only the current and the previous version stay.
    assert folders == sorted({pointer["current"], pointer["history"][-2]["current"]})
    assert pairs(destination, "orders") == [(10, "y")]


def test_parquet_reads_a_state_from_its_own_dataset_only(tmp_path: Path) -> None:
    destination = ParquetDestination(str(tmp_path))
    load(destination, "orders", [simple([1], ["a"])], state={"cursor": 1}, state_key="k")
    # A damaged pointer of another dataset (sorted first) is that dataset's problem alone.
    damaged = tmp_path / "a_damaged"
    damaged.mkdir()
    (damaged / "_shiftsync.json").write_text("{not json")
    assert destination.read_state("k", "orders") == {"cursor": 1}
    assert destination.read_state("k", "b_never_loaded") is None
    with pytest.raises(DestinationError, match="a_damaged") as caught:
        destination.read_state("k", "a_damaged")
    assert caught.value.fix


class _PointerLandsThenRaises(ParquetDestination):
    """Its pointer write lands, then the call raises, as an S3 upload does whose response
    times out after S3 stored the object.

    No stand-in can make a write succeed and its call fail, so this one step is overridden;
    the files, the pointer and the abort are the real destination's.
    """

    def write_pointer(
        self, fs: Any, target: str, pointer: DatasetPointer, *, base: Any = None
    ) -> None:
        super().write_pointer(fs, target, pointer, base=base)
        raise OSError("timed out waiting for the response")


@pytest.mark.parametrize("mode", ROW_MODES)
@pytest.mark.parametrize("where", ["local", "s3"])
def test_parquet_abort_after_the_pointer_landed_keeps_what_it_published(
    where: str, mode: LoadMode, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if where == "local":
        root = str(tmp_path / "datasets")
    else:
        request.getfixturevalue("s3_endpoint")
        root = f"s3://{BUCKET}/runs/{uuid.uuid4().hex[:10]}"
    plain = ParquetDestination(root)
    load(plain, "t", [simple([1, 2], ["a", "b"])], state={"run": 1})

    key = ("id",) if mode is LoadMode.MERGE else ()
    running = _PointerLandsThenRaises(root).start_load(LoadSpec("t", SIMPLE, mode, key))
    running.write(simple([2, 3], ["b2", "c"]))
    with pytest.raises(DestinationError, match="timed out"):
        running.commit({"run": 2})
    running.abort()  # what the engine does when a commit raises

    # The pointer that landed is the dataset now: its files must all be there.
    expected = {
        LoadMode.REPLACE: [(2, "b2"), (3, "c")],
        LoadMode.MERGE: [(1, "a"), (2, "b2"), (3, "c")],
        LoadMode.APPEND: [(1, "a"), (2, "b"), (2, "b2"), (3, "c")],
    }[mode]
    assert sorted(pairs(plain, "t")) == expected
    assert plain.read_state("t", "t") == {"run": 2}
    load(plain, "t", [simple([4], ["d"])], LoadMode.APPEND, state={"run": 3})
    assert sorted(pairs(plain, "t")) == [*expected, (4, "d")]
    assert plain.read_state("t", "t") == {"run": 3}


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_a_state_table_from_before_states_named_their_target(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """An earlier shiftsync's state table has no target column: its rows, which cannot say
    whose they are, are read for any target, until a commit records one."""
    key, legacy = "nightly:public.orders", '{"cursor": 1}'
    destination: Destination
    if kind == "duckdb":
        path = tmp_path / "warehouse.duckdb"
        with duckdb.connect(str(path)) as connection:
            connection.execute(
                'CREATE TABLE "_shiftsync_state" ("state_key" VARCHAR PRIMARY KEY, '
                '"state" JSON, "updated_at" TIMESTAMP)'
            )
            connection.execute(
                'INSERT INTO "_shiftsync_state" VALUES (?, ?, now()::TIMESTAMP)', [key, legacy]
            )
        destination = DuckDBDestination(path)
    else:
        server: TempPostgres = request.getfixturevalue("postgres")
        schema = f"legacy_{uuid.uuid4().hex[:10]}"
        table = sql.Identifier(schema, "_shiftsync_state")
        with psycopg.connect(server.dsn(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            connection.execute(
                sql.SQL(
                    'CREATE TABLE {} ("state_key" text PRIMARY KEY, "state" jsonb NOT NULL, '
                    '"updated_at" timestamptz NOT NULL)'
                ).format(table)
            )
            connection.execute(
                sql.SQL("INSERT INTO {} VALUES (%s, %s::jsonb, now())").format(table),
                (key, legacy),
            )
        destination = PostgresDestination(server.dsn(), schema)
    try:
        assert destination.read_state(key, "orders") == {"cursor": 1}
        assert destination.read_state(key, "orders_v2") == {"cursor": 1}
        load(destination, "orders", [simple([1], ["a"])], state={"cursor": 2}, state_key=key)
        assert destination.read_state(key, "orders") == {"cursor": 2}
        assert destination.read_state(key, "orders_v2") is None
    finally:
        destination.close()


def test_registry_builds_each_destination_from_its_config(tmp_path: Path) -> None:
    context = DestinationContext(folder=tmp_path)
    duck = create_destination(
        DuckDBDestinationConfig.model_validate({"type": "duckdb", "path": "w.duckdb"}), context
    )
    assert isinstance(duck, DuckDBDestination)
    assert duck.path == tmp_path / "w.duckdb"
    pg = create_destination(
        PostgresDestinationConfig.model_validate(
            {"type": "postgres", "dsn": "postgresql://u:pw@db.example:5432/w", "schema": "raw"}
        ),
        context,
    )
    assert isinstance(pg, PostgresDestination)
    assert pg.schema == "raw"
    local = create_destination(
        ParquetDestinationConfig.model_validate({"type": "parquet", "path": "out"}), context
    )
    assert isinstance(local, ParquetDestination)
    assert local.root == str(tmp_path / "out")
    assert set(FACTORIES) == {"duckdb", "postgres", "parquet", "iceberg", "delta"}
