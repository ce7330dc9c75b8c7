"""The options and the workspace lookup that several commands share, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import typer

from shiftsync.config import CONFIG_FILE_NAME
from shiftsync.errors import ConfigError
from shiftsync.workspace import Workspace

WORKSPACE_OPTION: Final[Any] = typer.Option(
    None,
    "--workspace",
    "-w",
    help="The workspace folder, or a folder inside it (default: the current folder).",
    show_default=False,
)
CONNECTION_ARGUMENT: Final[Any] = typer.Argument(
    None,
    metavar="CONNECTION",
    help="The connection in shiftsync.yaml (default: the only one).",
    show_default=False,
)


def find_workspace(path: Path | None) -> Workspace:
    """The workspace at or above `path` (default: the current folder)."""
    if path is not None and not path.exists():
        raise ConfigError(
            f"{path} does not exist",
            fix=f"pass --workspace the folder that holds {CONFIG_FILE_NAME}",
        )
    return Workspace.find(path if path is not None else Path.cwd())
