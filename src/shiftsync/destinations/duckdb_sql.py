"""DuckDB's side of the type contract and the SQL the DuckDB destination runs (pure builders).

`run_profile` is here too, because the Parquet destination profiles its datasets with the
same SQL through an in-memory DuckDB.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from decimal import Context, Decimal
from typing import Final

import duckdb
import pyarrow as pa

from shiftsync.destinations.base import (
    SEQUENCE_COLUMN,
    STATE_TABLE,
    ProfileTotal,
    TableProfile,
    assemble_profile,
    profile_kind,
)
from shiftsync.destinations.schema_change import SchemaPlan, normalize_type
from shiftsync.errors import DestinationError
from shiftsync.sql_quote import quote_duckdb

_JSON: Final = pa.json_(pa.string())

ARROW_TO_DUCKDB: Final[Mapping[pa.DataType, str]] = {
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float32(): "REAL",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.string(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.date32(): "DATE",
    pa.timestamp("us"): "TIMESTAMP",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
    pa.time64("us"): "TIME",
    # DuckDB's JSON keeps the text exactly as given (it validates, it does not reformat).
    _JSON: "JSON",
    # The type contract's INTERVAL (DAY TO SECOND). DuckDB's INTERVAL also has months, but a
    # month_day_nano column would read back as a duration: it is refused instead.
    pa.duration("us"): "INTERVAL",
}

# As information_schema.columns.data_type spells them.
DUCKDB_TO_ARROW: Final[Mapping[str, pa.DataType]] = {
    "SMALLINT": pa.int16(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "FLOAT": pa.float32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR": pa.string(),
    "BLOB": pa.binary(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    "TIME": pa.time64("us"),
    "JSON": _JSON,
    "INTERVAL": pa.duration("us"),
}

_DECIMAL: Final = re.compile(r"DECIMAL\((\d+),(\d+)\)")
# DuckDB sums DECIMAL(>18) in a 128-bit integer that extremes overflow; the profile sums the
# unscaled value in two halves split at 10^18 and joins them in Python, exactly.
_SPLIT: Final = 10**18
_WIDE_DECIMAL: Final = 18
# Decimal arithmetic rounds to 28 digits by default; sums of DECIMAL(38) need more.
_EXACT: Final = Context(prec=200)


def quote_identifier(name: str) -> str:
    """DuckDB's identifier quoting (the project's one function for it, `sql_quote`)."""
    return quote_duckdb(name)


def quote_literal(value: str) -> str:
    """A DuckDB string literal (a backslash is an ordinary character in DuckDB's strings)."""
    return "'" + value.replace("'", "''") + "'"


def duckdb_type(table: str, field: pa.Field) -> str:
    data_type = normalize_type(field.type)
    if pa.types.is_decimal128(data_type):
        return f"DECIMAL({data_type.precision},{data_type.scale})"
    try:
        return ARROW_TO_DUCKDB[data_type]
    except KeyError:
        raise DestinationError(
            f"table {table!r}: column {field.name!r} has the Arrow type {field.type}, which the "
            "DuckDB destination does not store",
            fix="cast the column in the source to a type of the type contract (docs/types.md)",
        ) from None


def arrow_type(table: str, column: str, duckdb_type_name: str) -> pa.DataType:
    match = _DECIMAL.fullmatch(duckdb_type_name)
    if match:
        return pa.decimal128(int(match[1]), int(match[2]))
    try:
        return DUCKDB_TO_ARROW[duckdb_type_name]
    except KeyError:
        raise DestinationError(
            f"table {table!r} in DuckDB: column {column!r} has the type {duckdb_type_name}, "
            "which shiftsync did not create and cannot load into",
            fix=f"drop or rename the table {table!r} so shiftsync recreates it",
        ) from None


# --- SQL builders (pure) -------------------------------------------------------------------


def build_create_table_sql(
    table: str,
    schema: pa.Schema,
    *,
    sequence: bool = False,
    key: Sequence[str] = (),
    not_null: Collection[str] = (),
) -> str:
    """CREATE TABLE for `schema`; a merge stage also gets the sequence column, a table that
    carries a key its PRIMARY KEY (so merges find rows through its index), the source's NOT
    NULL columns NOT NULL."""
    columns = [
        f"{quote_identifier(f.name)} {duckdb_type(table, f)}"
        + (" NOT NULL" if f.name in not_null else "")
        for f in schema
    ]
    if sequence:
        columns.append(f"{quote_identifier(SEQUENCE_COLUMN)} BIGINT")
    if key:
        columns.append(f"PRIMARY KEY ({', '.join(quote_identifier(k) for k in key)})")
    return f"CREATE TABLE {quote_identifier(table)} ({', '.join(columns)})"


def build_evolve_sql(table: str, plan: SchemaPlan) -> list[str]:
    statements: list[str] = []
    table_sql = quote_identifier(table)
    for change in plan.changes:
        if change.kind not in ("add_column", "widen"):
            continue
        field = plan.schema.field(change.column)
        column, sql_type = quote_identifier(field.name), duckdb_type(table, field)
        if change.kind == "add_column":
            statements.append(f"ALTER TABLE {table_sql} ADD COLUMN {column} {sql_type}")
        else:
            statements.append(
                f"ALTER TABLE {table_sql} ALTER COLUMN {column} SET DATA TYPE {sql_type}"
            )
    return statements


def build_relax_sql(table: str, columns: Sequence[str]) -> list[str]:
    """DROP NOT NULL of each column: it may receive NULL from now on."""
    return [
        f"ALTER TABLE {quote_identifier(table)} ALTER COLUMN {quote_identifier(c)} DROP NOT NULL"
        for c in columns
    ]


def build_merge_sql(
    target: str, stage: str, columns: Sequence[str], primary_key: Sequence[str]
) -> tuple[str, str]:
    """DELETE the target rows whose key is staged; INSERT the stage, last row per key."""
    t, s = quote_identifier(target), quote_identifier(stage)
    keys = [quote_identifier(k) for k in primary_key]
    matches = " AND ".join(f"{t}.{k} = {s}.{k}" for k in keys)
    names = ", ".join(quote_identifier(c) for c in columns)
    delete = f"DELETE FROM {t} USING {s} WHERE {matches}"
    insert = (
        f"INSERT INTO {t} ({names}) SELECT {names} FROM {s} QUALIFY row_number() OVER "
        f"(PARTITION BY {', '.join(keys)} ORDER BY {quote_identifier(SEQUENCE_COLUMN)} DESC) = 1"
    )
    return delete, insert


def build_insert_sql(target: str, source: str, columns: Sequence[str]) -> str:
    names = ", ".join(quote_identifier(c) for c in columns)
    return f"INSERT INTO {quote_identifier(target)} ({names}) SELECT {names} FROM {source}"


def build_read_sql(table: str, schema: pa.Schema) -> str:
    """SELECT every column; an INTERVAL as its microseconds, because DuckDB hands INTERVAL
    to Arrow in int64 nanoseconds, which overflow past 292 years."""
    parts = [
        f"epoch_us({quote_identifier(f.name)}) AS {quote_identifier(f.name)}"
        if pa.types.is_duration(f.type)
        else quote_identifier(f.name)
        for f in schema
    ]
    return f"SELECT {', '.join(parts)} FROM {quote_identifier(table)}"


def build_state_sql() -> tuple[str, str]:
    """The state table's CREATE, and the upsert of (state_key, state, target) by its key."""
    table = quote_identifier(STATE_TABLE)
    key, state, updated, target = (
        quote_identifier(c) for c in ("state_key", "state", "updated_at", "target")
    )
    create = (
        f"CREATE TABLE IF NOT EXISTS {table} "
        f"({key} VARCHAR PRIMARY KEY, {state} JSON, {updated} TIMESTAMP, {target} VARCHAR)"
    )
    upsert = (
        f"INSERT INTO {table} ({key}, {state}, {updated}, {target}) "
        f"VALUES (?, ?, now()::TIMESTAMP, ?) ON CONFLICT ({key}) DO UPDATE SET "
        f"{state} = excluded.{state}, {updated} = excluded.{updated}, "
        f"{target} = excluded.{target}"
    )
    return create, upsert


def build_state_upgrade_sql() -> str:
    """Add the target column to a state table made before states were tied to targets; its
    rows keep NULL there, which `build_read_state_sql` takes as any target."""
    return (
        f"ALTER TABLE {quote_identifier(STATE_TABLE)} "
        f"ADD COLUMN IF NOT EXISTS {quote_identifier('target')} VARCHAR"
    )


def build_read_state_sql() -> str:
    """The state of (state_key, target): a row another target committed is not it."""
    target = quote_identifier("target")
    return (
        f"SELECT {quote_identifier('state')} FROM {quote_identifier(STATE_TABLE)} "
        f"WHERE {quote_identifier('state_key')} = ? AND ({target} = ? OR {target} IS NULL)"
    )


def _profile_expressions(column: str, data_type: pa.DataType) -> tuple[str, str, str]:
    c = quote_identifier(column)
    data_type = normalize_type(data_type)
    kind = profile_kind(data_type)
    if kind == "sum":
        if pa.types.is_decimal(data_type) and data_type.precision > _WIDE_DECIMAL:
            unscaled = f"CAST(replace(CAST({c} AS VARCHAR), '.', '') AS HUGEINT)"
            low = f"({unscaled} % {_SPLIT})"
            high = f"(({unscaled} - {low}) // {_SPLIT})"
            return f"{{'high': sum({high}), 'low': sum({low})}}", "NULL", "NULL"
        return f"sum({c})", "NULL", "NULL"
    if kind == "octets":
        if pa.types.is_binary(data_type):
            return f"sum(octet_length({c}))", "NULL", "NULL"
        return f"sum(strlen(CAST({c} AS VARCHAR)))", "NULL", "NULL"
    if kind == "true_count":
        return f"count(CASE WHEN {c} THEN 1 END)", "NULL", "NULL"
    if kind == "range":
        if pa.types.is_timestamp(data_type) and data_type.tz is not None:
            return (
                "NULL",
                f"CAST(timezone('UTC', min({c})) AS VARCHAR)",
                f"CAST(timezone('UTC', max({c})) AS VARCHAR)",
            )
        return "NULL", f"CAST(min({c}) AS VARCHAR)", f"CAST(max({c}) AS VARCHAR)"
    return "NULL", "NULL", "NULL"


def build_profile_sql(relation: str, columns: Sequence[tuple[str, pa.DataType]]) -> str:
    """One scan: count(*), then count, total, min, max per column. `relation` is SQL."""
    parts = ["count(*)"]
    for name, data_type in columns:
        total, low, high = _profile_expressions(name, data_type)
        parts += [f"count({quote_identifier(name)})", total, low, high]
    return f"SELECT {', '.join(parts)} FROM {relation}"


def decode_total(
    value: ProfileTotal | Mapping[str, int | None], data_type: pa.DataType
) -> ProfileTotal:
    """A DuckDB profile total as a number; the split decimal sum comes back as a struct."""
    if isinstance(value, Mapping):
        unscaled = int(value["high"] or 0) * _SPLIT + int(value["low"] or 0)
        return Decimal(unscaled).scaleb(-data_type.scale, _EXACT)
    return value


def run_profile(
    cursor: duckdb.DuckDBPyConnection, relation: str, columns: Sequence[tuple[str, pa.DataType]]
) -> TableProfile:
    """Profile `relation` (a table or a registered Arrow source) with DuckDB SQL."""
    row = cursor.execute(build_profile_sql(relation, columns)).fetchone()
    if row is None:  # an aggregate without GROUP BY returns one row; keep mypy honest
        raise DestinationError(f"profiling {relation} returned no row", fix="report this bug")
    values = []
    for index, (_, data_type) in enumerate(columns):
        non_null, total, low, high = row[1 + 4 * index : 5 + 4 * index]
        values.append((non_null, decode_total(total, data_type), low, high))
    return assemble_profile(row[0], columns, values)
