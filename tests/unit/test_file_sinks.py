"""The pure parts of the file sinks the Ray workers write through (destinations/file_sink.py,
iceberg/sink.py, delta/sink.py): writer names, the load's file names, Delta statistics, and
that every sink is a `FileSink` (checked by mypy, used by executors/ray_files.py)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pyarrow as pa
import pytest
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.schema import Schema
from pyiceberg.table.metadata import new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.types import LongType, NestedField

from shiftsync.destinations.base import LoadMode, LoadSpec
from shiftsync.destinations.delta import DeltaDestination, DeltaSettings
from shiftsync.destinations.delta.sink import DeltaSink, FileStats
from shiftsync.destinations.delta.sink import is_load_file as is_delta_file
from shiftsync.destinations.file_sink import (
    FileSink,
    check_writer_name,
    new_token,
    token_mark,
    writer_uuid,
)
from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings
from shiftsync.destinations.iceberg.sink import IcebergSink, data_folder
from shiftsync.destinations.iceberg.sink import is_load_file as is_iceberg_file
from shiftsync.destinations.parquet_files import PartSink
from shiftsync.executors.ray_files import who_writes

SCHEMA = pa.schema([pa.field("id", pa.int64())])
SPEC = LoadSpec("t", SCHEMA, LoadMode.REPLACE)
METADATA = new_table_metadata(
    Schema(NestedField(1, "id", LongType())),
    UNPARTITIONED_PARTITION_SPEC,
    UNSORTED_SORT_ORDER,
    "file:///wh/ns.db/t",
    {},
)
TOKEN = "0123456789abcdef01234567"


def sinks() -> list[FileSink]:
    """One sink of each destination, typed as the protocol ray_files.py takes."""
    return [
        PartSink("/lake/t", "v000002-0a1b2c3d", SPEC, SCHEMA, SCHEMA, 10),
        IcebergSink(METADATA, TOKEN, SPEC, SCHEMA, SCHEMA, SCHEMA, 1024),
        DeltaSink("/delta/t", TOKEN, SPEC, SCHEMA, SCHEMA, SCHEMA, 1024),
    ]


@pytest.mark.parametrize("sink", sinks(), ids=["parquet", "iceberg", "delta"])
def test_every_sink_is_written_by_the_workers_and_refuses_a_bad_writer_name(
    sink: FileSink,
) -> None:
    assert who_writes(on_cluster=True, sink=sink, hashed=False) == "workers"
    assert not sink.in_s3
    for name in ("", ".", "..", "a/b", "a\\b"):
        with pytest.raises(ValueError, match="is not a writer name"):
            sink.writer(name)


def test_writer_names_are_one_plain_path_segment() -> None:
    check_writer_name("w0003")
    for name in ("", ".", "..", "w/1", "..\\w"):
        with pytest.raises(ValueError, match="is not a writer name"):
            check_writer_name(name)


def test_each_writer_of_a_load_has_its_own_uuid_marked_with_the_loads_token() -> None:
    token = new_token()
    assert len(token) == 24
    assert new_token() != token
    ids = {writer_uuid(token, f"w{i:04d}") for i in range(200)}
    assert len(ids) == 200
    for one in ids:
        assert token_mark(token) in f"00000-0-{one}.parquet"
        assert token_mark(new_token()) not in f"00000-0-{one}.parquet"
    assert writer_uuid(token, "w0001") == writer_uuid(token, "w0001")
    assert isinstance(writer_uuid(token, "w0001"), uuid.UUID)


def test_an_iceberg_loads_files_are_named_in_the_tables_data_folder() -> None:
    folder = data_folder(METADATA)
    assert folder == "file:///wh/ns.db/t/data"
    name = f"00000-3-{writer_uuid(TOKEN, 'w0002')}.parquet"
    assert is_iceberg_file(f"{folder}/{name}", folder, TOKEN)
    assert not is_iceberg_file(f"{folder}/sub/{name}", folder, TOKEN)
    assert not is_iceberg_file(f"file:///elsewhere/{name}", folder, TOKEN)
    assert not is_iceberg_file(f"{folder}/00000-3-{uuid.uuid4()}.parquet", folder, TOKEN)
    assert not is_iceberg_file(f"{folder}/{name}.tmp", folder, TOKEN)


def test_a_delta_loads_files_are_named_as_delta_rs_names_them() -> None:
    name = f"part-00001-{writer_uuid(TOKEN, 'w0000')}-c000.snappy.parquet"
    assert is_delta_file(name, TOKEN)
    assert not is_delta_file(f"_delta_log/{name}", TOKEN)
    assert not is_delta_file(f"../{name}", TOKEN)
    assert not is_delta_file(f"part-00001-{uuid.uuid4()}-c000.snappy.parquet", TOKEN)
    assert not is_delta_file(name.replace("snappy", "zstd"), TOKEN)


def stats_of(*batches: pa.RecordBatch) -> dict[str, object]:
    stats = FileStats(batches[0].schema)
    for batch in batches:
        stats.add(batch)
    loaded: dict[str, object] = json.loads(stats.to_json())
    return loaded


def test_delta_statistics_hold_exact_bounds_over_every_batch_of_a_file() -> None:
    first = pa.record_batch(
        {
            "id": pa.array([5, None, 3], pa.int32()),
            "day": pa.array([dt.date(2021, 5, 1), None, None]),
            "name": pa.array(["b", "é", None]),
        }
    )
    second = pa.record_batch(
        {
            "id": pa.array([9, -2, None], pa.int32()),
            "day": pa.array([dt.date(2020, 1, 2), dt.date(2022, 12, 31), None]),
            "name": pa.array(["a", None, "c"]),
        }
    )
    assert stats_of(first, second) == {
        "numRecords": 6,
        "minValues": {"id": -2, "day": "2020-01-02", "name": "a"},
        "maxValues": {"id": 9, "day": "2022-12-31", "name": "é"},
        "nullCount": {"id": 2, "day": 3, "name": 2},
    }


def test_delta_statistics_leave_out_bounds_that_would_not_be_exact() -> None:
    batch = pa.record_batch(
        {
            "price": pa.array([1.5, float("nan")]),
            "amount": pa.array([1, 2], pa.decimal128(38, 2)),
            "at": pa.array([dt.datetime(2020, 1, 1, 0, 0, 0, 123456)] * 2, pa.timestamp("us")),
            "flag": pa.array([True, False]),
            "long": pa.array(["x" * 33, "a"]),
            "empty": pa.array([None, None], pa.int64()),
        }
    )
    stats = stats_of(batch)
    assert stats["minValues"] == stats["maxValues"] == {}
    assert stats["nullCount"] == {
        "price": 0,
        "amount": 0,
        "at": 0,
        "flag": 0,
        "long": 0,
        "empty": 2,
    }
    # A later batch with short strings does not bring the bound back for the file.
    long_then_short = stats_of(
        pa.record_batch({"s": pa.array(["y" * 40])}), pa.record_batch({"s": pa.array(["a"])})
    )
    assert long_then_short["minValues"] == {}


@pytest.mark.parametrize(
    ("warehouse", "as_connection", "properties", "expected"),
    [
        ("s3://lake/wh", True, {}, True),
        ("s3://lake/wh", False, {}, False),  # written as another identity: the driver's
        ("s3://lake/wh", True, {"s3.endpoint": "http://elsewhere"}, False),  # workers lack it
        ("/data/wh", False, {}, False),  # not S3: a local or shared disk, no role needed
    ],
)
def test_the_workers_write_an_iceberg_warehouse_in_s3_only_as_the_connections_role(
    warehouse: str, as_connection: bool, properties: dict[str, str], expected: bool
) -> None:
    settings = IcebergSettings(
        "sql", warehouse, uri="sqlite:///c.db", properties=properties, as_connection=as_connection
    )
    assert IcebergDestination(settings).workers_reach_s3() is expected


@pytest.mark.parametrize(
    ("root", "as_connection", "expected"),
    [
        ("s3://lake/delta", True, True),
        ("s3://lake/delta", False, False),  # written as another identity: the driver's
        ("/data/delta", False, False),  # not S3: a local or shared disk, no role needed
    ],
)
def test_the_workers_write_a_delta_root_in_s3_only_as_the_connections_role(
    root: str, as_connection: bool, expected: bool
) -> None:
    settings = DeltaSettings(root, locking="conditional_put", as_connection=as_connection)
    assert DeltaDestination(settings).workers_reach_s3() is expected
