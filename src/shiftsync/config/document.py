"""The whole of shiftsync.yaml (`ShiftsyncConfig`) and picking one of its named entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeVar

from shiftsync.config.alerts import AlertsConfig
from shiftsync.config.models import ConnectionConfig, DestinationConfig, _field, _Model
from shiftsync.config.syncs import SyncConfig
from shiftsync.config.validators import Name, NonEmpty
from shiftsync.errors import ConfigError

CONFIG_FILE_NAME: Final = "shiftsync.yaml"
DOCS_HINT: Final = "every key is described in docs/configuration.md"

_T = TypeVar("_T")


class ShiftsyncConfig(_Model):
    """The whole of shiftsync.yaml."""

    connections: NonEmpty[dict[Name, ConnectionConfig]] = _field(
        expected="a mapping of names to connections",
        doc="The Redshift Serverless workgroups to read, by name.",
    )
    destinations: dict[Name, DestinationConfig] = _field(
        {}, expected="a mapping of names to destinations", doc="Where tables go, by name."
    )
    syncs: dict[Name, SyncConfig] = _field(
        {}, expected="a mapping of names to syncs", doc="Copy jobs, by name."
    )
    alerts: AlertsConfig | None = _field(
        None,
        expected="a mapping with on, webhooks, apprise",
        doc="Who is told about failed, partial and recovered runs.",
    )

    def connection(self, name: str | None = None) -> tuple[str, ConnectionConfig]:
        """The named connection, or the only one when name is None."""
        return _pick("connection", self.connections, name)

    def destination(self, name: str | None = None) -> tuple[str, DestinationConfig]:
        """The named destination, or the only one when name is None."""
        return _pick("destination", self.destinations, name)

    def sync(self, name: str | None = None) -> tuple[str, SyncConfig]:
        """The named sync, or the only one when name is None."""
        return _pick("sync", self.syncs, name)


def _pick(kind: str, entries: Mapping[str, _T], name: str | None) -> tuple[str, _T]:
    names = ", ".join(entries) or "none"
    if name is None:
        if len(entries) == 1:
            return next(iter(entries.items()))
        if not entries:
            raise ConfigError(
                f"{CONFIG_FILE_NAME} defines no {kind}", fix=f"add one under {kind}s: ({DOCS_HINT})"
            )
        raise ConfigError(
            f"{CONFIG_FILE_NAME} defines {len(entries)} {kind}s ({names}); which one?",
            fix=f"name the {kind} to use: one of {names}",
        )
    if name not in entries:
        raise ConfigError(
            f"{CONFIG_FILE_NAME} has no {kind} named {name!r}", fix=f"use one of: {names}"
        )
    return name, entries[name]
