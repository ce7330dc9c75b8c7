"""The counters of a read: what a read cost and how it went, readable while it runs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class ReadStats:
    """Counters of one read (or one catalog call); thread-safe, readable while it runs."""

    method: str = ""
    statements: int = 0
    retries: int = 0
    pages: int = 0
    rows: int = 0
    bytes_received: int = 0
    chunks: int = 0
    parts: int = 0
    staged_deleted: int = 0
    cancelled: int = 0
    fallbacks: list[str] = field(default_factory=list)
    # Set once the read sends no more statements (a single SELECT or UNLOAD whose rows flow):
    # the table's snapshot may end before the rows are all written (engine/table_sync.py).
    statements_done: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(
        self,
        *,
        statements: int = 0,
        retries: int = 0,
        pages: int = 0,
        rows: int = 0,
        bytes_received: int = 0,
        chunks: int = 0,
        parts: int = 0,
        staged_deleted: int = 0,
        cancelled: int = 0,
    ) -> None:
        with self._lock:
            self.statements += statements
            self.retries += retries
            self.pages += pages
            self.rows += rows
            self.bytes_received += bytes_received
            self.chunks += chunks
            self.parts += parts
            self.staged_deleted += staged_deleted
            self.cancelled += cancelled

    def note(self, fallback: str) -> None:
        with self._lock:
            self.fallbacks.append(fallback)
