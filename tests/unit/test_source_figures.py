"""SourceFigures: the source's profile of a read, queried once in a helper thread, in column
chunks, its error kept for the verification; PrefetchedQuery: a later step's statement sent
with the read (engine/source_figures.py)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

import pytest

from shiftsync.destinations.base import ColumnProfile, TableProfile
from shiftsync.engine.source_figures import PrefetchedQuery, SourceFigures
from shiftsync.engine.verify import PROFILE_CHUNK, ProfileColumn
from shiftsync.errors import StatementError, VerificationError
from shiftsync.redshift.data_api_results import Row
from shiftsync.redshift.types import Column


def columns(count: int) -> list[ProfileColumn]:
    return [ProfileColumn(Column(f"c{i}", "int4", nullable=True), f"c{i}") for i in range(count)]


class Recorder:
    """A profile_chunk that answers from fixed row counts and records its threads."""

    def __init__(self, rows: Sequence[int] = (5,), error: Exception | None = None) -> None:
        self.rows = list(rows)
        self.error = error
        self.chunks: list[int] = []
        self.threads: set[str] = set()
        self.joined = 0

    def __call__(self, chunk: Sequence[ProfileColumn]) -> TableProfile:
        self.threads.add(threading.current_thread().name)
        if self.error is not None:
            raise self.error
        rows = self.rows[len(self.chunks) % len(self.rows)]
        self.chunks.append(len(chunk))
        return TableProfile(rows, {c.target: ColumnProfile(rows, str(rows)) for c in chunk})

    @contextlib.contextmanager
    def join(self) -> Iterator[None]:
        self.joined += 1
        yield


def test_the_profile_runs_once_in_a_helper_thread_inside_the_joined_snapshot() -> None:
    recorder = Recorder()
    figures = SourceFigures("table public.t", columns(3), recorder, recorder.join)
    assert not figures.started
    figures.start()
    figures.start()
    figures.settle()
    profile = figures.result()
    assert profile.rows == 5
    assert sorted(profile.columns) == ["c0", "c1", "c2"]
    assert recorder.chunks == [3]
    assert recorder.joined == 1
    assert recorder.threads
    assert threading.current_thread().name not in recorder.threads


def test_a_wide_table_is_profiled_in_column_chunks_whose_row_counts_must_agree() -> None:
    recorder = Recorder()
    wide = columns(PROFILE_CHUNK + 1)
    figures = SourceFigures("table public.wide", wide, recorder, recorder.join)
    assert len(figures.result().columns) == PROFILE_CHUNK + 1
    assert recorder.chunks == [PROFILE_CHUNK, 1]
    moving = Recorder(rows=(5, 6))
    figures = SourceFigures("table public.wide", wide, moving, moving.join)
    figures.settle()  # the error is kept, not raised here
    with pytest.raises(VerificationError, match="row count changed"):
        figures.result()


def test_a_failed_profile_is_raised_by_result_only() -> None:
    failing = Recorder(error=StatementError("overflow", fix="none"))
    figures = SourceFigures("table public.t", columns(1), failing, failing.join)
    figures.settle()
    figures.abandon()
    with pytest.raises(StatementError, match="overflow"):
        figures.result()


def test_abandon_without_a_start_sends_nothing() -> None:
    recorder = Recorder()
    SourceFigures("table public.t", columns(2), recorder, recorder.join).abandon()
    assert recorder.chunks == []
    assert recorder.joined == 0


def test_no_column_still_compares_the_row_count() -> None:
    recorder = Recorder()
    profile = SourceFigures("table public.t", [], recorder, recorder.join).result()
    assert profile.rows == 5
    assert recorder.chunks == [0]


class Statements:
    """A query function that records what it was asked, failing `fail` times first."""

    def __init__(self, fail: int = 0) -> None:
        self.asked: list[str] = []
        self.fail = fail

    def __call__(self, sql: str) -> list[Row]:
        self.asked.append(sql)
        if self.fail:
            self.fail -= 1
            raise StatementError("refused", fix="none")
        return [(sql, len(self.asked))]


def test_a_prefetched_statement_answers_its_sql_once_and_passes_others_on() -> None:
    statements = Statements()
    prefetched = PrefetchedQuery("SELECT summary", statements, contextlib.nullcontext)
    prefetched.start()
    prefetched.settle()
    assert statements.asked == ["SELECT summary"]
    assert prefetched.query("SELECT summary") == [("SELECT summary", 1)]
    assert prefetched.query("SELECT buckets") == [("SELECT buckets", 2)]
    assert prefetched.query("SELECT summary") == [("SELECT summary", 3)]  # asked again: sent


def test_a_prefetched_statement_that_failed_is_sent_again_when_asked() -> None:
    statements = Statements(fail=1)
    prefetched = PrefetchedQuery("SELECT summary", statements, contextlib.nullcontext)
    prefetched.settle()
    assert prefetched.query("SELECT summary") == [("SELECT summary", 2)]


def test_a_prefetch_never_started_sends_its_sql_when_asked() -> None:
    statements = Statements()
    prefetched = PrefetchedQuery("SELECT summary", statements, contextlib.nullcontext)
    prefetched.abandon()
    assert statements.asked == []
    assert prefetched.query("SELECT summary") == [("SELECT summary", 1)]
