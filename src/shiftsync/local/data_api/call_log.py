"""Every Data API call the stand-in answered, with its time: what rate tests count.

AWS's quotas are transactions per second per account and region, counted at the service; the
stand-in counts the same way, at its door, before IAM or validation (a refused call still
counts against AWS's quota).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class CallLog:
    """(operation, monotonic seconds) of each call, in arrival order; thread-safe."""

    calls: list[tuple[str, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, operation: str) -> None:
        with self._lock:
            self.calls.append((operation, time.monotonic()))

    def times(self, operation: str, since: float = 0.0) -> list[float]:
        with self._lock:
            return [at for name, at in self.calls if name == operation and at >= since]

    def counts(self, since: float = 0.0) -> Counter[str]:
        with self._lock:
            return Counter(name for name, at in self.calls if at >= since)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()


def most_in_window(times: list[float], window: float) -> int:
    """The largest number of calls inside any interval `window` seconds long."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


_log = CallLog()


def current() -> CallLog:
    """The process's call log (the stand-in is one per process)."""
    return _log


__all__ = ["CallLog", "current", "most_in_window"]
