"""Every retry said and counted: one log line each, and a tally the run record reads.

A call to AWS is retried at two levels: botocore's standard retries inside one client call,
and shiftsync's RetryPolicy around the call (redshift/retry.py). Either way `report_retry`
logs, on the `shiftsync.retry` logger at WARNING,

    retrying ExecuteStatement (3/7) in 4.0 s: ThrottlingException

and adds one to the tally of the current context (`counting_retries`, which the engine opens
around each table), so a run record counts the retries its tables went through.

botocore says nothing of its own retries above DEBUG: `observe_botocore_retries` wraps the
standard-mode retry handler of a client so that each retry it decides on is reported.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Final, cast

from botocore.client import BaseClient

log = logging.getLogger("shiftsync.retry")


class RetryTally:
    """Retries seen in one context (a table of a run); thread-safe."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def add(self, count: int = 1) -> None:
        with self._lock:
            self._count += count

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


_TALLY: ContextVar[RetryTally | None] = ContextVar("shiftsync_retry_tally", default=None)


@contextlib.contextmanager
def counting_retries() -> Iterator[RetryTally]:
    """Count the retries reported in this context (this thread) until the block ends."""
    tally = RetryTally()
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


def report_retry(operation: str, attempt: int, attempts: int, pause: float, reason: str) -> None:
    """Say that `operation` is retried (attempt `attempt` of `attempts`) after `pause` seconds."""
    log.warning(
        "retrying %s (%d/%d) in %.1f s: %s",
        operation,
        attempt,
        attempts,
        pause,
        reason,
        extra={"operation": operation, "attempt": attempt, "reason": reason},
    )
    tally = _TALLY.get()
    if tally is not None:
        tally.add()


# What a reason may hold at most: a dropped connection's message may be long.
_REASON_LENGTH: Final = 120


def reason_of(error: BaseException | None, parsed: object = None, status: object = None) -> str:
    """The short reason of a failed call: the AWS error code, the exception, or the status."""
    if isinstance(parsed, dict):
        code = parsed.get("Error", {}).get("Code")
        if code:
            return str(code)
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    if error is not None:
        text = str(error)
        name = type(error).__name__
        full = f"{name}: {text}" if text else name
        return full if len(full) <= _REASON_LENGTH else full[: _REASON_LENGTH - 1] + "…"
    return f"HTTP {status}" if status else "unknown"


def observe_botocore_retries(client: BaseClient) -> bool:
    """Report each retry botocore's standard mode makes for `client`; False if not found.

    The handler is found by the unique id botocore registers it under
    (`retry-config-<service>`); with another retry mode nothing is changed.
    """
    events = client.meta.events
    service = client.meta.service_model.service_id.hyphenize()
    unique_id = f"retry-config-{service}"
    emitter = getattr(events, "_emitter", events)
    entry = getattr(emitter, "_unique_id_handlers", {}).get(unique_id)
    # The standard-mode handler answers the pause before the next try in seconds, or None.
    handler: Callable[..., float | None] | None = (
        entry.get("handler") if isinstance(entry, dict) else None
    )
    if handler is None or getattr(handler, "_shiftsync_reports", False):
        return handler is not None
    retries = getattr(client.meta.config, "retries", None) or {}
    attempts = int(retries.get("total_max_attempts") or retries.get("max_attempts") or 3)
    decide = handler

    def needs_retry(**kwargs: object) -> float | None:
        delay = decide(**kwargs)
        if delay is not None:
            tried = kwargs.get("attempts", 0)
            caught = kwargs.get("caught_exception")
            response = kwargs.get("response")
            parsed = response[1] if isinstance(response, tuple) and len(response) == 2 else None
            http = response[0] if isinstance(response, tuple) and response else None
            operation = kwargs.get("operation")
            report_retry(
                str(getattr(operation, "name", operation)),
                (tried if isinstance(tried, int) else 0) + 1,
                attempts,
                float(delay),
                reason_of(
                    caught if isinstance(caught, BaseException) else None,
                    parsed,
                    getattr(http, "status_code", 0),
                ),
            )
        return delay

    needs_retry._shiftsync_reports = True  # type: ignore[attr-defined]
    event = f"needs-retry.{service}"
    events.unregister(event, unique_id=unique_id)
    # botocore-stubs type every handler as returning None; a needs-retry handler returns the pause.
    events.register(event, cast("Callable[..., None]", needs_retry), unique_id=unique_id)
    return True


__all__ = [
    "RetryTally",
    "counting_retries",
    "observe_botocore_retries",
    "reason_of",
    "report_retry",
]
