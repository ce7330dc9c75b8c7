"""One snapshot per read: a Data API session holding one Redshift transaction.

The Data API runs each ExecuteStatement on a connection of its own, so two statements see two
snapshots: a table written during a read gives rows, high-water mark and verification figures
from different moments. A session (`SessionKeepAliveSeconds` on the first statement, then
`SessionId` on each next one) is one connection, so `BEGIN` … `COMMIT` sent as separate
statements form one transaction, and Redshift (serializable isolation) runs every statement of
it on the snapshot its first statement took. That needs no IAM action beyond ExecuteStatement;
BatchExecuteStatement would give one transaction too, but it is a tenth action, and a batch
cannot hand rows back between its statements (see docs/syncs.md).

A session runs one statement at a time: statements of a transaction are serialised here (the
Data API refuses a second one rather than queue it). Result pages of a finished statement are
read outside that lock, as the session is free again once the statement finished.

A session outlives its transaction: it stays open (idle, counted against the workgroup's 500
sessions) until its keep-alive runs out after its last statement. So a session whose
transaction ended goes back to the run's pool (`SessionPool`) and the next table's transaction
begins in it (`SessionId` on its BEGIN) instead of opening another: a run holds at most as many
sessions as it reads tables at once. A pooled session that expired or is refused meanwhile is
dropped and a new one opened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from shiftsync.errors import BudgetError, ShiftsyncError

if TYPE_CHECKING:
    from shiftsync.redshift.data_api import DataApi
    from shiftsync.redshift.stats import ReadStats

log = logging.getLogger("shiftsync.redshift")

# How long the Data API keeps the session after each statement: the longest pause between two
# statements of one read (its pages streamed into the destination) must fit in it. An idle
# session costs no compute but counts against the workgroup's 500 open sessions until it ends.
DEFAULT_KEEP_ALIVE_SECONDS: Final = 900


@dataclass
class Transaction:
    """An open transaction in a Data API session; `session_id` is set by its BEGIN (a new
    session) or by the pool (a session an earlier transaction left)."""

    keep_alive_seconds: int = DEFAULT_KEEP_ALIVE_SECONDS
    session_id: str | None = None
    statements: int = 0
    # Re-entrant: restarting the transaction runs statements while one holds the lock.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)


@dataclass(frozen=True)
class PooledSession:
    """A session whose transaction ended: `ending` is the COMMIT or ROLLBACK that ended it."""

    session_id: str
    ending: str
    keep_alive_seconds: int


class SessionPool:
    """The sessions of one run (one DataApi) that no transaction uses now (thread-safe)."""

    def __init__(self) -> None:
        self._idle: list[PooledSession] = []
        self._lock = threading.Lock()

    def give(self, session: PooledSession) -> None:
        with self._lock:
            self._idle.append(session)

    def take(self, keep_alive_seconds: int) -> PooledSession | None:
        """The most recently used idle session with that keep-alive (the one least likely to
        have expired), or None."""
        with self._lock:
            for index in range(len(self._idle) - 1, -1, -1):
                if self._idle[index].keep_alive_seconds == keep_alive_seconds:
                    return self._idle.pop(index)
        return None


@contextmanager
def transaction(
    api: DataApi,
    *,
    what: str,
    stats: ReadStats,
    keep_alive_seconds: int = DEFAULT_KEEP_ALIVE_SECONDS,
    shared: bool = False,
) -> Iterator[Transaction]:
    """BEGIN in a session of the run's pool, else a new one; every statement the calling
    thread (every thread, `shared`) runs through `api` inside the block joins the transaction;
    COMMIT at the end (ROLLBACK when the block failed: nothing was written, it only ends the
    snapshot); the session then goes back to the pool."""
    tx = _begin(api, what=what, stats=stats, keep_alive_seconds=keep_alive_seconds)
    # From here the transaction must end, budget or not: COMMIT and ROLLBACK are not counted.
    previous = api.bind_transaction(tx, shared=shared)
    ok = False
    try:
        yield tx
        ok = True
    finally:
        api.bind_transaction(previous, shared=shared)
        ending: str | None = None
        try:
            # Submitted, not waited for: the transaction only read, so its end changes nothing
            # but to release the snapshot early (else the session's expiry rolls it back). The
            # next transaction to take the session from the pool waits for it.
            ending = api.execute(
                "COMMIT" if ok else "ROLLBACK",
                what=what,
                stats=stats,
                transaction=tx,
                budgeted=False,
            )
        except ShiftsyncError as error:
            log.info("ending the transaction of %s failed: %s", what, error)
        if tx.session_id is not None:
            if api.listener is not None:
                api.listener.session_ended(tx.session_id)
            if ending is not None:
                api.sessions.give(PooledSession(tx.session_id, ending, tx.keep_alive_seconds))


@contextmanager
def joined(api: DataApi, tx: Transaction | None) -> Iterator[None]:
    """Statements of the calling thread inside the block join `tx` (a transaction another
    thread opened: a helper thread working for it); its lock keeps them one at a time."""
    previous = api.bind_transaction(tx, shared=False)
    try:
        yield
    finally:
        api.bind_transaction(previous, shared=False)


def _begin(api: DataApi, *, what: str, stats: ReadStats, keep_alive_seconds: int) -> Transaction:
    """BEGIN in a session of the run's pool, else in a new session."""
    while (pooled := api.sessions.take(keep_alive_seconds)) is not None:
        tx = Transaction(keep_alive_seconds=keep_alive_seconds, session_id=pooled.session_id)
        # Journaled before BEGIN is sent, as a new session is once its BEGIN returns: a run
        # killed from here on leaves a transaction the next run must roll back.
        if api.listener is not None:
            api.listener.session_opened(pooled.session_id)
        try:
            # The session runs one statement at a time: its last transaction's end first.
            ended = api.wait(pooled.ending, what=what, stats=stats)
            if ended.status == "FINISHED":
                api.execute_ok("BEGIN", what=what, stats=stats, transaction=tx)
                return tx
            reason = f"its last transaction ended {ended.status}"
        except BudgetError:  # nothing was sent: the session is as good as it was
            if api.listener is not None:
                api.listener.session_ended(pooled.session_id)
            api.sessions.give(pooled)
            raise
        except ShiftsyncError as error:  # expired (keep-alive), closed, or refused
            reason = str(error)
        if api.listener is not None:
            api.listener.session_ended(pooled.session_id)
        log.info(
            "session %s of %s cannot be used again (%s): opening a new one",
            pooled.session_id,
            what,
            reason,
        )
    tx = Transaction(keep_alive_seconds=keep_alive_seconds)
    api.execute_ok("BEGIN", what=what, stats=stats, transaction=tx)
    return tx


def restart(api: DataApi, tx: Transaction, *, what: str, stats: ReadStats) -> None:
    """Begin the transaction again in its session, after a failed statement ended it.

    Redshift aborts a transaction whose statement fails; a read that goes on after such a
    failure (a result too big for the Data API, read again by UNLOAD or in key chunks) needs
    a live one. Its later statements see a later snapshot, the same one for the rest of the
    read and the verification; a note on the read says so.
    """
    api.execute_ok("ROLLBACK", what=what, stats=stats, transaction=tx, budgeted=False)
    api.execute_ok("BEGIN", what=what, stats=stats, transaction=tx, budgeted=False)
    stats.note(
        "a statement failed inside the read's transaction: the transaction began again, so "
        "what follows reads a later snapshot"
    )


__all__ = [
    "DEFAULT_KEEP_ALIVE_SECONDS",
    "PooledSession",
    "SessionPool",
    "Transaction",
    "joined",
    "restart",
    "transaction",
]
