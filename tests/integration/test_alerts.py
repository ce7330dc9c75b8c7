"""Alerts after runs, delivered to a real HTTP receiver on 127.0.0.1 that checks signatures.

The runs are real (engine.run_sync on the stand-in); a run fails or goes partial because a
table named in the sync does not exist, and recovers when the sync names only real tables.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shiftsync.engine.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from shiftsync.engine.runs import RunStore
from shiftsync.engine.sync import run_sync
from shiftsync.local.standin import StandInInfo
from shiftsync.workspace import Workspace
from tests.serve_support import HOOK_SECRET, pg_dsn, serve_workspace


@dataclass
class Receiver:
    """Answers 503 to the first `fail_first` requests, then 200 if the signature is right."""

    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)
    port: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k: v for k, v in self.headers.items()}
            signed = verify_signature(HOOK_SECRET, headers, body, now=time.time())
            state.requests.append(
                {"path": self.path, "headers": headers, "body": body, "signed": signed}
            )
            if len(state.requests) <= state.fail_first:
                code = 503
            else:
                code = 200 if (signed or self.path.startswith("/apprise")) else 401
            # Recorded before answering: the sender returns as soon as it has the answer.
            if code == 200:
                state.received.set()
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _alerts(url: str, *, attempts: int = 3) -> str:
    return (
        "alerts:\n"
        "  webhooks:\n"
        f"    - url: {url}\n"
        "      secret: ${HOOK_SECRET}\n"
        f"      attempts: {attempts}\n"
        "      backoff_seconds: 0\n"
    )


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)
    monkeypatch.setenv("SERVE_TEST_PG_DSN", pg_dsn())


def test_failed_partial_and_recovered_runs_are_signed_and_delivered(
    tmp_path: Path, info: StandInInfo, receiver: Receiver
) -> None:
    receiver.fail_first = 1  # the first try is refused: the retry delivers it
    url = f"http://127.0.0.1:{receiver.port}/hooks/shiftsync"
    folder = tmp_path / "ws"
    serve_workspace(folder, info, tables=("public.category", "public.no_such"), alerts=_alerts(url))
    partial = run_sync(Workspace(folder), "nightly")
    assert partial.status == "partial"
    assert len(receiver.requests) == 2
    refused, delivered = receiver.requests
    assert refused["signed"]  # refused by the receiver's 503, not for its signature
    assert delivered["signed"]
    assert delivered["headers"][SIGNATURE_HEADER].startswith("sha256=")
    assert delivered["headers"][TIMESTAMP_HEADER].isdigit()
    assert delivered["headers"]["Content-Type"] == "application/json"
    body = json.loads(delivered["body"])
    assert body["event"] == "partial"
    assert body["run_id"] == partial.run_id
    assert [t["table"] for t in body["failed_tables"]] == ["public.no_such"]
    assert HOOK_SECRET.encode() not in delivered["body"]
    # Delivered: no note of an undelivered alert (a new workspace's own notes may be there).
    assert not [note for note in partial.notes if note.startswith("alert ")]

    # A tampered body does not verify.
    assert not verify_signature(
        HOOK_SECRET, delivered["headers"], delivered["body"] + b" ", now=time.time()
    )

    serve_workspace(folder, info, tables=("public.no_such",), alerts=_alerts(url))
    failed = run_sync(Workspace(folder), "nightly")
    assert failed.status == "failed"
    assert json.loads(receiver.requests[-1]["body"])["event"] == "failed"

    serve_workspace(folder, info, tables=("public.category",), alerts=_alerts(url))
    ok = run_sync(Workspace(folder), "nightly")
    assert ok.status == "ok"
    last = json.loads(receiver.requests[-1]["body"])
    assert last["event"] == "recovered"
    assert last["run_id"] == ok.run_id
    count = len(receiver.requests)
    assert run_sync(Workspace(folder), "nightly").status == "ok"
    assert len(receiver.requests) == count  # ok after ok: no alert


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_undeliverable_webhook_is_recorded_in_the_run(tmp_path: Path, info: StandInInfo) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/hook/path-token-xyz"
    folder = tmp_path / "ws"
    serve_workspace(folder, info, tables=("public.no_such",), alerts=_alerts(url, attempts=3))
    record = run_sync(Workspace(folder), "nightly")
    assert record.status == "failed"
    stored = RunStore(Workspace(folder).runs_dir).load(record.run_id)
    notes = [n for n in stored.notes if n.startswith("alert failed not delivered")]
    assert len(notes) == 1, stored.notes
    assert "webhook 1 (127.0.0.1) after 3 tries" in notes[0]
    assert "path-token-xyz" not in json.dumps(stored.to_json())


def test_apprise_urls_are_notified(tmp_path: Path, info: StandInInfo, receiver: Receiver) -> None:
    folder = tmp_path / "ws"
    alerts = f"alerts:\n  apprise:\n    - json://127.0.0.1:{receiver.port}/apprise\n"
    serve_workspace(folder, info, tables=("public.no_such",), alerts=alerts)
    record = run_sync(Workspace(folder), "nightly")
    assert record.status == "failed"
    assert receiver.received.is_set()
    sent = json.loads(receiver.requests[-1]["body"])
    assert sent["title"] == "shiftsync: sync nightly failed"
    assert record.run_id in sent["message"]
    assert "public.no_such" in sent["message"]
