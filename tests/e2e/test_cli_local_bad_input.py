"""`shiftsync local up` and `shiftsync local fault` given bad input: one message naming the option,
the documented exit code (2 usage, 4 no stand-in), never a traceback; and the --json-out file
with the access keys is never readable by others, not even for a moment."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Ran, fake_standin_info

SECRET = "stand-in-secret-key-0123456789abcdefghij"


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def shiftsync(*args: str, cwd: Path | None = None) -> Ran:
    """`shiftsync <args>` in a process of its own (a bad option must not start a stand-in here)."""
    done = subprocess.run(
        [sys.executable, "-m", "shiftsync", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=_clean_environment(),
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def assert_one_error(ran: Ran, code: int, *said: str) -> None:
    assert ran.code == code, ran
    assert "Traceback" not in ran.err
    for text in said:
        assert text in ran.err, ran.err


# --- local up: options ------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_up_refuses_a_port_out_of_range(port: str) -> None:
    # 99999 used to reach socket.bind: OverflowError and a traceback.
    ran = shiftsync("local", "up", "--port", port)
    assert_one_error(ran, 2, "--port")


def test_up_refuses_an_unknown_seed_as_a_usage_error() -> None:
    # It used to start PostgreSQL, then fail as "the stand-in could not start" (exit 4).
    ran = shiftsync("local", "up", "--seed", "bogus")
    assert_one_error(ran, 2, "--seed", "bogus", "tickit")


@pytest.mark.parametrize("where", ["missing-folder", "a-folder"])
def test_up_refuses_a_json_out_it_cannot_write(tmp_path: Path, where: str) -> None:
    # A missing folder used to be a FileNotFoundError traceback after the stand-in started.
    target = tmp_path / "nodir" / "x.json" if where == "missing-folder" else tmp_path
    ran = shiftsync("local", "up", "--json-out", str(target))
    assert_one_error(ran, 2, f"--json-out {target}", "fix: ")
    assert ran.out == ""
    assert "stand-in up" not in ran.out


# --- local up: the keys file --------------------------------------------------------------------


class _FakeStandIn:
    """Starts nothing; `local up` only needs its info, start() and stop()."""

    def __init__(self, _options: Any) -> None:
        self.info = fake_standin_info(SECRET)

    def start(self) -> _FakeStandIn:
        return self

    def stop(self) -> None:
        pass


class _StopAtOnce:
    """Stands in for the `signal` module in cli/local.py: the handler runs as it is installed,
    so `local up` writes its file, prints, and stops at once."""

    SIGTERM = 15
    SIGINT = 2

    @staticmethod
    def signal(signum: int, handler: Callable[[int, object], None]) -> None:
        handler(signum, None)


class _LeakWatch:
    """At every audit event of this process, looks for a file in a folder that others may read
    and that holds the secret.

    Writing a file and chmod-ing it afterwards leaves a moment when it has the umask's mode
    (or an existing file's): the `os.chmod` (or `os.rename`) audit event is raised just before
    the call, so such a moment is seen there.
    """

    folder: Path | None = None
    seen: set[str] = set()  # noqa: RUF012 - one watch at a time, reset by start()
    leaked: dict[str, int] = {}  # noqa: RUF012
    _busy = False
    _installed = False

    @classmethod
    def start(cls, folder: Path) -> None:
        if not cls._installed:
            sys.addaudithook(cls._hook)  # hooks cannot be removed: it goes idle instead
            cls._installed = True
        cls.seen, cls.leaked = set(), {}
        cls.folder = folder

    @classmethod
    def stop(cls) -> None:
        cls.folder = None

    @classmethod
    def _hook(cls, _event: str, _args: tuple[Any, ...]) -> None:
        folder = cls.folder
        if folder is None or cls._busy:
            return
        cls._busy = True
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    mode = stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)
                    with open(entry.path, "rb") as handle:
                        holds_secret = SECRET.encode() in handle.read()
                    if holds_secret:
                        cls.seen.add(entry.name)
                        if mode & 0o077:
                            cls.leaked[entry.name] = mode
        except OSError:
            pass
        finally:
            cls._busy = False


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("umask_022")
@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing-0644"])
def test_json_out_is_never_readable_by_others(
    cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, existing: bool
) -> None:
    monkeypatch.setattr("shiftsync.local.standin.StandIn", _FakeStandIn)
    monkeypatch.setattr("shiftsync.cli.local.signal", _StopAtOnce)
    json_out = tmp_path / "standin.json"
    if existing:
        json_out.write_text("{}\n")
        json_out.chmod(0o644)
    _LeakWatch.start(tmp_path)
    try:
        ran = cli("local", "up", "--json-out", str(json_out))
    finally:
        _LeakWatch.stop()
    assert ran.code == 0, ran
    assert json.loads(json_out.read_text())["secret_access_key"] == SECRET
    assert stat.S_IMODE(json_out.stat().st_mode) == 0o600
    assert SECRET not in ran.out + ran.err
    assert _LeakWatch.seen, "the watch never saw the keys written"
    assert not _LeakWatch.leaked, {name: oct(mode) for name, mode in _LeakWatch.leaked.items()}
    assert sorted(os.listdir(tmp_path)) == ["standin.json"]


# --- local fault: the endpoint ----------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    ["http://127.0.0.1:abc", "http://127.0.0.1:99999", "http://[::1", "ftp://127.0.0.1:5000"],
)
@pytest.mark.parametrize("command", [["list"], ["clear"], ["add", "throttle"]])
def test_fault_refuses_an_endpoint_that_is_not_a_url(
    cli: Callable[..., Ran], endpoint: str, command: list[str]
) -> None:
    # A port that is not a number or out of range used to be a ValueError traceback.
    ran = cli("local", "fault", *command, "--endpoint", endpoint)
    assert_one_error(ran, 2, f"--endpoint {endpoint!r}", "fix: ")


@contextlib.contextmanager
def _answering(body: bytes, status: int = 200) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers every request with body; its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _not_http() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that answers a line that is not HTTP; its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                with contextlib.suppress(OSError):
                    connection.recv(65536)
                    connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.mark.parametrize("command", [["list"], ["clear"], ["add", "throttle"]])
def test_fault_at_an_endpoint_that_does_not_speak_http(
    cli: Callable[..., Ran], command: list[str]
) -> None:
    # http.client.BadStatusLine is not an OSError: it used to be a traceback.
    with _not_http() as endpoint:
        ran = cli("local", "fault", *command, "--endpoint", endpoint)
    assert_one_error(ran, 4, endpoint, "did not answer like a shiftsync stand-in")


@pytest.mark.parametrize(
    ("command", "body"),
    [
        (["list"], b"{}"),
        (["list"], b'{"faults": [{"id": "f1"}]}'),
        (["list"], b'{"faults": "none"}'),
        (["clear"], b'{"ok": true}'),
        (["add", "throttle"], b'{"faults": []}'),
        (["add", "throttle"], b"[1, 2]"),
    ],
    ids=["list-no-faults", "list-fault-without-keys", "list-not-a-list", "clear", "add", "array"],
)
def test_fault_at_an_endpoint_that_answers_200_without_the_keys(
    cli: Callable[..., Ran], command: list[str], body: bytes
) -> None:
    # A KeyError used to escape.
    with _answering(body) as endpoint:
        ran = cli("local", "fault", *command, "--endpoint", endpoint)
    assert_one_error(ran, 4, endpoint, "did not answer like a shiftsync stand-in")


def test_fault_list_still_reads_a_stand_ins_answer(cli: Callable[..., Ran]) -> None:
    fault = {"id": "f1", "kind": "throttle", "times": 2, "fired": 1, "remaining": 1}
    body = json.dumps({"faults": [{**fault, "active": True, "operation": "ExecuteStatement"}]})
    with _answering(body.encode()) as endpoint:
        ran = cli("local", "fault", "list", "--endpoint", endpoint)
    assert ran.code == 0, ran
    assert ran.out.strip() == "f1  throttle  fired 1/2  active  operation=ExecuteStatement"
