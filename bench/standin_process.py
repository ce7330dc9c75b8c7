"""The stand-in in a process of its own, so that a client's CPU and memory are the client's alone.

The parent starts `python -m bench.standin_process --scale S --page-bytes N --ready FILE`; the
child starts `StandIn`, writes what clients need (endpoints, keys, role, PostgreSQL DSN) to FILE
(mode 0600) in one rename, and serves until SIGTERM. The parent reads the file, and can read
the child's CPU time from /proc to attribute work to the server side.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Self

from shiftsync.errors import StandInError
from shiftsync.local.data_api.results import Limits
from shiftsync.local.info import StandInInfo

READY_POLL_SECONDS: Final = 0.2
STOP_GRACE_SECONDS: Final = 60.0
# Seeding TICKIT at scale 58 (10^7 sales) takes minutes; a stand-in not up by then is stuck.
DEFAULT_START_TIMEOUT: Final = 3600.0


@dataclass(frozen=True)
class StandInSpec:
    """What the stand-in process is started with."""

    scale: float
    page_bytes: int = Limits().page_bytes

    def argv(self, ready_file: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.standin_process",
            "--scale",
            repr(self.scale),
            "--page-bytes",
            str(self.page_bytes),
            "--ready",
            str(ready_file),
        ]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc), its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime field 14, stime field 15 (1-based).
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


class StandInProcess:
    """Start with `StandInProcess(spec, folder).start()`, or as a context manager."""

    def __init__(self, spec: StandInSpec, folder: Path) -> None:
        self.spec = spec
        self.folder = folder
        self.ready_file = folder / "standin.json"
        self.log_file = folder / "standin.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._info: StandInInfo | None = None
        self.startup_seconds = 0.0

    @property
    def info(self) -> StandInInfo:
        if self._info is None:
            raise StandInError("the stand-in process is not running", fix="call start() first")
        return self._info

    @property
    def pid(self) -> int:
        if self._process is None:
            raise StandInError("the stand-in process is not running", fix="call start() first")
        return self._process.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        started = time.monotonic()
        self._log = self.log_file.open("wb")
        self._process = subprocess.Popen(
            self.spec.argv(self.ready_file),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            self._wait_ready(started + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self, deadline: float) -> None:
        assert self._process is not None
        while not self.ready_file.exists():
            if self._process.poll() is not None:
                raise StandInError(
                    f"the stand-in process exited with code {self._process.returncode} before "
                    f"it was ready; last lines of {self.log_file}: {self.log_tail()}",
                    fix="read the log; PostgreSQL's server programs must be installed (make setup)",
                )
            if time.monotonic() > deadline:
                raise StandInError(
                    f"the stand-in (scale {self.spec.scale}) was not ready in time",
                    fix=f"read {self.log_file}; a large scale needs a longer timeout",
                )
            time.sleep(READY_POLL_SECONDS)
        self._info = StandInInfo.from_json(json.loads(self.ready_file.read_text()))

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        self.ready_file.unlink(missing_ok=True)
        self._info = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the child ------------------------------------------------------------------------------


def _write_ready(path: Path, document: dict[str, Any]) -> None:
    """Write the file in one rename, readable by its owner only (it holds access keys)."""
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(document, indent=2) + "\n")
    os.replace(temp, path)


def serve(spec: StandInSpec, ready_file: Path) -> None:
    from shiftsync.local.standin import StandIn, StandInOptions

    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started = time.monotonic()
    options = StandInOptions(scale=spec.scale, limits=Limits(page_bytes=spec.page_bytes))
    stand_in = StandIn(options).start()
    try:
        print(
            f"stand-in up on {stand_in.info.endpoint} (scale {spec.scale}, page "
            f"{spec.page_bytes} bytes) in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        _write_ready(ready_file, stand_in.info.as_json())
        while not stop.wait(0.5):
            pass
    finally:
        stand_in.stop()
        print("stand-in stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the stand-in for the benchmarks.")
    parser.add_argument("--scale", type=float, required=True)
    parser.add_argument("--page-bytes", type=int, default=Limits().page_bytes)
    parser.add_argument("--ready", type=Path, required=True)
    args = parser.parse_args(argv)
    serve(StandInSpec(args.scale, args.page_bytes), args.ready)


if __name__ == "__main__":
    main()
