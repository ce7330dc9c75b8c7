"""The catalog: which tables and views exist, their columns, primary keys and size estimates.

Columns come from DescribeTable (ColumnMetadata → the type contract's Column). Primary keys and
estimates need SQL, written so that it runs both on Redshift and on the local stand-in:

- primary keys from `pg_constraint.conkey` joined to `pg_attribute` (the query
  sqlalchemy-redshift runs on Redshift). `information_schema.table_constraints` is no
  alternative: PostgreSQL shows there only tables the user has a privilege other than SELECT
  on, and a read-only role has only SELECT;
- estimates from `svv_table_info` (`tbl_rows`, `size` in 1 MB blocks). Redshift lists only
  tables with data there, and no views: those get no estimate.

A column whose type is outside the contract is kept, with its Redshift type name as given, so
that discovery can show it and a read can name it in its error (or leave it out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

from shiftsync.errors import ConfigError, ShiftsyncError, SourceError
from shiftsync.redshift.data_api import DataApi, ReadStats, query_rows
from shiftsync.redshift.sql import qualified, quote_literal
from shiftsync.redshift.types import TYPE_CONTRACT, Column, column_from_metadata, parse_type
from shiftsync.threads import ContextThreadPool

TableKind = Literal["TABLE", "VIEW"]
BLOCK_BYTES: Final = 1024 * 1024
# Redshift's and PostgreSQL's own schemas; also anything starting with pg_.
SYSTEM_SCHEMAS: Final = frozenset({"information_schema", "pg_catalog", "pg_internal", "sys"})
READABLE_KINDS: Final[Mapping[str, TableKind]] = {
    "TABLE": "TABLE",
    "VIEW": "VIEW",
    "MATERIALIZED VIEW": "VIEW",
}
DESCRIBE_CONCURRENCY: Final = 4


@dataclass(frozen=True)
class TableRef:
    """A table or view by schema and name, exactly as Redshift spells them."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql(self) -> str:
        """`"schema"."name"`, quoted for SQL."""
        return qualified(self.schema, self.name)

    @classmethod
    def parse(cls, text: str, *, default_schema: str = "public") -> TableRef:
        """`schema.table`, `"Odd Schema"."Mixed Case"` or `table` (in `default_schema`)."""
        parts = _split_name(text)
        if len(parts) == 1:
            return cls(default_schema, parts[0])
        if len(parts) == 2:
            return cls(parts[0], parts[1])
        raise ConfigError(
            f"{text!r} is not a table name: it has {len(parts)} dot-separated parts",
            fix='write schema.table, and double-quote a name that holds a dot: "my.schema".t',
        )


def _split_name(text: str) -> list[str]:
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            j, piece = i + 1, []
            while True:
                if j >= n:
                    raise ConfigError(
                        f"{text!r} has an unclosed double quote",
                        fix='close the quote: "Odd Schema"."Mixed Case"',
                    )
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        piece.append('"')
                        j += 2
                        continue
                    break
                piece.append(text[j])
                j += 1
            parts.append("".join(piece))
            i = j + 1
        else:
            j = text.find(".", i)
            end = n if j < 0 else j
            parts.append(text[i:end].strip())
            i = end
        if i >= n:
            break
        if text[i] != ".":
            raise ConfigError(
                f"{text!r} is not a table name: expected a dot after a quoted name",
                fix='write schema.table or "schema"."table"',
            )
        i += 1
    if any(not part for part in parts):
        raise ConfigError(f"{text!r} has an empty name part", fix="write schema.table")
    return parts


@dataclass(frozen=True)
class TableInfo:
    """What shiftsync knows of a table before reading it."""

    ref: TableRef
    kind: TableKind
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    estimated_rows: int | None
    estimated_bytes: int | None

    def column(self, name: str) -> Column | None:
        return next((column for column in self.columns if column.name == name), None)


@dataclass(frozen=True)
class TableEntry:
    """One line of ListTables."""

    ref: TableRef
    kind: TableKind


def is_system_schema(name: str) -> bool:
    return name in SYSTEM_SCHEMAS or name.startswith("pg_")


def column_problem(column: Column, *, table: str | None = None) -> SourceError | None:
    """Why shiftsync cannot read this column (its type is outside the contract), or None."""
    if column.type_name in TYPE_CONTRACT:
        return None
    try:
        parse_type(column.type_name, table=table, column=column.name)
    except SourceError as error:
        return error
    return SourceError(
        f"column {column.name!r} of table {table}: type {column.type_name!r} has no rule in the "
        "type contract",
        fix="cast it in a view or exclude the column",
    )


def catalog_column(meta: Mapping[str, object], *, table: str) -> Column:
    """A Column from DescribeTable's metadata; an unknown type keeps its name (see module)."""
    try:
        return column_from_metadata(meta, table=table)
    except SourceError:
        name = str(meta.get("name") or meta.get("label") or "")
        raw = " ".join(str(meta.get("typeName", "")).lower().split()) or "unknown"
        return Column(name, raw, meta.get("nullable", 1) != 0)


# ------------------------------------------------------------------ SQL (pure)


def _match(column: str, value: str, exact: bool) -> str:
    return f"{column} {'=' if exact else 'LIKE'} {quote_literal(value)}"


def primary_key_sql(schema: str, table: str, *, exact: bool = True) -> str:
    """Primary key columns with their position list (`conkey`), for one table or a pattern."""
    return (
        "SELECT n.nspname, c.relname, a.attname, a.attnum, con.conkey\n"
        "FROM pg_catalog.pg_constraint AS con\n"
        "JOIN pg_catalog.pg_class AS c ON c.oid = con.conrelid\n"
        "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace\n"
        "JOIN pg_catalog.pg_attribute AS a\n"
        "  ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)\n"
        f"WHERE con.contype = 'p'\n"
        f"  AND {_match('n.nspname', schema, exact)}\n"
        f"  AND {_match('c.relname', table, exact)}\n"
        "ORDER BY n.nspname, c.relname, a.attnum"
    )


def estimate_sql(schema: str, table: str, *, exact: bool = True) -> str:
    """Rows and size (1 MB blocks) of one table or a pattern, from svv_table_info."""
    schema_column, table_column = '"schema"', '"table"'
    return (
        f"SELECT {schema_column}, {table_column}, tbl_rows, size\n"
        "FROM svv_table_info\n"
        f"WHERE {_match(schema_column, schema, exact)}\n"
        f"  AND {_match(table_column, table, exact)}"
    )


_CONKEY: Final = re.compile(r"-?\d+")


def _key_order(conkey: object) -> list[int]:
    """conkey as the Data API gives it: '{2,1}' (text) or a list of numbers."""
    if isinstance(conkey, list | tuple):
        return [int(item) for item in conkey]
    return [int(number) for number in _CONKEY.findall(str(conkey or ""))]


def primary_keys_from_rows(
    rows: Iterable[Sequence[object]],
) -> dict[TableRef, tuple[str, ...]]:
    """Rows of `primary_key_sql` → key columns per table, in the key's own order."""
    found: dict[TableRef, list[tuple[int, str]]] = {}
    for schema, table, column, attnum, conkey in rows:
        order = _key_order(conkey)
        number = _whole_number(attnum)
        position = order.index(number) if number in order else len(order) + number
        found.setdefault(TableRef(str(schema), str(table)), []).append((position, str(column)))
    return {ref: tuple(name for _, name in sorted(items)) for ref, items in found.items()}


def _whole_number(value: object) -> int:
    """`int(value)` for a value of a result row; a TypeError for what int() refuses."""
    if isinstance(value, int | float | str | bytes):
        return int(value)
    raise TypeError(f"{type(value).__name__} is not a whole number")


def _whole(value: object) -> int | None:
    if value is None:
        return None
    try:
        return int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def estimates_from_rows(
    rows: Iterable[Sequence[object]],
) -> dict[TableRef, tuple[int | None, int | None]]:
    """Rows of `estimate_sql` → (rows, bytes) per table."""
    estimates: dict[TableRef, tuple[int | None, int | None]] = {}
    for schema, table, tbl_rows, blocks in rows:
        size = _whole(blocks)
        estimates[TableRef(str(schema), str(table))] = (
            _whole(tbl_rows),
            size * BLOCK_BYTES if size is not None else None,
        )
    return estimates


# ------------------------------------------------------------------ calls


def list_entries(
    api: DataApi, schema_pattern: str, table_pattern: str, *, stats: ReadStats
) -> list[TableEntry]:
    """Tables and views matching the LIKE patterns (`%` any text, `_` one character).

    System schemas and other object kinds (system tables, temporary tables) are left out.
    """
    entries = []
    for item in api.list_tables(schema_pattern, table_pattern, stats=stats):
        schema, name = str(item.get("schema", "")), str(item.get("name", ""))
        kind = READABLE_KINDS.get(str(item.get("type", "")).upper())
        if kind is None or not schema or not name or is_system_schema(schema):
            continue
        entries.append(TableEntry(TableRef(schema, name), kind))
    return sorted(set(entries), key=lambda entry: (entry.ref.schema, entry.ref.name))


def _not_found(api: DataApi, ref: TableRef) -> SourceError:
    return SourceError(
        f"table {ref} does not exist in database {api.connection.database}, or the role "
        "cannot see it",
        fix=f"check the name with `shiftsync discover --schema {ref.schema}`; the database user "
        f'"{api.db_user}" needs USAGE on schema {ref.schema} and SELECT on the table',
    )


def _columns(api: DataApi, ref: TableRef, stats: ReadStats) -> tuple[Column, ...] | None:
    metadata = api.describe_table(ref.schema, ref.name, what=f"table {ref}", stats=stats)
    if not metadata:
        return None
    return tuple(catalog_column(meta, table=str(ref)) for meta in metadata)


def _kind(api: DataApi, ref: TableRef, stats: ReadStats) -> TableKind | None:
    # LIKE patterns: a name holding % or _ matches more, so keep only the exact name.
    for entry in list_entries(api, ref.schema, ref.name, stats=stats):
        if entry.ref == ref:
            return entry.kind
    return None


def describe(
    api: DataApi, ref: TableRef, *, stats: ReadStats, kind: TableKind | None = None
) -> TableInfo:
    """Everything about one table; SourceError naming it if it does not exist.

    `kind` is the table's kind if a listing already said it (saves a ListTables). The catalog
    calls do not depend on each other and each costs a round trip to the warehouse, so they
    run at the same time.
    """
    what = f"table {ref}"
    with ContextThreadPool(DESCRIBE_CONCURRENCY, thread_name_prefix="shiftsync-describe") as pool:
        listed = pool.submit(_kind, api, ref, stats) if kind is None else None
        described = pool.submit(_columns, api, ref, stats)
        keyed = pool.submit(
            query_rows, api, primary_key_sql(ref.schema, ref.name), what=what, stats=stats
        )
        # svv_table_info has no row for a view: its estimate stays unknown.
        estimated = pool.submit(
            query_rows, api, estimate_sql(ref.schema, ref.name), what=what, stats=stats
        )
        columns = described.result()
        if columns is None:
            raise _not_found(api, ref)
        found_kind = kind if listed is None else listed.result()
        keys = primary_keys_from_rows(keyed.result())
        rows, size = estimates_from_rows(estimated.result()).get(ref, (None, None))
    return TableInfo(
        ref=ref,
        kind=found_kind or "TABLE",
        columns=columns,
        primary_key=keys.get(ref, ()),
        estimated_rows=rows,
        estimated_bytes=size,
    )


def describe_matching(
    api: DataApi, schema_pattern: str, table_pattern: str, *, stats: ReadStats
) -> list[TableInfo | tuple[TableRef, ShiftsyncError]]:
    """Every table and view matching the patterns, described with one key and one estimate
    query for all of them. A table that cannot be described comes back with its error."""
    entries = list_entries(api, schema_pattern, table_pattern, stats=stats)
    if not entries:
        return []
    keys = primary_keys_from_rows(
        query_rows(
            api,
            primary_key_sql(schema_pattern, table_pattern, exact=False),
            what="the catalog",
            stats=stats,
        )
    )
    estimates = estimates_from_rows(
        query_rows(
            api,
            estimate_sql(schema_pattern, table_pattern, exact=False),
            what="the catalog",
            stats=stats,
        )
    )

    def one(entry: TableEntry) -> TableInfo | tuple[TableRef, ShiftsyncError]:
        try:
            columns = _columns(api, entry.ref, stats)
        except ShiftsyncError as error:
            return entry.ref, error
        if columns is None:
            return entry.ref, _not_found(api, entry.ref)
        rows, size = estimates.get(entry.ref, (None, None))
        return TableInfo(entry.ref, entry.kind, columns, keys.get(entry.ref, ()), rows, size)

    with ContextThreadPool(DESCRIBE_CONCURRENCY, thread_name_prefix="shiftsync-describe") as pool:
        return list(pool.map(one, entries))


__all__ = [
    "TableEntry",
    "TableInfo",
    "TableKind",
    "TableRef",
    "catalog_column",
    "column_problem",
    "describe",
    "describe_matching",
    "estimate_sql",
    "estimates_from_rows",
    "is_system_schema",
    "list_entries",
    "primary_key_sql",
    "primary_keys_from_rows",
]
