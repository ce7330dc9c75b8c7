"""The lake stage (a local DuckDB file, or sorted runs): sorted and deduplicated reads in bounded
memory."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from shiftsync.destinations.lake import runs as runs_module
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


# --- sorted runs (lake/runs.py): rows that come in key order skip DuckDB ---------------------

RUN_SCHEMA = pa.schema(
    [pa.field("k", pa.string()), pa.field("n", pa.int64()), pa.field("v", pa.int64())]
)


def _batch(rows: list[tuple[str | None, int, int]]) -> pa.RecordBatch:
    k, n, v = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.RecordBatch.from_pydict({"k": list(k), "n": list(n), "v": list(v)}, RUN_SCHEMA)


def _read(
    batches: list[pa.RecordBatch], runs_key: tuple[str, ...] | None
) -> tuple[list[dict[str, object]], bool]:
    """The rows `chunks` gives back, and whether the stage ended in DuckDB."""
    stage = LakeStage(RUN_SCHEMA, runs_key=runs_key)
    try:
        for batch in batches:
            stage.add(batch)
        rows = [
            row
            for chunk in stage.chunks(sort_key=("k", "n"), rows=1_000)
            for row in chunk.to_pylist()
        ]
        return rows, (stage_folder(stage) / "stage.duckdb").exists()
    finally:
        stage.close()


def stage_folder(stage: LakeStage) -> Path:
    return stage._folder_path()  # where the stage keeps its files


def _slice_runs(runs: int, per_run: int, batch_rows: int) -> list[pa.RecordBatch]:
    """`runs` runs in key order (as UNLOAD's slices give a sorted table), each cut in batches;
    keys interleave between runs, equal keys (k, n) within and across runs, a NULL k last."""
    batches = []
    for run in range(runs):
        rows: list[tuple[str | None, int, int]] = [
            (f"key {i // 3:05d}", i % 2, run * per_run + i) for i in range(run, per_run, 1)
        ]
        rows.sort(key=lambda r: (r[0] or "", r[1]))
        rows.append((None, 0, run))
        for start in range(0, len(rows), batch_rows):
            batches.append(_batch(rows[start : start + batch_rows]))
    return batches


def _expected(batches: list[pa.RecordBatch]) -> list[dict[str, object]]:
    rows = [row for batch in batches for row in batch.to_pylist()]
    # NULLs last; equal keys in the order they were added (a stable sort).
    return sorted(rows, key=lambda r: (r["k"] is None, r["k"] or "", r["n"]))


def _same_rows_in_key_order(
    rows: list[dict[str, object]], expected: list[dict[str, object]]
) -> bool:
    """The same rows, in the same key order; rows of equal keys in any order (DuckDB's sort
    does not keep the order they came in)."""
    keys = [(r["k"], r["n"]) for r in rows] == [(r["k"], r["n"]) for r in expected]
    return keys and sorted(map(repr, rows)) == sorted(map(repr, expected))


def test_rows_in_key_order_runs_come_back_merged_without_duckdb() -> None:
    batches = _slice_runs(runs=3, per_run=5_000, batch_rows=700)
    rows, in_duckdb = _read(batches, runs_key=("k", "n"))
    assert rows == _expected(batches)
    assert not in_duckdb
    # The same rows staged in DuckDB (the path of every other load) come back the same.
    in_duckdb_rows, staged_in_duckdb = _read(batches, runs_key=None)
    assert staged_in_duckdb
    assert _same_rows_in_key_order(in_duckdb_rows, rows)


def test_a_batch_out_of_order_is_sorted_into_a_run_of_its_own() -> None:
    # One batch spanning two runs of the source: its keys go down in the middle.
    ordered = _slice_runs(runs=2, per_run=2_000, batch_rows=10_000)
    spanning = pa.Table.from_batches(ordered).combine_chunks().to_batches()
    assert len(spanning) == 1
    rows, in_duckdb = _read(spanning, runs_key=("k", "n"))
    assert rows == _expected(spanning)
    assert not in_duckdb


def test_the_parts_of_two_slices_listed_in_turns_make_two_runs() -> None:
    # UNLOAD's manifest lists the parts of its slices in turns (slice 0 part 0, slice 1 part 0,
    # slice 0 part 1 …); each part continues its slice's run, whatever the number of parts.
    parts = runs_module.MAX_RUNS + 4
    blocks: list[list[tuple[str | None, int, int]]] = [
        [(f"key {b * 10 + i:06d}", 0, b) for i in range(10)] for b in range(parts * 4)
    ]
    slices = [[row for b in blocks[s::2] for row in b] for s in (0, 1)]
    per_part = len(slices[0]) // parts
    batches = [
        _batch(slices[s][p * per_part : (p + 1) * per_part]) for p in range(parts) for s in (0, 1)
    ]
    rows, in_duckdb = _read(batches, runs_key=("k", "n"))
    assert rows == _expected(batches)
    assert not in_duckdb


def test_more_runs_than_the_merge_takes_move_to_duckdb() -> None:
    batches = _slice_runs(runs=runs_module.MAX_RUNS + 1, per_run=300, batch_rows=1_000)
    rows, in_duckdb = _read(batches, runs_key=("k", "n"))
    assert _same_rows_in_key_order(rows, _expected(batches))
    assert in_duckdb


def test_a_merge_or_a_key_count_reads_the_runs_from_duckdb() -> None:
    batches = _slice_runs(runs=2, per_run=1_000, batch_rows=250)
    stage = LakeStage(RUN_SCHEMA, runs_key=("k", "n"))
    try:
        for batch in batches:
            stage.add(batch)
        # Deduplicated: the last added row of each key, which a merge keeps.
        latest = [
            row
            for chunk in stage.chunks(sort_key=("k", "n"), latest_per=("k", "n"), rows=1_000)
            for row in chunk.to_pylist()
        ]
        last: dict[tuple[object, object], dict[str, object]] = {}
        for row in (row for batch in batches for row in batch.to_pylist()):
            last[(row["k"], row["n"])] = row
        assert latest == _expected([pa.RecordBatch.from_pylist(list(last.values()), RUN_SCHEMA)])
        assert stage.keys(("k", "n")) == len(last)
    finally:
        stage.close()


def test_a_key_arrow_cannot_sort_is_staged_in_duckdb() -> None:
    schema = pa.schema([pa.field("i", pa.month_day_nano_interval()), pa.field("v", pa.int64())])
    intervals = [pa.scalar((m, 0, 0), pa.month_day_nano_interval()) for m in (3, 1, 2)]
    batch = pa.RecordBatch.from_arrays(
        [pa.array([x.as_py() for x in intervals], schema.field("i").type), pa.array([3, 1, 2])],
        schema=schema,
    )
    stage = LakeStage(schema, runs_key=("i",))
    try:
        stage.add(batch)
        rows = [r for chunk in stage.chunks(sort_key=("i",), rows=10) for r in chunk.to_pylist()]
        assert sorted(r["v"] for r in rows) == [1, 2, 3]
        assert (stage_folder(stage) / "stage.duckdb").exists()
    finally:
        stage.close()
