"""Who may talk to `shiftsync serve`: loopback by default, a bearer token beyond it.

- Binding: 127.0.0.1 unless told otherwise; a host that is not loopback is refused unless an
  API token is set (`--token` or SHIFTSYNC_API_TOKEN).
- API: with a token, every /api/v1 request needs `Authorization: Bearer <token>` (compared in
  constant time). Without one (loopback only) the Host header must name a loopback address,
  which stops DNS-rebinding pages from reaching the API through the user's browser.
- Console: with a token, a login form exchanges it for a random session cookie (HttpOnly,
  SameSite=Strict); the token itself is never sent back.
- CSRF: every state-changing request from a browser must come from the console's own origin
  (the Origin header, when present, must match Host), and console forms carry a token that
  must match the `shiftsync_csrf` cookie (double submit).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
from typing import Final
from urllib.parse import urlsplit

from fastapi import Request

from shiftsync.errors import ConfigError
from shiftsync.serve.problems import ApiError

TOKEN_ENV: Final = "SHIFTSYNC_API_TOKEN"  # noqa: S105 (a variable name, not a token)
SESSION_COOKIE: Final = "shiftsync_session"
CSRF_COOKIE: Final = "shiftsync_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf_token"
MIN_TOKEN_LENGTH: Final = 16
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """ConfigError when `host` is reachable from other machines and no token guards it."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"the API token is shorter than {MIN_TOKEN_LENGTH} characters",
            fix=f"export {TOKEN_ENV}=\"$(python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')\"",
        )
    if is_loopback(host) or token:
        return
    raise ConfigError(
        f"--host {host} would let other machines reach shiftsync serve, and no API token is set",
        fix=f"export {TOKEN_ENV}=\"$(python3 -c 'import secrets; "
        f"print(secrets.token_urlsafe(32))')\" and run `shiftsync serve --host {host}` "
        "again (or leave --host out to serve on 127.0.0.1 only)",
    )


def _host_name(host_header: str) -> str:
    """The host of a Host header ("127.0.0.1:8765", "[::1]:80", "example.com")."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Guard:
    """The token, the console's sessions, and the checks every request goes through."""

    def __init__(self, token: str | None, bind_host: str = "127.0.0.1") -> None:
        self.token = token or None
        self.bind_host = bind_host
        self._sessions: set[str] = set()
        self._lock = threading.Lock()

    # --- the API ---------------------------------------------------------------------------

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def check_api(self, request: Request) -> None:
        """Raise 401 unless the request carries the token (when one is set)."""
        if self.token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise ApiError(
                "unauthorized",
                "this server needs an API token and the request has none",
                "send the header Authorization: Bearer <token> (the value of "
                f"{TOKEN_ENV} where the server runs)",
            )
        if not self.token_matches(given.strip()):
            raise ApiError(
                "unauthorized",
                "the API token of the request is wrong",
                f"send the token the server was started with ({TOKEN_ENV})",
            )

    # --- every request ---------------------------------------------------------------------

    def check_request(self, request: Request) -> None:
        """Host (without a token) and Origin (for unsafe methods) checks."""
        host_header = request.headers.get("host", "")
        if self.token is None and host_header:
            name = _host_name(host_header)
            if not (is_loopback(name) or name == self.bind_host):
                raise ApiError(
                    "forbidden",
                    f"the Host header names {name!r}, not this server's loopback address",
                    "open the console at http://127.0.0.1:<port>/, or start the server with "
                    f"--host and {TOKEN_ENV}",
                )
        if request.method in SAFE_METHODS:
            return
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != host_header:
            raise ApiError(
                "forbidden",
                f"a {request.method} from another origin ({origin}) is refused",
                "send requests from the console itself or from a client that sends no Origin",
            )

    # --- the console -----------------------------------------------------------------------

    def new_session(self) -> str:
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions.add(session)
        return session

    def end_session(self, session: str | None) -> None:
        with self._lock:
            self._sessions.discard(session or "")

    def console_allowed(self, request: Request) -> bool:
        if self.token is None:
            return True
        session = request.cookies.get(SESSION_COOKIE, "")
        with self._lock:
            return session in self._sessions

    @staticmethod
    def check_csrf(request: Request, submitted: str | None) -> None:
        cookie = request.cookies.get(CSRF_COOKIE)
        given = submitted or request.headers.get(CSRF_HEADER)
        if not cookie or not given or not hmac.compare_digest(cookie.encode(), given.encode()):
            raise ApiError(
                "forbidden",
                "the form's CSRF token is missing or does not match this browser's",
                "reload the console page and submit the form again",
            )


__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "TOKEN_ENV",
    "Guard",
    "check_bind",
    "is_loopback",
]
