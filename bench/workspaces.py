"""The workspaces the benchmarks sync from: one stand-in connection, written as a user would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shiftsync.local.info import StandInInfo
from shiftsync.workspace import Workspace


def standin_connection(info: StandInInfo, **extra: Any) -> dict[str, Any]:
    """A `redshift_serverless` connection of shiftsync.yaml to the stand-in's workgroup
    (`extra`: more of the connection's keys)."""
    return {
        "type": "redshift_serverless",
        "region": info.region,
        "workgroup": info.workgroup,
        "database": info.database,
        "role_arn": info.role_arn,
        **extra,
    }


def write_workspace(folder: Path, info: StandInInfo, config: dict[str, Any]) -> Workspace:
    """`config` as `folder`'s shiftsync.yaml, with the stand-in's external ID in its private
    folder."""
    private = folder / ".shiftsync"
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    (private / "external_id").write_text(info.external_id + "\n")
    (folder / "shiftsync.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return Workspace(folder)


__all__ = ["standin_connection", "write_workspace"]
