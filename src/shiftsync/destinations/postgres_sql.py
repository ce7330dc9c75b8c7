"""PostgreSQL's side of the type contract and the SQL the PostgreSQL destination runs.

Every builder is pure and returns psycopg `sql.Composed`, which quotes each identifier.
`rows_to_table` turns the rows of `build_read_sql` back into Arrow.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Final

import pyarrow as pa
from psycopg import sql
from psycopg.rows import TupleRow

from shiftsync.destinations.base import SEQUENCE_COLUMN, STATE_TABLE, profile_kind
from shiftsync.destinations.schema_change import SchemaPlan, normalize_type
from shiftsync.errors import DestinationError

_JSON: Final = pa.json_(pa.string())
_DURATION: Final = pa.duration("us")

ARROW_TO_POSTGRES: Final[Mapping[pa.DataType, str]] = {
    pa.int16(): "smallint",
    pa.int32(): "integer",
    pa.int64(): "bigint",
    pa.float32(): "real",
    pa.float64(): "double precision",
    pa.bool_(): "boolean",
    pa.string(): "text",
    pa.binary(): "bytea",
    pa.date32(): "date",
    pa.timestamp("us"): "timestamp",
    pa.timestamp("us", tz="UTC"): "timestamptz",
    pa.time64("us"): "time",
    # `json` keeps the text exactly (jsonb would reorder keys and drop whitespace).
    _JSON: "json",
    # The type contract's INTERVAL (DAY TO SECOND), kept as microseconds in the time part.
    _DURATION: "interval",
}

# As format_type() spells them.
POSTGRES_TO_ARROW: Final[Mapping[str, pa.DataType]] = {
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "bytea": pa.binary(),
    "date": pa.date32(),
    "timestamp without time zone": pa.timestamp("us"),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "time without time zone": pa.time64("us"),
    "json": _JSON,
    "interval": _DURATION,
}

_NUMERIC: Final = re.compile(r"numeric\((\d+),(\d+)\)")


def postgres_type(table: str, field: pa.Field) -> str:
    data_type = normalize_type(field.type)
    if pa.types.is_decimal128(data_type):
        return f"numeric({data_type.precision},{data_type.scale})"
    try:
        return ARROW_TO_POSTGRES[data_type]
    except KeyError:
        raise DestinationError(
            f"table {table!r}: column {field.name!r} has the Arrow type {field.type}, which the "
            "PostgreSQL destination does not store",
            fix="cast the column in the source to a type of the type contract (docs/types.md)",
        ) from None


def arrow_type(table: str, column: str, postgres_type_name: str) -> pa.DataType:
    match = _NUMERIC.fullmatch(postgres_type_name)
    if match:
        return pa.decimal128(int(match[1]), int(match[2]))
    try:
        return POSTGRES_TO_ARROW[postgres_type_name]
    except KeyError:
        raise DestinationError(
            f"table {table!r} in PostgreSQL: column {column!r} has the type "
            f"{postgres_type_name}, which shiftsync did not create and cannot load into",
            fix=f"drop or rename the table {table!r} so shiftsync recreates it",
        ) from None


# --- SQL builders (pure) -------------------------------------------------------------------


def _columns(names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def build_create_table_sql(
    name: sql.Identifier,
    table: str,
    schema: pa.Schema,
    *,
    temporary: bool = False,
    key: Sequence[str] = (),
    not_null: Collection[str] = (),
) -> sql.Composed:
    """CREATE TABLE for `schema`; a temporary stage also gets the sequence column, a table
    that carries a key its PRIMARY KEY (so merges find rows through its index), the source's
    NOT NULL columns NOT NULL."""
    columns = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(f.name),
            sql.SQL(postgres_type(table, f)),
            sql.SQL(" NOT NULL" if f.name in not_null and not temporary else ""),
        )
        for f in schema
    ]
    if key and not temporary:
        columns.append(
            sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, key)))
        )
    if temporary:
        columns.append(sql.SQL("{} bigint").format(sql.Identifier(SEQUENCE_COLUMN)))
        return sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(
            name, sql.SQL(", ").join(columns)
        )
    return sql.SQL("CREATE TABLE {} ({})").format(name, sql.SQL(", ").join(columns))


def build_relax_sql(name: sql.Identifier, columns: Sequence[str]) -> list[sql.Composed]:
    """DROP NOT NULL of each column: it may receive NULL from now on."""
    return [
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(name, sql.Identifier(c))
        for c in columns
    ]


def build_evolve_sql(name: sql.Identifier, table: str, plan: SchemaPlan) -> list[sql.Composed]:
    statements: list[sql.Composed] = []
    for change in plan.changes:
        if change.kind not in ("add_column", "widen"):
            continue
        field = plan.schema.field(change.column)
        column, sql_type = sql.Identifier(field.name), sql.SQL(postgres_type(table, field))
        template = (
            "ALTER TABLE {} ADD COLUMN {} {}"
            if change.kind == "add_column"
            else "ALTER TABLE {} ALTER COLUMN {} TYPE {}"
        )
        statements.append(sql.SQL(template).format(name, column, sql_type))
    return statements


def build_copy_sql(stage: sql.Identifier, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT CSV)").format(stage, _columns(columns))


def build_merge_sql(
    target: sql.Identifier, stage: sql.Identifier, columns: Sequence[str], key: Sequence[str]
) -> tuple[sql.Composed, sql.Composed]:
    """DELETE the target rows whose key is staged; INSERT the stage, last row per key."""
    matches = sql.SQL(" AND ").join(
        sql.SQL("t.{k} = s.{k}").format(k=sql.Identifier(k)) for k in key
    )
    delete = sql.SQL("DELETE FROM {} AS t USING {} AS s WHERE {}").format(target, stage, matches)
    insert = sql.SQL(
        "INSERT INTO {target} ({columns}) SELECT {columns} FROM "
        "(SELECT DISTINCT ON ({key}) * FROM {stage} ORDER BY {key}, {seq} DESC) AS latest"
    ).format(
        target=target,
        columns=_columns(columns),
        key=_columns(key),
        stage=stage,
        seq=sql.Identifier(SEQUENCE_COLUMN),
    )
    return delete, insert


def build_insert_sql(
    target: sql.Identifier, stage: sql.Identifier, columns: Sequence[str]
) -> sql.Composed:
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        target, _columns(columns), _columns(columns), stage
    )


_STATE_COLUMNS: Final = {
    c: sql.Identifier(c) for c in ("state_key", "state", "updated_at", "target")
}


def build_state_sql(schema: str) -> tuple[sql.Composed, sql.Composed]:
    """The state table's CREATE, and the upsert of (state_key, state, target) by its key."""
    table = sql.Identifier(schema, STATE_TABLE)
    create = sql.SQL(
        "CREATE TABLE IF NOT EXISTS {table} ({state_key} text PRIMARY KEY, "
        "{state} jsonb NOT NULL, {updated_at} timestamptz NOT NULL, {target} text)"
    ).format(table=table, **_STATE_COLUMNS)
    upsert = sql.SQL(
        "INSERT INTO {table} ({state_key}, {state}, {updated_at}, {target}) "
        "VALUES (%s, %s::jsonb, now(), %s) ON CONFLICT ({state_key}) DO UPDATE SET "
        "{state} = EXCLUDED.{state}, {updated_at} = EXCLUDED.{updated_at}, "
        "{target} = EXCLUDED.{target}"
    ).format(table=table, **_STATE_COLUMNS)
    return create, upsert


def build_state_upgrade_sql(schema: str) -> sql.Composed:
    """Add the target column to a state table made before states were tied to targets; its
    rows keep NULL there, which `build_read_state_sql` takes as any target."""
    return sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} text").format(
        sql.Identifier(schema, STATE_TABLE), _STATE_COLUMNS["target"]
    )


def build_read_state_sql(schema: str) -> sql.Composed:
    """The state of (state_key, target), as text: a row another target committed is not it."""
    return sql.SQL(
        "SELECT {state}::text FROM {table} WHERE {state_key} = %s "
        "AND ({target} = %s OR {target} IS NULL)"
    ).format(table=sql.Identifier(schema, STATE_TABLE), **_STATE_COLUMNS)


def _profile_expressions(column: str, data_type: pa.DataType) -> list[sql.Composable]:
    c = sql.Identifier(column)
    data_type = normalize_type(data_type)
    kind = profile_kind(data_type)
    null = sql.SQL("NULL")
    if kind == "sum":
        return [sql.SQL("sum({})::text").format(c), null, null]
    if kind == "octets":
        as_text = "::text" if isinstance(data_type, pa.BaseExtensionType) else ""
        return [sql.SQL("sum(octet_length({}" + as_text + "))").format(c), null, null]
    if kind == "true_count":
        return [sql.SQL("count(CASE WHEN {} THEN 1 END)").format(c), null, null]
    if kind == "range":
        utc = " AT TIME ZONE 'UTC'" if pa.types.is_timestamp(data_type) and data_type.tz else ""
        return [
            null,
            sql.SQL("(min({})" + utc + ")::text").format(c),
            sql.SQL("(max({})" + utc + ")::text").format(c),
        ]
    return [null, null, null]


def build_profile_sql(
    table: sql.Composable, columns: Sequence[tuple[str, pa.DataType]]
) -> sql.Composed:
    """One scan: count(*), then count, total, min, max per column."""
    parts: list[sql.Composable] = [sql.SQL("count(*)")]
    for name, data_type in columns:
        parts.append(sql.SQL("count({})").format(sql.Identifier(name)))
        parts += _profile_expressions(name, data_type)
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(parts), table)


def build_read_sql(table: sql.Identifier, schema: pa.Schema) -> sql.Composed:
    """SELECT every column in a form that converts to Arrow exactly (json as text,
    intervals as microseconds)."""
    parts: list[sql.Composable] = []
    for f in schema:
        c = sql.Identifier(f.name)
        if f.type == _JSON:
            parts.append(sql.SQL("{}::text").format(c))
        elif f.type == _DURATION:
            parts.append(sql.SQL("(extract(epoch from {}) * 1000000)::bigint").format(c))
        else:
            parts.append(c)
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(parts), table)


def rows_to_table(schema: pa.Schema, rows: Sequence[TupleRow]) -> pa.Table:
    arrays: list[pa.Array] = []
    for position, f in enumerate(schema):
        column = [row[position] for row in rows]
        if f.type == _JSON:
            arrays.append(pa.ExtensionArray.from_storage(_JSON, pa.array(column, pa.string())))
        else:
            arrays.append(pa.array(column, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)
