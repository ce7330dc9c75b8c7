"""The FastAPI application of `shiftsync serve`, and running it with uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from shiftsync import __version__
from shiftsync.serve import api, console, problems
from shiftsync.serve.jobs import CheckJobs, RunJobs
from shiftsync.serve.metrics import CONTENT_TYPE, metrics_registry, render
from shiftsync.serve.problems import ApiError, error_body
from shiftsync.serve.scheduler import Scheduler
from shiftsync.serve.security import Guard
from shiftsync.serve.state import ServeState
from shiftsync.workspace import Workspace

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8765
# The console loads only its own files; pages cannot be framed by other sites.
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/api/") or path == "/metrics")


def create_app(
    workspace: Workspace,
    *,
    token: str | None = None,
    host: str = DEFAULT_HOST,
    scheduler: bool = True,
) -> FastAPI:
    """The application for one workspace. `scheduler` runs the syncs' schedules in it."""
    # Read now: a broken shiftsync.yaml or external ID fails `serve` at start, not later.
    _ = workspace.config, workspace.external_id
    runs = RunJobs(workspace.folder)
    state = ServeState(workspace.folder, Guard(token, host), runs, CheckJobs(workspace.folder))
    in_server = Scheduler(runs) if scheduler else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if in_server is not None:
            in_server.start()
        try:
            yield
        finally:
            if in_server is not None:
                in_server.stop()

    app = FastAPI(
        title="shiftsync",
        version=__version__,
        description="The REST API of `shiftsync serve`. Errors: "
        '{"error": {"code", "message", "fix"}}. With a token: Authorization: Bearer <token>.',
        openapi_url="/api/v1/openapi.json",
        # No Swagger UI: it loads its scripts from a CDN, and the server makes no such calls.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.shiftsync = state
    app.state.scheduler = in_server
    problems.install(app, console.html_error, _wants_html)
    app.add_exception_handler(console.LoginRequired, _login_required)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            state.guard.check_request(request)
        except ApiError as error:
            if _wants_html(request):
                return console.html_error(error.status, error.message, error.fix)
            return JSONResponse(error_body(error.code, error.message, error.fix), error.status)
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    registry = metrics_registry(state.store())

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        state.guard.check_api(request)
        return Response(render(registry), media_type=CONTENT_TYPE)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(api.router)
    app.include_router(console.router)
    app.include_router(console.console)
    app.mount("/static", StaticFiles(directory=Path(console.static_folder())), name="static")
    return app


def _login_required(request: Request, _: Exception) -> Response:
    if request.method in ("GET", "HEAD"):
        return RedirectResponse("/login", status_code=303)
    return console.html_error(401, "log in first", "open /login and paste the API token")


def _log_to_stderr(level: str) -> None:
    """The scheduler's and the server's own lines, next to uvicorn's, unless logging is set up."""
    logger = logging.getLogger("shiftsync")
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    logger.addHandler(handler)
    logger.setLevel(level.upper())


def serve(
    workspace: Workspace,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    scheduler: bool = True,
    log_level: str = "info",
) -> None:
    """Run the server until Ctrl-C (the caller checks the bind with security.check_bind)."""
    import uvicorn

    _log_to_stderr(log_level)
    app = create_app(workspace, token=token, host=host, scheduler=scheduler)
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app", "serve"]
