"""DELETE loads into Iceberg and Delta tables on disk: a large set of composite keys of mixed
types is deleted exactly, in one commit with the state, and a delete that matches nothing
still commits its state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from shiftsync.destinations.base import Destination, LoadMode, LoadSpec
from shiftsync.destinations.delta import DeltaDestination, DeltaSettings
from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings

ROWS = 60_000
KEY = ("region", "at", "n")
SCHEMA = pa.schema(
    [
        pa.field("region", pa.string()),
        pa.field("at", pa.timestamp("us", tz="UTC")),
        pa.field("n", pa.decimal128(12, 2)),
        pa.field("v", pa.int64()),
    ]
)
KEYS = pa.schema([SCHEMA.field(k) for k in KEY])
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _open(flavor: str, tmp_path: Path) -> Callable[[], Destination]:
    small = 256 * 1024  # several data files, so a delete rewrites some and keeps others
    if flavor == "iceberg":
        settings = IcebergSettings(
            "sql",
            warehouse=str(tmp_path / "wh"),
            uri=f"sqlite:///{tmp_path / 'cat.db'}",
            target_file_size_bytes=small,
        )
        return lambda: IcebergDestination(settings)
    return lambda: DeltaDestination(
        DeltaSettings(str(tmp_path / "delta"), target_file_size_bytes=small)
    )


def _rows(ids: range) -> pa.Table:
    return pa.table(
        {
            "region": [("a|1:b" if i % 2 else "a") for i in ids],
            "at": pa.array(
                [START + dt.timedelta(microseconds=i // 3) for i in ids], SCHEMA.field("at").type
            ),
            "n": pa.array([Decimal(i % 3) / 4 for i in ids], SCHEMA.field("n").type),
            "v": list(ids),
        },
        schema=SCHEMA,
    )


def _load(destination: Destination, mode: LoadMode, table: pa.Table, state: int) -> int:
    spec = LoadSpec("t", table.schema, mode, primary_key=KEY)
    running = destination.start_load(spec)
    for batch in table.to_batches(max_chunksize=10_000):
        running.write(batch)
    return running.commit({"run": state}).rows_written


@pytest.mark.parametrize("flavor", ["iceberg", "delta"])
def test_many_composite_keys_are_deleted_exactly_with_the_state(
    flavor: str, tmp_path: Path
) -> None:
    destination = _open(flavor, tmp_path)()
    _load(destination, LoadMode.REPLACE, _rows(range(ROWS)), 1)
    gone = range(0, ROWS, 3)  # 20,000 keys, in every data file
    keys = _rows(gone).select(list(KEY))
    assert _load(destination, LoadMode.DELETE, keys, 2) == len(gone)
    left = destination.read_table("t").column("v").to_pylist()
    assert sorted(left) == [i for i in range(ROWS) if i % 3]
    assert destination.read_state("t", "t") == {"run": 2}
    assert [f.name for f in destination.table_schema("t") or ()] == SCHEMA.names


@pytest.mark.parametrize("flavor", ["iceberg", "delta"])
def test_a_delete_that_matches_nothing_still_commits_its_state(flavor: str, tmp_path: Path) -> None:
    destination = _open(flavor, tmp_path)()
    _load(destination, LoadMode.REPLACE, _rows(range(100)), 1)
    _load(destination, LoadMode.DELETE, _rows(range(500, 510)).select(list(KEY)), 2)
    assert destination.read_table("t").num_rows == 100
    assert destination.read_state("t", "t") == {"run": 2}
