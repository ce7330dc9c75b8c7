"""The statement journal: what a killed run left running, read back by the next run."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from shiftsync.engine.housekeeping import clean_interrupted_runs
from shiftsync.engine.runs import RunRecord, RunStore
from shiftsync.engine.statement_journal import (
    StatementJournal,
    journal_path,
    open_statements,
    parse_open,
)
from tests.unit.test_housekeeping import dead_pid

A = "0f8fad5b-d9cb-469f-a165-70867728950e"
B = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def test_open_ids_are_those_submitted_and_not_ended() -> None:
    assert parse_open(f"+{A}\n+{B}\n-{A}\n") == [B]
    assert parse_open(f"+{A}\n-{A}\n") == []
    assert parse_open("") == []


def test_damaged_lines_are_skipped() -> None:
    # A kill can cut the last line short; other text is not an id.
    assert parse_open(f"+{A}\n+7c9e6679-74") == [A]
    assert parse_open(f"+{A}\n+{B}") == [A]  # no newline yet: not known to be whole
    assert parse_open(f"+{A}\n+../../etc\n*{B}\n+{B[:-1]}\n\n") == [A]
    assert parse_open(f"+{A}:1\n") == [f"{A}:1"]


def test_the_journal_is_owner_only_and_removed_once_all_ended(tmp_path: Path) -> None:
    journal = StatementJournal(tmp_path, "run1")
    journal.submitted(A)
    journal.submitted(B)
    path = journal_path(tmp_path, "run1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert open_statements(tmp_path, "run1") == [A, B]
    journal.ended(A)
    journal.close()
    assert open_statements(tmp_path, "run1") == [B]  # kept: B may still run
    journal.ended(B)
    journal.close()
    assert not path.exists()
    assert open_statements(tmp_path, "run1") == []


class StillRunning:
    """A source whose statements cannot be stopped (the Data API is unreachable)."""

    def __init__(self, unsettled: bool) -> None:
        self.unsettled = unsettled
        self.settled: list[list[str]] = []
        self.deleted: list[str] = []

    def settle_statements(self, statement_ids: list[str]) -> list[str]:
        self.settled.append(list(statement_ids))
        return list(statement_ids) if self.unsettled else []

    def delete_run_staging(self, run_id: str) -> int:
        self.deleted.append(run_id)
        return 0


def killed_run(store: RunStore) -> RunRecord:
    killed = RunRecord(
        run_id="20240101T000000Z-bbbbbb",
        sync="main",
        started_at="2024-01-01T00:00:00.000Z",
        pid=dead_pid(),
    )
    store.save(killed)
    StatementJournal(store.folder, killed.run_id).submitted(A)
    return killed


def context(store: RunStore, source: StillRunning) -> Any:
    return SimpleNamespace(
        store=store, source=source, sync_name="main", record=SimpleNamespace(notes=[])
    )


def test_staging_is_deleted_only_after_the_statements_stopped(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    killed = killed_run(store)

    stuck = context(store, StillRunning(unsettled=True))
    clean_interrupted_runs(stuck)
    assert stuck.source.settled == [[A]]
    assert stuck.source.deleted == []  # the UNLOAD could still write after a deletion
    assert "may still be running" in stuck.record.notes[0]
    assert store.load(killed.run_id).finished_at is None  # the next run tries again
    assert open_statements(store.folder, killed.run_id) == [A]

    settled = context(store, StillRunning(unsettled=False))
    clean_interrupted_runs(settled)
    assert settled.source.deleted == [killed.run_id]
    assert store.load(killed.run_id).finished_at is not None
    assert not journal_path(store.folder, killed.run_id).exists()


def test_sessions_opened_and_not_ended_are_listed(tmp_path: Path) -> None:
    from shiftsync.engine.statement_journal import StatementJournal, open_sessions

    journal = StatementJournal(tmp_path, "20240101T000000Z-abcdef")
    first, second = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"
    journal.session_opened(first)
    journal.session_opened(second)
    journal.session_ended(first)
    assert open_sessions(tmp_path, "20240101T000000Z-abcdef") == [second]
    journal.close()  # a session is still open: the next run needs the journal
    assert open_sessions(tmp_path, "20240101T000000Z-abcdef") == [second]
    journal.session_ended(second)
    journal.close()
    assert open_sessions(tmp_path, "20240101T000000Z-abcdef") == []
