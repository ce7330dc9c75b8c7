"""How much memory the DuckDB destination lets DuckDB hold: a bound that follows what runs.

DuckDB's buffer pool keeps every block it has written or read cached until it reaches its
`memory_limit`: with the limit at a quarter of the machine (6 GB here) a load's resident memory
grew with the table (575 MB at 10^7 `sales` rows against 285 MB at 10^6, the whole table's
blocks still cached at the end). Appending needs little: a row group's segments per column
(blocks of 256 KB) and the batch being inserted; a limit of that size keeps the pool flat
whatever the table's length (the written blocks are in the file, and evicting them costs
nothing). Wider operations get more while they run:

- a load of C columns: LOAD_BASE plus PER_COLUMN for each column (a 1,600-column merge of
  5,000 rows needs about 256 MB, which 16 MB + 1,600 × 512 KB covers with room); a batch
  bigger than that (long texts), BATCH_FACTOR times its size while it is inserted;
- a profile or a read of C columns (verification, delete detection): the same, for its columns;
- the commit of a merge, append or delete (a join and a window over the whole stage, which
  fails below about 128 MB at 10^7 staged rows): at least COMMIT_MEMORY_LIMIT.

Several loads share one database, so the limit is the sum of what the running operations need
(at least LOAD_BASE when nothing runs). What a table holds can need more than its width says
(long texts): `MemoryBudget.run` tries again with more room. A `memory_limit` set in the
destination's configuration replaces all of this with one fixed limit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Final, TypeVar

import duckdb

log = logging.getLogger("shiftsync.destinations")
T = TypeVar("T")

# What every load needs beside its columns (the catalog, the state table). At 16 MB the pool
# stays below what a 10^6-row `sales` load fills, so 10^7 rows peak where 10^6 do (246 against
# 237 MB); at 32 MB the 10^7-row sync peaked 13 MB higher than the 10^6 one.
LOAD_BASE: Final = 16 * 2**20
# Two 256 KB blocks per column: the row group being appended and the one being written out.
PER_COLUMN: Final = 512 * 2**10
# Inserting a batch (and the checkpoint its commit may start) needs about twice its Arrow size
# pinned at once: a load of 93 MB batches of 6,000-character texts failed at 128 MB.
BATCH_FACTOR: Final = 2
# A commit's merge (a join and a window over the stage) fails below about 128 MB at 10^7
# staged rows.
COMMIT_MEMORY_LIMIT: Final = 256 * 2**20


def machine_ceiling() -> int:
    """The most the bound grows to on its own: a quarter of the machine's physical memory
    (at least COMMIT_MEMORY_LIMIT)."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 0
    return max(COMMIT_MEMORY_LIMIT, physical // 4)


def columns_memory(columns: int) -> int:
    """What a load, profile or read of `columns` columns needs."""
    return LOAD_BASE + max(0, columns) * PER_COLUMN


def batch_memory(nbytes: int) -> int:
    """What inserting a batch of `nbytes` (its Arrow size) needs."""
    return BATCH_FACTOR * max(0, nbytes)


def commit_memory(columns: int, *, joins: bool) -> int:
    """What a commit needs: a merge, append or delete (`joins`) reads the whole stage into the
    target; a replace only renames the stage."""
    need = columns_memory(columns)
    return max(COMMIT_MEMORY_LIMIT, need) if joins else need


def memory_setting(limit: int) -> str:
    """`SET memory_limit` for a number of bytes (whole MiB)."""
    return f"SET memory_limit = '{max(1, limit // 2**20)}MiB'"


class MemoryBudget:
    """The database's memory_limit: the sum of the needs of the operations running now.

    `apply(limit)` sets the limit and says whether it did: not before the database is open,
    nor when DuckDB refuses to lower it below what is pinned (the higher limit then stays until
    the next change). With `fixed`, the limit is that, always, and `need` changes nothing.
    """

    def __init__(
        self,
        apply: Callable[[int], bool],
        *,
        fixed: int | None = None,
        ceiling: int | None = None,
    ) -> None:
        self._apply = apply
        self.fixed = fixed
        self.ceiling = machine_ceiling() if ceiling is None else ceiling
        self._lock = threading.Lock()
        self._needs: dict[int, int] = {}
        self._next = 0
        self.current: int | None = None
        # The limit the last action given up on ran out at (see `run`).
        self.exhausted: int | None = None

    def limit(self) -> int:
        """The limit the running operations call for now."""
        if self.fixed is not None:
            return self.fixed
        return max(LOAD_BASE, sum(self._needs.values()))

    def hold(self, amount: int) -> Callable[[], None]:
        """Add a need until the returned function is called (once; later calls do nothing)."""
        with self._lock:
            token = self._next
            self._next += 1
            self._needs[token] = amount
            self._update()

        def release() -> None:
            with self._lock:
                if self._needs.pop(token, None) is not None:
                    self._update()

        return release

    @contextlib.contextmanager
    def need(self, amount: int) -> Iterator[None]:
        """Hold `amount` for the block."""
        release = self.hold(amount)
        try:
            yield
        finally:
            release()

    def run(self, need: int, action: Callable[[], T], *, what: str) -> T:
        """`action` with `need` held; when DuckDB runs out of memory, `action` again with four
        times the room, up to the ceiling. What a table holds decides what a statement needs
        (a scan of 6,000-character texts takes 12 MB a vector), which its width does not say.
        Only for actions that leave nothing behind when they fail (a read; one insert, which
        DuckDB rolls back). A fixed limit is never raised."""
        while True:
            with self.need(need):
                try:
                    return action()
                except duckdb.OutOfMemoryException:
                    if self.fixed is not None or need >= self.ceiling:
                        # The error's message names the limit it ran out at, not the one
                        # left once `need` is let go.
                        self.exhausted = self.current or self.limit()
                        raise
            need = min(self.ceiling, max(need, LOAD_BASE) * 4)
            log.info("DuckDB ran out of memory %s: again with %d MiB more", what, need >> 20)

    def start(self) -> None:
        """Set the limit on a newly opened database."""
        with self._lock:
            self.current = None
            self._update()

    @contextlib.contextmanager
    def closing(self) -> Iterator[None]:
        """Hold off changes while the database closes; the next open sets the limit again."""
        with self._lock:
            yield
            self.current = None

    def _update(self) -> None:
        wanted = self.limit()
        if wanted == self.current:
            return
        if self._apply(wanted):
            self.current = wanted


__all__ = [
    "BATCH_FACTOR",
    "COMMIT_MEMORY_LIMIT",
    "LOAD_BASE",
    "PER_COLUMN",
    "MemoryBudget",
    "batch_memory",
    "columns_memory",
    "commit_memory",
    "machine_ceiling",
    "memory_setting",
]
