"""A run reuses its Data API sessions: each table's snapshot begins in a session an earlier
table's transaction left (its SessionId), so a run holds at most `concurrency` sessions, not
one per table; a pooled session that expired meanwhile is replaced by a new one.

Sessions are counted on the stand-in's own registry (what ListSessions lists), and expired by
its own rule (idle past the keep-alive).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shiftsync.api import run_sync
from shiftsync.local.data_api import sessions as redshift_data_sessions
from shiftsync.local.data_api.sessions import SessionRegistry
from shiftsync.local.data_api.statements import Statement
from shiftsync.local.postgres import TempPostgres
from shiftsync.local.standin import StandIn, StandInInfo
from tests.integration.test_sync import destination_config, make_workspace


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


def _tables(copies: Callable[[str, str], str], count: int) -> list[str]:
    return [copies("category", "pool") for _ in range(count)]


def test_a_run_of_12_tables_at_concurrency_2_holds_at_most_2_sessions(
    tmp_path: Path,
    info: StandInInfo,
    postgres: TempPostgres,
    registry: SessionRegistry,
    copies: Callable[[str, str], str],
) -> None:
    tables = _tables(copies, 12)
    workspace = make_workspace(
        tmp_path / "ws",
        info,
        destination_config("duckdb", tmp_path, postgres),
        [f"public.{t}" for t in tables],
        concurrency=2,
    )
    before = set(registry.sessions)

    record = run_sync("main", workspace=workspace, raise_on_failure=False)

    assert record.status == "ok", [t.error for t in record.tables]
    assert len(record.tables) == 12
    opened = set(registry.sessions) - before
    # One session per table without the pool: 12 left open for 15 minutes each.
    assert 1 <= len(opened) <= 2, len(opened)
    # Both are still open (idle until their keep-alive ends), as ListSessions shows them.
    assert not any(registry.sessions[s].closed for s in opened)


def test_an_expired_pooled_session_is_replaced_by_a_new_one(
    tmp_path: Path,
    info: StandInInfo,
    postgres: TempPostgres,
    registry: SessionRegistry,
    copies: Callable[[str, str], str],
    expire_first_session: list[str],
) -> None:
    tables = _tables(copies, 3)
    workspace = make_workspace(
        tmp_path / "ws",
        info,
        destination_config("duckdb", tmp_path, postgres),
        [f"public.{t}" for t in tables],
        concurrency=1,
    )
    before = set(registry.sessions)

    record = run_sync("main", workspace=workspace, raise_on_failure=False)

    assert record.status == "ok", [t.error for t in record.tables]
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
