"""The per-table sync state: the cursor of an incremental table, versioned and migrated.

The state lives in the destination, next to the data (`Load.commit(state)` writes both in one
transaction), under the key `<sync>:<schema>.<table>`. Its shape, version 2:

    {"version": 2, "mode": "incremental", "cursor": "2008-12-31 23:59:59.000000",
     "tracking_field": "saletime", "run_id": "20240101T000000Z-1a2b3c", "target": "sales"}

`cursor` is the high-water mark of the last committed run, as text (NULL when the table was
empty); a full refresh stores `"mode": "full_refresh"` and no cursor, so a table switched back
to incremental starts over instead of trusting a cursor older than its data. `target` is the
destination table the state was committed with: the key names the source table, and a cursor
says which rows one particular destination table holds, so a state of another target is no
state for this one. Older shapes are upgraded by `migrate_state`, one version at a time (a
version 1 state has no target and is taken as the current target's); a newer version than
this code knows is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from shiftsync.destinations.base import LoadMode
from shiftsync.errors import ConfigError, StateError
from shiftsync.json_types import JsonObject, JsonValue
from shiftsync.redshift.sql import build_range_predicate, qualified, quote_ident
from shiftsync.redshift.types import Column

STATE_VERSION: Final = 2
Mode = Literal["full_refresh", "incremental"]

_FIX_RESET: Final = (
    "run this table once with `shiftsync sync --full-refresh` to replace it and write a new state"
)


@dataclass(frozen=True)
class TableState:
    """What the last committed run of a table left behind."""

    mode: Mode
    cursor: str | None
    tracking_field: str | None
    run_id: str
    # None only for a state written before states named their target (version 1).
    target: str | None = None
    # The stamp the commit left on the destination table (LoadSpec.identity); None for a
    # state written before states recorded it. Another stamp on the table now means another
    # writer replaced or changed it since, so the cursor no longer describes its rows.
    table_id: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "version": STATE_VERSION,
            "mode": self.mode,
            "cursor": self.cursor,
            "tracking_field": self.tracking_field,
            "run_id": self.run_id,
            "target": self.target,
            "table_id": self.table_id,
        }

    def belongs_to(self, target: str) -> bool:
        """Whether this state describes the rows of destination table `target`.

        A state that names no target comes from before states did; nothing says it is of
        another table, and treating it as foreign would reload every table once.
        """
        return self.target is None or self.target == target

    def cursor_for(self, tracking_field: str) -> str | None:
        """The cursor to resume from with this tracking field, or None to start over.

        A cursor of another tracking field (the configuration changed) or of a full refresh
        means nothing for this column.
        """
        if self.mode != "incremental" or self.tracking_field != tracking_field:
            return None
        return self.cursor


def state_key(sync: str, schema: str, table: str) -> str:
    """`<sync>:<schema>.<table>`: one sync's state of one source table."""
    return f"{sync}:{schema}.{table}"


def _from_v0(raw: Mapping[str, JsonValue]) -> JsonObject:
    # Version 0 (before the field existed): {"cursor_value": …, "cursor_field": …}.
    upgraded = {k: v for k, v in raw.items() if k not in ("cursor_value", "cursor_field")}
    upgraded["cursor"] = raw.get("cursor_value", raw.get("cursor"))
    upgraded["tracking_field"] = raw.get("cursor_field", raw.get("tracking_field"))
    upgraded.setdefault("mode", "incremental")
    upgraded.setdefault("run_id", "")
    upgraded["version"] = 1
    return upgraded


def _from_v1(raw: Mapping[str, JsonValue]) -> JsonObject:
    # Version 1 did not record the target; None means "unknown", see TableState.belongs_to.
    upgraded = dict(raw)
    upgraded.setdefault("target", None)
    upgraded["version"] = 2
    return upgraded


# MIGRATIONS[n] turns a version-n document into version n+1.
MIGRATIONS: Final[Mapping[int, Callable[[Mapping[str, JsonValue]], JsonObject]]] = {
    0: _from_v0,
    1: _from_v1,
}


def migrate_state(where: str, raw: Mapping[str, JsonValue]) -> JsonObject:
    """Upgrade a stored state document to STATE_VERSION, step by step."""
    document = dict(raw)
    version = document.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise StateError(
            f"{where}: the stored state has an invalid version {version!r}", fix=_FIX_RESET
        )
    if version > STATE_VERSION:
        raise StateError(
            f"{where}: the stored state has version {version}, newer than this shiftsync "
            f"understands ({STATE_VERSION})",
            fix="upgrade shiftsync to the version that wrote it",
        )
    while version < STATE_VERSION:
        document = MIGRATIONS[version](document)
        version += 1  # MIGRATIONS[n] writes version n + 1
    return document


def parse_state(where: str, raw: Mapping[str, JsonValue] | None) -> TableState | None:
    """The TableState of a stored document (migrated), or None when there is none."""
    if raw is None:
        return None
    document = migrate_state(where, raw)
    cursor = document.get("cursor")
    tracking_field = document.get("tracking_field")
    run_id = document.get("run_id", "")
    target = document.get("target")
    table_id = document.get("table_id")
    if cursor is not None and not isinstance(cursor, str):
        raise StateError(
            f"{where}: the stored cursor is {type(cursor).__name__}, not text", fix=_FIX_RESET
        )
    if tracking_field is not None and not isinstance(tracking_field, str):
        raise StateError(f"{where}: the stored tracking_field is not text", fix=_FIX_RESET)
    if not isinstance(run_id, str):
        raise StateError(f"{where}: the stored run_id is not text", fix=_FIX_RESET)
    if target is not None and not isinstance(target, str):
        raise StateError(f"{where}: the stored target is not text", fix=_FIX_RESET)
    if table_id is not None and not isinstance(table_id, str):
        raise StateError(f"{where}: the stored table_id is not text", fix=_FIX_RESET)
    return TableState(
        _mode(where, document.get("mode")), cursor, tracking_field, run_id, target, table_id
    )


def _mode(where: str, mode: JsonValue) -> Mode:
    if mode == "full_refresh":
        return "full_refresh"
    if mode == "incremental":
        return "incremental"
    raise StateError(f"{where}: the stored state has an unknown mode {mode!r}", fix=_FIX_RESET)


# --- the window a run reads, and the cursor it commits (pure) ---------------------------------

TIMESTAMP_FORMAT: Final = "YYYY-MM-DD HH24:MI:SS.US"
NOTHING: Final = "1 = 0"


def max_expression(column: Column) -> str:
    """`max(col)` as the text a cursor stores, which `build_range_predicate` reads back.

    Timestamps get all six fraction digits: a cursor that dropped microseconds would read the
    last rows again (harmless with a key) or skip rows (without one).
    """
    c = quote_ident(column.name)
    if column.type_name == "timestamptz":
        return f"to_char(convert_timezone('UTC', max({c})), '{TIMESTAMP_FORMAT}') || '+00'"
    if column.type_name == "timestamp":
        return f"to_char(max({c}), '{TIMESTAMP_FORMAT}')"
    if column.type_name == "date":
        return f"to_char(max({c}), 'YYYY-MM-DD')"
    if column.type_name in ("varchar", "bpchar"):
        return f"max({c})"
    return f"cast(max({c}) as varchar)"


def tracking_range(
    column: Column, low: str | None, high: str | None, *, low_inclusive: bool
) -> str:
    """`low <(=) col <= high` with the bounds checked and quoted for the column's type."""
    predicate = build_range_predicate(
        column.name,
        low,
        high,
        low_inclusive=low_inclusive,
        high_inclusive=True,
        type_name=column.type_name,
    )
    if predicate is None:
        raise ConfigError(f"column {column.name!r}: a range needs a bound", fix="report this bug")
    return predicate


def all_of(*conditions: str | None) -> str | None:
    """The conditions joined with AND (each in parentheses); None when there is none."""
    present = [c for c in conditions if c]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return " AND ".join(f"({c})" for c in present)


def build_high_water_sql(
    schema: str, table: str, tracking: Column, low: str | None, where: str | None
) -> str:
    """`SELECT max(tf), count(rows at or above low), count(rows whose tf is NULL)`: the
    high-water mark of this run, whether the maximum fell below the stored cursor (then the
    count is 0), and how many rows no cursor can ever reach."""
    at_or_above = "NULL"
    if low is not None:
        predicate = tracking_range(tracking, low, None, low_inclusive=True)
        at_or_above = f"count(CASE WHEN {predicate} THEN 1 END)"
    nulls = f"count(CASE WHEN {quote_ident(tracking.name)} IS NULL THEN 1 END)"
    sql = (
        f"SELECT {max_expression(tracking)}, {at_or_above}, {nulls}\n"
        f"FROM {qualified(schema, table)}"
    )
    if where:
        sql += f"\nWHERE {where}"
    return sql


@dataclass(frozen=True)
class Window:
    """What a table reads this run (`read`, `where`), how it loads, the cursor it commits,
    and which source rows the destination must then equal (`verify_where`)."""

    load: LoadMode
    read: bool
    where: str | None
    cursor_from: str | None
    cursor_to: str | None
    verify_where: str | None
    notes: tuple[str, ...] = ()
    # How many rows the read will see, when a query already counted them (incremental runs).
    rows_estimate: int | None = None


def full_refresh_window(filter_sql: str | None) -> Window:
    return Window(LoadMode.REPLACE, True, filter_sql, None, None, filter_sql)


def _or_null(tracking: Column, predicate: str) -> str:
    """`predicate OR tf IS NULL`: a window that also takes the rows no cursor can reach."""
    return f"({predicate} OR {quote_ident(tracking.name)} IS NULL)"


def incremental_window(
    tracking: Column,
    *,
    has_key: bool,
    low: str | None,
    high: str | None,
    at_or_above_low: int | None,
    filter_sql: str | None = None,
    null_rows: int = 0,
    carry_nulls: bool = False,
) -> Window:
    """The window of an incremental table.

    `low` is the stored cursor (None: first run, reset, or --full-refresh), `high` the maximum
    when the table starts (None: no row has a tracking value), `at_or_above_low` how many rows
    reach `low`, `null_rows` how many rows have no tracking value. Without a cursor the table
    is replaced by every row up to `high` and every row whose tracking value is NULL; then
    rows from `low` (inclusive with a key, merged; exclusive without, appended) up to `high`,
    and, with `carry_nulls` (a key is needed), the NULL-tracked rows again, merged.

    Whatever the window, the destination must then equal the whole selection (`filter_sql`):
    verification never narrows to the cursor, so rows a window cannot see are reported.
    """
    if low is None:
        if high is None:
            if not null_rows:
                empty = all_of(filter_sql, NOTHING)
                note = f"no row has a {tracking.name} yet: the table is created empty"
                return Window(LoadMode.REPLACE, False, None, None, None, empty, (note,))
            only_nulls = all_of(filter_sql, f"{quote_ident(tracking.name)} IS NULL")
            return Window(LoadMode.REPLACE, True, only_nulls, None, None, filter_sql)
        upto = tracking_range(tracking, None, high, low_inclusive=True)
        first = all_of(filter_sql, _or_null(tracking, upto))
        return Window(LoadMode.REPLACE, True, first, None, high, filter_sql)
    load = LoadMode.MERGE if has_key else LoadMode.APPEND
    carry = carry_nulls and has_key and null_rows > 0
    notes: tuple[str, ...] = ()
    if null_rows and not carry:
        notes = (
            f"warning: {null_rows} row(s) have a NULL {tracking.name}: an incremental run "
            "cannot see them, so rows that got a NULL there since the last full refresh are "
            "not copied (null_tracking: carry merges them by key on every run)",
        )
    if high is None or not at_or_above_low:
        note = (
            f"the largest {tracking.name} in the source ({high}) is below the stored cursor "
            f"({low}): rows were deleted or the values moved back; nothing new was read"
        )
        if high is None and null_rows:
            note = f"no row has a {tracking.name} above the stored cursor ({low})"
        if carry:
            nulls_only = all_of(filter_sql, f"{quote_ident(tracking.name)} IS NULL")
            return Window(load, True, nulls_only, low, low, filter_sql, (note,), null_rows)
        return Window(load, False, None, low, low, filter_sql, (*notes, note))
    window = tracking_range(tracking, low, high, low_inclusive=has_key)
    where = all_of(filter_sql, _or_null(tracking, window) if carry else window)
    estimate = at_or_above_low + (null_rows if carry else 0)
    return Window(load, True, where, low, high, filter_sql, notes, estimate)


__all__ = [
    "MIGRATIONS",
    "NOTHING",
    "STATE_VERSION",
    "TableState",
    "Window",
    "all_of",
    "build_high_water_sql",
    "full_refresh_window",
    "incremental_window",
    "max_expression",
    "migrate_state",
    "parse_state",
    "state_key",
    "tracking_range",
]
