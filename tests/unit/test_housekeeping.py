"""Closing the records of killed runs: once, not on every later run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from shiftsync.engine.housekeeping import clean_interrupted_runs
from shiftsync.engine.runs import RunRecord, RunStore


def dead_pid() -> int:
    """The pid of a process that has ended (reaped, so it cannot be a zombie)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


class NothingStaged:
    """A source whose runs staged nothing: only the records are cleaned. Counts its calls."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def delete_run_staging(self, run_id: str) -> int:
        self.asked.append(run_id)
        return 0

    def settle_statements(self, statement_ids: list[str]) -> list[str]:
        raise AssertionError("a run without a statement journal has nothing to settle")


def context(store: RunStore) -> Any:
    return SimpleNamespace(
        store=store, source=NothingStaged(), sync_name="main", record=SimpleNamespace(notes=[])
    )


def test_a_killed_run_is_closed_once(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    killed = RunRecord(
        run_id="20240101T000000Z-aaaaaa",
        sync="main",
        started_at="2024-01-01T00:00:00.000Z",
        pid=dead_pid(),
    )
    store.save(killed)
    assert [r["status"] for r in store.list()] == ["interrupted"]

    # Each closing's clock reads a later time: a second closing would change the end.
    times = iter(["2024-01-01T01:00:00.000Z", "2024-01-01T02:00:00.000Z"])
    first = context(store)
    clean_interrupted_runs(first, clock=lambda: next(times))
    assert first.source.asked == [killed.run_id]  # its staging is cleaned
    closed = store.load(killed.run_id)
    assert closed.status == "interrupted"
    assert closed.finished_at == "2024-01-01T01:00:00.000Z"
    assert "interrupted" in (closed.error or "")

    second = context(store)
    clean_interrupted_runs(second, clock=lambda: next(times))
    assert store.load(killed.run_id).finished_at == closed.finished_at
    assert second.source.asked == []
