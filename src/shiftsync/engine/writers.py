"""One writer per destination table, across every sync of a destination.

Pure: no I/O. Two syncs that write one destination table undo each other: a full refresh of
one replaces the rows the other's cursor describes, and the other then trusts its cursor and
doubles or loses rows. The tables an entry names exactly are known from the configuration
alone, so a target that two syncs' exact entries share is refused before a run writes anything
(`check_one_writer`). A table that a pattern matches is known only once the source is listed:
such a table never takes a target that an entry names exactly, in its own sync or another of
the same destination (`claimed_targets` feeds `select_tables`); it fails alone, and the exactly
named table is copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shiftsync.config import ShiftsyncConfig, SyncConfig, is_glob
from shiftsync.destinations.base import Destination
from shiftsync.engine.names import same_table_key, target_name
from shiftsync.errors import ConfigError


@dataclass(frozen=True)
class Claim:
    """A destination table that an entry names exactly."""

    sync: str
    table: str  # schema.table
    target: str

    def describe(self) -> str:
        return f"sync {self.sync} (table {self.table})"


def exact_claims(sync_name: str, sync: SyncConfig) -> list[Claim]:
    """The targets of the sync's entries that name one table (not excluded by the sync)."""
    claims: list[Claim] = []
    for entry in sync.tables:
        if is_glob(entry.include):
            continue
        schema, _, table = entry.include.partition(".")
        if sync.select(schema, table) is not entry:
            continue
        try:
            target = target_name(schema, table, entry.target, normalize=sync.normalize_names)
        except ConfigError:
            continue  # the table fails with its own message when the sync runs
        claims.append(Claim(sync_name, entry.include, target))
    return claims


def other_claims(
    config: ShiftsyncConfig, sync_name: str, destination_kind: str
) -> dict[str, Claim]:
    """The targets that the other syncs of this sync's destination name exactly, by the
    destination's comparison key."""
    destination = config.syncs[sync_name].destination
    claimed: dict[str, Claim] = {}
    for name, sync in config.syncs.items():
        if name == sync_name or sync.destination != destination:
            continue
        for claim in exact_claims(name, sync):
            claimed.setdefault(same_table_key(destination_kind, claim.target), claim)
    return claimed


def check_one_writer(
    config: ShiftsyncConfig, sync_name: str, destination_kind: str
) -> Mapping[str, Claim]:
    """ConfigError when an exact entry of this sync writes a table another sync's exact entry
    writes; else the other syncs' exact targets (for `select_tables(claimed=...)`)."""
    others = other_claims(config, sync_name, destination_kind)
    sync = config.syncs[sync_name]
    for mine in exact_claims(sync_name, sync):
        theirs = others.get(same_table_key(destination_kind, mine.target))
        if theirs is None:
            continue
        raise ConfigError(
            f"sync {sync_name} (table {mine.table}) and {theirs.describe()} both write "
            f"destination table {mine.target!r} of destination {sync.destination}: each would "
            "replace or merge over the rows the other's cursor describes",
            fix=f"give table {mine.table} its own target in sync {sync_name} (target: "
            f"{mine.target}_{sync_name}), or copy it with one sync only (an incremental sync "
            "with on_mismatch: full_refresh needs no second full-refresh sync)",
        )
    return others


def load_identity(state_key: str, run_id: str) -> str:
    """The stamp one table's commit leaves on its destination table: which sync's table, in
    which run."""
    return f"{state_key}@{run_id}"


def foreign_writer(destination: Destination, target: str, table_id: str | None) -> str | None:
    """Who wrote `target` since the commit that stamped it `table_id`, or None when it still
    holds that stamp (or no stamp was recorded, or the destination keeps none).

    A destination that keeps no stamp answers `table_identity` with None: its cursors are then
    not checked.
    """
    if table_id is None:
        return None
    stamp = destination.table_identity(target)
    if stamp == table_id:
        return None
    if stamp is None:
        return "something other than shiftsync (the table no longer carries this sync's stamp)"
    return f"another load ({stamp})"


def last_writer_elsewhere(destination: Destination, target: str, state_key: str) -> str | None:
    """The stamp of `target` when another sync's table (another state key) wrote it last,
    else None: two writers that no configuration shows (two workspaces, two syncs whose
    patterns overlap) are then at least reported on each run."""
    stamp = destination.table_identity(target)
    if not isinstance(stamp, str) or stamp.startswith(f"{state_key}@"):
        return None
    return stamp


__all__ = [
    "Claim",
    "check_one_writer",
    "exact_claims",
    "foreign_writer",
    "last_writer_elsewhere",
    "load_identity",
    "other_claims",
]
