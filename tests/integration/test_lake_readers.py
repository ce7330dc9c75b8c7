"""Every type of the contract, written to Iceberg and Delta, read back by the formats' own
libraries (pyiceberg, deltalake) and by DuckDB.

DuckDB's `iceberg_scan` and `delta_scan` need its iceberg/delta extensions; the PyPI packages
(duckdb-extension-iceberg/-delta/-avro) stop at 1.5.5 and DuckDB 2.0.1 refuses them ("built
specifically for DuckDB version v1.5.5"), and no extension can be downloaded here. DuckDB
reads the tables instead with `read_parquet` over the data files of the current snapshot
(Iceberg: the scan plan; Delta: the log's file list), which is the whole table: shiftsync
writes no delete files (merges are copy-on-write).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from shiftsync.destinations.base import LoadMode, LoadSpec
from shiftsync.destinations.delta import DeltaDestination, DeltaSettings
from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings
from shiftsync.destinations.lake.types import storage_schema, to_storage
from tests.integration.test_destination_contract import ALL_TYPES, all_types_batch, same


def _iceberg(tmp_path: Path) -> tuple[Any, Callable[[str], pa.Table], Callable[[str], list[str]]]:
    destination = IcebergDestination(
        IcebergSettings(
            "sql", warehouse=str(tmp_path / "wh"), uri=f"sqlite:///{tmp_path / 'cat.db'}"
        )
    )

    def native(target: str) -> pa.Table:
        return destination.catalog().load_table(destination.identifier(target)).scan().to_arrow()

    def files(target: str) -> list[str]:
        table = destination.catalog().load_table(destination.identifier(target))
        return [task.file.file_path for task in table.scan().plan_files()]

    return destination, native, files


def _delta(tmp_path: Path) -> tuple[Any, Callable[[str], pa.Table], Callable[[str], list[str]]]:
    destination = DeltaDestination(DeltaSettings(str(tmp_path / "delta")))

    def native(target: str) -> pa.Table:
        return DeltaTable(destination.uri(target)).to_pyarrow_table()

    def files(target: str) -> list[str]:
        # The log keeps paths URL-encoded (a space is %20); read_parquet wants file names.
        return [
            unquote(u.removeprefix("file://"))
            for u in DeltaTable(destination.uri(target)).file_uris()
        ]

    return destination, native, files


@pytest.mark.parametrize("flavor", ["iceberg", "delta"])
def test_every_type_reads_back_by_the_library_and_by_duckdb(tmp_path: Path, flavor: Any) -> None:
    destination, native, files = (_iceberg if flavor == "iceberg" else _delta)(tmp_path)
    sent = all_types_batch()
    spec = LoadSpec("All Types", ALL_TYPES, LoadMode.MERGE, primary_key=("id",))
    running = destination.start_load(spec)
    running.write(sent)
    running.commit({"cursor": "6"})

    stored = storage_schema("All Types", ALL_TYPES, flavor)
    expected = pa.Table.from_batches([to_storage(sent, stored)]).to_pylist()

    by_library = native("All Types").sort_by("id")
    relation = duckdb.sql(f"SELECT * FROM read_parquet({files('All Types')!r}) ORDER BY id")
    assert relation is not None
    by_duckdb = relation.to_arrow_table().to_pylist()
    for reader, got in (("library", by_library.to_pylist()), ("duckdb", by_duckdb)):
        assert len(got) == len(expected), reader
        for got_row, want_row in zip(got, expected, strict=True):
            for name, want in want_row.items():
                value = got_row[name]
                if hasattr(value, "tzinfo") and value.tzinfo is not None and want is not None:
                    value = value.astimezone(want.tzinfo)
                assert same(value, want) or value == want, (reader, name, value, want)
    destination.close()
