"""How a table is read: the Data API or UNLOAD, and in how many key-range chunks. Pure.

`choose_method` decides from the size estimates (svv_table_info), the row width the types
suggest, and whether UNLOAD is configured. The rule, with its thresholds:

- `data_api` or `unload` asked for (per table, else per connection): that method. UNLOAD
  needs `unload:` in the connection and names without a backslash (ConfigError otherwise).
- `auto`, UNLOAD not configured (or impossible for the names): the Data API.
- `auto`, estimated rows x row width over 80 % of the Data API's 500 MB result limit: UNLOAD.
- `auto`, more than 100 MB of rows (estimated rows x row width), or more than 100 MB stored in
  Redshift with at least 10,000 rows: UNLOAD, which is faster from there on. (The row
  minimum keeps tiny tables off UNLOAD: Redshift stores every column of every slice in at
  least one 1 MB block, so a small wide table can look big.)
- anything else, views without an estimate included: the Data API.

A Data API read whose estimate passes the result limit is split into key-range chunks up
front; one that passes it unexpectedly (the statement fails with "Database response exceeded
size limit") falls back to UNLOAD when it is configured and allowed, else to chunks.
`split_range` cuts a key range into chunks; `chunk_key` picks the column to cut by.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation, localcontext
from typing import Final, Literal, TypeAlias

from shiftsync.errors import ConfigError
from shiftsync.redshift.types import Column

Method = Literal["auto", "data_api", "unload"]
ReadMethod = Literal["data_api", "unload"]
METHODS: Final = ("auto", "data_api", "unload")

MB: Final = 1024 * 1024
DATA_API_MAX_RESULT_BYTES: Final = 500 * MB
DATA_API_MAX_ROW_BYTES: Final = 64 * 1024
# Plan for 80 % of the limit: the width estimate is a guess.
RESULT_SAFETY: Final = 0.8
UNLOAD_MIN_BYTES: Final = 100 * MB
UNLOAD_MIN_ROWS: Final = 10_000
# Each chunk aims at half the limit, so an estimate off by 2x still fits.
CHUNK_TARGET_BYTES: Final = DATA_API_MAX_RESULT_BYTES // 2
MAX_CHUNKS: Final = 10_000

# Typical width of one value in the Data API's CSV, with its separator. Character types count
# their declared length up to VARCHAR_TYPICAL: a VARCHAR(65535) rarely holds 64 KB.
VARCHAR_TYPICAL: Final = 256
FIXED_WIDTHS: Final = {
    "int2": 7,
    "int4": 12,
    "int8": 21,
    "float4": 16,
    "float8": 25,
    "bool": 2,
    "date": 11,
    "timestamp": 27,
    "timestamptz": 31,
    "time": 16,
    "timetz": 22,
    "super": 256,
    "geometry": 128,
    "geography": 128,
    "hllsketch": 256,
    "interval": 30,
}
UNKNOWN_WIDTH: Final = 32

# Key types a range can be cut by arithmetic.
SPLITTABLE: Final = ("int8", "int4", "int2", "date", "timestamp", "timestamptz", "numeric")


@dataclass(frozen=True)
class ReadPlan:
    """The method a table is read with, why, and in how many key-range chunks (Data API)."""

    method: ReadMethod
    reason: str
    chunks: int = 1


@dataclass(frozen=True)
class KeyRange:
    """Rows whose key is in [low, high) or [low, high]; or, with `is_null`, whose key is NULL."""

    low: str | None
    high: str | None
    high_inclusive: bool = True
    is_null: bool = False


def size_text(n: int) -> str:
    """A byte count for people: `512 B`, `3.4 MB`, `1.2 GB`."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TB"


def value_width(column: Column) -> int:
    """The typical CSV width of one value of the column, separator included."""
    name = column.type_name
    if name in FIXED_WIDTHS:
        return FIXED_WIDTHS[name]
    if name == "numeric":
        return (column.precision or 18) + 3
    if name in ("varchar", "bpchar"):
        return min(column.length or VARCHAR_TYPICAL, VARCHAR_TYPICAL) + 1
    if name == "varbyte":
        return 2 * min(column.length or VARCHAR_TYPICAL, VARCHAR_TYPICAL) + 1
    return UNKNOWN_WIDTH


def estimate_row_width(columns: Sequence[Column]) -> int:
    """The typical width of one row in the Data API's CSV (at least 1)."""
    return max(1, sum(value_width(column) for column in columns))


def unload_blocker(schema: str, table: str, columns: Sequence[Column]) -> str | None:
    """Why UNLOAD cannot read these names, or None. (UNLOAD quotes its query as a literal.)"""
    names = [schema, table, *(column.name for column in columns)]
    if any("\\" in name for name in names):
        return (
            "a schema, table or column name holds a backslash, which Redshift may read as an "
            "escape inside UNLOAD's quoted query"
        )
    return None


def choose_method(
    *,
    requested: str,
    unload_configured: bool,
    kind: Literal["TABLE", "VIEW"],
    estimated_rows: int | None,
    estimated_bytes: int | None,
    row_width: int,
    blocker: str | None = None,
    chunkable: bool = True,
) -> ReadPlan:
    """The read plan of one table (see the module docstring for the rule)."""
    if requested not in METHODS:
        raise ConfigError(
            f"read method {requested!r} is not known", fix="use auto, data_api or unload"
        )
    rows_bytes = estimated_rows * row_width if estimated_rows is not None else None
    over_limit = rows_bytes is not None and rows_bytes > RESULT_SAFETY * DATA_API_MAX_RESULT_BYTES

    def data_api(reason: str) -> ReadPlan:
        if over_limit and rows_bytes is not None:
            if not chunkable:
                return ReadPlan(
                    "data_api",
                    f"{reason}; about {size_text(rows_bytes)} of rows may pass the Data API's "
                    "500 MB result limit and no key column can split it",
                )
            chunks = min(MAX_CHUNKS, math.ceil(rows_bytes / CHUNK_TARGET_BYTES))
            return ReadPlan(
                "data_api",
                f"{reason}; about {size_text(rows_bytes)} of rows would pass the Data API's "
                f"500 MB result limit: read in {chunks} key-range chunks",
                chunks,
            )
        return ReadPlan("data_api", reason)

    if requested == "data_api":
        return data_api("method data_api was asked for")
    if requested == "unload":
        if not unload_configured:
            raise ConfigError(
                "method unload was asked for, but the connection has no unload: settings",
                fix="add unload: {bucket: <staging bucket>} to the connection in "
                "shiftsync.yaml (docs/configuration.md), or use method data_api",
            )
        if blocker is not None:
            raise ConfigError(
                f"method unload was asked for, but {blocker}", fix="read it with method data_api"
            )
        return ReadPlan("unload", "method unload was asked for")
    if not unload_configured:
        return data_api("UNLOAD is off (the connection has no unload: bucket)")
    if blocker is not None:
        return data_api(f"UNLOAD cannot read it: {blocker}")
    if over_limit and rows_bytes is not None:
        return ReadPlan(
            "unload",
            f"about {size_text(rows_bytes)} of rows would pass the Data API's 500 MB result limit",
        )
    if rows_bytes is not None and rows_bytes > UNLOAD_MIN_BYTES:
        return ReadPlan(
            "unload", f"about {size_text(rows_bytes)} of rows: UNLOAD is faster above 100 MB"
        )
    if (
        estimated_bytes is not None
        and estimated_bytes > UNLOAD_MIN_BYTES
        and (estimated_rows is None or estimated_rows >= UNLOAD_MIN_ROWS)
    ):
        return ReadPlan(
            "unload",
            f"{size_text(estimated_bytes)} stored in Redshift: UNLOAD is faster above 100 MB",
        )
    if estimated_rows is None and estimated_bytes is None:
        what = "a view has" if kind == "VIEW" else "the table has"
        return data_api(
            f"{what} no size estimate: Data API, switching to UNLOAD or key-range chunks if "
            "the result passes its limit"
        )
    shown = f"about {estimated_rows:,} rows" if estimated_rows is not None else "no row count"
    stored = f", {size_text(estimated_bytes)} stored" if estimated_bytes is not None else ""
    return data_api(f"small ({shown}{stored})")


def chunk_key(columns: Sequence[Column], primary_key: Sequence[str]) -> Column | None:
    """The column to cut key ranges by: a primary key column if it can be cut, else the best
    other column (NOT NULL first, integers before dates and timestamps before decimals)."""
    candidates = [column for column in columns if column.type_name in SPLITTABLE]
    if not candidates:
        return None

    def rank(column: Column) -> tuple[int, int, int, int]:
        in_key = column.name in primary_key
        position = primary_key.index(column.name) if in_key else 0
        return (
            0 if in_key else 1,
            position,
            1 if column.nullable else 0,
            SPLITTABLE.index(column.type_name),
        )

    return min(candidates, key=rank)


def initial_chunks(estimated_rows: int | None, row_width: int, *, minimum: int = 4) -> int:
    """How many chunks to start with after the result limit was hit."""
    if estimated_rows is None:
        return minimum
    wanted = math.ceil(estimated_rows * row_width / CHUNK_TARGET_BYTES)
    return max(minimum, min(MAX_CHUNKS, wanted))


# ------------------------------------------------------------------ key ranges


# A key bound as `_parse` reads it; both bounds of a range are of one type (the column's).
KeyValue: TypeAlias = int | Decimal | date | datetime


def _before(left: KeyValue, right: KeyValue) -> bool:
    """`left < right` for two bounds of one column."""
    if isinstance(left, date) and isinstance(right, date):
        return left < right
    if isinstance(left, date) or isinstance(right, date):
        raise TypeError(f"cannot order {left!r} and {right!r}")
    return left < right


def _parse(text: str, type_name: str) -> KeyValue:
    value = text.strip()
    try:
        if type_name in ("int2", "int4", "int8"):
            return int(value)
        if type_name == "numeric":
            number = Decimal(value)
            if not number.is_finite():
                raise ValueError(value)
            return number
        if type_name == "date":
            return date.fromisoformat(value)
        if type_name == "timestamp":
            return datetime.fromisoformat(value)
        if type_name == "timestamptz":
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
    except (ValueError, InvalidOperation) as error:
        raise ConfigError(
            f"key bound {text!r} is not a {type_name} value",
            fix="report this: the bounds come from the table's own MIN and MAX",
        ) from error
    raise ConfigError(
        f"a key range cannot be cut on type {type_name}",
        fix=f"choose a key column of type {', '.join(SPLITTABLE)}",
    )


def _format(value: KeyValue, type_name: str) -> str:
    if type_name == "timestamptz" and isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # str() writes small and large values in exponent form (1E-7), which the range
        # predicate refuses and Redshift would read as a float: always plain digits.
        return format(abs(value) if value.is_zero() else value, "f")
    return str(value)


def _scale_of(*values: Decimal) -> int:
    """The digits after the point the values are written with (a NUMERIC's display scale)."""
    exponents = [value.as_tuple().exponent for value in values]
    return max([0, *(-e for e in exponents if isinstance(e, int))])


def _points(
    low: KeyValue,
    high: KeyValue,
    parts: int,
    scale: int = 0,
) -> list[KeyValue]:
    """parts - 1 points strictly between low and high, evenly spaced, in order, unique.

    Decimal points are rounded to `scale` digits after the point: a bound with more digits
    than the column has no use, and past 38 digits Redshift cannot take it at all.
    """
    inner: list[KeyValue] = []
    for i in range(1, parts):
        if isinstance(low, datetime) and isinstance(high, datetime):
            span = (high - low) // timedelta(microseconds=1)
            inner.append(low + timedelta(microseconds=span * i // parts))
        elif isinstance(low, date) and isinstance(high, date):
            days = high.toordinal() - low.toordinal()
            inner.append(date.fromordinal(low.toordinal() + days * i // parts))
        elif isinstance(low, int) and isinstance(high, int):
            inner.append(low + (high - low) * i // parts)
        elif isinstance(low, Decimal) and isinstance(high, Decimal):
            with localcontext() as context:
                # Enough digits for any two 38-digit bounds, and for the scale's own digits.
                context.prec = 80 + scale
                exact = low + (high - low) * i / parts
                inner.append(exact.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_FLOOR))
    # Rounding can put a point on a bound or on its neighbour: keep each once, inside.
    unique: list[KeyValue] = []
    for point in inner:
        inside = _before(low, point) and _before(point, high)
        if inside and (not unique or _before(unique[-1], point)):
            unique.append(point)
    return unique


def split_range(
    low: str,
    high: str,
    parts: int,
    type_name: str,
    *,
    high_inclusive: bool = True,
    scale: int | None = None,
) -> list[KeyRange]:
    """Cut [low, high] (or [low, high)) into at most `parts` adjacent ranges that cover it.

    Each range but the last excludes its high bound, so every key falls in exactly one.
    A range that cannot be cut (one value, or a unit step) comes back whole. For a NUMERIC
    key, `scale` is the column's; without it, the scale the bounds are written with (Redshift
    writes a NUMERIC with all of its column's digits after the point).
    """
    if parts < 1:
        raise ConfigError(f"cannot cut a key range into {parts} parts", fix="use 1 or more")
    if scale is not None and scale < 0:
        raise ConfigError(
            f"a NUMERIC scale of {scale} is not possible", fix="give the key column's scale (0-37)"
        )
    first, last = _parse(low, type_name), _parse(high, type_name)
    if _before(last, first):
        raise ConfigError(
            f"key range low {low!r} is above high {high!r}",
            fix="report this: the bounds come from the table's own MIN and MAX",
        )
    if scale is None and isinstance(first, Decimal) and isinstance(last, Decimal):
        scale = _scale_of(first, last)
    bounds = [first, *_points(first, last, parts, scale or 0), last]
    if len(bounds) == 2 and high_inclusive and _before(first, last) and parts > 1:
        # Adjacent keys (5 and 6): nothing lies between them, but the high one can go alone.
        bounds.append(last)
    texts = [_format(bound, type_name) for bound in bounds]
    ranges = [KeyRange(texts[i], texts[i + 1], False) for i in range(len(texts) - 2)]
    ranges.append(KeyRange(texts[-2], texts[-1], high_inclusive))
    return ranges


def can_split(key_range: KeyRange, type_name: str, *, scale: int | None = None) -> bool:
    """Whether bisecting the range gives two non-empty parts (`scale` as in split_range)."""
    if key_range.is_null or key_range.low is None or key_range.high is None:
        return False
    parts = split_range(
        key_range.low,
        key_range.high,
        2,
        type_name,
        high_inclusive=key_range.high_inclusive,
        scale=scale,
    )
    return len(parts) > 1


__all__ = [
    "DATA_API_MAX_RESULT_BYTES",
    "DATA_API_MAX_ROW_BYTES",
    "SPLITTABLE",
    "UNLOAD_MIN_BYTES",
    "UNLOAD_MIN_ROWS",
    "KeyRange",
    "ReadPlan",
    "can_split",
    "choose_method",
    "chunk_key",
    "estimate_row_width",
    "initial_chunks",
    "size_text",
    "split_range",
    "unload_blocker",
    "value_width",
]
