"""Identifiers that need quoting, a view and a table without a key: the catalog's odd cases.

"odd schema"."mixed case" has column names that are reserved words, hold a space, a double
quote or non-ASCII letters; public.sales_summary is a view over TICKIT's sales (so seed_tickit
must have run first); public.events_log has no primary key and holds a duplicate row.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

import psycopg
from psycopg import sql

from shiftsync.errors import StandInError
from shiftsync.local.seed.sql import grant_select

ODD_SCHEMA: Final = "odd schema"
ODD_TABLE: Final = "mixed case"
# Reserved word, space, embedded double quote, non-ASCII, another reserved word.
ODD_COLUMNS: Final[dict[str, str]] = {
    "id": "integer PRIMARY KEY",
    "select": "varchar(50)",
    "has space": "integer",
    'quo"te': "varchar(50)",
    "ünïcödé": "varchar(50)",
    "from": "date",
}
ODD_ROWS: Final[tuple[tuple[object, ...], ...]] = (
    (1, "reserved", 10, 'say "hi"', "ünïcödé value", date(2024, 1, 1)),
    (2, None, None, None, None, None),
    (3, "it's", -1, '""', "日本", date(1999, 12, 31)),
)
SALES_SUMMARY_SQL: Final = (
    "CREATE VIEW public.sales_summary AS"
    " SELECT eventid, count(*) AS num_sales, sum(qtysold)::bigint AS total_qty,"
    " sum(pricepaid)::numeric(38,2) AS total_paid"
    " FROM public.sales GROUP BY eventid"
)
# 100 distinct rows and one exact duplicate of the last: without a key, duplicates are legal.
EVENTS_LOG_ROWS: Final = 101
EVENTS_LOG_SQL: Final = (
    "INSERT INTO public.events_log"
    " SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE 'event ' || i END,"
    " TIMESTAMP '2024-01-01 00:00:00' + i * INTERVAL '1 hour'"
    " FROM generate_series(1, 100) AS g(i) UNION ALL"
    " SELECT 100, NULL, TIMESTAMP '2024-01-01 00:00:00' + 100 * INTERVAL '1 hour'"
)


def seed_odd_identifiers(conn: psycopg.Connection[Any], grantee: str | None = None) -> None:
    """(Re)create "odd schema"."mixed case", view public.sales_summary, public.events_log.

    The view reads public.sales, so seed_tickit must have run first.
    """
    schema, table = sql.Identifier(ODD_SCHEMA), sql.Identifier(ODD_TABLE)
    found = conn.execute("SELECT to_regclass('public.sales')").fetchone()
    if found is None or found[0] is None:
        raise StandInError(
            "view public.sales_summary needs table public.sales, which does not exist",
            fix="run seed_tickit before seed_odd_identifiers",
        )
    columns = sql.SQL(", ").join(
        sql.SQL("{} " + declared).format(sql.Identifier(name))
        for name, declared in ODD_COLUMNS.items()
    )
    with conn.transaction():
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        conn.execute(sql.SQL("CREATE TABLE {}.{} ({})").format(schema, table, columns))
        conn.cursor().executemany(
            sql.SQL("INSERT INTO {}.{} ({}) VALUES ({})").format(
                schema,
                table,
                sql.SQL(", ").join(map(sql.Identifier, ODD_COLUMNS)),
                sql.SQL(", ").join(sql.Placeholder() * len(ODD_COLUMNS)),
            ),
            ODD_ROWS,
        )
        conn.execute("DROP VIEW IF EXISTS public.sales_summary")
        conn.execute(SALES_SUMMARY_SQL)
        conn.execute("DROP TABLE IF EXISTS public.events_log CASCADE")
        conn.execute(
            "CREATE TABLE public.events_log (id bigint, payload varchar(200), created_at timestamp)"
        )
        conn.execute(EVENTS_LOG_SQL)
        conn.execute(sql.SQL("ANALYZE {}.{}, public.events_log").format(schema, table))
        if grantee is not None:
            grant_select(conn, grantee, ODD_SCHEMA, [ODD_TABLE])
            grant_select(conn, grantee, "public", ["sales_summary", "events_log"])
