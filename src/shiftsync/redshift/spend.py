"""What a run's statements cost Redshift, and the budget that stops new ones.

Each statement's Redshift query id and run time (DescribeStatement's RedshiftQueryId and
Duration) are kept as it ends. The budget (`max_compute_seconds` of a sync) counts those run
times: once they pass it, no new statement starts, and the read that wanted one fails with a
message that says so. The exact figures come afterwards from SYS_QUERY_HISTORY
(engine/guardrails.py, engine/cost_watch.py); Duration is what is known at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from shiftsync.errors import BudgetError


@dataclass
class Spend:
    """The statements of one source (one run), thread-safe."""

    budget_seconds: float | None = None
    budget_owner: str = "the sync"
    query_ids: list[int] = field(default_factory=list)
    # Each statement's Duration (ns) by query id: what a statement SYS_QUERY_HISTORY does not
    # hold yet counts (engine/guardrails.py).
    durations: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    statements: int = 0
    refused: int = 0
    # time.monotonic() when the last statement ended: how long the workgroup has been idle
    # since (engine/cost_watch.py), None before the first.
    last_ended: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, query_id: int | None, duration_ns: int) -> None:
        with self._lock:
            self.statements += 1
            if query_id is not None and query_id >= 0:
                self.query_ids.append(query_id)
                self.durations[query_id] = max(duration_ns, 0)
            if duration_ns > 0:
                self.seconds += duration_ns / 1e9
            self.last_ended = time.monotonic()

    def totals(self) -> tuple[int, float]:
        """The statements ended so far and their Duration in seconds, read together."""
        with self._lock:
            return self.statements, self.seconds

    def idle_seconds(self, now: float | None = None) -> float | None:
        """Seconds since the last statement ended (None before the first)."""
        with self._lock:
            ended = self.last_ended
        if ended is None:
            return None
        return max(0.0, (time.monotonic() if now is None else now) - ended)

    def check(self, what: str) -> None:
        """BudgetError when the budget is spent: no new statement may start."""
        budget = self.budget_seconds
        if budget is None:
            return
        with self._lock:
            spent = self.seconds
            if spent < budget:
                return
            self.refused += 1
        raise BudgetError(
            f"{what}: not started: the statements of {self.budget_owner} have run "
            f"{spent:.1f} s, past its budget (max_compute_seconds: {budget:g}); no new "
            "statement starts in this run, and nothing half-read is committed",
            fix="raise max_compute_seconds in the sync, or copy fewer or smaller tables (a "
            "filter, incremental mode) per run",
        )


__all__ = ["Spend"]
