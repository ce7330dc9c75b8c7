"""The stand-in's front door for faults: the control endpoint and HTTP-level faults.

`FaultMiddleware` wraps the stand-in's WSGI app (StandIn._wrap_app). It serves
`/_shiftsync/faults` (POST adds a fault, GET lists them with their fired counts, DELETE clears
them) and fires the faults that act on HTTP: S3 and STS throttling and 5xx errors as those
services send them, objects that vanish, and connections dropped in the middle of a response.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from shiftsync.local.faults.kinds import Fault, FaultRegistry, FaultSpecError
from shiftsync.local.faults.wire import (
    RequestInfo,
    describe_request,
    error_response,
    status_line,
)

log = logging.getLogger("shiftsync.local")

CONTROL_PATH: Final = "/_shiftsync/faults"
_MAX_CONTROL_BODY: Final = 64 * 1024

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


# (status, error code, message) per kind and service, as each service words them.
_HTTP_ERRORS: Final[dict[tuple[str, str], tuple[int, str, str]]] = {
    ("throttle", "s3"): (503, "SlowDown", "Please reduce your request rate."),
    ("throttle", "sts"): (400, "Throttling", "Rate exceeded"),
    ("server_error", "s3"): (
        500,
        "InternalError",
        "We encountered an internal error. Please try again.",
    ),
    ("server_error", "sts"): (500, "InternalFailure", "An internal error occurred. Try again."),
}

# -- the WSGI wrapper ---------------------------------------------------------------------------


class FaultMiddleware:
    """The stand-in's front door: the control endpoint, then HTTP-level faults, then moto."""

    def __init__(self, app: WsgiApp, registry: FaultRegistry) -> None:
        self.app = app
        self.registry = registry

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == CONTROL_PATH or path.startswith("/_shiftsync/"):
            return self._control(environ, start_response)
        if not self.registry.armed("http"):
            return self.app(environ, start_response)
        request = describe_request(
            environ, read_sts_body=self.registry.wants_service("http", "sts")
        )
        if request.service is None:
            return self.app(environ, start_response)
        fault = self.registry.take(
            "http", service=request.service, operation=request.operation, key=request.key
        )
        if fault is None:
            return self.app(environ, start_response)
        log.info(
            "fault %s (%s) fired on %s %s",
            fault.id,
            fault.spec.kind,
            request.service,
            request.operation,
        )
        return self._fire(fault, request, environ, start_response)

    # -- faults ----------------------------------------------------------------------------
    def _fire(
        self,
        fault: Fault,
        request: RequestInfo,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        spec = fault.spec
        service = request.service or "s3"
        if spec.kind == "drop_connection":
            self._drop(fault, request, environ)
            # Whatever is answered now goes to a closed socket: werkzeug's write fails with
            # BrokenPipeError, which it takes for a client that went away (no log, no retry).
            return _respond(start_response, 200, [], b"", environ)
        if spec.kind == "s3_vanish":
            if spec.delete:
                _delete_object(request.bucket, request.key)
                return self.app(environ, start_response)
            headers, body = error_response(
                "s3", "NoSuchKey", "The specified key does not exist.", 404, request.key
            )
            return _respond(start_response, 404, headers, body, environ)
        status, code, message = _HTTP_ERRORS[(spec.kind, service)]
        headers, body = error_response(service, code, message, status, request.key)
        return _respond(start_response, status, headers, body, environ)

    def _drop(self, fault: Fault, request: RequestInfo, environ: dict[str, Any]) -> None:
        """Send part of a response and close the socket: the client sees a broken read."""
        if fault.spec.after_processing:
            first_line, headers, body = _run(self.app, environ)
        else:
            status = fault.spec.status or 503
            headers, body = error_response(
                request.service or "s3", "ServiceUnavailable", "Service unavailable", status
            )
            first_line = status_line(status)
        head = f"HTTP/1.1 {first_line}\r\n"
        kept = [(k, v) for k, v in headers if k.lower() not in ("content-length", "connection")]
        head += "".join(f"{k}: {v}\r\n" for k, v in kept)
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        raw = head.encode("latin-1")
        if fault.spec.cut == "body" and body and environ.get("REQUEST_METHOD") != "HEAD":
            cut = raw + body[: len(body) // 2]
        else:  # a few bytes of the status line: the client gets no response at all
            cut = raw[:10]
        connection: socket.socket = environ["werkzeug.socket"]
        try:
            connection.sendall(cut)
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            log.debug("the client left before the dropped response was sent")

    # -- control endpoint ------------------------------------------------------------------
    def _control(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if environ.get("PATH_INFO") != CONTROL_PATH:
            return _json(start_response, 404, {"error": f"no such path; use {CONTROL_PATH}"})
        if method == "GET":
            return _json(start_response, 200, {"faults": self.registry.listing()})
        if method == "DELETE":
            return _json(start_response, 200, {"cleared": self.registry.clear()})
        if method != "POST":
            return _json(
                start_response, 405, {"error": f"{method} is not allowed; use GET, POST or DELETE"}
            )
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > _MAX_CONTROL_BODY:
            return _json(start_response, 400, {"error": "the fault is too large", "field": "body"})
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            payload = json.loads(raw or b"null")
        except ValueError:
            return _json(
                start_response, 400, {"error": "the body is not valid JSON", "field": "body"}
            )
        try:
            fault_id = self.registry.add_payload(payload)
        except FaultSpecError as error:
            return _json(start_response, 400, {"error": error.message, "field": error.field})
        return _json(start_response, 200, {"id": fault_id})


def _respond(
    start_response: StartResponse,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    environ: dict[str, Any],
) -> Iterable[bytes]:
    if environ.get("REQUEST_METHOD") == "HEAD":
        body = b""
    start_response(status_line(status), [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _json(
    start_response: StartResponse, status: int, payload: Mapping[str, Any]
) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        status_line(status),
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _run(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run the wrapped app to the end and keep its response."""
    captured: dict[str, Any] = {}

    def capture(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    chunks = app(environ, capture)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return str(captured["status"]), list(captured["headers"]), body


def _delete_object(bucket: str | None, key: str | None) -> None:
    from moto.s3.models import s3_backends

    if bucket is None or key is None:
        return
    found = s3_backends.bucket_accounts.get(bucket)
    if found is None:
        return
    partition, account_id = found
    try:
        s3_backends[account_id][partition].delete_object(bucket, key)
    except Exception:  # the object may be gone already: that is the point
        log.debug("could not delete %s/%s", bucket, key)
