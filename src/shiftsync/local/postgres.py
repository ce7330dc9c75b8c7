"""A disposable PostgreSQL cluster on 127.0.0.1, in a temporary folder.

`initdb` refuses to run as root, so when we are root the server runs as the `postgres` user
(Debian's package creates it). The cluster is tuned for tests (no fsync) and removed on stop.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Self

from shiftsync.errors import StandInError

_FAST_SETTINGS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=200 -c shared_buffers=128MB -c jit=off"
)


def find_pg_bindir() -> Path:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl)."""
    explicit = os.environ.get("SHIFTSYNC_PG_BINDIR")
    candidates: list[Path] = [Path(explicit)] if explicit else []
    versioned = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2] or 0)
    )
    candidates += [Path(p) for p in reversed(versioned)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise StandInError(
        "PostgreSQL's server programs (initdb, pg_ctl) were not found",
        fix="install them with `apt-get install -y postgresql` (make setup does this), "
        "or point SHIFTSYNC_PG_BINDIR at the folder that holds initdb",
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TempPostgres:
    """One PostgreSQL cluster for the lifetime of this object; superuser `postgres`, trust auth."""

    def __init__(self, port: int | None = None) -> None:
        self.bindir = find_pg_bindir()
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="shiftsync-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._running = False

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", "postgres", "--", *argv]

    def _run(self, argv: list[str], what: str) -> None:
        done = subprocess.run(
            self._as_server_user(argv), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            tail = detail[-1] if detail else f"exit code {done.returncode}"
            log_tail = ""
            if self.log.exists():
                lines = self.log.read_text(errors="replace").strip().splitlines()
                log_tail = f"; server log: {lines[-1]}" if lines else ""
            raise StandInError(
                f"PostgreSQL {what} failed: {tail}{log_tail}",
                fix="check that the port is free and that the `postgres` user exists",
            )

    def start(self) -> Self:
        if os.geteuid() == 0:
            shutil.chown(self.folder, user="postgres", group="postgres")
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.data), "-U", "postgres", "-A", "trust",
                "--no-sync", "-E", "UTF8", "--locale=C",
            ],
            "initdb",
        )  # fmt: skip
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 {_FAST_SETTINGS}"
        self._run(
            [
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                "-w", "-t", "60", "-o", options, "start",
            ],
            f"start on 127.0.0.1:{self.port}",
        )  # fmt: skip
        self._running = True
        # A crashed caller must not leave a server behind.
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._running:
            self._running = False
            subprocess.run(
                self._as_server_user(
                    [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
                ),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.folder, ignore_errors=True)

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"

    def url(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
