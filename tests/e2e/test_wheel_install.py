"""`pip install shiftsync` as a user does it: a wheel built from this checkout, installed with
its `standin` and `serve` extras into a fresh virtualenv outside the repository, then
`shiftsync --version`, `shiftsync serve --help`, `shiftsync local up` and one sync, all run
from the virtualenv's own `shiftsync` script.

The dependencies come from a wheelhouse (`$SHIFTSYNC_WHEELHOUSE`, default
~/.cache/shiftsync-tests/wheelhouse) filled by `pip download` the first time (PyPI), then
installed with `--no-index`; `--no-compile` skips writing bytecode (half of the install's
time). Measured on a loaded 2-core machine: 25-45 s with a warm wheelhouse, about 70 s when
it is filled first.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support import pumped

REPO = Path(__file__).resolve().parents[2]
# Ray's wheels alone weigh more than all the others: its extra is tested by its own suite.
EXTRAS = "standin,serve"
PIP = [sys.executable, "-m", "pip"]


def wheelhouse() -> Path:
    default = Path.home() / ".cache" / "shiftsync-tests" / "wheelhouse"
    folder = Path(os.environ.get("SHIFTSYNC_WHEELHOUSE", default))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run(*command: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def clean_environment() -> dict[str, str]:
    """The user's environment without this checkout on the path or AWS settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "SHIFTSYNC_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin` folder of a fresh virtualenv with shiftsync[standin,serve] from a wheel."""
    base = tmp_path_factory.mktemp("wheel-install")
    assert REPO not in base.parents
    dist = base / "dist"
    run(*PIP, "wheel", "--no-deps", "--quiet", "--wheel-dir", dist, REPO)
    (wheel,) = dist.glob("shiftsync-*.whl")
    venv = base / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    house = wheelhouse()
    install: list[str | Path] = [
        *PIP, "--python", python, "install", "--quiet", "--no-compile", "--no-index",
        "--find-links", house, f"{wheel}[{EXTRAS}]",
    ]  # fmt: skip
    done = subprocess.run([str(p) for p in install], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        # New or changed dependencies: fetch them into the wheelhouse once, then offline again.
        # The house keeps dependencies only: an old shiftsync wheel of the same name there
        # would be read in place of this one (and its older list of dependencies).
        for stale in house.glob("shiftsync-*"):
            stale.unlink()
        run(*PIP, "download", "--quiet", "--dest", house, f"{wheel}[{EXTRAS}]")
        for copied in house.glob("shiftsync-*"):
            copied.unlink()
        run(*install)
    return venv / "bin"


def test_version(installed: Path) -> None:
    from shiftsync import __version__

    out = run(installed / "shiftsync", "--version", env=clean_environment(), cwd=installed)
    assert out == f"shiftsync {__version__}\n"
    # The package came from the virtualenv, not from this checkout.
    where = run(
        installed / "python", "-c", "import shiftsync; print(shiftsync.__file__)",
        env=clean_environment(), cwd=installed,
    )  # fmt: skip
    assert str(installed.parent) in where
    assert str(REPO) not in where


def test_serve_extra_is_installed(installed: Path) -> None:
    out = run(installed / "shiftsync", "serve", "--help", env=clean_environment(), cwd=installed)
    assert "Serve the REST API" in out
    run(installed / "python", "-c", "import fastapi, uvicorn, apprise, prometheus_client")


def test_local_up_and_one_sync(installed: Path, tmp_path: Path) -> None:
    env = clean_environment()
    info_path = tmp_path / "standin.json"
    up = subprocess.Popen(
        [str(installed / "shiftsync"), "local", "up", "--json-out", str(info_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        exports = wait_for_exports(up)
        info = json.loads(info_path.read_text())
        workspace = tmp_path / "workspace"
        run(installed / "shiftsync", "init", workspace, env=env, cwd=tmp_path)
        (workspace / ".shiftsync" / "external_id").write_text(info["external_id"] + "\n")
        config = {
            "connections": {
                "warehouse": {
                    "type": "redshift_serverless",
                    "region": info["region"],
                    "workgroup": info["workgroup"],
                    "database": info["database"],
                    "role_arn": info["role_arn"],
                }
            },
            "destinations": {"local": {"type": "duckdb", "path": "copy.duckdb"}},
            "syncs": {"first": {"source": "warehouse", "destination": "local", "tables": [
                "public.category"
            ]}},
        }  # fmt: skip
        (workspace / "shiftsync.yaml").write_text(yaml.safe_dump(config))
        # The platform identity's keys are in the JSON file only (never on the screen).
        keys = {
            "AWS_ACCESS_KEY_ID": info["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": info["secret_access_key"],
            "AWS_REGION": info["region"],
        }
        out = run(
            installed / "shiftsync", "sync", "--json", env={**env, **exports, **keys}, cwd=workspace
        )
        document = json.loads(out)
        assert document["status"] == "ok"
        assert [(t["table"], t["status"]) for t in document["tables"]] == [
            ("public.category", "ok")
        ]
        assert (workspace / "copy.duckdb").is_file()
    finally:
        up.send_signal(signal.SIGTERM)
        _, stderr = up.communicate(timeout=60)
    assert up.returncode == 0, stderr


def wait_for_exports(process: subprocess.Popen[str]) -> dict[str, str]:
    """The `export NAME=value` lines `local up` prints once it is up."""
    lines = pumped(process.stdout)
    exports: dict[str, str] = {}
    deadline = time.monotonic() + 120
    needed = {f"AWS_ENDPOINT_URL_{service}" for service in ("STS", "S3", "REDSHIFT_DATA")}
    while not needed <= set(exports):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "`shiftsync local up` did not come up"
        try:
            line = lines.get(timeout=0.5).strip()
        except queue.Empty:
            continue
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            exports[name] = value.strip("'\"")
    return exports
