"""The root Typer application; each command group lives in its own module."""

from __future__ import annotations

from pathlib import Path

import typer

from shiftsync import __version__
from shiftsync.cli.logs import reset_logging, setup_logging
from shiftsync.cli.metavars import TidyGroup
from shiftsync.cli.options import GLOBAL

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 failure (a table, a statement, a verification); "
    "2 configuration or usage error; 3 AWS access refused; 4 the local stand-in could not start."
)

app = typer.Typer(
    name="shiftsync",
    help="Copy tables out of Amazon Redshift Serverless, securely and exactly.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=TidyGroup,
    # Every command inherits -h from the root's context.
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shiftsync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        metavar="PATH",
        help="The configuration file, whatever its name; its folder is the workspace "
        "(default: $SHIFTSYNC_CONFIG, else shiftsync.yaml in the current folder or the "
        "nearest one above; --workspace wins over $SHIFTSYNC_CONFIG).",
        show_default=False,
    ),
    environment: str | None = typer.Option(
        None,
        "--env",
        "-e",
        metavar="NAME",
        help="Merge the overlay shiftsync.NAME.yaml (next to the configuration) over it "
        "(default: $SHIFTSYNC_ENV).",
        show_default=False,
    ),
    log_level: str = typer.Option(
        "info",
        "--log-level",
        metavar="LEVEL",
        help="debug, info (progress, retries, waits), warning or error.",
    ),
    log_format: str = typer.Option(
        "text", "--log-format", metavar="FORMAT", help="text, or json (one object per line)."
    ),
    log_file: Path | None = typer.Option(
        None,
        "--log-file",
        metavar="PATH",
        help="Write the log there instead of stderr (appended).",
        show_default=False,
    ),
) -> None:
    """Copy tables out of Amazon Redshift Serverless, securely and exactly."""
    GLOBAL.config = config
    GLOBAL.environment = environment or None
    setup_logging(log_level, log_format, log_file)
    ctx.call_on_close(reset_logging)


def _register() -> None:
    # Command groups are imported here, not at import time of their modules, to keep one place
    # that lists them.
    from shiftsync.cli import demo as demo_commands
    from shiftsync.cli import discover as discover_commands
    from shiftsync.cli import local as local_commands
    from shiftsync.cli import schedule as schedule_commands
    from shiftsync.cli import serve as serve_commands
    from shiftsync.cli import setup as setup_commands
    from shiftsync.cli import sync as sync_commands

    setup_commands.register(app)
    discover_commands.register(app)
    app.add_typer(local_commands.app, name="local")
    app.command("sync")(sync_commands.sync)
    app.add_typer(sync_commands.runs_app, name="runs")
    app.command("schedule")(schedule_commands.schedule)
    app.command("demo")(demo_commands.demo)
    app.command("serve")(serve_commands.serve)


_register()
