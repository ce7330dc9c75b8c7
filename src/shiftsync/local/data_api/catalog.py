"""ListDatabases, ListSchemas, ListTables and DescribeTable, answered from PostgreSQL's catalog."""

from __future__ import annotations

from typing import Any, Final

import psycopg

from shiftsync.local.data_api.results import column_metadata

# Schemas that exist only because the stand-in runs on PostgreSQL.
HIDDEN_SCHEMAS: Final = ("rs_catalog", "pg_toast")
HIDDEN_DATABASES: Final = ("postgres", "template0", "template1")


def list_databases(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
        "AND datname <> ALL(%s) ORDER BY datname",
        (list(HIDDEN_DATABASES),),
    ).fetchall()
    return [r[0] for r in rows]


def list_schemas(conn: psycopg.Connection[Any], pattern: str | None) -> list[str]:
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname <> ALL(%s) "
        "AND nspname NOT LIKE 'pg\\_temp\\_%%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%%' "
        "AND nspname LIKE %s ORDER BY nspname",
        (list(HIDDEN_SCHEMAS), pattern or "%"),
    ).fetchall()
    return [r[0] for r in rows]


_TABLE_TYPES: Final = {
    "r": "TABLE",
    "p": "TABLE",
    "v": "VIEW",
    "m": "VIEW",
    "f": "TABLE",
}


def list_tables(
    conn: psycopg.Connection[Any], schema_pattern: str | None, table_pattern: str | None
) -> list[dict[str, str]]:
    rows = conn.execute(
        """
        SELECT c.relname, n.nspname, c.relkind,
               n.nspname IN ('pg_catalog', 'information_schema') AS system
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND n.nspname <> ALL(%s)
          AND n.nspname LIKE %s AND c.relname LIKE %s
        ORDER BY n.nspname, c.relname
        """,
        (list(HIDDEN_SCHEMAS), schema_pattern or "%", table_pattern or "%"),
    ).fetchall()
    return [
        {
            "name": name,
            "schema": schema,
            "type": ("SYSTEM TABLE" if system and kind != "v" else _TABLE_TYPES[kind]),
        }
        for name, schema, kind, system in rows
    ]


def describe_tables(
    conn: psycopg.Connection[Any], schema: str | None, table: str | None
) -> list[tuple[str, list[dict[str, Any]]]]:
    """(`schema.table`, column metadata) of each table or view matching; None matches all."""
    found = conn.execute(
        "SELECT c.oid, n.nspname, c.relname FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r','p','v','m','f') AND n.nspname <> ALL(%s)"
        " AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'"
        " AND (%s::text IS NULL OR n.nspname = %s) AND (%s::text IS NULL OR c.relname = %s)"
        " ORDER BY n.nspname, c.relname",
        (list(HIDDEN_SCHEMAS), schema, schema, table, table),
    ).fetchall()
    return [(f"{nsp}.{rel}", _columns(conn, oid, nsp, rel)) for oid, nsp, rel in found]


def describe_table(
    conn: psycopg.Connection[Any], schema: str, table: str
) -> list[dict[str, Any]] | None:
    """Column metadata of a table or view; None when it does not exist."""
    found = describe_tables(conn, schema, table)
    return found[0][1] if found else None


def _columns(
    conn: psycopg.Connection[Any], oid: int, schema: str, table: str
) -> list[dict[str, Any]]:
    rows = conn.execute(
        """
        SELECT a.attname, t.typname, a.atttypmod, NOT a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (oid,),
    ).fetchall()
    return [
        column_metadata(
            name,
            type_name,
            typmod,
            schema=schema,
            table=table,
            nullable=1 if nullable else 0,
            default=default,
            label=False,
        )
        for name, type_name, typmod, nullable, default in rows
    ]
