"""The plug-in's state: the engine that runs statements and the workgroups it serves.

The stand-in `activate`s a PluginState while it runs (and None when it stops); operations
read it through `current()`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from shiftsync.local.data_api.csv_framing import CsvFraming
from shiftsync.local.data_api.request import api_error, not_found, validation_error
from shiftsync.local.data_api.statements import DataApiEngine

_WORKGROUP_NAME: Final = re.compile(r"^[a-z0-9-]{3,64}$")


@dataclass
class Workgroup:
    name: str
    account_id: str
    region: str
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def arn(self) -> str:
        return f"arn:aws:redshift-serverless:{self.region}:{self.account_id}:workgroup/{self.uuid}"


@dataclass
class Cluster:
    """A provisioned cluster beside the workgroup (same database, its own IAM rules)."""

    name: str
    account_id: str
    region: str

    @property
    def arn(self) -> str:
        return f"arn:aws:redshift:{self.region}:{self.account_id}:cluster:{self.name}"


@dataclass
class PluginState:
    engine: DataApiEngine
    workgroups: dict[str, Workgroup]
    # Called before every operation with (operation, request body); may raise JsonRESTError.
    before_operation: Callable[[str, dict[str, Any]], None] | None = None
    # How GetStatementResultV2 frames CSV pages (AWS's framing is undocumented).
    csv_framing: CsvFraming = field(default_factory=CsvFraming)
    clusters: dict[str, Cluster] = field(default_factory=dict)


_state: PluginState | None = None


def activate(state: PluginState | None) -> None:
    global _state
    _state = state


def current() -> PluginState:
    if _state is None:
        raise api_error("InternalServerException", "The stand-in is not running", 500)
    return _state


def active() -> PluginState | None:
    """The state, or None while the stand-in is not running."""
    return _state


def find_target(body: dict[str, Any], region: str | None = None) -> Workgroup | Cluster:
    """The workgroup or the provisioned cluster a request names."""
    identifier = body.get("ClusterIdentifier")
    if not identifier:
        return find_workgroup(body, region)
    if body.get("WorkgroupName"):
        # AWS's wording unverified: the model says only one of the two may be given.
        raise validation_error("Specify either ClusterIdentifier or WorkgroupName, not both.")
    found = current().clusters.get(str(identifier))
    if found is None or (region is not None and found.region != region):
        raise not_found(f"Cluster {identifier} not found", str(identifier))
    return found


def find_workgroup(body: dict[str, Any], region: str | None = None) -> Workgroup:
    """The workgroup a request names (by name or ARN), refused as AWS refuses it."""
    if body.get("ClusterIdentifier"):
        raise validation_error(
            "ClusterIdentifier is for provisioned clusters; this stand-in serves Redshift "
            "Serverless: pass WorkgroupName"
        )
    if body.get("SecretArn"):
        raise validation_error("SecretArn is not supported by the stand-in; use IAM (no SecretArn)")
    name = body.get("WorkgroupName")
    if not name:
        raise validation_error("Either ClusterIdentifier or WorkgroupName needs to be specified.")
    workgroups = current().workgroups
    if isinstance(name, str) and name.startswith("arn:"):
        # AWS accepts the workgroup's ARN wherever it accepts its name.
        by_arn = {w.arn: w for w in workgroups.values()}
        if name in by_arn and (region is None or by_arn[name].region == region):
            return by_arn[name]
        raise not_found(f"Workgroup {name} not found", name)
    if not isinstance(name, str) or not _WORKGROUP_NAME.match(name):
        raise validation_error(f"Invalid workgroup name '{name}'")
    found = workgroups.get(name)
    if found is None or (region is not None and found.region != region):
        # Each region has its own endpoint and its own workgroups: a request signed for
        # another region never sees this one.
        raise not_found(f"Workgroup {name} not found", name)
    return found
