"""The whole of shiftsync.yaml (`ShiftsyncConfig`) and picking one of its named entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, TypeVar

from pydantic import PrivateAttr

from shiftsync.config.alerts import AlertsConfig
from shiftsync.config.models import ConfigModel, ConnectionConfig, DestinationConfig, config_field
from shiftsync.config.syncs import SyncConfig
from shiftsync.config.validators import Name, NonEmpty
from shiftsync.errors import ConfigError

if TYPE_CHECKING:
    from shiftsync.config.problems import Problem

# Entries whose ${VAR} is unset, by (section, name): each problem line and its variable.
Unresolved = Mapping[tuple[str, str], tuple[tuple["Problem", str], ...]]

CONFIG_FILE_NAME: Final = "shiftsync.yaml"
DOCS_HINT: Final = "every key is described in docs/configuration.md"

_T = TypeVar("_T")


class ShiftsyncConfig(ConfigModel):
    """The whole of shiftsync.yaml."""

    connections: NonEmpty[dict[Name, ConnectionConfig]] = config_field(
        expected="a mapping of names to connections",
        doc="The Redshift Serverless workgroups to read, by name.",
    )
    destinations: dict[Name, DestinationConfig] = config_field(
        {}, expected="a mapping of names to destinations", doc="Where tables go, by name."
    )
    syncs: dict[Name, SyncConfig] = config_field(
        {}, expected="a mapping of names to syncs", doc="Copy jobs, by name."
    )
    alerts: AlertsConfig | None = config_field(
        None,
        expected="a mapping with on, webhooks, apprise",
        doc="Who is told about failed, partial and recovered runs.",
    )

    _unresolved: dict[tuple[str, str], tuple[tuple[Problem, str], ...]] = PrivateAttr(
        default_factory=dict
    )

    def set_unresolved(self, unresolved: Unresolved) -> None:
        """Record the entries left out because a ${VAR} of theirs is unset (see loading.py)."""
        self._unresolved = dict(unresolved)

    def unresolved(self, section: str) -> dict[str, tuple[tuple[Problem, str], ...]]:
        """The entries of `section` (e.g. "destinations") waiting for a variable, by name."""
        return {name: found for (kind, name), found in self._unresolved.items() if kind == section}

    def connection(self, name: str | None = None) -> tuple[str, ConnectionConfig]:
        """The named connection, or the only one when name is None."""
        return _pick("connection", self.connections, name, self.unresolved("connections"))

    def destination(self, name: str | None = None) -> tuple[str, DestinationConfig]:
        """The named destination, or the only one when name is None."""
        return _pick("destination", self.destinations, name, self.unresolved("destinations"))

    def sync(self, name: str | None = None) -> tuple[str, SyncConfig]:
        """The named sync, or the only one when name is None."""
        return _pick("sync", self.syncs, name, self.unresolved("syncs"))


def unset_variable_error(
    kind: str, name: str, found: tuple[tuple[Problem, str], ...]
) -> ConfigError:
    """The error of a command that needs an entry whose ${VAR} is unset: export it."""
    variables = list(dict.fromkeys(variable for _, variable in found))
    lines = "\n".join(problem.line(CONFIG_FILE_NAME) for problem, _ in found)
    exports = "; ".join(f"export {variable}=<its value>" for variable in variables)
    return ConfigError(
        f"{kind} {name} needs {', '.join(variables)}:\n{lines}",
        fix=f"{exports} (in the shell or service that runs shiftsync), then run the command "
        f"again; or write a default in {CONFIG_FILE_NAME} as ${{{variables[0]}:-value}}",
    )


def _pick(
    kind: str,
    entries: Mapping[str, _T],
    name: str | None,
    unresolved: Mapping[str, tuple[tuple[Problem, str], ...]] | None = None,
) -> tuple[str, _T]:
    unresolved = unresolved or {}
    if name is not None and name in unresolved and name not in entries:
        raise unset_variable_error(kind, name, unresolved[name])
    if name is None and not entries and len(unresolved) == 1:
        only, found = next(iter(unresolved.items()))
        raise unset_variable_error(kind, only, found)
    names = ", ".join([*entries, *unresolved]) or "none"
    if name is None:
        if len(entries) == 1 and not unresolved:
            return next(iter(entries.items()))
        if not entries:
            raise ConfigError(
                f"{CONFIG_FILE_NAME} defines no {kind}", fix=f"add one under {kind}s: ({DOCS_HINT})"
            )
        raise ConfigError(
            f"{CONFIG_FILE_NAME} defines {len(entries) + len(unresolved)} {kind}s ({names}); "
            "which one?",
            fix=f"name the {kind} to use: one of {names}",
        )
    if name not in entries:
        raise ConfigError(
            f"{CONFIG_FILE_NAME} has no {kind} named {name!r}", fix=f"use one of: {names}"
        )
    return name, entries[name]
