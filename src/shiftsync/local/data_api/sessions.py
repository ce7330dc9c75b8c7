"""Data API sessions: `SessionKeepAliveSeconds` opens one, `SessionId` runs statements in it.

As on Redshift, a session is one database connection: its statements run in order on that
connection, so `BEGIN` … `COMMIT` sent as separate ExecuteStatement calls form one transaction.
The connection runs at PostgreSQL's SERIALIZABLE level, which is snapshot isolation with
serialisability checks, as Redshift's transactions are: every statement of a transaction sees
the snapshot taken by its first statement, whatever commits meanwhile.

Rules (botocore's model, redshift-data 2019-12-20, and the Data API guide; the stricter
reading where AWS does not say, listed in docs/standin.md):
- SessionKeepAliveSeconds is 0–86400; the session stays open that long after each of its
  statements finishes, and no session lives longer than 24 hours (its running statement is
  then stopped);
- with SessionId, the request names neither WorkgroupName, ClusterIdentifier, Database,
  SecretArn, DbUser nor SessionKeepAliveSeconds: the session fixes them;
- one statement at a time: a statement sent while the session runs another is refused (the
  Data API does not queue inside a session);
- a session belongs to the IAM role that opened it; other roles do not find it;
- at most `max_sessions` (AWS: 500 per workgroup) open at once, else
  `ActiveSessionsExceededException`;
- an expired or closed session refuses statements; closing it rolls back an open transaction.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg

from shiftsync.local.data_api.request import api_error, validation_error
from shiftsync.local.data_api.statements import DataApiEngine, Statement

MAX_KEEP_ALIVE_SECONDS: Final = 86_400
MAX_SESSION_SECONDS: Final = 86_400
DEFAULT_MAX_SESSIONS: Final = 500
_SUBMITTING: Final = "(submitting)"
# What a request that names a session must leave out: the session fixes them.
_FIXED_BY_SESSION: Final = (
    "WorkgroupName",
    "ClusterIdentifier",
    "Database",
    "SecretArn",
    "DbUser",
    "SessionKeepAliveSeconds",
)


@dataclass
class Session:
    id: str
    owner_role: str
    owner_userid: str
    db_user: str
    database: str
    workgroup: str
    keep_alive_seconds: int
    created_at: float
    created_wall: float = field(default_factory=time.time)
    idle_since: float | None = None
    running: str | None = None
    closed: bool = False
    conn: psycopg.Connection[Any] | None = None
    # The request key that names `workgroup`: a session on a provisioned cluster runs on it.
    target_key: str = "WorkgroupName"

    @property
    def status(self) -> str:
        if self.closed:
            return "CLOSED"
        return "BUSY" if self.running else "AVAILABLE"


class SessionRegistry:
    """The open sessions of the stand-in; `clock` is injected so tests move time on."""

    def __init__(
        self,
        engine: DataApiEngine,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.max_sessions = max_sessions
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        engine.session_connection = self.connection
        engine.finished_hooks.append(self.finished)

    # -- requests ------------------------------------------------------------------------------
    def check_request(self, body: dict[str, Any]) -> None:
        """ValidationException for session parameters AWS would refuse."""
        # Ranges and patterns (SessionAliveSeconds 0-86400, UUID) are checked against botocore's
        # model before this (redshift_data_request.check_input).
        if body.get("SessionId"):
            named = [key for key in _FIXED_BY_SESSION if body.get(key) is not None]
            if named:
                raise validation_error(
                    f"{named[0]} cannot be given with SessionId: the session already fixes it"
                )

    def open(
        self,
        *,
        owner_userid: str,
        db_user: str,
        database: str,
        workgroup: str,
        keep_alive_seconds: int,
        target_key: str = "WorkgroupName",
    ) -> Session:
        self.expire()
        with self._lock:
            active = [
                s for s in self.sessions.values() if not s.closed and s.workgroup == workgroup
            ]
            if len(active) >= self.max_sessions:
                raise api_error(
                    "ActiveSessionsExceededException",
                    f"The maximum number of active sessions ({self.max_sessions}) is reached "
                    f"for workgroup {workgroup}",
                )
            session = Session(
                id=str(uuid.uuid4()),
                owner_role=owner_userid.split(":")[0],
                owner_userid=owner_userid,
                db_user=db_user,
                database=database,
                workgroup=workgroup,
                keep_alive_seconds=keep_alive_seconds,
                created_at=self.clock(),
                target_key=target_key,
            )
            self.sessions[session.id] = session
            return session

    def find(self, session_id: str, owner_userid: str) -> Session:
        """The caller's open and idle session; refused as the Data API refuses it."""
        self.expire()
        found = self.sessions.get(session_id)
        if found is None or found.owner_role != owner_userid.split(":")[0]:
            raise api_error("ResourceNotFoundException", f"Session {session_id} does not exist.")
        if found.closed:
            raise validation_error(f"Session {session_id} is closed and cannot run statements")
        if found.running:
            raise validation_error(
                f"Session {session_id} is busy running statement {found.running}; wait until "
                "it finishes (a session runs one statement at a time)"
            )
        return found

    def claim(self, session: Session) -> None:
        """Mark the session busy before its statement is submitted (see `bind`)."""
        with self._lock:
            if session.running or session.closed:
                raise validation_error(f"Session {session.id} cannot run a statement now")
            session.running = _SUBMITTING
            session.idle_since = None

    def bind(self, session: Session, statement: Statement | None) -> None:
        """After submission: busy with `statement` until it ends (None: nothing submitted).

        The statement may already have ended (its end hook found the session still
        submitting): `finished_at` says so, as it is set before the end hooks run.
        """
        with self._lock:
            if session.running != _SUBMITTING:
                return
            if statement is None or statement.finished_at is not None:
                session.running = None
                session.idle_since = self.clock()
            else:
                session.running = statement.id

    # -- the engine's hooks ----------------------------------------------------------------------
    def connection(self, statement: Statement) -> psycopg.Connection[Any]:
        session = self.sessions.get(statement.session_id or "")
        if session is None or session.closed:
            from shiftsync.local.data_api.statements import StatementFailure

            raise StatementFailure(f"ERROR: session {statement.session_id} is closed")
        if session.conn is None or session.conn.closed:
            session.conn = psycopg.connect(
                self.engine.pg.dsn(session.database, user=session.db_user),
                autocommit=True,
                # Redshift runs every transaction as serializable (snapshot) isolation.
                options="-c TimeZone=UTC -c DateStyle=ISO "
                "-c default_transaction_isolation=serializable",
            )
        return session.conn

    def finished(self, statement: Statement) -> None:
        session = self.sessions.get(statement.session_id or "")
        if session is None:
            return
        with self._lock:
            if session.running == statement.id:
                session.running = None
                session.idle_since = self.clock()

    # -- ending sessions -------------------------------------------------------------------------
    def expire(self) -> int:
        """Close sessions idle past their keep-alive or older than 24 hours; how many."""
        now = self.clock()
        ended = []
        with self._lock:
            for session in self.sessions.values():
                if session.closed:
                    continue
                idle_out = (
                    session.idle_since is not None
                    and now - session.idle_since >= session.keep_alive_seconds
                )
                if idle_out or now - session.created_at >= MAX_SESSION_SECONDS:
                    session.closed = True
                    ended.append(session)
        for session in ended:
            self._close(session)
        return len(ended)

    def _close(self, session: Session) -> None:
        if session.running:
            statement = self.engine.statements.get(session.running)
            if statement is not None:
                self.engine.cancel(statement)
        if session.conn is not None:
            # Closing the connection rolls back a transaction left open, as Redshift does.
            session.conn.close()

    def close_idle(self) -> int:
        """Close every session that runs no statement, as their keep-alive would in time
        (tests call it between tests: the keep-alive is 15 minutes); how many."""
        with self._lock:
            idle = [s for s in self.sessions.values() if not s.closed and not s.running]
            for session in idle:
                session.closed = True
        for session in idle:
            self._close(session)
        return len(idle)

    def close_all(self) -> None:
        with self._lock:
            sessions = [s for s in self.sessions.values() if not s.closed]
            for session in sessions:
                session.closed = True
        for session in sessions:
            self._close(session)

    def listed(self, owner_userid: str, role_level: bool = True) -> list[Session]:
        self.expire()
        if role_level:
            return [s for s in self.sessions.values() if s.owner_role == owner_userid.split(":")[0]]
        return [s for s in self.sessions.values() if s.owner_userid == owner_userid]


def listed_payload(session: Session) -> dict[str, Any]:
    """One SessionData entry of ListSessions."""
    return {
        "SessionId": session.id,
        "Status": session.status,
        "CreatedAt": session.created_wall,
        "UpdatedAt": time.time(),
        "Database": session.database,
        "DbUser": session.db_user,
        session.target_key: session.workgroup,
    }


_registry: SessionRegistry | None = None


def install(registry: SessionRegistry | None) -> None:
    """Make `registry` the one the operations use (None while the stand-in is stopped)."""
    global _registry
    _registry = registry


def registry() -> SessionRegistry:
    if _registry is None:
        raise api_error("InternalServerException", "The stand-in keeps no sessions now", 500)
    return _registry


def active_registry() -> SessionRegistry | None:
    return _registry


def session_of(body: dict[str, Any]) -> Session | None:
    """The session a request names, if the stand-in knows it (for IAM's resource)."""
    session_id = body.get("SessionId")
    if _registry is None or not isinstance(session_id, str):
        return None
    return _registry.sessions.get(session_id)


__all__ = [
    "DEFAULT_MAX_SESSIONS",
    "MAX_KEEP_ALIVE_SECONDS",
    "Session",
    "SessionRegistry",
    "active_registry",
    "install",
    "listed_payload",
    "registry",
    "session_of",
]
