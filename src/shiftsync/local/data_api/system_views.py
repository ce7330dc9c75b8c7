"""SYS_QUERY_HISTORY and SYS_SERVERLESS_USAGE, filled from the stand-in's own statement timings.

Columns and visibility as AWS documents them (Database Developer Guide, SYS_QUERY_HISTORY and
SYS_SERVERLESS_USAGE):
- SYS_QUERY_HISTORY: one row per user query, times in microseconds; every user sees only
  their own rows, superusers all of them. `query_id` is DescribeStatement's RedshiftQueryId.
- SYS_SERVERLESS_USAGE: per minute of activity, RPU-seconds consumed (`compute_seconds`) and
  charged (`charged_seconds`); visible only to superusers, so the role's database user gets
  `permission denied` (the stricter reading of "visible only to superusers").

Both are tables in the flavour's schema (on the search_path, hidden from the catalog), which
the stand-in fills just before a statement that names one of them runs: the rows of every
statement that had ended by then. The workgroup's capacity is `BASE_RPU` (Serverless's default
base capacity); a minute with any statement running is charged at least 60 seconds of it
(Serverless bills a minimum of 60 seconds when the workgroup works).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

import psycopg

from shiftsync.local.data_api.statements import DataApiEngine, Statement
from shiftsync.local.dialect import sqltext
from shiftsync.local.dialect.flavour import FLAVOUR_SCHEMA

BASE_RPU: Final = 128.0
_NAMES: Final = ("sys_query_history", "sys_serverless_usage")
_QUERY_TYPES: Final = {
    "SELECT": "SELECT",
    "WITH": "SELECT",
    "VALUES": "SELECT",
    "INSERT": "INSERT",
    "UPDATE": "UPDATE",
    "DELETE": "DELETE",
    "UNLOAD": "UNLOAD",
    "COPY": "COPY",
    "CREATE": "DDL",
    "ALTER": "DDL",
    "DROP": "DDL",
    "BEGIN": "UTILITY",
    "START": "UTILITY",
    "COMMIT": "UTILITY",
    "END": "UTILITY",
    "ROLLBACK": "UTILITY",
    "SET": "UTILITY",
}
_STATUS: Final = {"FINISHED": "success", "FAILED": "failed", "ABORTED": "canceled"}

# Every name below is FLAVOUR_SCHEMA (rs_catalog) or a fixed identifier.
INSTALL_SQL: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS rs_catalog.stand_in_query_history (
        user_id integer, query_id bigint PRIMARY KEY, query_label character(320),
        transaction_id bigint, session_id integer, database_name character(128),
        query_type character(32), status character(10), result_cache_hit boolean,
        start_time timestamp, end_time timestamp, elapsed_time bigint, queue_time bigint,
        execution_time bigint, error_message character(512), returned_rows bigint,
        returned_bytes bigint, query_text character(4000), redshift_version character(256),
        compute_type character(32), compile_time bigint, planning_time bigint,
        lock_wait_time bigint)""",
    """CREATE OR REPLACE VIEW rs_catalog.sys_query_history AS
        SELECT * FROM rs_catalog.stand_in_query_history
        WHERE user_id = (SELECT usesysid FROM pg_user WHERE usename = current_user)
           OR (SELECT usesuper FROM pg_user WHERE usename = current_user)""",
    """CREATE TABLE IF NOT EXISTS rs_catalog.sys_serverless_usage (
        start_time timestamp PRIMARY KEY, end_time timestamp,
        compute_seconds double precision, compute_capacity double precision,
        data_storage integer, cross_region_transferred_data integer, charged_seconds integer)""",
    "REVOKE ALL ON rs_catalog.stand_in_query_history FROM PUBLIC",
    "GRANT SELECT ON rs_catalog.sys_query_history TO PUBLIC",
    "REVOKE ALL ON rs_catalog.sys_serverless_usage FROM PUBLIC",
)


def install(conn: psycopg.Connection[Any]) -> None:
    """Create the views in a database that has the flavour (after flavour.install_flavour)."""
    assert FLAVOUR_SCHEMA == "rs_catalog"
    for statement in INSTALL_SQL:
        conn.execute(statement.encode())


def names_a_view(text: str) -> bool:
    lowered = text.lower()
    return any(name in lowered for name in _NAMES)


def history_row(statement: Statement, user_id: int) -> tuple[Any, ...]:
    """SYS_QUERY_HISTORY's row of an ended statement (times in microseconds)."""
    created = statement.created_at
    started = statement.started_at or created
    ended = statement.finished_at or started
    queue = max(0, round((started - created) * 1e6))
    execution = max(0, statement.duration_ns // 1000)
    keyword = sqltext.first_keyword(statement.query_string)
    return (
        user_id,
        statement.redshift_query_id,
        statement.statement_name or "default",
        statement.redshift_query_id,
        statement.redshift_pid,
        statement.database,
        _QUERY_TYPES.get(keyword, "OTHER"),
        _STATUS.get(statement.status, "running"),
        False,
        _utc(started),
        _utc(ended),
        queue + execution,
        queue,
        execution,
        (statement.error or "")[:512],
        max(statement.result_rows, 0),
        max(statement.result_size, 0),
        statement.query_string[:4000],
        "stand-in",
        "primary",
        0,
        0,
        0,
    )


def usage_rows(statements: Iterable[Statement]) -> list[tuple[Any, ...]]:
    """SYS_SERVERLESS_USAGE's rows: per minute with statements running, RPU-seconds used
    (seconds of statements × BASE_RPU) and charged (at least 60 s of BASE_RPU)."""
    busy: dict[int, float] = {}
    for statement in statements:
        start = statement.started_at
        end = statement.finished_at
        if start is None or end is None or end < start:
            continue
        minute = int(start // 60)
        while minute * 60 < end:
            overlap = min(end, (minute + 1) * 60) - max(start, minute * 60)
            busy[minute] = busy.get(minute, 0.0) + max(overlap, 0.0)
            minute += 1
    rows = []
    for minute, seconds in sorted(busy.items()):
        charged = max(60, math.ceil(min(seconds, 60.0))) * BASE_RPU
        rows.append(
            (
                _utc(minute * 60),
                _utc(minute * 60 + 60),
                seconds * BASE_RPU,
                BASE_RPU,
                0,
                0,
                int(charged),
            )
        )
    return rows


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


class SystemViews:
    """Fills the views before a statement that reads them (the engine's prepare hook).

    The history gets each ended statement once, as it is first asked for after its end (a
    finished statement's row never changes; AWS keeps its rows after the Data API's result
    has expired, as this does): refilling it whole each time cost every run of a long test
    session more than the one before. Usage rows are per minute and change as statements end,
    so that small table is refilled whole."""

    def __init__(self, engine: DataApiEngine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._recorded: set[str] = set()
        engine.prepare_hooks.append(self.before)

    def before(self, statement: Statement) -> None:
        if not names_a_view(statement.query_string):
            return
        ended = [
            s
            for s in list(self.engine.statements.values())
            # A batch is its sub-statements (its own RedshiftQueryId is 0).
            if s.finished_at is not None and not s.is_batch
        ]
        with self._lock, psycopg.connect(self.engine.pg.dsn(statement.database)) as admin:
            new = [
                s for s in ended if s.database == statement.database and s.id not in self._recorded
            ]
            users: dict[str, int] = dict(
                admin.execute("SELECT usename, usesysid FROM pg_user").fetchall()
            )
            rows = [history_row(s, int(users.get(s.db_user, 0))) for s in new]
            with admin.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO rs_catalog.stand_in_query_history VALUES ("
                    + ", ".join(["%s"] * 23)
                    + ")",
                    rows,
                )
                # DELETE, not TRUNCATE: a session's open transaction that read the views holds
                # a lock TRUNCATE would wait on forever (that session waits on this statement),
                # and keeps seeing the rows of its snapshot.
                cursor.execute("DELETE FROM rs_catalog.sys_serverless_usage")
                cursor.executemany(
                    "INSERT INTO rs_catalog.sys_serverless_usage VALUES (%s, %s, %s, %s, %s, "
                    "%s, %s)",
                    usage_rows(ended),
                )
            self._recorded.update(s.id for s in new)


__all__ = ["BASE_RPU", "INSTALL_SQL", "SystemViews", "history_row", "install", "usage_rows"]
