"""The root Typer application; each command group lives in its own module."""

from __future__ import annotations

import typer

from shiftsync import __version__

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
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shiftsync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Copy tables out of Amazon Redshift Serverless, securely and exactly."""


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
