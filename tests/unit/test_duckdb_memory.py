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
