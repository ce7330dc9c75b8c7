"""The machine-wide Data API rate limit: a file-locked token bucket, driven by a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiftsync.config.models import RateLimitsConfig
from shiftsync.redshift.rate_limit import (
    RECOVER_AFTER_SECONDS,
    FileRateLimiter,
    SharedBuckets,
    rate_limit_folder,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(folder: Path, clock: Clock, rate: float = 4.0) -> FileRateLimiter:
    return FileRateLimiter(
        folder,
        "123456789012-us-east-1",
        {"GetStatementResult": rate},
        clock=clock,
        sleep=clock.sleep,
    )


def test_two_limiters_on_one_folder_share_the_bucket(tmp_path: Path) -> None:
    clock = Clock()
    first, second = limiter(tmp_path, clock), limiter(tmp_path, clock)
    # Capacity 1 (a quarter second of 4/s): the first call is free, each next waits 1/4 s,
    # whichever process makes it.
    waits = [first.acquire("GetStatementResult"), second.acquire("GetStatementResultV2")]
    waits += [first.acquire("GetStatementResult"), second.acquire("GetStatementResult")]
    assert waits == pytest.approx([0.0, 0.25, 0.25, 0.25])


def test_separate_accounts_have_separate_buckets(tmp_path: Path) -> None:
    clock = Clock()
    one = limiter(tmp_path, clock)
    other = FileRateLimiter(
        tmp_path,
        "210987654321-us-east-1",
        {"GetStatementResult": 4.0},
        clock=clock,
        sleep=clock.sleep,
    )
    assert one.acquire("GetStatementResult") == 0.0
    assert other.acquire("GetStatementResult") == 0.0


def test_throttling_halves_the_shared_rate_then_it_recovers(tmp_path: Path) -> None:
    clock = Clock()
    first, second = limiter(tmp_path, clock, rate=20.0), limiter(tmp_path, clock, rate=20.0)
    first.throttled("GetStatementResult")
    assert second.current_rate("GetStatementResult") == pytest.approx(10.0)
    for _ in range(10):
        first.throttled("GetStatementResult")
    assert second.current_rate("GetStatementResult") == pytest.approx(2.0)  # a tenth at least
    clock.now += RECOVER_AFTER_SECONDS
    assert second.current_rate("GetStatementResult") == pytest.approx(2.5)


def test_a_clock_that_stepped_back_does_not_block(tmp_path: Path) -> None:
    clock = Clock()
    shared = limiter(tmp_path, clock)
    shared.acquire("GetStatementResult")
    clock.now -= 3600
    assert shared.acquire("GetStatementResult") == pytest.approx(0.25)


def test_the_bucket_files_are_the_users_own(tmp_path: Path) -> None:
    folder = tmp_path / "rl"
    limiter(folder, Clock()).acquire("ExecuteStatement")
    assert folder.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o600}


def test_the_folder_follows_xdg_cache_home(tmp_path: Path) -> None:
    assert rate_limit_folder({"XDG_CACHE_HOME": str(tmp_path)}) == (
        tmp_path / "shiftsync" / "rate-limits"
    )


def test_configured_rates_default_to_aws_quotas() -> None:
    assert RateLimitsConfig().rates() == {
        "ExecuteStatement": 30.0,
        "GetStatementResult": 20.0,
        "DescribeStatement": 100.0,
    }


def test_a_custom_endpoint_has_a_bucket_of_its_own(tmp_path: Path) -> None:
    from shiftsync.redshift.rate_limit import shared_file_limiter

    rates = {"GetStatementResult": 4.0}
    public = shared_file_limiter("123456789012", "us-east-1", rates, tmp_path)
    local = shared_file_limiter(
        "123456789012", "us-east-1", rates, tmp_path, endpoint="http://127.0.0.1:5000"
    )
    again = shared_file_limiter(
        "123456789012", "us-east-1", rates, tmp_path, endpoint="http://127.0.0.1:5000"
    )
    assert public.path != local.path
    assert local is again


def test_shared_buckets_answer_the_wait_in_arrival_order_without_sleeping() -> None:
    clock = Clock()
    buckets = SharedBuckets({"GetStatementResult": 4.0}, clock=clock)
    # Four callers at one instant: the first goes, each next waits a quarter second longer
    # (each sleeps in its own process; the owner never does).
    waits = [buckets.take("GetStatementResult") for _ in range(3)]
    waits.append(buckets.take("GetStatementResultV2"))  # the same quota
    assert waits == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert clock.slept == []
    assert buckets.take("ExecuteStatement") == 0.0  # another quota, its own bucket


def test_shared_buckets_slow_down_when_throttled_and_recover() -> None:
    clock = Clock()
    buckets = SharedBuckets({"GetStatementResult": 4.0}, clock=clock)
    buckets.throttled("GetStatementResult")
    assert buckets.current_rate("GetStatementResult") == 2.0
    clock.now += RECOVER_AFTER_SECONDS
    assert buckets.current_rate("GetStatementResult") == 2.5


def test_shared_buckets_and_the_file_bucket_wait_alike(tmp_path: Path) -> None:
    """One bucket arithmetic for both: the same calls at the same times, the same waits."""
    file_clock, memory_clock = Clock(), Clock()
    in_file = FileRateLimiter(
        tmp_path, "k", {"GetStatementResult": 4.0}, clock=file_clock, sleep=lambda _s: None
    )
    in_memory = SharedBuckets({"GetStatementResult": 4.0}, clock=memory_clock)
    steps = [0.0, 0.0, 0.1, 0.0, 1.0, 0.05, 0.0, 0.0]
    file_waits, memory_waits = [], []
    for step in steps:
        file_clock.now += step
        memory_clock.now += step
        file_waits.append(in_file.acquire("GetStatementResult"))
        memory_waits.append(in_memory.take("GetStatementResult"))
    assert file_waits == pytest.approx(memory_waits)
    assert max(file_waits) > 0  # the sequence does run the bucket into debt
