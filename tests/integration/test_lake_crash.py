"""Iceberg and Delta under kill -9 at three points, and a second writer of the same table.

The contract suite kills a load before its commit; here the child is killed after its commit
(the new rows and state are the table) and inside it, after the data files are written and
before the one catalog/log commit (the old rows and state are the table; the files written
are orphans no snapshot or log entry references). Each case then reruns a load and compares.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from shiftsync.destinations.base import Destination, LoadMode, LoadSpec
from shiftsync.destinations.delta import DeltaDestination, DeltaSettings
from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings
from shiftsync.errors import DestinationError

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])

_CHILD = """
import sys
import pyarrow as pa
from shiftsync.destinations.base import LoadMode, LoadSpec
from shiftsync.destinations.lake.stage import LakeStage
flavor, point, *args = sys.argv[1:]


def wait_here():
    print("inside", flush=True)
    sys.stdin.read()


if flavor == "iceberg":
    import pyiceberg.table
    from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings
    destination = IcebergDestination(IcebergSettings("sql", warehouse=args[0], uri=args[1]))
    if point == "inside":
        # The data files are written; the one catalog commit is next.
        pyiceberg.table.Transaction.commit_transaction = lambda self: wait_here()
else:
    from shiftsync.destinations.delta import DeltaDestination, DeltaSettings
    destination = DeltaDestination(DeltaSettings(args[0]))
    if point == "inside":
        # delta-rs writes files and the log entry in one call: stop it while it pulls rows.
        chunks = LakeStage.chunks

        def stalled(self, **kwargs):
            yield from chunks(self, **kwargs)
            wait_here()

        LakeStage.chunks = stalled
schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
spec = LoadSpec("t", schema, LoadMode.MERGE, primary_key=("id",))
load = destination.start_load(spec)
load.write(pa.RecordBatch.from_pydict({"id": [2, 3], "v": ["new", "new"]}, schema=schema))
load.commit({"run": 2})
print("after", flush=True)
sys.stdin.read()
"""


def _open(flavor: str, tmp_path: Path) -> tuple[Callable[[], Destination], list[str]]:
    if flavor == "iceberg":
        warehouse, uri = str(tmp_path / "wh"), f"sqlite:///{tmp_path / 'cat.db'}"
        return (
            lambda: IcebergDestination(IcebergSettings("sql", warehouse=warehouse, uri=uri)),
            [warehouse, uri],
        )
    root = str(tmp_path / "delta")
    return lambda: DeltaDestination(DeltaSettings(root)), [root]


def _load(destination: Destination, mode: LoadMode, ids: list[int], v: str, run: int) -> None:
    running = destination.start_load(LoadSpec("t", SCHEMA, mode, primary_key=("id",)))
    running.write(pa.RecordBatch.from_pydict({"id": ids, "v": [v] * len(ids)}, schema=SCHEMA))
    running.commit({"run": run})


def _rows(destination: Destination) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in destination.read_table("t").sort_by("id").to_pylist()]


@pytest.mark.parametrize("flavor", ["iceberg", "delta"])
@pytest.mark.parametrize("point", ["inside", "after"])
def test_kill_inside_and_after_the_commit(flavor: str, point: str, tmp_path: Path) -> None:
    open_, recipe = _open(flavor, tmp_path)
    first = open_()
    _load(first, LoadMode.REPLACE, [1, 2], "old", 1)
    first.close()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, flavor, point, *recipe],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == point
    finally:
        child.kill()  # SIGKILL
        child.wait(timeout=30)

    second = open_()
    if point == "after":
        assert _rows(second) == [(1, "old"), (2, "new"), (3, "new")]
        assert second.read_state("t", "t") == {"run": 2}
    else:
        assert _rows(second) == [(1, "old"), (2, "old")]
        assert second.read_state("t", "t") == {"run": 1}
    # The rerun of the killed load lands whole, whatever the kill left.
    _load(second, LoadMode.MERGE, [2, 3], "new", 2)
    assert _rows(second) == [(1, "old"), (2, "new"), (3, "new")]
    assert second.read_state("t", "t") == {"run": 2}
    second.close()


@pytest.mark.parametrize("flavor", ["iceberg", "delta"])
def test_a_second_writer_of_the_same_table_is_refused(flavor: str, tmp_path: Path) -> None:
    open_, _ = _open(flavor, tmp_path)
    one, two = open_(), open_()
    _load(one, LoadMode.REPLACE, [1, 2, 3], "base", 1)
    spec = LoadSpec("t", SCHEMA, LoadMode.MERGE, primary_key=("id",))
    first, second = one.start_load(spec), two.start_load(spec)
    first.write(pa.RecordBatch.from_pydict({"id": [1], "v": ["first"]}, schema=SCHEMA))
    second.write(pa.RecordBatch.from_pydict({"id": [1, 4], "v": ["second"] * 2}, schema=SCHEMA))
    first.commit({"run": 2})
    # Both formats commit optimistically: the later merge saw a table that has changed since.
    with pytest.raises(DestinationError, match="another writer") as refused:
        second.commit({"run": 3})
    second.abort()
    assert refused.value.fix
    assert _rows(one) == [(1, "first"), (2, "base"), (3, "base")]
    assert one.read_state("t", "t") == {"run": 2}
    one.close()
    two.close()
