"""The options and the workspace lookup that several commands share, defined once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final, TypeAlias

import typer

from shiftsync.config import CONFIG_FILE_NAME
from shiftsync.errors import ConfigError
from shiftsync.workspace import Workspace

# Typed parameters for the commands: `workspace: WorkspaceOption = None`.
WorkspaceOption: TypeAlias = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="The workspace folder, or a folder inside it (default: the current folder).",
        show_default=False,
    ),
]
ConnectionArgument: TypeAlias = Annotated[
    str | None,
    typer.Argument(
        metavar="CONNECTION",
        help="The connection in shiftsync.yaml (default: the only one).",
        show_default=False,
    ),
]


@dataclass
class GlobalOptions:
    """What the root command's options (`shiftsync --config X --env prod ...`) say."""

    config: Path | None = None
    environment: str | None = None


# Set by the root callback for the command that runs; read by find_workspace.
GLOBAL: Final = GlobalOptions()


def find_workspace(path: Path | None) -> Workspace:
    """The workspace at or above `path` (default: the current folder), or the folder of the
    root's --config (or $SHIFTSYNC_CONFIG); with --env (or $SHIFTSYNC_ENV) its overlay."""
    if path is not None and not path.exists():
        raise ConfigError(
            f"{path} does not exist",
            fix=f"pass --workspace the folder that holds {CONFIG_FILE_NAME}",
        )
    return Workspace.locate(path, config=GLOBAL.config, environment=GLOBAL.environment)
