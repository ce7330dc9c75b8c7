"""The lake stage (a local DuckDB file): sorted and deduplicated reads in bounded memory."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from shiftsync.destinations.lake import stage as stage_module
from shiftsync.destinations.lake.stage import LakeStage

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
ROWS = 300_000


def _staged() -> LakeStage:
    stage = LakeStage(SCHEMA)
    for start in range(0, ROWS, 50_000):
        ids = [(i * 7919) % ROWS for i in range(start, start + 50_000)]  # a shuffle of 0..ROWS
        stage.add(pa.RecordBatch.from_pydict({"id": ids, "v": [f"row {i}" for i in ids]}, SCHEMA))
    return stage


def test_a_sort_that_outgrows_the_pool_runs_again_with_a_larger_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 2 MB cannot hold this sort's merge; 10^7 rows outgrew the default pool the same way.
    monkeypatch.setattr(stage_module, "QUERY_MEMORY_MB", 2)
    stage = _staged()
    try:
        ids = [i for chunk in stage.chunks(sort_key=("id",), rows=65_536) for i in chunk["id"]]
        assert [i.as_py() for i in ids] == list(range(ROWS))
        assert stage.keys(("id",)) == ROWS
        # The stage is still there after the export closed DuckDB: read again, deduplicated.
        again = stage.chunks(sort_key=("id",), latest_per=("id",), rows=100_000)
        assert sum(chunk.num_rows for chunk in again) == ROWS
    finally:
        stage.close()


def test_a_query_that_outgrows_the_largest_pool_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage_module, "QUERY_MEMORY_MB", 2)
    monkeypatch.setattr(stage_module, "MAX_QUERY_MEMORY_MB", 2)
    stage = _staged()
    try:
        with pytest.raises(duckdb.OutOfMemoryException):
            list(stage.chunks(sort_key=("id",), rows=65_536))
    finally:
        stage.close()
