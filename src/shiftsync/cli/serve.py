"""`shiftsync serve`: the REST API, the web console, /metrics and the scheduler, in one process."""

from __future__ import annotations

import typer

from shiftsync.cli import output
from shiftsync.cli.options import WorkspaceOption, find_workspace
from shiftsync.errors import ConfigError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def serve(
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        metavar="<host>",
        help="The address to listen on. Anything but a loopback address needs an API token.",
    ),
    port: int = typer.Option(
        8765, "--port", "-p", min=0, max=65535, metavar="<port>", help="The TCP port (0-65535)."
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        metavar="<token>",
        envvar="SHIFTSYNC_API_TOKEN",
        show_envvar=True,
        help="The API token (16+ characters): clients send Authorization: Bearer <token>, the "
        "console asks for it once. Prefer the environment variable (a command line is "
        "visible to other users).",
        show_default=False,
    ),
    no_scheduler: bool = typer.Option(
        False, "--no-scheduler", help="Do not run the syncs' schedules in this server."
    ),
    log_level: str = typer.Option(
        "info",
        "--log-level",
        metavar="<level>",
        help="uvicorn's log level: critical, error, warning, info, debug.",
    ),
    workspace: WorkspaceOption = None,
) -> None:
    """Serve the REST API (/api/v1), the web console (/) and Prometheus metrics (/metrics).

    Binds 127.0.0.1 by default. A non-loopback --host is refused unless an API token is set
    (--token or SHIFTSYNC_API_TOKEN); with a token every API request needs
    `Authorization: Bearer <token>`. The scheduler runs each sync's schedule: (cron, UTC)
    inside the server, one run per sync at a time. The OpenAPI document is at
    /api/v1/openapi.json. Stop it with Ctrl-C.

    Exit codes: 0 stopped; 2 configuration (shiftsync.yaml, a refused --host, the `serve`
    extra missing).
    """
    from shiftsync.serve.security import check_bind

    if log_level not in LOG_LEVELS:
        raise ConfigError(
            f"--log-level {log_level!r} is not a log level",
            fix=f"use one of {', '.join(LOG_LEVELS)}, e.g. --log-level info",
        )
    check_bind(host, token)
    found = find_workspace(workspace)
    try:
        from shiftsync.serve.app import serve as run_server
    except ImportError as error:
        raise ConfigError(
            f"shiftsync serve needs the `serve` extra ({error.name} is not installed)",
            fix="pip install 'shiftsync[serve]'",
        ) from error
    shown = f"[{host}]" if ":" in host else host
    output.note(f"shiftsync serve: workspace {found.folder}")
    output.note(f"console http://{shown}:{port}/  API http://{shown}:{port}/api/v1/openapi.json")
    run_server(
        found,
        host=host,
        port=port,
        token=token,
        scheduler=not no_scheduler,
        log_level=log_level,
    )
