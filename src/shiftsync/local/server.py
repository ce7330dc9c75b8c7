"""moto's threaded server on 127.0.0.1 behind AWS-like front-door checks; honest start errors."""

from __future__ import annotations

import errno
import functools
import io
import json
import logging
import socket
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import botocore.session
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from shiftsync.errors import StandInError
from shiftsync.local import front_rules

WsgiApp = Callable[..., Any]
StartResponse = Callable[..., Any]

log = logging.getLogger("shiftsync.local")

# awsJson services the stand-in serves itself: X-Amz-Target prefix → botocore service name.
_JSON_SERVICES: Final = {"RedshiftData": "redshift-data", "AWSGlue": "glue"}
_JSON_CONTENT_TYPE: Final = "application/x-amz-json-1.1"


@functools.cache
def _operation_names(service: str) -> frozenset[str]:
    model = botocore.session.get_session().get_service_model(service)
    return frozenset(model.operation_names)


def _signed(environ: dict[str, Any]) -> bool:
    """A SigV4 Authorization header, or a presigned URL's signature in the query string."""
    if environ.get("HTTP_AUTHORIZATION"):
        return True
    query = parse_qs(environ.get("QUERY_STRING", ""))
    return "X-Amz-Signature" in query or "Signature" in query


def _is_query_protocol(environ: dict[str, Any]) -> bool:
    """STS and IAM name the operation in an `Action` form field (query or body)."""
    if "Action" in parse_qs(environ.get("QUERY_STRING", "")):
        return True
    if "x-www-form-urlencoded" not in environ.get("CONTENT_TYPE", ""):
        return False
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    body = environ["wsgi.input"].read(min(size, 1 << 20)) if size > 0 else b""
    return "Action" in parse_qs(body.decode("utf-8", errors="replace"))


def _answer(
    start_response: StartResponse, status: str, content_type: str, body: bytes
) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [body]


def _json_error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = json.dumps({"__type": code, "message": message}).encode()
    return _answer(start_response, status, _JSON_CONTENT_TYPE, body)


def _xml_error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
        "</ErrorResponse>"
    ).encode()
    return _answer(start_response, status, "text/xml", body)


def _s3_error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4()}</RequestId></Error>"
    ).encode()
    return _answer(start_response, status, "application/xml", body)


class FrontDoor:
    """What AWS's front end answers before any service code runs, in each protocol's shape.

    moto lets some malformed requests through to code that then crashes (no Authorization
    header, an unknown X-Amz-Target) and werkzeug answers those with an HTML 500 and a
    traceback in the log. AWS never does: it refuses unsigned requests, names an unknown
    operation, and reports its own failures as an internal error in the protocol's shape.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # moto's own API and the stand-in's fault control endpoint are not AWS services.
        if environ.get("PATH_INFO", "").startswith(("/moto-api", "/_shiftsync/")):
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        prefix, _, operation = target.partition(".")
        service = _JSON_SERVICES.get(prefix)
        try:
            if not _signed(environ):
                if target:
                    return _json_error(
                        start_response,
                        "403 Forbidden",
                        "MissingAuthenticationTokenException",
                        "Missing Authentication Token",
                    )
                if _is_query_protocol(environ):
                    return _xml_error(
                        start_response,
                        "403 Forbidden",
                        "MissingAuthenticationToken",
                        "Request is missing Authentication Token",
                    )
                return _s3_error(start_response, "403 Forbidden", "AccessDenied", "Access Denied")
            if service is None:
                refused = self._refused_before_service(environ, start_response)
                if refused is not None:
                    return refused
                return self.app(environ, start_response)  # type: ignore[no-any-return]
            if operation not in _operation_names(service):
                return _json_error(
                    start_response, "400 Bad Request", "UnknownOperationException", ""
                )
            return self._json_call(environ, start_response)
        except Exception:  # never a traceback on the wire, never a dead server
            log.exception("the stand-in failed on %s %s", environ.get("REQUEST_METHOD"), target)
            if service is not None or target:
                return _json_error(
                    start_response,
                    "500 Internal Server Error",
                    "InternalServerException",
                    "The stand-in failed to process the request",
                )
            return _s3_error(
                start_response,
                "500 Internal Server Error",
                "InternalError",
                "We encountered an internal error. Please try again.",
            )

    def _refused_before_service(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> list[bytes] | None:
        """S3's region check and STS's input check (see front_rules.py), or None."""
        bucket_region = front_rules.s3_region_mismatch(environ)
        if bucket_region is not None:
            scope = front_rules.signing_scope(environ)
            signed = scope[0] if scope else ""
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization "
                f"header is malformed; the region '{escape(signed)}' is wrong; expecting "
                f"'{escape(bucket_region)}'</Message><Region>{escape(bucket_region)}</Region>"
                f"<RequestId>{uuid.uuid4()}</RequestId></Error>"
            ).encode()
            return _answer(start_response, "400 Bad Request", "application/xml", body)
        scope = front_rules.signing_scope(environ)
        if scope is None or scope[1] != "sts":
            return None
        size = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(size) if size > 0 else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        form = parse_qs(raw.decode("utf-8", errors="replace"))
        form.update(parse_qs(environ.get("QUERY_STRING", "")))
        if form.get("Action") != ["AssumeRole"]:
            return None
        problem = front_rules.assume_role_problem(form)
        if problem is None:
            return None
        return _xml_error(start_response, "400 Bad Request", "ValidationError", problem)

    def _json_call(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """Call moto and answer in awsJson's shape (moto sends some errors as text/html)."""
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            # moto would crash decoding it; AWS cannot parse it either.
            return _json_error(
                start_response,
                "400 Bad Request",
                "SerializationException",
                "The request body is not valid UTF-8 JSON",
            )
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        parts = self.app(environ, capture)
        try:
            answer = b"".join(parts)
        finally:
            close = getattr(parts, "close", None)
            if close is not None:
                close()
        status = str(captured.get("status", "500 Internal Server Error"))
        if status.startswith("5") and not answer.lstrip().startswith(b"{"):
            raise RuntimeError(f"moto answered {status} without a JSON body")
        headers = [
            (name, value)
            for name, value in captured.get("headers", [])
            if name.lower() not in ("content-type", "content-length")
        ]
        headers += [("Content-Type", _JSON_CONTENT_TYPE), ("Content-Length", str(len(answer)))]
        start_response(status, headers)
        return [answer]


def ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            reason = "is taken" if error.errno == errno.EADDRINUSE else f"cannot be used ({error})"
            raise StandInError(
                f"port {port} on 127.0.0.1 {reason}",
                fix="pick another with --port, or stop what listens there",
            ) from error


class StandInServer(ThreadedMotoServer):
    def __init__(self, port: int, wrap: Callable[[WsgiApp], WsgiApp] | None = None) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self._wrap = wrap
        self._start_error: BaseException | None = None
        self._listening_failed = False

    def _server_entry(self) -> None:
        try:
            app: WsgiApp = DomainDispatcherApplication(create_backend_app)
            if self._wrap is not None:
                app = self._wrap(app)
            app = FrontDoor(app)
            self._listening_failed = True
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
        except BaseException as error:  # reported by start()
            self._start_error = error
            self._server_ready_event.set()
            return
        self._server_ready_event.set()
        self._server.serve_forever()

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        super().start()
        if self._start_error is not None and self._listening_failed:
            raise StandInError(
                f"the stand-in could not listen on 127.0.0.1:{self._port}: {self._start_error}",
                fix="pick another port with --port",
            )
        if self._start_error is not None:
            # Not a port problem: a bug in the stand-in's own set-up; say so, not "pick a port".
            raise StandInError(
                f"the stand-in could not set up its server: {self._start_error!r}",
                fix="report it with the output of `shiftsync --version`",
            )

    @property
    def port(self) -> int:
        return int(self.get_host_and_port()[1])
