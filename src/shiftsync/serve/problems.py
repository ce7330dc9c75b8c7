"""The one error shape of the API, and the handlers that turn every failure into it.

    HTTP 4xx/5xx  {"error": {"code": "sync_running", "message": "...", "fix": "..."}}

`code` is stable (clients branch on it), `message` names the thing and what was wrong, `fix`
says what to do (or null). No traceback and no secret ever reaches a response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException as StarletteHTTPException

from shiftsync.errors import AccessError, ConfigError, ShiftsyncError, StateError

LOG: Final = logging.getLogger("shiftsync.serve")

# The codes a client may see, with their HTTP status (docs/serve.md lists them).
ERROR_CODES: Final = {
    "invalid_request": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "sync_running": 409,
    "config_error": 400,
    "access_error": 502,
    "state_error": 500,
    "failed": 500,
    "internal_error": 500,
}


class ApiError(Exception):
    """An error to answer with: its code picks the HTTP status."""

    def __init__(self, code: str, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = ERROR_CODES[code]
        self.message = message
        self.fix = fix


def error_body(code: str, message: str, fix: str | None) -> dict[str, dict[str, str | None]]:
    return {"error": {"code": code, "message": message, "fix": fix}}


def _respond(
    code: str, message: str, fix: str | None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    if code == "unauthorized":
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(error_body(code, message, fix), ERROR_CODES[code], headers=headers)


def from_shiftsync_error(error: ShiftsyncError) -> ApiError:
    if isinstance(error, ConfigError):
        return ApiError("config_error", error.message, error.fix)
    if isinstance(error, AccessError):
        return ApiError("access_error", error.message, error.fix)
    if isinstance(error, StateError):
        return ApiError("state_error", error.message, error.fix)
    return ApiError("failed", error.message, error.fix)


def _location(loc: Iterable[int | str]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def validation_message(errors: Iterable[ErrorDetails]) -> str:
    """One line per problem: where, and what pydantic said (the input itself is left out)."""
    lines = []
    for error in errors:
        if error.get("type") == "json_invalid":
            lines.append(f"the body is not valid JSON ({error.get('ctx', {}).get('error', '')})")
            continue
        lines.append(f"{_location(error.get('loc', ()))}: {error.get('msg', 'invalid')}")
    return "; ".join(lines) or "the request is not valid"


HtmlError = Callable[[int, str, str | None], Response]


def install(
    app: FastAPI, html: HtmlError | None = None, wants_html: Callable[[Request], bool] | None = None
) -> None:
    """Route every error through the one shape; console pages (`wants_html`) get `html`."""

    def answer(request: Request, error: ApiError) -> Response:
        if html is not None and wants_html is not None and wants_html(request):
            return html(error.status, error.message, error.fix)
        return _respond(error.code, error.message, error.fix)

    @app.exception_handler(ApiError)
    async def _api(request: Request, error: ApiError) -> Response:
        return answer(request, error)

    @app.exception_handler(ShiftsyncError)
    async def _shiftsync(request: Request, error: ShiftsyncError) -> Response:
        return answer(request, from_shiftsync_error(error))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return _respond(
            "invalid_request",
            validation_message(error.errors()),
            "send a JSON body as the OpenAPI document at /api/v1/openapi.json describes",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 404:
            return _respond(
                "not_found",
                "no such page or resource",
                "the API is described at /api/v1/openapi.json",
            )
        if error.status_code == 405:
            return _respond("method_not_allowed", "this method is not allowed here", None)
        if error.status_code == 401:
            return _respond(
                "unauthorized",
                str(error.detail),
                "send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return JSONResponse(error_body("failed", str(error.detail), None), error.status_code)

    @app.exception_handler(Exception)
    async def _internal(_: Request, error: Exception) -> JSONResponse:
        # Logged for the operator with its traceback; the client gets the shape only.
        LOG.exception("internal error")
        return _respond(
            "internal_error",
            f"internal error: {type(error).__name__}",
            "this is a bug in shiftsync: report it with the server's log",
        )


__all__ = ["ERROR_CODES", "ApiError", "error_body", "install", "validation_message"]
