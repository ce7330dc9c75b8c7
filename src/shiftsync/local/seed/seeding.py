"""Deterministic sample data for the stand-in: TICKIT, every Redshift type, odd identifiers.

`seed_all` runs the three seeders in order; each lives in its own module and is re-exported
here, with the tables and SQL builders the tests check:
- seed/tickit.py: AWS's TICKIT sample, generated inside PostgreSQL at any scale;
- seed/types.py: public.types, one column per Redshift type with edge values;
- seed/odd.py: identifiers that need quoting, a view, a table without a key;
- seed/sql.py: the SQL pieces they share (hashed picks, quoted literals, grants).

Every function replaces what it seeds (DROP ... CASCADE, so views over the seeded tables are
dropped too) and commits. seed_types needs `install_flavour` to have run on the database first
(its columns use the flavour's domains); seed_odd_identifiers needs seed_tickit first.
"""

from __future__ import annotations

from typing import Any

import psycopg

from shiftsync.local.seed.odd import (
    EVENTS_LOG_ROWS,
    EVENTS_LOG_SQL,
    ODD_COLUMNS,
    ODD_ROWS,
    ODD_SCHEMA,
    ODD_TABLE,
    SALES_SUMMARY_SQL,
    seed_odd_identifiers,
)
from shiftsync.local.seed.sql import (
    choice_sql,
    ensure_role,
    grant_select,
    pick_sql,
    quote_literal,
    text_array_sql,
)
from shiftsync.local.seed.tickit import (
    CATEGORIES,
    CITIES,
    EVENT_NAMES,
    FIRST_DATEID,
    FIRST_DAY,
    FIRST_NAMES,
    LAST_NAMES,
    LOREM,
    SCALED_TABLES,
    TICKIT_DDL,
    TICKIT_KEYS,
    TICKIT_ROWS,
    TOP_LEVEL_DOMAINS,
    US_HOLIDAYS_2008,
    VENUE_KINDS,
    coprime_stride,
    date_sql,
    event_sql,
    listing_rows_sql,
    listing_sql,
    sales_sql,
    scaled_count,
    seed_tickit,
    tickit_insert_sql,
    users_sql,
    venue_sql,
)
from shiftsync.local.seed.types import (
    EDGE_STRINGS,
    TYPES_COLUMNS,
    TYPES_EDGE_VALUES,
    seed_types,
    types_rows,
    wkb_point,
)


def seed_all(
    conn: psycopg.Connection[Any], scale: float, grantee: str | None = None
) -> dict[str, int]:
    """All three seeders; returns rows per table (public tables by name, others schema.table)."""
    counts = seed_tickit(conn, scale, grantee)
    counts["types"] = seed_types(conn, grantee)
    seed_odd_identifiers(conn, grantee)
    counts["events_log"] = EVENTS_LOG_ROWS
    counts[f"{ODD_SCHEMA}.{ODD_TABLE}"] = len(ODD_ROWS)
    return counts


__all__ = [
    "CATEGORIES",
    "CITIES",
    "EDGE_STRINGS",
    "EVENTS_LOG_ROWS",
    "EVENTS_LOG_SQL",
    "EVENT_NAMES",
    "FIRST_DATEID",
    "FIRST_DAY",
    "FIRST_NAMES",
    "LAST_NAMES",
    "LOREM",
    "ODD_COLUMNS",
    "ODD_ROWS",
    "ODD_SCHEMA",
    "ODD_TABLE",
    "SALES_SUMMARY_SQL",
    "SCALED_TABLES",
    "TICKIT_DDL",
    "TICKIT_KEYS",
    "TICKIT_ROWS",
    "TOP_LEVEL_DOMAINS",
    "TYPES_COLUMNS",
    "TYPES_EDGE_VALUES",
    "US_HOLIDAYS_2008",
    "VENUE_KINDS",
    "choice_sql",
    "coprime_stride",
    "date_sql",
    "ensure_role",
    "event_sql",
    "grant_select",
    "listing_rows_sql",
    "listing_sql",
    "pick_sql",
    "quote_literal",
    "sales_sql",
    "scaled_count",
    "seed_all",
    "seed_odd_identifiers",
    "seed_tickit",
    "seed_types",
    "text_array_sql",
    "tickit_insert_sql",
    "types_rows",
    "users_sql",
    "venue_sql",
    "wkb_point",
]
