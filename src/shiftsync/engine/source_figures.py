"""The source side of a table's verification, queried with the table's read, not after its write.

Redshift Serverless bills RPU-seconds while statements run, at least 60 seconds each time the
workgroup wakes from idle. A table's verification profile used to run after the destination's
commit: a big table's download and write (minutes at 10^8 rows) let the workgroup fall idle
between the read and the profile, and the profile woke it again. So the profile starts as soon
as the read's first batch is in hand (by then the read's statement has ended: the UNLOAD, or
the SELECT whose pages are being fetched), in a helper thread that joins the table's snapshot,
and runs on Redshift while the rows are downloaded and written. The destination's side is still
computed after the commit (engine/table_sync.py), and the two compared.

In the table's snapshot (`snapshot: table`, `consistent`) the profile describes exactly the rows
read, whatever committed meanwhile: the helper's statements join the table's transaction, and
its lock runs them one at a time with the read's own (key-range chunks, ranges). A profile
that fails (a DECIMAL sum that overflows, the budget) is kept and raised when the table is
verified, after its commit, as before.

`PrefetchedQuery` does the same for the delete pass's first statement (the source's key count
and checksum, engine/deletes.py): sent with the read, it leaves a pass that finds nothing
deleted no statement to send after the commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

from shiftsync.destinations.base import TableProfile
from shiftsync.engine.verify import ProfileColumn, column_chunks, merge_profiles
from shiftsync.redshift.data_api_results import Row
from shiftsync.threads import ContextThreadPool

ProfileChunk = Callable[[Sequence[ProfileColumn]], TableProfile]
T = TypeVar("T")


class _InSnapshot(Generic[T]):
    """One call run once in a helper thread whose statements join the reading thread's
    snapshot (`joined()`: Source.share_snapshot), its outcome kept for later."""

    _thread_name = "shiftsync-snapshot"

    def __init__(
        self, call: Callable[[], T], joined: Callable[[], AbstractContextManager[object]]
    ) -> None:
        self._call = call
        self._joined = joined
        self._future: Future[T] | None = None

    @property
    def started(self) -> bool:
        return self._future is not None

    @property
    def done(self) -> bool:
        """Started and ended: its statements no longer hold the table's session."""
        return self._future is not None and self._future.done()

    def start(self) -> None:
        """Run the call in a helper thread (once; later calls do nothing)."""
        if self._future is not None:
            return
        pool = ContextThreadPool(1, thread_name_prefix=self._thread_name)
        self._future = pool.submit(self._run)
        pool.shutdown(wait=False)

    def _run(self) -> T:
        with self._joined():
            return self._call()

    def settle(self) -> None:
        """Wait until the call has ended (started now if it was not), its error kept: the
        table's snapshot may end, and its statements are all submitted."""
        self._started().exception()

    def abandon(self) -> None:
        """The table failed: wait for a started call to end (its statements run in the
        table's session, which ends next), its outcome unused."""
        if self._future is not None:
            self._future.exception()

    def _started(self) -> Future[T]:
        self.start()
        assert self._future is not None
        return self._future


class SourceFigures(_InSnapshot[TableProfile]):
    """The source's profile of one table's read: started once, waited for before the commit."""

    _thread_name = "shiftsync-profile"

    def __init__(
        self,
        label: str,
        columns: Sequence[ProfileColumn],
        profile_chunk: ProfileChunk,
        joined: Callable[[], AbstractContextManager[object]],
    ) -> None:
        """`profile_chunk` queries one chunk of columns; `joined()` makes the helper thread's
        statements join the reading thread's snapshot (Source.share_snapshot)."""
        super().__init__(self._profile, joined)
        self.label = label
        self.columns = tuple(columns)
        self._profile_chunk = profile_chunk

    def _profile(self) -> TableProfile:
        # In column chunks: one statement of a wide table's profile passes SQL's limits.
        chunks = column_chunks(self.columns)
        return merge_profiles(self.label, [self._profile_chunk(chunk) for chunk in chunks])

    def result(self) -> TableProfile:
        """The profile, or the error its statements ended with."""
        return self._started().result()


class PrefetchedQuery(_InSnapshot[list[Row]]):
    """One small statement of a later step sent with the read instead (a helper thread in the
    read's snapshot, like the profile): the delete pass's key summary, which it would
    otherwise send after the commit. `query` answers that SQL from the prefetched rows once,
    and sends anything else (or that SQL again, or after a failure) as usual."""

    _thread_name = "shiftsync-prefetch"

    def __init__(
        self,
        sql: str,
        query: Callable[[str], list[Row]],
        joined: Callable[[], AbstractContextManager[object]],
    ) -> None:
        super().__init__(lambda: query(sql), joined)
        self.sql = sql
        self._query = query
        self._used = False
        self._lock = threading.Lock()

    def query(self, sql: str) -> list[Row]:
        with self._lock:
            future = self._future if sql == self.sql and not self._used else None
            self._used = self._used or future is not None
        if future is not None and future.exception() is None:
            return future.result()
        return self._query(sql)


__all__ = ["PrefetchedQuery", "SourceFigures"]
