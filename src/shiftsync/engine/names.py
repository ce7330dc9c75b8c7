"""Destination names: `normalize_names` (lower_snake_case) and the default table name.

Pure: no I/O. Normalising is one-way, so two source names that normalise alike would write
into one destination column or table; that is refused (ConfigError) instead of silently
losing one of them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Final

from shiftsync.errors import ConfigError

RESERVED_PREFIX: Final = "_shiftsync"
DEFAULT_SCHEMA: Final = "public"

# A word boundary inside CamelCase: "userId" → "user_Id", "HTTPServer" → "HTTP_Server".
_LOWER_UPPER: Final = re.compile(r"(?<=[^\W_])(?=[A-Z][a-z])|(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS: Final = re.compile(r"[^\w]+|_+")

_FIX_COLLISION: Final = (
    "rename one of them in the source (a view), leave one out with columns.exclude, "
    "or set normalize_names: false"
)


def normalize_name(name: str) -> str:
    """`name` in lower_snake_case: "Mixed Case" → "mixed_case", "userID" → "user_id".

    Letters outside ASCII are kept (lower-cased), so no name becomes empty only because it is
    not English; a name that starts with a digit gets a leading "_" so it stays an identifier.
    """
    text = unicodedata.normalize("NFC", name)
    text = _LOWER_UPPER.sub("_", text)
    text = _SEPARATORS.sub("_", text).strip("_").lower()
    if not text:
        raise ConfigError(
            f"the name {name!r} has no letter or digit, so it cannot be normalized",
            fix="rename it in the source (a view), or set normalize_names: false",
        )
    if text[0].isdigit():
        text = "_" + text
    return text


def default_target(schema: str, table: str) -> str:
    """The destination table of schema.table when the entry sets no `target`.

    Tables of `public` keep their name; other schemas prefix theirs, so "sales.orders" and
    "public.orders" do not meet in one destination table.
    """
    return table if schema == DEFAULT_SCHEMA else f"{schema}_{table}"


# PostgreSQL keeps the first NAMEDATALEN - 1 bytes of a name and drops the rest without a word.
POSTGRES_NAME_BYTES: Final = 63


def same_table_key(destination_kind: str, name: str) -> str:
    """`name` as the destination compares table names: two targets with one key are one table.

    DuckDB matches names without regard to case, even quoted ones; PostgreSQL (quoted) and
    Parquet folders keep case.
    """
    return name.lower() if destination_kind == "duckdb" else name


def check_target_length(destination_kind: str, table: str, name: str) -> None:
    """ConfigError when the destination would cut the name and could mix it up with another."""
    size = len(name.encode("utf-8"))
    if destination_kind == "postgres" and size > POSTGRES_NAME_BYTES:
        raise ConfigError(
            f"table {table}: the destination name {name!r} is {size} bytes; PostgreSQL keeps "
            f"only the first {POSTGRES_NAME_BYTES}, so two such tables could become one",
            fix=f"set a target of at most {POSTGRES_NAME_BYTES} bytes for this table",
        )


def check_column_lengths(destination_kind: str, table: str, names: Iterable[str]) -> None:
    """ConfigError for a destination column name PostgreSQL would cut: Redshift allows 127
    bytes, PostgreSQL keeps 63 and silently drops the rest, which could merge two columns or
    break verification. No mapping is invented: the user chooses the name."""
    if destination_kind != "postgres":
        return
    for name in names:
        size = len(name.encode("utf-8"))
        if size > POSTGRES_NAME_BYTES:
            raise ConfigError(
                f"table {table}: column {name!r} is {size} bytes long; PostgreSQL keeps only the "
                f"first {POSTGRES_NAME_BYTES} bytes of a name, so it cannot be written as it is",
                fix=f"leave the column out (columns: {{exclude: [{name!r}]}}) or copy a view "
                f"that gives it a name of at most {POSTGRES_NAME_BYTES} bytes",
            )


def target_name(schema: str, table: str, target: str | None, *, normalize: bool) -> str:
    """The destination table name: the explicit `target` as written, else the default
    (normalized when `normalize_names` is on)."""
    if target is not None:
        name = target
    else:
        name = default_target(schema, table)
        if normalize:
            name = normalize_name(name)
    if name.startswith(RESERVED_PREFIX):
        raise ConfigError(
            f"table {schema}.{table}: the destination name {name!r} starts with "
            f"{RESERVED_PREFIX!r}, which shiftsync keeps for its own tables",
            fix="set another target for this table",
        )
    return name


def column_names(table: str, names: Iterable[str], *, normalize: bool) -> Mapping[str, str]:
    """Source column name → destination column name, for one table.

    ConfigError when two columns would share a destination name or one uses the reserved
    prefix.
    """
    mapping: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in names:
        out = normalize_name(name) if normalize else name
        if out.startswith(RESERVED_PREFIX):
            raise ConfigError(
                f"table {table}: column {name!r} starts with {RESERVED_PREFIX!r}, which "
                "shiftsync keeps for its own columns",
                fix="rename the column in a view, or leave it out with columns.exclude",
            )
        if out in seen:
            raise ConfigError(
                f"table {table}: columns {seen[out]!r} and {name!r} both become {out!r}",
                fix=_FIX_COLLISION,
            )
        seen[out] = name
        mapping[name] = out
    return mapping


__all__ = [
    "DEFAULT_SCHEMA",
    "POSTGRES_NAME_BYTES",
    "RESERVED_PREFIX",
    "check_target_length",
    "column_names",
    "default_target",
    "normalize_name",
    "same_table_key",
    "target_name",
]
