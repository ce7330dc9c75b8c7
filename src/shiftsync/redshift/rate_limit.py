"""One Data API rate limit per AWS account and region, shared by every shiftsync process of
the machine.

AWS's Data API quotas are transactions per second per account and region, counted at the
service: two shiftsync processes (a schedule and a manual run, `serve` and the CLI) each
keeping its own bucket would together call twice the quota and be throttled. So the token
buckets live in one small file per account and region, under a per-user folder
(`$XDG_CACHE_HOME/shiftsync/rate-limits/`, default `~/.cache/shiftsync/rate-limits/`, mode
0700, files 0600), updated under an exclusive `flock`: each call takes its token inside the
lock, possibly into debt, and sleeps off the debt outside it, so callers are served in
arrival order and none spins.

Throttling responses adapt the shared rate down (halved, to a tenth at most); after ten quiet
seconds it grows back a quarter at a time. Anything that limits (this file bucket, the
in-process `RateLimiter` of retry.py, the Ray executor's actor around `SharedBuckets`) meets the
`Limiter` protocol.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Final, Protocol, TypeAlias, cast

from shiftsync.redshift.retry import DATA_API_RATES, DEFAULT_RATE, SAME_QUOTA

# The shared file: per quota name, its bucket's numbers (tokens, updated, rate, ...).
Buckets: TypeAlias = dict[str, dict[str, float]]

# A throttled rate is halved, down to this share of the configured one.
MIN_FACTOR: Final = 0.1
DOWN: Final = 0.5
UP: Final = 1.25
RECOVER_AFTER_SECONDS: Final = 10.0
# At most this many seconds' worth of calls at once (never less than one call).
BURST_SECONDS: Final = 0.25
_SAFE_KEY: Final = re.compile(r"[^A-Za-z0-9_.-]")


class Limiter(Protocol):
    """What the Data API boundary needs of a rate limiter."""

    def acquire(self, operation: str) -> float:
        """Wait for a slot for one call of `operation`; the seconds waited."""
        ...

    def throttled(self, operation: str) -> None:
        """AWS throttled a call of `operation`: slow down."""
        ...


def rate_limit_folder(env: Mapping[str, str] | None = None) -> Path:
    """The per-user folder of the shared buckets (XDG's cache folder)."""
    env = os.environ if env is None else env
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "shiftsync" / "rate-limits"


class FileRateLimiter:
    """Token buckets per Data API operation, shared through a file by every process."""

    def __init__(
        self,
        folder: Path,
        key: str,
        rates: Mapping[str, float] | None = None,
        *,
        default_rate: float = DEFAULT_RATE,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rates = dict(DATA_API_RATES if rates is None else rates)
        self.default_rate = default_rate
        self.clock = clock
        self.sleep = sleep
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        safe = _SAFE_KEY.sub("_", key)
        self.path = folder / f"{safe}.json"
        self._lock_path = folder / f"{safe}.lock"
        # flock is per open file: threads of this process also queue on this lock first.
        self._thread_lock = threading.Lock()

    def _rate(self, name: str) -> float:
        return self.rates.get(name, self.default_rate)

    @contextlib.contextmanager
    def _state(self) -> Iterator[Buckets]:
        with self._thread_lock:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                state = self._read()
                yield state
                self._write(state)
            finally:
                os.close(fd)  # closing releases the lock

    def _read(self) -> Buckets:
        try:
            loaded: object = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        # Only `_write` writes this file, in this shape (`_bucket` starts a bucket that is
        # not a dict afresh).
        return cast("Buckets", loaded) if isinstance(loaded, dict) else {}

    def _write(self, state: Buckets) -> None:
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        os.replace(temporary, self.path)

    def acquire(self, operation: str) -> float:
        name = SAME_QUOTA.get(operation, operation)
        with self._state() as state:
            wait = take_token(state, name, self._rate(name), self.clock())
        if wait > 0:
            self.sleep(wait)
        return wait

    def throttled(self, operation: str) -> None:
        name = SAME_QUOTA.get(operation, operation)
        with self._state() as state:
            slow_down(state, name, self._rate(name), self.clock())

    def current_rate(self, operation: str) -> float:
        """The rate in force now for `operation` (after throttling)."""
        name = SAME_QUOTA.get(operation, operation)
        with self._state() as state:
            return refreshed(state, name, self._rate(name), self.clock())["rate"]


class SharedBuckets:
    """The same token buckets held in memory, for one owner that many callers ask (the Ray
    executor runs it as an actor): `take` answers the seconds to wait instead of sleeping, as
    the caller sleeps in its own process."""

    def __init__(
        self,
        rates: Mapping[str, float] | None = None,
        *,
        default_rate: float = DEFAULT_RATE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rates = dict(DATA_API_RATES if rates is None else rates)
        self.default_rate = default_rate
        self.clock = clock
        self._state: Buckets = {}
        self._lock = threading.Lock()

    def _rate(self, name: str) -> float:
        return self.rates.get(name, self.default_rate)

    def take(self, operation: str) -> float:
        """Take one call's token of `operation`; the seconds the caller must wait first."""
        name = SAME_QUOTA.get(operation, operation)
        with self._lock:
            return take_token(self._state, name, self._rate(name), self.clock())

    def throttled(self, operation: str) -> None:
        name = SAME_QUOTA.get(operation, operation)
        with self._lock:
            slow_down(self._state, name, self._rate(name), self.clock())

    def current_rate(self, operation: str) -> float:
        name = SAME_QUOTA.get(operation, operation)
        with self._lock:
            return refreshed(self._state, name, self._rate(name), self.clock())["rate"]


def refreshed(state: Buckets, name: str, configured: float, now: float) -> dict[str, float]:
    """The bucket of quota `name` in `state`, refilled up to `now` (and started if missing)."""
    found = state.get(name)
    bucket: dict[str, float] = found if isinstance(found, dict) else {}
    capacity = max(1.0, configured * BURST_SECONDS)
    updated = float(bucket.get("updated", now))
    # A clock that stepped back (or a file from another boot) starts the bucket afresh.
    if updated > now:
        updated = now
    factor = float(bucket.get("factor", 1.0))
    throttled_at = float(bucket.get("throttled_at", 0.0))
    if factor < 1.0 and now - throttled_at >= RECOVER_AFTER_SECONDS:
        factor = min(1.0, factor * UP)
        throttled_at = now
    rate = configured * factor
    tokens = float(bucket.get("tokens", capacity))
    tokens = min(capacity, tokens + (now - updated) * rate)
    bucket.update(tokens=tokens, updated=now, factor=factor, throttled_at=throttled_at, rate=rate)
    state[name] = bucket
    return bucket


def take_token(state: Buckets, name: str, configured: float, now: float) -> float:
    """Take one token (into debt if none is left); the seconds until the debt is paid."""
    bucket = refreshed(state, name, configured, now)
    bucket["tokens"] -= 1.0
    return -bucket["tokens"] / bucket["rate"] if bucket["tokens"] < 0 else 0.0


def slow_down(state: Buckets, name: str, configured: float, now: float) -> None:
    """AWS throttled a call of quota `name`: halve its rate (down to MIN_FACTOR of it)."""
    bucket = refreshed(state, name, configured, now)
    bucket["factor"] = max(MIN_FACTOR, bucket["factor"] * DOWN)
    bucket["rate"] = configured * bucket["factor"]
    bucket["throttled_at"] = now


_limiters: dict[tuple[Path, str, tuple[tuple[str, float], ...]], FileRateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_file_limiter(
    account: str,
    region: str,
    rates: Mapping[str, float],
    folder: Path | None = None,
    *,
    endpoint: str | None = None,
) -> FileRateLimiter:
    """The machine-wide limiter of an account and region (one object per process); a custom
    `endpoint` (AWS_ENDPOINT_URL_REDSHIFT_DATA) gets a bucket of its own."""
    place = folder or rate_limit_folder()
    name = f"{account}-{region}"
    if endpoint:
        name += "-" + hashlib.sha256(endpoint.encode()).hexdigest()[:12]
    key = (place, name, tuple(sorted(rates.items())))
    with _limiters_lock:
        found = _limiters.get(key)
        if found is None:
            found = FileRateLimiter(place, key[1], rates)
            _limiters[key] = found
        return found


__all__ = [
    "FileRateLimiter",
    "Limiter",
    "SharedBuckets",
    "rate_limit_folder",
    "shared_file_limiter",
]
