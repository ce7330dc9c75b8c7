"""Verification: the same numbers computed on Redshift and in the destination, compared.

Pure: no I/O. The destination side is `Destination.profile(target, columns)` (see
`destinations/base.py`); this module builds the Redshift side (`build_profile_sql`), reads
its one result row into the same `TableProfile` and compares the two.

Per column (the kind follows the column's Arrow type, `profile_kind`):

    sum         integers and decimals: the exact SUM (BIGINT summed as DECIMAL(38,0))
    octets      text, JSON (SUPER), binary (VARBYTE, GEOMETRY as WKB): SUM of byte lengths
    true_count  booleans: how many are true
    range       dates, times, timestamps: MIN and MAX as ISO text (TIMESTAMPTZ in UTC)
    count       floats, intervals, TIMETZ: the non-NULL count only

and for every column the non-NULL count, for the table the row count. Hashed columns hold
a 64-character hex digest in the destination; their Redshift side is `count(col)` and
`64 * count(col)` octets (hashing every value a second time on Redshift would cost a full
scan of SHA-256 for no extra certainty: a digest is 64 bytes or it is not one).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

import pyarrow as pa

from shiftsync.destinations.base import (
    ColumnProfile,
    TableProfile,
    assemble_profile,
    profile_kind,
)
from shiftsync.engine.runs import VerificationJson, VerificationStatus
from shiftsync.errors import VerificationError
from shiftsync.redshift.data_api_results import FieldValue
from shiftsync.redshift.sql import qualified, quote_ident
from shiftsync.redshift.types import Column, arrow_field

SHA256_HEX_LENGTH: Final = 64
TIMESTAMP_FORMAT: Final = "YYYY-MM-DD HH24:MI:SS.US"
DATE_FORMAT: Final = "YYYY-MM-DD"
# Redshift types whose destination text is not the server's text of the value (the read path
# normalises it), so only their non-NULL count can be compared exactly.
COUNT_ONLY_TYPES: Final = frozenset({"timetz", "interval"})

Status = VerificationStatus


@dataclass(frozen=True)
class ProfileColumn:
    """One column to verify: its Redshift column, destination name and destination type."""

    column: Column
    target: str
    hashed: bool = False

    @property
    def source(self) -> str:
        return self.column.name

    @property
    def data_type(self) -> pa.DataType:
        """The Arrow type the destination holds (a hashed column holds hex text)."""
        if self.hashed:
            return pa.string()
        return arrow_field(self.column).type

    @property
    def count_only(self) -> bool:
        return not self.hashed and (
            self.column.type_name in COUNT_ONLY_TYPES or profile_kind(self.data_type) == "count"
        )


@dataclass(frozen=True)
class Mismatch:
    """One number that differs; `column` None means the row count."""

    column: str | None
    measure: str
    source: str
    destination: str

    def describe(self) -> str:
        where = "row count" if self.column is None else f"column {self.column!r} {self.measure}"
        return f"{where}: source {self.source}, destination {self.destination}"


@dataclass(frozen=True)
class VerificationResult:
    status: Status
    source_rows: int | None = None
    destination_rows: int | None = None
    columns_checked: int = 0
    mismatches: tuple[Mismatch, ...] = ()
    note: str = ""

    def to_json(self) -> VerificationJson:
        return {
            "status": self.status,
            "source_rows": self.source_rows,
            "destination_rows": self.destination_rows,
            "columns_checked": self.columns_checked,
            "mismatches": [
                {
                    "column": m.column,
                    "measure": m.measure,
                    "source": m.source,
                    "destination": m.destination,
                }
                for m in self.mismatches
            ],
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: VerificationJson) -> VerificationResult:
        return cls(
            status=data.get("status", "skipped"),
            source_rows=data.get("source_rows"),
            destination_rows=data.get("destination_rows"),
            columns_checked=int(data.get("columns_checked", 0)),
            mismatches=tuple(
                Mismatch(m.get("column"), m["measure"], m["source"], m["destination"])
                for m in data.get("mismatches", ())
            ),
            note=str(data.get("note", "")),
        )


# --- the Redshift side ------------------------------------------------------------------


def _null() -> str:
    return "NULL"


def source_expressions(column: ProfileColumn) -> tuple[str, str, str, str]:
    """(non-NULL count, total, min, max) of one column as Redshift SQL expressions."""
    c = quote_ident(column.source)
    count = f"count({c})"
    if column.hashed:
        return count, f"{SHA256_HEX_LENGTH} * count({c})", _null(), _null()
    if column.count_only:
        return count, _null(), _null(), _null()
    type_name = column.column.type_name
    kind = profile_kind(column.data_type)
    if kind == "sum":
        # Redshift sums BIGINT into a BIGINT, which overflows; DECIMAL(38,0) does not.
        total = f"sum(cast({c} as decimal(38,0)))" if type_name == "int8" else f"sum({c})"
        return count, total, _null(), _null()
    if kind == "octets":
        if type_name == "super":
            return count, f"sum(octet_length(json_serialize({c})))", _null(), _null()
        if type_name == "varbyte":
            return count, f"sum(len({c}))", _null(), _null()
        if type_name in ("geometry", "geography"):
            return count, f"sum(len(st_asbinary({c})))", _null(), _null()
        if type_name in ("varchar", "bpchar"):
            return count, f"sum(octet_length({c}))", _null(), _null()
        return count, f"sum(octet_length(cast({c} as varchar)))", _null(), _null()
    if kind == "true_count":
        return count, f"count(CASE WHEN {c} THEN 1 END)", _null(), _null()
    if kind == "range":
        if type_name == "timestamptz":
            low = f"to_char(convert_timezone('UTC', min({c})), '{TIMESTAMP_FORMAT}')"
            high = f"to_char(convert_timezone('UTC', max({c})), '{TIMESTAMP_FORMAT}')"
        elif type_name == "timestamp":
            low = f"to_char(min({c}), '{TIMESTAMP_FORMAT}')"
            high = f"to_char(max({c}), '{TIMESTAMP_FORMAT}')"
        elif type_name == "date":
            low, high = f"to_char(min({c}), '{DATE_FORMAT}')", f"to_char(max({c}), '{DATE_FORMAT}')"
        else:
            low, high = f"cast(min({c}) as varchar)", f"cast(max({c}) as varchar)"
        return count, _null(), low, high
    return count, _null(), _null(), _null()


def build_profile_sql(
    schema: str, table: str, columns: Sequence[ProfileColumn], where: str | None = None
) -> str:
    """One scan of schema.table: count(*), then four expressions per column.

    `where` is an already-built boolean expression (the filter and the high-water mark).
    """
    parts = ["count(*)"]
    for column in columns:
        parts += source_expressions(column)
    sql = f"SELECT {', '.join(parts)}\nFROM {qualified(schema, table)}"
    if where:
        sql += f"\nWHERE {where}"
    return sql


# Columns profiled per statement, on each side. A profile is four expressions per column and
# one row count: 300 columns make 1,201 select-list entries, under PostgreSQL's 1,664 (the
# stand-in, the PostgreSQL destination) and Redshift's 1,600 columns of a table, and keep
# DuckDB's aggregate state small. A table of 1,600 columns takes six statements per side.
PROFILE_CHUNK: Final = 300


def column_chunks(
    columns: Sequence[ProfileColumn], size: int = PROFILE_CHUNK
) -> list[Sequence[ProfileColumn]]:
    """The columns in groups of at most `size`, in order; one empty group for no column (the
    row count is still compared)."""
    if not columns:
        return [()]
    return [columns[start : start + size] for start in range(0, len(columns), size)]


def merge_profiles(where: str, profiles: Sequence[TableProfile]) -> TableProfile:
    """One profile from the profiles of column chunks; their row counts must agree (a table
    that changed between two statements cannot be compared column by column)."""
    counts = {p.rows for p in profiles}
    if len(counts) > 1:
        raise VerificationError(
            f"{where}: the row count changed between the statements of one verification "
            f"({', '.join(str(c) for c in sorted(counts))})",
            fix="run the sync again when the table is not being written",
        )
    columns: dict[str, ColumnProfile] = {}
    for profile in profiles:
        columns.update(profile.columns)
    return TableProfile(profiles[0].rows if profiles else 0, columns)


def build_duplicate_key_sql(
    schema: str, table: str, key: Sequence[str], where: str | None = None
) -> str:
    """One key value that more than one row holds, with how many; no row when the key is
    unique. Redshift does not enforce primary keys, and a merge by a key that is not unique
    would silently keep one row of each group."""
    keys = ", ".join(quote_ident(k) for k in key)
    texts = ", ".join(f"cast({quote_ident(k)} as varchar)" for k in key)
    sql = f"SELECT {texts}, count(*)\nFROM {qualified(schema, table)}"
    if where:
        sql += f"\nWHERE {where}"
    return sql + f"\nGROUP BY {keys}\nHAVING count(*) > 1\nLIMIT 1"


def parse_source_profile(
    row: Sequence[FieldValue], columns: Sequence[ProfileColumn]
) -> TableProfile:
    """The TableProfile of the result row of `build_profile_sql`, keyed by destination name."""
    expected = 1 + 4 * len(columns)
    if len(row) != expected:
        raise VerificationError(
            f"the profile query returned {len(row)} values, expected {expected}",
            fix="this is a bug in shiftsync: report it",
        )
    values = []
    for index in range(len(columns)):
        non_null, total, low, high = row[1 + 4 * index : 5 + 4 * index]
        values.append((_integer(non_null), _number(total), _text(low), _text(high)))
    typed = [(c.target, c.data_type) for c in columns]
    return assemble_profile(_integer(row[0]), typed, values)


def _integer(value: FieldValue) -> int:
    return 0 if value is None else int(value)


def _number(value: FieldValue) -> int | Decimal | str | None:
    """A SUM as the Data API gives it: a whole number (longValue) or a decimal's text."""
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    if isinstance(value, float):
        return Decimal(value)  # exactly as `render_sum` would read it
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _text(value: FieldValue) -> str | None:
    return None if value is None else str(value)


# --- the comparison -----------------------------------------------------------------------


def _same_number(left: str | None, right: str | None) -> bool:
    # Numerically: a decimal column widened in the destination prints more scale digits.
    if left is None or right is None:
        return left == right
    try:
        return Decimal(left) == Decimal(right)
    except InvalidOperation:
        return left == right


def _compare_column(
    column: ProfileColumn, source: ColumnProfile, destination: ColumnProfile
) -> list[Mismatch]:
    name = column.target
    found: list[Mismatch] = []
    if source.non_null != destination.non_null:
        found.append(
            Mismatch(name, "non-NULL count", str(source.non_null), str(destination.non_null))
        )
    if column.count_only:
        return found
    kind = "octets" if column.hashed else profile_kind(column.data_type)
    if kind in ("sum", "octets", "true_count") and not _same_number(
        source.total, destination.total
    ):
        measure = {"sum": "sum", "octets": "total bytes", "true_count": "count of true"}[kind]
        found.append(Mismatch(name, measure, str(source.total), str(destination.total)))
    if kind == "range":
        for measure, left, right in (
            ("minimum", source.min, destination.min),
            ("maximum", source.max, destination.max),
        ):
            if left != right:
                found.append(Mismatch(name, measure, str(left), str(right)))
    return found


def compare_profiles(
    columns: Sequence[ProfileColumn], source: TableProfile, destination: TableProfile
) -> VerificationResult:
    """Compare the two profiles (keyed by destination column name)."""
    mismatches: list[Mismatch] = []
    if source.rows != destination.rows:
        mismatches.append(Mismatch(None, "rows", str(source.rows), str(destination.rows)))
    for column in columns:
        left = source.columns.get(column.target)
        right = destination.columns.get(column.target)
        if left is None or right is None:
            missing = "source" if left is None else "destination"
            mismatches.append(Mismatch(column.target, "presence", "profiled", f"no {missing}"))
            continue
        mismatches += _compare_column(column, left, right)
    return VerificationResult(
        status="mismatch" if mismatches else "ok",
        source_rows=source.rows,
        destination_rows=destination.rows,
        columns_checked=len(columns),
        mismatches=tuple(mismatches),
    )


def full_refresh_command(sync_name: str | None, table: str) -> str:
    """The command that copies one table of a sync again in full, ready to paste."""
    name = f" {shlex.quote(sync_name)}" if sync_name else ""
    return f"shiftsync sync{name} --full-refresh --tables {shlex.quote(table)}"


def raise_for_mismatch(
    table: str,
    target: str,
    result: VerificationResult,
    *,
    incremental: bool = False,
    sync_name: str | None = None,
) -> None:
    """VerificationError naming the table, the column and both values of each difference."""
    if result.status != "mismatch":
        return
    details = "; ".join(m.describe() for m in result.mismatches[:5])
    more = len(result.mismatches) - 5
    if more > 0:
        details += f"; and {more} more"
    again = f"run `{full_refresh_command(sync_name, table)}` to copy the table again"
    if incremental:
        fix = (
            f"{again}. An incremental sync copies only rows whose tracking field passed the "
            "cursor: rows changed without moving it, deleted rows, rows whose tracking field "
            "is NULL (null_tracking: carry merges those by key) and old rows of a new column "
            "are not copied; on_mismatch: full_refresh copies the table again by itself"
        )
    elif any(m.column is None for m in result.mismatches):
        fix = f"{again}; a source that changed during the run explains a different row count"
    else:
        fix = f"{again}; if the difference stays, report it with this message"
    raise VerificationError(
        f"table {table} (destination {target!r}) does not match the source: {details}", fix=fix
    )


__all__ = [
    "COUNT_ONLY_TYPES",
    "PROFILE_CHUNK",
    "Mismatch",
    "ProfileColumn",
    "VerificationResult",
    "build_duplicate_key_sql",
    "build_profile_sql",
    "column_chunks",
    "compare_profiles",
    "merge_profiles",
    "parse_source_profile",
    "raise_for_mismatch",
    "source_expressions",
]
