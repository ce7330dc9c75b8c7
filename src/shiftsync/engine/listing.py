"""Which part of the source's catalog a sync needs listed. Pure: no I/O.

Listing every table of a warehouse takes one ListTables page per thousand or so tables, the
system schemas included, before any table is copied. A sync names its tables, so the engine
asks ListTables only for its `include` patterns: a glob pattern becomes a LIKE pattern that
matches at least the same names (the selection then applies the exact glob rules and the
excludes to what comes back).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from shiftsync.config import NamePattern, SyncConfig, exact_table_name, split_table_pattern

EVERYTHING: Final = ("%", "%")
# Past this many include patterns one listing of everything costs fewer calls.
MAX_PATTERNS: Final = 8


def like_pattern(glob: str) -> str:
    """One bare part of a "schema.table" glob as a LIKE pattern matching at least the same
    names.

    `*` becomes `%` and `?` becomes `_`; a literal `_` or `%` in a name then matches a little
    more, which the selection filters out. A backslash would be LIKE's escape character: such
    a part matches everything. `[` is an ordinary character.
    """
    return NamePattern(glob, literal=False).like()


def listing_patterns(sync: SyncConfig) -> list[tuple[str, str]]:
    """(schema pattern, table pattern) pairs whose ListTables answers hold every table the
    sync can select; `[EVERYTHING]` when that is as cheap."""
    patterns = set()
    for entry in sync.tables:
        schema, table = split_table_pattern(entry.include)
        patterns.add((schema.like(), table.like()))
    if not patterns or EVERYTHING in patterns or len(patterns) > MAX_PATTERNS:
        return [EVERYTHING]
    return sorted(patterns)


def misses_a_named_table(sync: SyncConfig, listed: Iterable[tuple[str, str]]) -> bool:
    """Whether an entry that names one table found it not in `listed` (then the engine lists
    everything, so that the error can suggest a close name)."""
    present = set(listed)
    return any(
        (name := exact_table_name(entry.include)) is not None and name not in present
        for entry in sync.tables
    )


__all__ = ["EVERYTHING", "MAX_PATTERNS", "like_pattern", "listing_patterns", "misses_a_named_table"]
