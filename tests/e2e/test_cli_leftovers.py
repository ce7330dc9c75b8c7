"""Nothing left behind: a run killed with SIGKILL during a Parquet merge leaves its temporary
merge database in TMPDIR; the next run deletes it (and says so), as it deletes what a killed
run staged in S3. A full TMPDIR is reported as out of space, with the path and the fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import shiftsync
from shiftsync.errors import out_of_space
from shiftsync.local.standin import StandInInfo
from tests.e2e.test_cli_sync import environment
from tests.integration.test_sync import start_paused
from tests.support import standin_connection, write_external_id

# The destination kinds whose loads keep a local scratch folder, and that folder's kind.
SCRATCH_OF: dict[str, tuple[dict[str, str], str]] = {
    "parquet": ({"type": "parquet", "path": "lake"}, "merge"),
    "iceberg": ({"type": "iceberg", "warehouse": "warehouse"}, "lake"),
}


def merge_workspace(folder: Path, info: StandInInfo, kind: str = "parquet") -> None:
    write_external_id(folder, info.external_id)
    config = {
        "connections": {"warehouse": standin_connection(info)},
        "destinations": {"lake": SCRATCH_OF[kind][0]},
        "syncs": {
            "main": {
                "source": "warehouse",
                "destination": "lake",
                "tables": [
                    {
                        "include": "public.category",
                        "mode": "incremental",
                        "tracking_field": "catid",
                        "primary_key": ["catid"],
                    }
                ],
            }
        },
    }
    (folder / "shiftsync.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def run(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shiftsync", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("shiftsync-"))


@pytest.mark.parametrize("kind", list(SCRATCH_OF))
def test_kill_9_during_a_merge_leaves_nothing_after_the_next_run(
    info: StandInInfo, tmp_path: Path, kind: str
) -> None:
    """Parquet's merge database and an Iceberg load's stage (lake/stage.py) alike."""
    scratch_kind = SCRATCH_OF[kind][1]
    folder = tmp_path / "ws"
    folder.mkdir()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    merge_workspace(folder, info, kind)
    # The subprocess runs the shiftsync this test imported (a relative PYTHONPATH would not
    # survive its other working folder).
    code = str(Path(shiftsync.__file__).resolve().parents[1])
    env = {**environment(info), "TMPDIR": str(scratch), "PYTHONPATH": code}
    first = run(folder, env, "sync")  # the first run replaces; the next ones merge
    assert first.returncode == 0, first.stdout + first.stderr
    assert leftovers(scratch) == []
    process = start_paused(folder, env, "before_commit", "public.category")
    left = leftovers(scratch)
    assert [n for n in left if n.startswith(f"shiftsync-{scratch_kind}-{process.pid}-")], left
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert leftovers(scratch) == left  # kill -9: no cleanup code ran
    again = run(folder, env, "sync", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert leftovers(scratch) == []
    notes = " ".join(json.loads(again.stdout)["notes"])
    assert f"shiftsync-{scratch_kind}-" in notes
    assert "ended" in notes


def test_a_live_runs_scratch_is_not_touched(tmp_path: Path) -> None:
    from shiftsync.destinations.scratch import remove_stale_scratch

    mine = tmp_path / f"shiftsync-merge-{os.getpid()}-abc"
    mine.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = tmp_path / f"shiftsync-parquet-{int(dead.stdout)}-xyz"
    gone.mkdir()
    (gone / "part-00000.parquet").write_bytes(b"rows")
    stage = tmp_path / f"shiftsync-lake-{int(dead.stdout)}-uvw"  # a killed lake load's stage
    stage.mkdir()
    (stage / "stage.duckdb").write_bytes(b"rows")
    other = tmp_path / "shiftsync-pg-123"  # not scratch of a run
    other.mkdir()
    assert remove_stale_scratch(tmp_path) == [stage, gone]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])


def test_a_full_disk_is_reported_as_out_of_space_with_the_path(tmp_path: Path) -> None:
    # A real ENOSPC: /dev/full refuses every write with it.
    try:
        with open("/dev/full", "wb") as full:
            full.write(b"x" * 4096)
            full.flush()
    except OSError as error:
        problem = out_of_space(error)
    else:
        pytest.fail("/dev/full accepted a write")
    assert problem is not None
    assert "out of disk space" in problem.message
    assert "TMPDIR" in (problem.fix or "")
    duckdb_style = RuntimeError(
        'IO Error: Could not write file "/tmp/shiftsync-merge-1-x/stage.duckdb.wal": '
        "No space left on device"
    )
    problem = out_of_space(duckdb_style)
    assert problem is not None
    assert "/tmp/shiftsync-merge-1-x/stage.duckdb.wal" in problem.message
    assert "/tmp/shiftsync-merge-1-x" in (problem.fix or "")
    assert out_of_space(ValueError("no")) is None


@pytest.fixture
def tiny_tmpdir(tmp_path: Path) -> Iterator[Path]:
    """A 4 KiB tmpfs (one page): a real full disk for TMPDIR (mounting needs root)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_full_tmpdir_is_reported_as_out_of_space(
    info: StandInInfo, tmp_path: Path, tiny_tmpdir: Path
) -> None:
    folder = tmp_path / "ws"
    folder.mkdir()
    merge_workspace(folder, info)
    code = str(Path(shiftsync.__file__).resolve().parents[1])
    env = {**environment(info), "PYTHONPATH": code}
    assert run(folder, env, "sync").returncode == 0  # the first run replaces
    full = run(folder, {**env, "TMPDIR": str(tiny_tmpdir)}, "sync", "--json")
    assert full.returncode == 1, full.stdout + full.stderr
    (table,) = json.loads(full.stdout)["tables"]
    assert "out of disk space" in table["error"], json.dumps(table, indent=1)
    assert str(tiny_tmpdir) in table["error"] + (table["fix"] or "")
    assert "TMPDIR" in table["fix"]
    assert "bug in shiftsync" not in table["fix"]
    assert leftovers(tiny_tmpdir) == []  # the failed run removed its merge stage
