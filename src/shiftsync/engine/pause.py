"""Debug pause: lets the crash tests stop a run at a chosen point.

A test sets SHIFTSYNC_DEBUG_PAUSE_AT, waits for the marker line on stderr, then kills the run
(or lets it go on) to check that nothing is lost or doubled whatever moment the run stops at.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Final, Literal

PAUSE_ENV: Final = "SHIFTSYNC_DEBUG_PAUSE_AT"
PAUSE_SECONDS_ENV: Final = "SHIFTSYNC_DEBUG_PAUSE_SECONDS"
RESUME_FILE_ENV: Final = "SHIFTSYNC_DEBUG_RESUME_FILE"
PAUSE_MARKER: Final = "SHIFTSYNC_PAUSED"
PausePoint = Literal[
    "after_first_batch_read", "after_first_batch_written", "before_commit", "before_verify"
]
PAUSE_POINTS: Final[tuple[str, ...]] = (
    "after_first_batch_read",
    "after_first_batch_written",
    "before_commit",
    "before_verify",
)


def debug_pause(
    point: PausePoint,
    table: str,
    *,
    stream: IO[str] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """When SHIFTSYNC_DEBUG_PAUSE_AT=<point>[:<table pattern>] matches, print a marker line and
    wait (SHIFTSYNC_DEBUG_PAUSE_SECONDS, default 300, or until SHIFTSYNC_DEBUG_RESUME_FILE
    exists, or `stop` is set: a stopping run goes on to where it checks for that). Does nothing
    when the variable is unset."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted:
        return
    wanted_point, _, pattern = wanted.partition(":")
    if wanted_point != point or (pattern and not fnmatch.fnmatchcase(table, pattern)):
        return
    out = stream or sys.stderr
    print(f"{PAUSE_MARKER} {point} {table}", file=out, flush=True)
    deadline = time.monotonic() + float(os.environ.get(PAUSE_SECONDS_ENV, "300"))
    resume = os.environ.get(RESUME_FILE_ENV)
    while time.monotonic() < deadline:
        if (resume and Path(resume).exists()) or (stop is not None and stop.is_set()):
            return
        time.sleep(0.02)
