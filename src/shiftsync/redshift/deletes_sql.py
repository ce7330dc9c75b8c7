"""Pure SQL builders for delete detection: key counts and key checksums computed in Redshift.

No I/O. Every key is turned into one **canonical key text**, hashed with MD5, and the hash is
cut into two independent numbers with STRTOL (both functions AWS documents):

    h      = MD5(<key text>)                                   32 lowercase hex digits
    bucket = MOD(STRTOL(SUBSTRING(h, 1, 8), 16), <buckets>)     hex digits 1-8
    value  = STRTOL(SUBSTRING(h, 9, 12), 16)                    hex digits 9-20: 48 bits

The order-independent checksum of a set of keys is (count, SUM(value)); the sum is taken as
DECIMAL(38,0), which holds 10^14 keys of 48 bits without overflow. shiftsync computes the same
numbers for the destination's keys (engine/deletes_digest.py), from the same key text.

The key text, per Redshift type (one column):

    int2, int4, int8, numeric   the number as Redshift prints it (decimals with every scale digit)
    varchar                     the value as it is
    bpchar                      the value without trailing blanks (CHAR ignores them)
    date                        YYYY-MM-DD
    timestamp                   YYYY-MM-DD HH24:MI:SS.US (six fraction digits)
    timestamptz                 the same, of the instant in UTC
    bool                        true / false

A composite key joins its columns' texts with `|`; a text column's part is prefixed with its
byte length and `:` so that no two keys give the same text (`a|b` + `c` against `a` + `b|c`).
A key with a NULL part has no text (SQL's `||` gives NULL) and is in no sum or count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from shiftsync.errors import ConfigError
from shiftsync.redshift.sql import qualified, quote_ident
from shiftsync.redshift.types import Column

TIMESTAMP_TEXT: Final = "YYYY-MM-DD HH24:MI:SS.US"

# Redshift type → the SQL of its key text ({col} is the quoted column).
KEY_TEXT_SQL: Final[Mapping[str, str]] = {
    "int2": "cast({col} as varchar)",
    "int4": "cast({col} as varchar)",
    "int8": "cast({col} as varchar)",
    "numeric": "cast({col} as varchar)",
    "varchar": "{col}",
    "bpchar": "rtrim({col})",
    "date": "to_char({col}, 'YYYY-MM-DD')",
    "timestamp": f"to_char({{col}}, '{TIMESTAMP_TEXT}')",
    "timestamptz": f"to_char(convert_timezone('UTC', {{col}}), '{TIMESTAMP_TEXT}')",
    "bool": "CASE WHEN {col} THEN 'true' WHEN NOT {col} THEN 'false' END",
}
# Key parts that can hold the separator: prefixed with their byte length.
LENGTH_PREFIXED: Final = frozenset({"varchar", "bpchar"})
KEY_SEPARATOR: Final = "|"
BUCKET_HEX: Final = 8  # hex digits of the hash that choose the bucket
VALUE_START: Final = BUCKET_HEX + 1
VALUE_HEX: Final = 12  # 48 bits: a sum of 10^14 of them fits DECIMAL(38,0) with room
MAX_BUCKETS: Final = 1 << 24  # well below the 2^32 values of eight hex digits

_HASH: Final = "h"
_IN_WINDOW: Final = "w"
_KEY: Final = "k"
_VALUE: Final = "v"


def key_problem(column: Column) -> str | None:
    """Why a column cannot be part of a key that deletes are detected by, or None."""
    if column.type_name not in KEY_TEXT_SQL:
        return (
            f"column {column.name!r} has type {column.type_name}, which has no exact key text "
            "(key columns must be integers, decimals, text, dates, timestamps or booleans)"
        )
    return None


def key_text_sql(columns: Sequence[Column]) -> str:
    """The canonical key text of `columns`, as one Redshift SQL expression."""
    if not columns:
        raise ConfigError(
            "delete detection needs a primary key, and none was given",
            fix="set primary_key for the table, or deletes: ignore",
        )
    parts: list[str] = []
    for column in columns:
        problem = key_problem(column)
        if problem is not None:
            raise ConfigError(problem, fix="set deletes: ignore for this table")
        text = KEY_TEXT_SQL[column.type_name].replace("{col}", quote_ident(column.name))
        if len(columns) > 1 and column.type_name in LENGTH_PREFIXED:
            text = f"cast(octet_length({text}) as varchar) || ':' || {text}"
        parts.append(text)
    if len(parts) == 1:
        return parts[0]
    return f" || '{KEY_SEPARATOR}' || ".join(f"({p})" for p in parts)


def bucket_sql(buckets: int, hash_column: str = _HASH) -> str:
    """The bucket of a hash: one of `buckets` (a power of two), from its first 8 hex digits."""
    check_buckets(buckets)
    return f"mod(strtol(substring({hash_column}, 1, {BUCKET_HEX}), 16), {buckets})"


def value_sql(hash_column: str = _HASH) -> str:
    """The 48-bit number of a hash that checksums add up, as DECIMAL(38,0)."""
    return (
        f"cast(strtol(substring({hash_column}, {VALUE_START}, {VALUE_HEX}), 16) as decimal(38,0))"
    )


def check_buckets(buckets: int) -> None:
    if buckets < 1 or buckets > MAX_BUCKETS or buckets & (buckets - 1):
        raise ConfigError(
            f"{buckets} key buckets: not a power of two from 1 to {MAX_BUCKETS}",
            fix="this is a bug in shiftsync: report it",
        )


def _hashed_keys(
    schema: str,
    table: str,
    key: Sequence[Column],
    where: str | None,
    *,
    window: str | None = None,
    with_text: bool = False,
    with_value: bool = True,
) -> str:
    """`(SELECT h [, v] [, w] [, k] FROM (SELECT md5(<key text>) AS h ... FROM t) ...)`.

    h: the key's hash, v: its 48-bit value (computed once per key), w: 1 inside `window`,
    k: the key text.
    """
    text = key_text_sql(key)
    inner = [f"md5({text}) AS {_HASH}"]
    outer = [_HASH, f"{value_sql()} AS {_VALUE}"] if with_value else [_HASH]
    if window is not None:
        inner.append(f"CASE WHEN {window} THEN 1 ELSE 0 END AS {_IN_WINDOW}")
        outer.append(_IN_WINDOW)
    if with_text:
        inner.append(f"{text} AS {_KEY}")
        outer.append(_KEY)
    sql = f"SELECT {', '.join(inner)} FROM {qualified(schema, table)}"
    if where:
        sql += f" WHERE {where}"
    hashed = f"SELECT {', '.join(outer)} FROM ({sql}) AS {quote_ident('hashed')}"
    return f"({hashed}) AS {quote_ident('keys')}"


def build_key_summary_sql(
    schema: str,
    table: str,
    key: Sequence[Column],
    where: str | None = None,
    *,
    window: str | None = None,
) -> str:
    """One row: the key count and key checksum of the rows `where` selects.

    With `window` (the rows the destination was loaded from, e.g. `tracking <= high`), two
    more columns give the same of the rows inside it: either pair equal to the destination's
    proves that no destination key is missing from the source.
    """
    parts = [f"count({_HASH})", f"sum({_VALUE})"]
    if window is not None:
        parts += [
            f"count(CASE WHEN {_IN_WINDOW} = 1 THEN {_HASH} END)",
            f"sum(CASE WHEN {_IN_WINDOW} = 1 THEN {_VALUE} END)",
        ]
    source = _hashed_keys(schema, table, key, where, window=window)
    return f"SELECT {', '.join(parts)}\nFROM {source}"


def _in_list(values: Sequence[int]) -> str:
    if not values:
        raise ConfigError("an empty bucket list", fix="this is a bug in shiftsync: report it")
    return ", ".join(str(int(v)) for v in sorted(set(values)))


def build_bucket_sql(
    schema: str,
    table: str,
    key: Sequence[Column],
    where: str | None,
    *,
    buckets: int,
    within: Sequence[int] = (),
    within_buckets: int = 0,
) -> str:
    """Per bucket of `buckets`: bucket, key count, key checksum (buckets without keys absent).

    `within` narrows to the keys of those buckets of a coarser split (`within_buckets`, a
    divisor of `buckets`): splitting a bucket again is bisection of the keys that differ.
    """
    bucket = bucket_sql(buckets)
    sql = (
        f"SELECT {bucket} AS {quote_ident('bucket')}, count(*), sum({_VALUE})\n"
        f"FROM {_hashed_keys(schema, table, key, where)}\nWHERE {_HASH} IS NOT NULL"
    )
    if within:
        if within_buckets < 1 or buckets % within_buckets:
            raise ConfigError(
                f"buckets {buckets} do not split {within_buckets} buckets",
                fix="this is a bug in shiftsync: report it",
            )
        sql += f" AND {bucket_sql(within_buckets)} IN ({_in_list(within)})"
    return sql + "\nGROUP BY 1"


def build_bucket_keys_sql(
    schema: str,
    table: str,
    key: Sequence[Column],
    where: str | None,
    *,
    buckets: int,
    within: Sequence[int],
) -> str:
    """The key texts of the source's keys in the buckets `within` (of `buckets`)."""
    source = _hashed_keys(schema, table, key, where, with_text=True, with_value=False)
    return (
        f"SELECT {_KEY}\nFROM {source}\n"
        f"WHERE {_HASH} IS NOT NULL AND {bucket_sql(buckets)} IN ({_in_list(within)})"
    )


__all__ = [
    "KEY_TEXT_SQL",
    "LENGTH_PREFIXED",
    "bucket_sql",
    "build_bucket_keys_sql",
    "build_bucket_sql",
    "build_key_summary_sql",
    "key_problem",
    "key_text_sql",
    "value_sql",
]
