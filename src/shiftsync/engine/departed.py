"""Tables a sync copied before and copies no more: reported on every run, never dropped.

A table dropped in the source, renamed, or left out of the sync's selection keeps its
destination table, which then silently ages. Each sync remembers the tables it has copied
(`.shiftsync/state/<sync>.tables.json`: source table → destination table); a run that does
not select one of them (and is not narrowed by `--tables`) notes it, as long as its
destination table exists. Dropping the destination table by hand ends the notes; nothing is
ever dropped by shiftsync.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from shiftsync.workspace import Workspace, atomic_write_text

if TYPE_CHECKING:
    from shiftsync.destinations.base import Destination


def tables_file(workspace: Workspace, sync_name: str) -> Path:
    return workspace.state_dir / f"{sync_name}.tables.json"


def read_known(path: Path) -> dict[str, str]:
    """The tables the sync copied before (a missing or damaged file knows none)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {k: v for k, v in document.items() if isinstance(k, str) and isinstance(v, str)}


def write_known(path: Path, known: Mapping[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(path, json.dumps(dict(sorted(known.items())), indent=1) + "\n")
    os.chmod(path, 0o600)


def departed(known: Mapping[str, str], selected: Iterable[str]) -> dict[str, str]:
    """The known tables that this run does not select."""
    present = set(selected)
    return {table: target for table, target in known.items() if table not in present}


def _departed_elsewhere(known: Mapping[str, str], selected: Mapping[str, str]) -> dict[str, str]:
    # A destination table that a selected table writes now (a renamed source table with the
    # same target) has not departed.
    targets = set(selected.values())
    return {t: target for t, target in departed(known, selected).items() if target not in targets}


def note(table: str, target: str) -> str:
    return (
        f"table {table} was copied by this sync before, but is no longer in the source or in "
        f"the sync's selection; its destination table {target!r} is left as it was (drop it "
        "if it is no longer needed: this note repeats while it exists)"
    )


def report_departed(
    workspace: Workspace,
    sync_name: str,
    destination: Destination,
    selected: Mapping[str, str],
    *,
    narrowed: bool,
) -> list[str]:
    """Remember this run's tables and return a note for each departed one whose destination
    table still exists (one that was dropped by hand is forgotten)."""
    path = tables_file(workspace, sync_name)
    known = read_known(path)
    notes: list[str] = []
    if not narrowed:
        for table, target in _departed_elsewhere(known, selected).items():
            if destination.table_schema(target) is None:
                del known[table]
            else:
                notes.append(note(table, target))
    known.update(selected)
    write_known(path, known)
    return notes


__all__ = ["departed", "note", "read_known", "report_departed", "tables_file", "write_known"]
