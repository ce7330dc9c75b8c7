"""A DuckDB file held by another process: a run waits for it (bounded, saying so), and fails
with one clear error when the wait runs out. The other process is real (a child Python holding
a read-write connection), as a notebook or a second sync would be."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from shiftsync.destinations.duckdb import DuckDBDestination, lock_holder
from shiftsync.errors import DestinationError
from shiftsync.local.standin import StandInInfo
from tests.support import (
    checkout_env,
    lines_until,
    start_shiftsync,
    write_category_sync,
    write_external_id,
)

HOLDER = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
connection.close()
print("released", flush=True)
"""


@contextlib.contextmanager
def held(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process with the file open for writing, until the block ends (or `release`)."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "holding\n"
        yield child
    finally:
        release(child)
        child.wait(timeout=30)


def release(child: subprocess.Popen[str]) -> None:
    if child.poll() is None and child.stdin is not None and not child.stdin.closed:
        child.stdin.write("\n")
        child.stdin.close()


class Announced(logging.Handler):
    """Sets `seen` when the destination says it waits for the file."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if "is locked by another process" in record.getMessage():
            self.seen.set()


@pytest.fixture
def announced() -> Iterator[Announced]:
    handler = Announced()
    logger = logging.getLogger("shiftsync.destinations")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_a_held_file_is_waited_for_then_opened(tmp_path: Path, announced: Announced) -> None:
    path = tmp_path / "shared.duckdb"
    destination = DuckDBDestination(path, lock_timeout=120)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            destination.check()
        except BaseException as error:
            errors.append(error)

    with held(path) as child:
        opener = threading.Thread(target=open_it)
        opener.start()
        assert announced.seen.wait(timeout=60), announced.messages
        assert f"(PID {child.pid})" in announced.messages[0]
        assert "waiting up to 120 s" in announced.messages[0]
        release(child)
        opener.join(timeout=120)
    assert errors == []
    destination.close()


def test_the_wait_is_bounded_and_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "shared.duckdb"
    with held(path) as child:
        destination = DuckDBDestination(path, lock_timeout=0)
        with pytest.raises(DestinationError) as info:
            destination.check()
    error = info.value
    assert error.message == (
        f"DuckDB file {str(path)!r} is locked by another process (PID {child.pid}); "
        "waited 0 s for it"
    )
    assert error.fix is not None
    assert "lock_timeout_seconds" in error.fix


def test_lock_holder_reads_only_lock_conflicts() -> None:
    assert lock_holder(ValueError("Could not set lock on file")) is None
    conflict = duckdb.IOException(
        'IO Error: Could not set lock on file "/x.duckdb": Conflicting lock is held in '
        "/usr/bin/python3 (PID 4242). See also https://duckdb.org/docs"
    )
    assert lock_holder(conflict) == " (PID 4242)"
    assert lock_holder(duckdb.IOException("IO Error: Could not set lock on file x")) == ""
    assert lock_holder(duckdb.IOException("IO Error: disk full")) is None


def test_a_sync_waits_for_a_notebook_to_close_the_file(tmp_path: Path, info: StandInInfo) -> None:
    # It used to fail every table at once with "check the file is not opened by another program".
    write_external_id(tmp_path, info.external_id)
    write_category_sync(tmp_path, info)
    env = checkout_env(info, TERM="dumb")
    with held(tmp_path / "out.duckdb") as child:
        sync = start_shiftsync(tmp_path, env, "sync", "--json")
        seen = lines_until(sync.stderr, lambda line: "is locked by another process" in line)
        assert f"(PID {child.pid})" in seen[-1], seen
        release(child)
        out, err = sync.communicate(timeout=120)
    assert sync.returncode == 0, "".join(seen) + err
    assert json.loads(out)["status"] == "ok"


READER = """
import sys, duckdb
with duckdb.connect(sys.argv[1], read_only=True) as db:
    print(db.execute("SELECT sum(n) FROM numbers").fetchone()[0], flush=True)
"""


def test_the_reader_copy_answers_while_the_file_is_held(tmp_path: Path) -> None:
    import pyarrow as pa

    from shiftsync.destinations.base import LoadMode, LoadSpec

    path, copy = tmp_path / "main.duckdb", tmp_path / "read" / "main-copy.duckdb"
    destination = DuckDBDestination(path, reader_copy=copy)
    schema = pa.schema([pa.field("n", pa.int64())])
    load = destination.start_load(LoadSpec(target="numbers", schema=schema, mode=LoadMode.REPLACE))
    load.write(pa.record_batch([pa.array([1, 2, 3], pa.int64())], schema=schema))
    load.commit(None)
    assert not copy.exists()  # published when the run closes the file
    destination.close()
    with held(path):
        # The main file is locked for everyone else; the copy is not.
        with pytest.raises(duckdb.IOException):
            duckdb.connect(str(path), read_only=True)
        read = subprocess.run(
            [sys.executable, "-c", READER, str(copy)], capture_output=True, text=True, timeout=60
        )
    assert (read.returncode, read.stdout) == (0, "6\n"), read.stderr
    assert [p.name for p in copy.parent.iterdir()] == ["main-copy.duckdb"]
