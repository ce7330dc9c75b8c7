"""Finding the ranged-read checkpoint of the last run that had a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiftsync.engine.range_resume import previous_progress
from shiftsync.engine.runs import RunRecord, RunStore, TableRun, TableStatus

PROGRESS: dict[str, Any] = {"version": 1, "area": "shiftsync/ranges/public.t/abc/"}


def save_run(
    store: RunStore,
    run_id: str,
    status: TableStatus,
    ranges: dict[str, Any] | None,
    sync: str = "main",
) -> None:
    record = RunRecord(run_id=run_id, sync=sync, started_at=f"2024-01-01T00:00:0{run_id[-1]}.000Z")
    record.tables = [TableRun("public.t", "t", "full_refresh", status=status, ranges=ranges)]
    record.status = "failed"
    store.save(record)


def test_the_last_unfinished_run_of_the_table_is_resumed(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    save_run(store, "20240101T000000Z-aaaaa1", "failed", PROGRESS)
    assert previous_progress(store, "main", "current", "public.t") == PROGRESS
    assert previous_progress(store, "main", "current", "public.other") is None
    assert previous_progress(store, "other", "current", "public.t") is None
    assert previous_progress(None, "main", "current", "public.t") is None


def test_a_committed_table_is_not_resumed(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    save_run(store, "20240101T000000Z-aaaaa1", "failed", PROGRESS)
    save_run(store, "20240101T000000Z-aaaaa2", "ok", None)
    assert previous_progress(store, "main", "current", "public.t") is None


def test_a_run_that_never_started_the_table_is_looked_past(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    save_run(store, "20240101T000000Z-aaaaa1", "running", PROGRESS)
    save_run(store, "20240101T000000Z-aaaaa2", "planned", None)
    assert previous_progress(store, "main", "current", "public.t") == PROGRESS
    # The current run itself is never its own checkpoint.
    assert previous_progress(store, "main", "20240101T000000Z-aaaaa1", "public.t") is None
