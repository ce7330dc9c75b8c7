"""`executor: ray`: the cases on a real Ray cluster, and the refusals that need none.

A Ray node's servers (GCS, raylet) bind every interface of the machine. So that the cluster the
tests start is reachable from the loopback only, its cases (ray_cluster_cases.py) run in a
child pytest inside a network namespace of their own (`unshare --net`), whose one interface is
the loopback; the stand-in, PostgreSQL and the cluster all start in there and end with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shiftsync.engine.observer import SyncOptions
from shiftsync.engine.sync import run_sync
from shiftsync.errors import ConfigError
from shiftsync.local.postgres import free_port
from shiftsync.local.standin import StandInInfo
from tests.integration.test_sync import make_workspace

CASES = Path(__file__).with_name("ray_cluster_cases.py")
ROOT = Path(__file__).resolve().parents[2]


def _run_cluster_cases(marker: str) -> str:
    """The cluster cases that `marker` selects, in a child pytest in a network namespace whose
    one interface is the loopback; their report."""
    pytest.importorskip("ray", reason="the ray extra (pip install 'shiftsync[ray]') is missing")
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None or os.geteuid() != 0:
        message = "a private network namespace needs root, unshare and ip (util-linux, iproute2)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    inner = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", marker]
    script = f'{ip} link set lo up && exec "$@"'
    ran = subprocess.run(
        [unshare, "--net", "sh", "-c", script, "sh", *inner, str(CASES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = ran.stdout + ran.stderr
    assert ran.returncode == 0, report
    return report


def test_the_cluster_cases_pass_in_a_loopback_only_network() -> None:
    report = _run_cluster_cases("not slow")
    assert "4 passed, 9 deselected" in report, report


@pytest.mark.slow
def test_the_slow_cluster_cases_pass_in_a_loopback_only_network() -> None:
    report = _run_cluster_cases("slow")
    assert "9 passed, 4 deselected" in report, report


def test_an_unreachable_cluster_stops_the_run_with_a_fix(tmp_path: Path, info: StandInInfo) -> None:
    closed = f"127.0.0.1:{free_port()}"
    workspace = make_workspace(
        tmp_path / "ws", info, {"type": "duckdb", "path": "out.duckdb"}, ["public.venue"]
    )
    with pytest.raises(ConfigError) as refused:
        run_sync(workspace, "main", SyncOptions(executor="ray", ray_address=closed))
    assert f"the Ray cluster at {closed} cannot be reached" in refused.value.message
    assert refused.value.fix is not None
    assert "ray start --head" in refused.value.fix


def test_ray_without_an_address_is_refused_with_the_setting_to_add(
    tmp_path: Path, info: StandInInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    workspace = make_workspace(
        tmp_path / "ws", info, {"type": "duckdb", "path": "out.duckdb"}, ["public.venue"]
    )
    with pytest.raises(ConfigError) as refused:
        run_sync(workspace, "main", SyncOptions(executor="ray"))
    assert "needs the address of a Ray cluster" in refused.value.message
    assert refused.value.fix is not None
    assert "ray_address" in refused.value.fix
