"""DuckDB's memory limit: from the configuration, sized for the machine by default, and an
out-of-memory error that names the limit instead of blaming a file lock."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from shiftsync.config import DuckDBDestinationConfig
from shiftsync.destinations.duckdb import (
    COMMIT_MEMORY_LIMIT,
    DuckDBDestination,
    default_memory_limit,
)
from shiftsync.destinations.registry import DestinationContext, create_destination
from shiftsync.errors import DestinationError


def test_the_default_is_a_quarter_of_the_machine_and_never_below_the_commit_floor() -> None:
    assert default_memory_limit() >= COMMIT_MEMORY_LIMIT
    assert DuckDBDestination(Path("x.duckdb")).memory_limit == default_memory_limit()
    assert DuckDBDestination(Path("x.duckdb"), memory_limit=2**20).memory_limit == (
        COMMIT_MEMORY_LIMIT
    )


def test_the_configured_limit_is_the_databases(tmp_path: Path) -> None:
    config = DuckDBDestinationConfig.model_validate({"type": "duckdb", "memory_limit": "1GiB"})
    destination = create_destination(config, DestinationContext(folder=tmp_path))
    assert isinstance(destination, DuckDBDestination)
    destination.check()
    try:
        cursor = destination._cursor()
        (setting,) = cursor.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
        cursor.close()
    finally:
        destination.close()
    assert setting in ("1.0 GiB", "1024.0 MiB")


def test_out_of_memory_names_the_limit_not_a_file_lock(tmp_path: Path) -> None:
    destination = DuckDBDestination(tmp_path / "o.duckdb", memory_limit=300 * 2**20)
    with (
        pytest.raises(DestinationError) as caught,
        destination.errors("profiling table 'wide'"),
    ):
        raise duckdb.OutOfMemoryException("failed to allocate data of size 32.0 KiB")
    assert "ran out of memory (memory_limit 300MiB)" in str(caught.value)
    assert caught.value.fix is not None
    assert "memory_limit" in caught.value.fix
    assert "opened by another program" not in caught.value.fix


def test_a_merge_that_must_widen_a_key_column_is_refused_with_a_full_refresh_fix(
    tmp_path: Path,
) -> None:
    """DuckDB cannot change a PRIMARY KEY column's type; a replace rebuilds the table."""
    import pyarrow as pa

    from shiftsync.destinations.base import LoadMode, LoadSpec

    destination = DuckDBDestination(tmp_path / "o.duckdb")
    narrow = pa.schema([pa.field("id", pa.int16()), pa.field("v", pa.string())])
    wide = pa.schema([pa.field("id", pa.int32()), pa.field("v", pa.string())])
    try:
        first = destination.start_load(LoadSpec("t", narrow, LoadMode.REPLACE, table_key=("id",)))
        first.write(pa.RecordBatch.from_pylist([{"id": 1, "v": "a"}], schema=narrow))
        first.commit(None)
        merge = LoadSpec("t", wide, LoadMode.MERGE, ("id",), table_key=("id",))
        with pytest.raises(DestinationError, match="key column 'id' must be widened") as caught:
            destination.start_load(merge)
        assert caught.value.fix is not None
        assert "--full-refresh" in caught.value.fix
        again = destination.start_load(LoadSpec("t", wide, LoadMode.REPLACE, table_key=("id",)))
        again.write(pa.RecordBatch.from_pylist([{"id": 70000, "v": "b"}], schema=wide))
        again.commit(None)
        assert destination.read_table("t").to_pylist() == [{"id": 70000, "v": "b"}]
    finally:
        destination.close()
