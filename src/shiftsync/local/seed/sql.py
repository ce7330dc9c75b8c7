"""SQL pieces the seeders share: hashed picks, quoted literals, grants to the reader role.

The generators build plain SQL text (so that no row crosses into Python); every value put into
that text goes through `quote_literal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql


def pick_sql(row: str, salt: int, n: str | int) -> str:
    """SQL for a pseudo-random integer in [0, n) drawn from the bigint expression `row`.

    `row` and `n` are SQL expressions built by the seeders, never outside text.
    """
    return f"(((hashint8extended({row}, {int(salt)}) & 2147483647) % ({n}))::integer)"


def quote_literal(value: object) -> str:
    """A value as a SQL literal, quoted by psycopg (the generators are plain text)."""
    return sql.Literal(value).as_string()


def text_array_sql(values: Sequence[str]) -> str:
    """ARRAY['a', 'b', ...]::text[] with every element quoted as a literal."""
    return f"ARRAY[{', '.join(map(quote_literal, values))}]::text[]"


def choice_sql(values: Sequence[str], row: str, salt: int) -> str:
    """One of `values`, picked by the row: ARRAY[...][1 + pick]."""
    return f"({text_array_sql(values)})[1 + {pick_sql(row, salt, len(values))}]"


def ensure_role(conn: psycopg.Connection[Any], role: str) -> None:
    """Create `role` (LOGIN, no password: the stand-in's cluster trusts loopback) if missing."""
    found = conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (role,))
    if found.fetchone() is None:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))


def grant_select(
    conn: psycopg.Connection[Any], grantee: str, schema: str, relations: Sequence[str]
) -> None:
    """USAGE on `schema` and SELECT on each of `relations` in it, to `grantee`."""
    ensure_role(conn, grantee)
    role = sql.Identifier(grantee)
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
    for relation in relations:
        conn.execute(
            sql.SQL("GRANT SELECT ON {}.{} TO {}").format(
                sql.Identifier(schema), sql.Identifier(relation), role
            )
        )
