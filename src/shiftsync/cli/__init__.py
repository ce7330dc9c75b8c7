"""The `shiftsync` command: a thin shell over the library.

Exit codes: 0 all good; 1 something failed (some tables, a statement, a verification);
2 the configuration or the command line is wrong; 3 AWS refused access; 4 the local stand-in
could not start.
"""

from __future__ import annotations

import sys

import typer

from shiftsync.cli.app import app
from shiftsync.errors import ShiftsyncError


def main() -> None:
    try:
        app(standalone_mode=False)
    except ShiftsyncError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as error:  # click's own usage errors
        import click

        if isinstance(error, click.exceptions.ClickException):
            error.show()
            sys.exit(2)
        raise


__all__ = ["app", "main"]
