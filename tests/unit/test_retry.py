"""Backoff, polling and the shared rate limit, on a fake clock (no sleeping, no I/O)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from shiftsync.redshift.data_api import is_retriable
from shiftsync.redshift.retry import (
    DATA_API_RATES,
    PollPolicy,
    PollTimeout,
    RateLimiter,
    RetryPolicy,
    TokenBucket,
    poll,
    shared_rate_limiter,
)


class FakeTime:
    """A clock that only moves when something sleeps (or a test moves it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


class Flaky:
    """Fails with the given errors in turn, then returns "done"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


def _is_transient(error: Exception) -> bool:
    return isinstance(error, Transient)


def _policy(fake: FakeTime, **kwargs: Any) -> RetryPolicy:
    return RetryPolicy(sleep=fake.sleep, clock=fake.clock, **kwargs)


def client_error(code: str, status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "ExecuteStatement")


# ---------------------------------------------------------------- RetryPolicy.delay


@pytest.mark.parametrize(
    ("retry", "low", "high"),
    [(1, 0.25, 0.5), (2, 0.5, 1.0), (3, 1.0, 2.0), (4, 2.0, 4.0), (10, 10.0, 20.0)],
)
def test_delay_doubles_within_half_to_full_cap(retry: int, low: float, high: float) -> None:
    assert RetryPolicy(random=lambda: 0.0).delay(retry) == pytest.approx(low)
    assert RetryPolicy(random=lambda: 1.0).delay(retry) == pytest.approx(high)


def test_delay_never_passes_max_delay() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=3.0, random=lambda: 1.0)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_delay_is_never_zero_even_with_zero_randomness() -> None:
    assert RetryPolicy(random=lambda: 0.0).delay(1) > 0


# ---------------------------------------------------------------- RetryPolicy.run


def test_run_retries_transient_errors_then_returns() -> None:
    fake = FakeTime()
    fn = Flaky(Transient(), Transient())
    seen: list[tuple[int, float]] = []
    result = _policy(fake, random=lambda: 0.5).run(
        fn, retriable=_is_transient, on_retry=lambda n, _e, pause: seen.append((n, pause))
    )
    assert result == "done"
    assert fn.calls == 3
    assert [n for n, _ in seen] == [1, 2]
    assert fake.sleeps == [pause for _, pause in seen] == [0.375, 0.75]


def test_run_reraises_a_permanent_error_at_once() -> None:
    fake = FakeTime()
    fn = Flaky(Permanent("no"))
    with pytest.raises(Permanent):
        _policy(fake).run(fn, retriable=_is_transient)
    assert fn.calls == 1
    assert fake.sleeps == []


def test_run_gives_up_after_max_attempts_with_the_last_error() -> None:
    fake = FakeTime()
    errors = [Transient(str(n)) for n in range(5)]
    fn = Flaky(*errors)
    with pytest.raises(Transient) as raised:
        _policy(fake, max_attempts=3).run(fn, retriable=_is_transient)
    assert str(raised.value) == "2"
    assert fn.calls == 3
    assert len(fake.sleeps) == 2


def test_run_stops_when_the_next_pause_would_pass_the_deadline() -> None:
    fake = FakeTime()
    fn = Flaky(Transient(), Transient(), Transient())
    policy = _policy(fake, base_delay=1.0, random=lambda: 1.0)
    with pytest.raises(Transient):
        policy.run(fn, retriable=_is_transient, deadline=fake.now + 2.5)
    # Pauses 1 s and 2 s: the second would end at 3 s > 2.5 s.
    assert fake.sleeps == [1.0]
    assert fn.calls == 2


def test_run_with_one_attempt_never_retries() -> None:
    fake = FakeTime()
    fn = Flaky(Transient())
    with pytest.raises(Transient):
        _policy(fake, max_attempts=1).run(fn, retriable=_is_transient)
    assert fn.calls == 1


# ---------------------------------------------------------------- which AWS errors are transient


@pytest.mark.parametrize(
    "code",
    [
        "ThrottlingException",
        "ActiveStatementsExceededException",
        "ActiveSessionsExceededException",
        "InternalServerException",
        "DatabaseConnectionException",
        "QueryTimeoutException",
    ],
)
def test_data_api_transient_codes_are_retried(code: str) -> None:
    assert is_retriable(client_error(code))


@pytest.mark.parametrize(
    "code", ["ValidationException", "AccessDeniedException", "ResourceNotFoundException"]
)
def test_data_api_permanent_codes_are_not_retried(code: str) -> None:
    assert not is_retriable(client_error(code))


def test_any_5xx_is_retried_whatever_its_code() -> None:
    assert is_retriable(client_error("SomethingNew", status=503))
    assert not is_retriable(client_error("SomethingNew", status=400))


def test_dropped_connections_are_retried() -> None:
    assert is_retriable(EndpointConnectionError(endpoint_url="http://x"))
    assert is_retriable(ReadTimeoutError(endpoint_url="http://x"))
    assert not is_retriable(ValueError("not AWS"))


# ---------------------------------------------------------------- polling


def test_poll_intervals_grow_to_the_longest_with_jitter_bounds() -> None:
    low = PollPolicy(first=0.1, longest=1.0, growth=2.0, random=lambda: 0.0).intervals()
    high = PollPolicy(first=0.1, longest=1.0, growth=2.0, random=lambda: 1.0).intervals()
    lows = [next(low) for _ in range(6)]
    highs = [next(high) for _ in range(6)]
    assert lows == pytest.approx([0.075, 0.15, 0.3, 0.6, 0.75, 0.75])
    assert highs == pytest.approx([0.125, 0.25, 0.5, 1.0, 1.25, 1.25])


def test_poll_returns_the_first_answer_and_sleeps_between_checks() -> None:
    fake = FakeTime()
    answers = iter([None, None, "FINISHED"])
    lefts: list[float] = []

    def check(left: float) -> str | None:
        lefts.append(left)
        return next(answers)

    policy = PollPolicy(first=0.1, longest=1.0, growth=2.0, random=lambda: 0.5, **_time(fake))
    assert poll(check, timeout=10, policy=policy) == "FINISHED"
    assert fake.sleeps == pytest.approx([0.1, 0.2])
    assert lefts == pytest.approx([10.0, 9.9, 9.7])


def test_poll_raises_poll_timeout_at_the_deadline() -> None:
    fake = FakeTime()
    calls = []

    def check(left: float) -> None:
        calls.append(left)

    policy = PollPolicy(first=0.5, longest=0.5, random=lambda: 0.5, **_time(fake))
    with pytest.raises(PollTimeout):
        poll(check, timeout=2.0, policy=policy)
    assert sum(fake.sleeps) == pytest.approx(2.0)
    assert len(calls) == 4


def test_poll_does_not_sleep_after_a_check_that_waited_itself() -> None:
    """A long poll (the server waited) is followed by the next check at once."""
    fake = FakeTime()
    answers = iter([None, None, "done"])

    def long_poll(left: float) -> str | None:
        fake.now += min(left, 5.0)  # the server held the request for up to 5 s
        return next(answers)

    policy = PollPolicy(first=1.0, longest=2.0, random=lambda: 0.5, **_time(fake))
    assert poll(long_poll, timeout=60, policy=policy) == "done"
    assert fake.sleeps == []


def test_poll_sleeps_only_what_is_left_of_the_interval() -> None:
    fake = FakeTime()
    answers = iter([None, "done"])

    def slow(_left: float) -> str | None:
        fake.now += 0.3
        return next(answers)

    policy = PollPolicy(first=1.0, longest=1.0, random=lambda: 0.5, **_time(fake))
    poll(slow, timeout=60, policy=policy)
    assert fake.sleeps == pytest.approx([0.7])


def test_poll_never_sleeps_past_the_deadline() -> None:
    fake = FakeTime()
    policy = PollPolicy(first=5.0, longest=5.0, random=lambda: 0.5, **_time(fake))
    with pytest.raises(PollTimeout):
        poll(lambda _left: None, timeout=1.0, policy=policy)
    assert fake.sleeps == pytest.approx([1.0])


def _time(fake: FakeTime) -> dict[str, Any]:
    return {"sleep": fake.sleep, "clock": fake.clock}


# ---------------------------------------------------------------- token bucket


def test_bucket_allows_its_burst_then_spaces_calls_at_its_rate() -> None:
    fake = FakeTime()
    bucket = TokenBucket(rate=10, burst=3, clock=fake.clock, sleep=fake.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.1, 0.1])


def test_bucket_refills_while_idle_but_never_above_its_burst() -> None:
    fake = FakeTime()
    bucket = TokenBucket(rate=2, burst=2, clock=fake.clock, sleep=fake.sleep)
    bucket.acquire()
    bucket.acquire()
    fake.now += 100  # long idle: still only 2 tokens
    assert [bucket.acquire() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])


def test_bucket_serves_waiting_callers_in_turn() -> None:
    """Callers that arrive together queue up: each waits one interval more than the last."""
    now = [0.0]
    bucket = TokenBucket(rate=4, burst=1, clock=lambda: now[0], sleep=lambda _s: None)
    waits = [bucket.acquire() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.25, 0.5, 0.75])


def test_bucket_is_shared_safely_by_threads() -> None:
    fake = FakeTime()
    bucket = TokenBucket(rate=100, burst=1, clock=fake.clock, sleep=lambda _s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = bucket.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 200 calls on a frozen clock: every token after the first is debt, 1/100 s each.
    assert sorted(waits) == pytest.approx([n / 100 for n in range(200)])


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0), (-1, 1)])
def test_bucket_refuses_a_rate_or_burst_that_is_not_positive(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate, burst)


def test_limiter_keeps_one_bucket_per_operation() -> None:
    fake = FakeTime()
    limiter = RateLimiter(rates={"A": 1.0, "B": 1.0}, clock=fake.clock, sleep=fake.sleep)
    assert limiter.acquire("A") == 0.0
    assert limiter.acquire("B") == 0.0
    assert limiter.acquire("A") == pytest.approx(1.0)


def test_get_statement_result_v2_counts_against_get_statement_result() -> None:
    fake = FakeTime()
    limiter = RateLimiter(clock=fake.clock, sleep=fake.sleep)
    assert limiter.bucket("GetStatementResultV2") is limiter.bucket("GetStatementResult")
    assert limiter.bucket("GetStatementResult").rate == DATA_API_RATES["GetStatementResult"]


def test_unknown_operations_get_the_default_rate() -> None:
    limiter = RateLimiter(default_rate=7.0)
    assert limiter.bucket("SomethingNew").rate == 7.0


def test_the_shared_limiter_is_one_per_process() -> None:
    assert shared_rate_limiter() is shared_rate_limiter()
