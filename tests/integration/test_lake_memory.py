"""What an Iceberg sync keeps resident while it reads: pyiceberg's writer is loaded by the
commit, not before, and the check a sync runs before reading writes no probe table.

The read is where a load's memory peaks (bench/memory.py's timeline), so whatever is imported
before it stays resident through the peak. Each case runs in a fresh interpreter: sys.modules
of the test process already holds everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings
from shiftsync.errors import DestinationError

SRC = Path(__file__).resolve().parents[2] / "src"
WRITER = "pyiceberg.io.pyarrow"

PROGRAM = textwrap.dedent(
    """
    import json, sys
    import pyarrow as pa
    from shiftsync.destinations.base import LoadMode, LoadSpec
    from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings

    folder = sys.argv[1]
    seen = {}
    destination = IcebergDestination(
        IcebergSettings("sql", folder + "/wh", uri="sqlite:///" + folder + "/catalog.db")
    )
    seen["imported"] = "%(writer)s" in sys.modules
    destination.check()
    seen["checked"] = "%(writer)s" in sys.modules
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    for mode in (LoadMode.REPLACE, LoadMode.MERGE):
        load = destination.start_load(
            LoadSpec("t", schema, mode, primary_key=("id",), sort_key=("id",))
        )
        load.write(pa.record_batch([pa.array([1, 2]), pa.array(["a", "b"])], schema=schema))
        seen[f"{mode}-staged"] = "%(writer)s" in sys.modules
        load.commit({"cursor": 1})
        seen[f"{mode}-committed"] = "%(writer)s" in sys.modules
    destination.close()
    print(json.dumps(seen))
    """
) % {"writer": WRITER}


def _run(folder: Path) -> dict[str, bool]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seen: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


def test_pyiceberg_s_writer_is_loaded_by_the_first_commit_not_before(tmp_path: Path) -> None:
    seen = _run(tmp_path)
    # Neither importing the destination, nor the check a sync runs before reading, nor
    # staging the rows of a new table loads the writer: the first commit does.
    assert seen["imported"] is False
    assert seen["checked"] is False
    assert seen["replace-staged"] is False
    assert seen["replace-committed"] is True
    assert seen["merge-committed"] is True


def test_the_check_before_a_sync_leaves_nothing_and_the_probe_drops_its_table(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "wh"
    destination = IcebergDestination(
        IcebergSettings("sql", str(warehouse), uri=f"sqlite:///{tmp_path / 'catalog.db'}")
    )
    try:
        destination.check()
        catalog = destination.catalog()
        assert catalog.list_tables(destination.settings.namespace) == []
        # The warehouse took the probe file and gave it back; no table folder was made.
        assert list(warehouse.iterdir()) == []
        destination.probe()  # `shiftsync check`: a probe table created, written, read, dropped
        assert catalog.list_tables(destination.settings.namespace) == []
    finally:
        destination.close()


@pytest.mark.parametrize("method", ["check", "probe"])
def test_a_warehouse_that_is_a_file_fails_both_checks_naming_it(
    tmp_path: Path, method: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    destination = IcebergDestination(
        IcebergSettings("sql", str(blocker / "wh"), uri=f"sqlite:///{tmp_path / 'c.db'}")
    )
    try:
        with pytest.raises(DestinationError, match="a-file") as caught:
            getattr(destination, method)()
        assert caught.value.fix
    finally:
        destination.close()
