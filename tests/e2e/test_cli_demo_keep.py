"""`shiftsync demo --keep`: after the demo its workspace can be explored with the other
commands, against the same stand-in (a new stand-in would not know the workspace's role,
data or cursors)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
from pathlib import Path

import shiftsync

SMALL = ("--scale", "0.01", "--new-rows", "10")


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHIFTSYNC_"))}
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["PYTHONPATH"] = str(Path(shiftsync.__file__).resolve().parents[1])
    env["TERM"] = "dumb"
    return env


def sourced(env_file: Path) -> dict[str, str]:
    """What `. .shiftsync/standin.env` sets."""
    found = {}
    for line in env_file.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        (found[name],) = shlex.split(value)
    return found


def test_demo_keep_leaves_a_workspace_to_explore(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "shiftsync", "demo", "--keep", "--folder", str(folder), *SMALL],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        seen = []
        for line in demo.stdout:
            seen.append(line)
            if line.startswith("Press Ctrl-C here to stop the stand-in."):
                break
        assert any(". .shiftsync/standin.env" in line for line in seen), seen
        env_file = folder / ".shiftsync" / "standin.env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        explore = {**environment(), **sourced(env_file)}
        runs = subprocess.run(
            [sys.executable, "-m", "shiftsync", "runs", "--json"],
            cwd=folder, env=explore, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        assert [r["status"] for r in json.loads(runs.stdout)] == ["ok", "ok"]
        again = subprocess.run(
            [sys.executable, "-m", "shiftsync", "sync", "tickit", "--json"],
            cwd=folder, env=explore, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        document = json.loads(again.stdout)
        assert document["status"] == "ok"
        sales = next(t for t in document["tables"] if t["table"] == "public.sales")
        assert sales["verification"]["status"] == "ok"
    finally:
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=120)
    assert demo.returncode == 0, err
    assert "demo finished in" in out
    assert not (folder / ".shiftsync" / "standin.env").exists()
