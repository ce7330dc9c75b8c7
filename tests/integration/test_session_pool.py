"""A run reuses its Data API sessions: each table's snapshot begins in a session an earlier
table's transaction left (its SessionId), so a run holds at most `concurrency` sessions, not
one per table; a pooled session that expired meanwhile is replaced by a new one.

Sessions are counted on the stand-in's own registry (what ListSessions lists), and expired by
its own rule (idle past the keep-alive).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shiftsync.api import run_sync
from shiftsync.engine.runs import RunRecord
from shiftsync.local.data_api import sessions as redshift_data_sessions
from shiftsync.local.data_api.sessions import SessionRegistry
from shiftsync.local.data_api.statements import Statement
from shiftsync.local.standin import StandIn
from tests.support_sync import Stand


@pytest.fixture
def registry(standin: StandIn) -> SessionRegistry:
    found = redshift_data_sessions.active_registry()
    assert found is not None
    return found


@pytest.fixture
def expire_first_session(registry: SessionRegistry) -> Iterator[list[str]]:
    """The first session whose transaction's COMMIT ends expires at once (as if the run had
    paused past its keep-alive); the ids of the sessions expired."""
    expired: list[str] = []

    def hook(statement: Statement) -> None:
        session = registry.sessions.get(statement.session_id or "")
        if session is None or statement.query_string.strip().upper() != "COMMIT" or expired:
            return
        session.idle_since = registry.clock() - session.keep_alive_seconds
        if registry.expire():
            expired.append(session.id)

    registry.engine.finished_hooks.append(hook)
    try:
        yield expired
    finally:
        registry.engine.finished_hooks.remove(hook)


def _sync_copies(stand: Stand, count: int, concurrency: int) -> RunRecord:
    """Sync `count` fresh copies of `category` into DuckDB with `concurrency` workers."""
    tables = [f"public.{stand.copy('category', 'pool')}" for _ in range(count)]
    workspace = stand.workspace(stand.destination("duckdb"), tables, concurrency=concurrency)
    record = run_sync("main", workspace=workspace, raise_on_failure=False)
    assert record.status == "ok", [t.error for t in record.tables]
    return record


def test_a_run_of_12_tables_at_concurrency_2_holds_at_most_2_sessions(
    stand: Stand, registry: SessionRegistry
) -> None:
    before = set(registry.sessions)

    record = _sync_copies(stand, 12, concurrency=2)

    assert len(record.tables) == 12
    opened = set(registry.sessions) - before
    # One session per table without the pool: 12 left open for 15 minutes each.
    assert 1 <= len(opened) <= 2, len(opened)
    # Both are still open (idle until their keep-alive ends), as ListSessions shows them.
    assert not any(registry.sessions[s].closed for s in opened)


def test_an_expired_pooled_session_is_replaced_by_a_new_one(
    stand: Stand, registry: SessionRegistry, expire_first_session: list[str]
) -> None:
    before = set(registry.sessions)

    record = _sync_copies(stand, 3, concurrency=1)

    for table in record.tables:
        assert table.verification is not None
        assert table.verification["status"] == "ok"
    opened = set(registry.sessions) - before
    # The first table's session expired in the pool: the second table began in a new one,
    # which the third table reused (without the pool, 3 sessions; without the replacement,
    # the second table fails on the expired session).
    (expired,) = expire_first_session
    assert expired in opened
    assert len(opened) == 2
