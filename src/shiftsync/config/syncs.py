"""The sync models of shiftsync.yaml: which tables a sync copies, how, and which columns.

Table patterns are "schema.table" with * and ? as wildcards, matched part by part and
case-sensitively (`match_table`); a part in double quotes is a name as written (dots, spaces
and quotes allowed, no wildcards): '"Odd Schema"."Mixed Case"'.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AfterValidator, ValidationInfo, field_validator

from shiftsync.config.models import ConfigModel, config_field
from shiftsync.config.validators import (
    ColumnName,
    Method,
    Name,
    NonEmpty,
    TablePattern,
    check_cron,
    check_lookback,
    check_nonblank,
    check_target,
    check_window,
    invalid,
    split_table_pattern,
)

_GLOB_CHARS: Final = frozenset("*?")

DeletesPolicy = Literal["ignore", "hard", "soft"]
_DELETES_DOC: Final = (
    "Rows deleted in the source: left in the destination (ignore), deleted there too (hard), "
    "or kept with _shiftsync_deleted_at set (soft). hard and soft need a primary key."
)


class ColumnSelection(ConfigModel):
    """Which columns of a table are copied, and which are hashed."""

    include: tuple[ColumnName, ...] = config_field(
        (), expected="a list of column names", doc="Copy only these columns (empty: all)."
    )
    exclude: tuple[ColumnName, ...] = config_field(
        (), expected="a list of column names", doc="Copy all columns but these."
    )
    hash: tuple[ColumnName, ...] = config_field(
        (),
        expected="a list of column names",
        doc="Replace these columns' values by a salted SHA-256 hash.",
    )

    @field_validator("exclude")
    @classmethod
    def _not_both(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if value and info.data.get("include"):
            raise invalid("set together with include", "include or exclude, not both")
        return value

    @field_validator("hash")
    @classmethod
    def _hashed_are_copied(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        excluded = set(info.data.get("exclude") or ()) & set(value)
        if excluded:
            raise invalid(f"names excluded columns {sorted(excluded)}", "columns that are copied")
        include = info.data.get("include") or ()
        missing = [name for name in value if include and name not in include]
        if missing:
            raise invalid(f"names columns missing from include {missing}", "included columns")
        return value

    def copies(self, column: str) -> bool:
        if self.include:
            return column in self.include
        return column not in self.exclude


class TableSelection(ConfigModel):
    """One entry of a sync's `tables`: which tables, and how to copy them."""

    include: TablePattern = config_field(
        expected='a pattern "schema.table" (* and ? are wildcards; double-quote a name with '
        "dots or spaces)",
        doc="The tables this entry selects.",
    )
    exclude: tuple[TablePattern, ...] = config_field(
        (), expected='a list of "schema.table" patterns', doc="Tables removed from include."
    )
    mode: Literal["full_refresh", "incremental"] = config_field(
        "full_refresh",
        expected="full_refresh or incremental",
        doc="Copy whole tables, or only rows whose tracking_field grew since the last run.",
    )
    tracking_field: ColumnName | None = config_field(
        None,
        expected="a column name",
        doc="The column that grows with each change (required for incremental).",
        validate_default=True,
    )
    null_tracking: Literal["warn", "carry"] = config_field(
        "warn",
        expected="warn or carry",
        doc="Incremental rows whose tracking_field is NULL: count them on every run as a "
        "warning (warn), or read them again on every run and merge them by key (carry).",
    )
    primary_key: NonEmpty[tuple[ColumnName, ...]] | None = config_field(
        None,
        expected="a non-empty list of column names",
        doc="The key used to merge incremental rows; default: the table's own primary key.",
    )
    columns: ColumnSelection | None = config_field(
        None,
        expected="a mapping with include, exclude and hash lists",
        doc="Which columns to copy or hash; default: all, as they are.",
    )
    filter: Annotated[str, AfterValidator(check_nonblank)] | None = config_field(
        None,
        expected="a SQL boolean expression",
        doc="Copy only rows where this Redshift SQL expression is true.",
    )
    target: Annotated[str, AfterValidator(check_target)] | None = config_field(
        None,
        expected="a table name",
        doc="The destination table name (only when include names one table).",
    )
    method: Method | None = config_field(
        None,
        expected="auto, data_api or unload",
        doc="Overrides the sync's and the connection's method for these tables.",
    )
    deletes: DeletesPolicy | None = config_field(
        None,
        expected="ignore, hard or soft",
        doc=_DELETES_DOC + " Default: the sync's deletes.",
    )
    lookback: Annotated[str | int, AfterValidator(check_lookback)] | None = config_field(
        None,
        expected="a duration such as 2h, 30m, 7d, or a number",
        doc="Incremental: also read again the rows this far below the cursor (a duration for "
        "timestamp and date cursors, a number for integer ones) and merge them by key, to "
        "catch rows committed late. Needs a primary key.",
    )

    on_mismatch: Literal["fail", "full_refresh"] | None = config_field(
        None,
        expected="fail or full_refresh",
        doc="After a verification mismatch: fail the table, or copy it again in full in the "
        "same run (then verify again); default: the sync's on_mismatch.",
    )

    @field_validator("tracking_field")
    @classmethod
    def _tracking_field_with_mode(cls, value: str | None, info: ValidationInfo) -> str | None:
        mode = info.data.get("mode")
        if mode == "incremental" and value is None:
            raise invalid("missing, but mode is incremental", "the column that grows with changes")
        if mode == "full_refresh" and value is not None:
            raise invalid(
                "set, but mode is full_refresh", "no tracking_field, or mode: incremental"
            )
        return value

    @field_validator("lookback")
    @classmethod
    def _lookback_is_incremental(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("mode") != "incremental":
            raise invalid("set, but mode is not incremental", "no lookback, or mode: incremental")
        return value

    @field_validator("null_tracking")
    @classmethod
    def _null_tracking_with_mode(cls, value: str, info: ValidationInfo) -> str:
        if value == "carry" and info.data.get("mode") != "incremental":
            raise invalid("carry, but mode is not incremental", "warn, or mode: incremental")
        return value

    @field_validator("columns")
    @classmethod
    def _keys_are_copied(
        cls, value: ColumnSelection | None, info: ValidationInfo
    ) -> ColumnSelection | None:
        if value is None:
            return value
        tracking = info.data.get("tracking_field")
        keys = [key for key in (tracking, *(info.data.get("primary_key") or ())) if key]
        dropped = [key for key in keys if isinstance(key, str) and not value.copies(key)]
        if dropped:
            raise invalid(
                f"leaves out key columns {dropped}",
                "columns that keep the tracking_field and primary_key",
            )
        if isinstance(tracking, str) and tracking in value.hash:
            raise invalid(f"hashes the tracking_field {tracking}", "a tracking_field copied as is")
        return value

    @field_validator("target")
    @classmethod
    def _target_names_one_table(cls, value: str | None, info: ValidationInfo) -> str | None:
        include = info.data.get("include")
        if value is not None and isinstance(include, str) and is_glob(include):
            raise invalid(
                f"set, but include {include!r} is a pattern",
                "target only when include names one table",
            )
        return value

    @property
    def is_exact(self) -> bool:
        return not is_glob(self.include)

    def matches(self, schema: str, table: str) -> bool:
        """Whether this entry selects schema.table (include matches, no exclude does)."""
        return match_table(self.include, schema, table) and not any(
            match_table(pattern, schema, table) for pattern in self.exclude
        )


def is_glob(pattern: str) -> bool:
    """Whether a "schema.table" pattern can select more than one table."""
    try:
        parts = split_table_pattern(pattern)
    except ValueError:
        return any(char in _GLOB_CHARS for char in pattern)
    return not all(part.literal for part in parts)


def match_table(pattern: str, schema: str, table: str) -> bool:
    """Match "schema.table" against a pattern part by part, case-sensitively.

    Only * and ? are wildcards ("[" is itself); a double-quoted part is the name as written.
    """
    try:
        schema_pattern, table_pattern = split_table_pattern(pattern)
    except ValueError:
        return False
    return schema_pattern.matches(schema) and table_pattern.matches(table)


def exact_table_name(pattern: str) -> tuple[str, str] | None:
    """(schema, table) when the pattern names one table, else None."""
    try:
        schema, table = split_table_pattern(pattern)
    except ValueError:
        return None
    if schema.literal and table.literal:
        return schema.text, table.text
    return None


class SyncConfig(ConfigModel):
    """A named copy job: which tables of a connection go to which destination."""

    source: Name = config_field(expected="the name of a connection", doc="The connection to read.")
    destination: Name = config_field(
        expected="the name of a destination", doc="The destination to write."
    )
    concurrency: int = config_field(
        2, expected="an integer from 1 to 16", doc="Tables copied at once.", ge=1, le=16
    )
    method: Method | None = config_field(
        None, expected="auto, data_api or unload", doc="Overrides the connection's method."
    )
    normalize_names: bool = config_field(
        False, expected="true or false", doc="Write lower_snake_case table and column names."
    )
    schema_changes: Literal["evolve", "freeze", "fail", "recreate"] = config_field(
        "evolve",
        expected="evolve, freeze, fail or recreate",
        doc="When a source table changes shape: add new columns (evolve), ignore them "
        "(freeze), stop (fail), or, when a load replaces the table whole, rebuild it with "
        "the source's columns and types (recreate; merges and appends then evolve).",
    )
    on_mismatch: Literal["fail", "full_refresh"] = config_field(
        "fail",
        expected="fail or full_refresh",
        doc="After a verification mismatch: fail the table, or copy it again in full in the "
        "same run (then verify again). A table's entry can override it.",
    )
    load_columns: bool = config_field(
        False,
        expected="true or false",
        doc="Add _shiftsync_synced_at (when the run that wrote each row started) and "
        "_shiftsync_run_id to every destination table.",
    )
    deletes: DeletesPolicy = config_field(
        "ignore", expected="ignore, hard or soft", doc=_DELETES_DOC
    )
    snapshot: Literal["table", "consistent", "none"] = config_field(
        "table",
        expected="table, consistent or none",
        doc="Which Redshift snapshot a run reads: each table's rows, high-water mark and "
        "verification figures from one transaction (table), every table of the run from one "
        "transaction, read one after another (consistent), or each statement on its own "
        "(none). See docs/syncs.md.",
    )
    max_compute_seconds: float | None = config_field(
        None,
        expected="a number of seconds above 0",
        doc="Budget of a run: once its statements have run this many seconds on Redshift, "
        "no new statement starts and the tables not finished fail with a clear message.",
        gt=0,
    )
    only_between: Annotated[str, AfterValidator(check_window)] | None = config_field(
        None,
        expected='a UTC time window "HH:MM-HH:MM" such as 01:00-05:00',
        doc="The sync runs only inside this daily window (UTC; it may span midnight); "
        "outside it `shiftsync sync` refuses with exit code 5.",
    )
    schedule: Annotated[str, AfterValidator(check_cron)] | None = config_field(
        None,
        expected="a 5-field cron expression",
        doc="When `shiftsync schedule` runs the sync: a cron expression, in UTC.",
    )
    tables: NonEmpty[tuple[TableSelection, ...]] = config_field(
        expected='a list of "schema.table" patterns or mappings with include:',
        doc='The tables to copy. A plain string "s.t" means {include: "s.t"}. When several '
        "entries match a table, an entry naming it exactly wins over patterns, then the last "
        "one wins.",
    )
    exclude: tuple[TablePattern, ...] = config_field(
        (), expected='a list of "schema.table" patterns', doc="Tables never copied by this sync."
    )
    executor: Literal["local", "ray"] = config_field(
        "local",
        expected="local or ray",
        doc="Where the table reads run: in this process, or as tasks on a Ray cluster "
        "(`pip install 'shiftsync[ray]'`; the driver still writes and commits).",
    )
    ray_address: Annotated[str, AfterValidator(check_nonblank)] | None = config_field(
        None,
        expected="host:port of the Ray head node",
        doc="The Ray cluster of `executor: ray` (default: the RAY_ADDRESS variable).",
    )

    @field_validator("tables", mode="before")
    @classmethod
    def _strings_are_includes(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return [{"include": item} if isinstance(item, str) else item for item in value]
        return value

    def select(self, schema: str, table: str) -> TableSelection | None:
        """The entry that governs schema.table, or None when the sync does not copy it."""
        if any(match_table(pattern, schema, table) for pattern in self.exclude):
            return None
        matching = [entry for entry in self.tables if entry.matches(schema, table)]
        exact = [entry for entry in matching if entry.is_exact]
        chosen = exact or matching
        return chosen[-1] if chosen else None
