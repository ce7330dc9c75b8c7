"""Retrying transient failures, polling under a deadline, and the Data API's shared rate limit.

Time and chance are injected (`sleep`, `clock`, `random`), so tests drive them without waiting.
Nothing here knows about AWS: callers say which errors are transient (see data_api.py).
"""

from __future__ import annotations

import random as _random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from shiftsync.aws.retry_log import reason_of, report_retry

T = TypeVar("T")

Sleep = Callable[[float], None]
Clock = Callable[[], float]
Random = Callable[[], float]


class PollTimeout(TimeoutError):
    """`poll` ran out of time before the check gave an answer."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: pause n is in [cap/2, cap], cap = min(max, base * 2^(n-1)).

    Half of each pause is fixed so that a retry never comes back at once (a throttled account
    needs the pause), half is random so that parallel readers spread out.
    """

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 20.0
    sleep: Sleep = time.sleep
    clock: Clock = time.monotonic
    random: Random = _random.random

    def delay(self, retry: int) -> float:
        """The pause before retry number `retry` (1 for the first retry)."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** max(retry - 1, 0))
        return cap / 2 + cap / 2 * self.random()

    def run(
        self,
        fn: Callable[[], T],
        *,
        retriable: Callable[[Exception], bool],
        on_retry: Callable[[int, Exception, float], None] | None = None,
        deadline: float | None = None,
        label: str | None = None,
    ) -> T:
        """Call fn until it returns; retry the errors `retriable` accepts, re-raise the rest.

        The last error is re-raised when the attempts are used up or the next pause would end
        after `deadline` (a value of `clock`). With a `label` (the operation) each retry is
        logged and counted (aws/retry_log.py).
        """
        retry = 0
        while True:
            try:
                return fn()
            except Exception as error:
                retry += 1
                if not retriable(error) or retry >= self.max_attempts:
                    raise
                pause = self.delay(retry)
                if deadline is not None and self.clock() + pause > deadline:
                    raise
                if on_retry is not None:
                    on_retry(retry, error, pause)
                if label is not None:
                    report_retry(label, retry + 1, self.max_attempts, pause, reason_of(error))
                self.sleep(pause)


@dataclass(frozen=True)
class PollPolicy:
    """Intervals between status checks: growing from `first` to `longest`, with jitter."""

    first: float = 0.05
    longest: float = 2.0
    growth: float = 1.5
    sleep: Sleep = time.sleep
    clock: Clock = time.monotonic
    random: Random = _random.random

    def intervals(self) -> Iterator[float]:
        interval = self.first
        while True:
            # +-25 %: readers polling in step would otherwise hit the DescribeStatement quota
            # together.
            yield interval * (0.75 + 0.5 * self.random())
            interval = min(self.longest, interval * self.growth)


def poll(check: Callable[[float], T | None], *, timeout: float, policy: PollPolicy) -> T:
    """Call `check(seconds_left)` until it returns a value; PollTimeout after `timeout` seconds.

    The pause after a check is the policy's interval minus the time the check took, so a check
    that waited on the server (a long poll) is followed at once by the next one.
    """
    deadline = policy.clock() + timeout
    for interval in policy.intervals():
        started = policy.clock()
        left = deadline - started
        if left <= 0:
            break
        answer = check(left)
        if answer is not None:
            return answer
        now = policy.clock()
        if now >= deadline:
            break
        pause = min(interval - (now - started), deadline - now)
        if pause > 0:
            policy.sleep(pause)
    raise PollTimeout(f"no answer within {timeout:g} s")


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; thread-safe.

    A caller takes its tokens at once, possibly into debt, and sleeps off the debt outside the
    lock: callers are served in arrival order and none spins.
    """

    def __init__(
        self, rate: float, burst: float, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, tokens: float = 1.0) -> float:
        """Take tokens, sleeping as long as needed; returns the seconds slept."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= tokens
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


# Transactions per second per account and region. ExecuteStatement, DescribeStatement and
# GetStatementResult are the figures third parties quote for AWS's (non-adjustable) quotas; the
# metadata calls have no published figure: 10/s is a guess that keeps `discover` polite.
DATA_API_RATES: Final[Mapping[str, float]] = {
    "ExecuteStatement": 30.0,
    "DescribeStatement": 100.0,
    "GetStatementResult": 20.0,
    "CancelStatement": 10.0,
    "DescribeTable": 10.0,
    "ListTables": 10.0,
    "ListSchemas": 10.0,
    "ListDatabases": 10.0,
}
DEFAULT_RATE: Final = 10.0
# Operations that count against another operation's quota.
SAME_QUOTA: Final[Mapping[str, str]] = {"GetStatementResultV2": "GetStatementResult"}


@dataclass
class RateLimiter:
    """One token bucket per Data API operation; `shared_rate_limiter()` is the process's."""

    rates: Mapping[str, float] = field(default_factory=lambda: dict(DATA_API_RATES))
    default_rate: float = DEFAULT_RATE
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep
    _buckets: dict[str, TokenBucket] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def bucket(self, operation: str) -> TokenBucket:
        name = SAME_QUOTA.get(operation, operation)
        with self._lock:
            found = self._buckets.get(name)
            if found is None:
                rate = self.rates.get(name, self.default_rate)
                found = TokenBucket(rate, rate, clock=self.clock, sleep=self.sleep)
                self._buckets[name] = found
            return found

    def acquire(self, operation: str) -> float:
        """Wait for a slot for one call of `operation`; returns the seconds waited."""
        return self.bucket(operation).acquire()

    def throttled(self, operation: str) -> None:
        """AWS throttled `operation`: halve its rate in this process (to a tenth at least)."""
        bucket = self.bucket(operation)
        name = SAME_QUOTA.get(operation, operation)
        floor = self.rates.get(name, self.default_rate) / 10
        with bucket._lock:
            bucket.rate = max(floor, bucket.rate / 2)


_shared: RateLimiter | None = None
_shared_lock = threading.Lock()


def shared_rate_limiter() -> RateLimiter:
    """The rate limiter every reader of this process shares: the quotas are per account."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RateLimiter()
        return _shared


__all__ = [
    "DATA_API_RATES",
    "PollPolicy",
    "PollTimeout",
    "RateLimiter",
    "RetryPolicy",
    "TokenBucket",
    "poll",
    "shared_rate_limiter",
]
