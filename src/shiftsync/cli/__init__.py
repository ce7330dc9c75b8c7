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
from shiftsync.file_mode import file_mode_umask


def main() -> None:
    # Standalone mode: click reports usage errors itself (exit 2) and honours typer.Exit codes;
    # our own errors come through here and become one message and their documented exit code.
    try:
        # Files the command creates (destination files, temporary merges, run records) are
        # owner-only unless SHIFTSYNC_FILE_MODE says otherwise (file_mode.py).
        with file_mode_umask():
            app()
    except ShiftsyncError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)


__all__ = ["app", "main"]
