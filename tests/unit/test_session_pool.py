"""The run's pool of Data API sessions (redshift/snapshot.py): which idle session a new
transaction takes."""

from __future__ import annotations

from shiftsync.redshift.snapshot import PooledSession, SessionPool


def test_an_empty_pool_gives_nothing() -> None:
    assert SessionPool().take(900) is None


def test_the_most_recently_returned_session_is_taken_first_and_only_once() -> None:
    pool = SessionPool()
    older, newer = PooledSession("s-old", "c-1", 900), PooledSession("s-new", "c-2", 900)
    pool.give(older)
    pool.give(newer)
    assert pool.take(900) == newer
    assert pool.take(900) == older
    assert pool.take(900) is None


def test_a_session_is_taken_only_for_the_keep_alive_it_was_opened_with() -> None:
    pool = SessionPool()
    short = PooledSession("s-short", "c-1", 60)
    pool.give(short)
    assert pool.take(900) is None
    assert pool.take(60) == short
