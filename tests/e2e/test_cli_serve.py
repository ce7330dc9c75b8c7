"""`shiftsync serve` as a user starts it: the refused bind, and a real uvicorn process on
127.0.0.1 answering the API with its token (stopped by its pid at the end).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shiftsync.local.postgres import free_port
from shiftsync.local.standin import StandInInfo
from tests.serve_support import TOKEN, assert_error_shape, pg_dsn, poll, serve_workspace
from tests.support import Cli


def test_a_non_loopback_host_without_a_token_is_refused(
    cli: Cli, tmp_path: Path, info: StandInInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIFTSYNC_API_TOKEN", raising=False)
    monkeypatch.setenv("SERVE_TEST_PG_DSN", pg_dsn())
    folder = tmp_path / "ws"
    serve_workspace(folder, info)
    ran = cli("serve", "--host", "0.0.0.0", "-w", str(folder))  # noqa: S104
    assert ran.code == 2
    assert ran.err.startswith("error: --host 0.0.0.0 would let other machines reach")
    assert "fix: export SHIFTSYNC_API_TOKEN=" in ran.err
    assert "Traceback" not in ran.err
    short = cli("serve", "--token", "short", "-w", str(folder))
    assert short.code == 2
    assert "shorter than 16 characters" in short.err
    level = cli("serve", "--log-level", "loud", "-w", str(folder))
    assert level.code == 2
    assert "fix: use one of critical, error, warning, info, debug" in level.err


def _get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url)  # noqa: S310 (http://127.0.0.1 only)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def server(tmp_path: Path, info: StandInInfo) -> Iterator[str]:
    folder = tmp_path / "ws"
    serve_workspace(folder, info)
    port = free_port()
    env = {**os.environ, "SHIFTSYNC_API_TOKEN": TOKEN, "SERVE_TEST_PG_DSN": pg_dsn()}
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "shiftsync", "serve", "--port", str(port), "-w", str(folder)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError((tmp_path / "serve.log").read_text())
        try:
            return _get(f"{base}/healthz")[0] == 200
        except OSError:
            return False

    try:
        poll(lambda: up(), lambda ok: bool(ok), seconds=30)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_a_real_server_answers_with_its_token(server: str) -> None:
    status, body = _get(f"{server}/api/v1/syncs")
    assert status == 401
    assert_error_shape(body, "unauthorized")
    status, body = _get(f"{server}/api/v1/syncs", token="wrong-token-wrong-token")
    assert status == 401
    assert_error_shape(body, "unauthorized")
    status, body = _get(f"{server}/api/v1/syncs", token=TOKEN)
    assert status == 200
    assert [sync["name"] for sync in body] == ["nightly"]
    status, body = _get(f"{server}/api/v1/openapi.json", token=TOKEN)
    assert status == 200
    assert body["info"]["title"] == "shiftsync"
