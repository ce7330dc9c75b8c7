"""public.types: one column per Redshift type, and rows of edge values for each.

The columns of Redshift's own types (SUPER, VARBYTE, GEOMETRY, HLLSKETCH) use the domains of
the stand-in's flavour, so `install_flavour` must have run on the database first.
"""

from __future__ import annotations

import math
import struct
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from shiftsync.errors import StandInError
from shiftsync.local.dialect.flavour import FLAVOUR_SCHEMA
from shiftsync.local.seed.sql import grant_select

_UTC: Final = UTC
_FLOAT4_MAX: Final[float] = struct.unpack("<f", struct.pack("<I", 0x7F7FFFFF))[0]
_FLOAT4_MIN_NORMAL: Final[float] = struct.unpack("<f", struct.pack("<I", 0x00800000))[0]
_FLOAT8_MAX: Final = 1.7976931348623157e308
_FLOAT8_MIN_NORMAL: Final = 2.2250738585072014e-308
_NINES_38: Final = "9" * 38


def wkb_point(x: float, y: float) -> bytes:
    """Well-known binary of POINT(x y): little-endian flag, type 1, two doubles (21 bytes)."""
    return struct.pack("<BIdd", 1, 1, x, y)


# Column name -> declared type. Redshift's own types are the flavour's domains, qualified so
# the DDL does not depend on the connection's search_path.
TYPES_COLUMNS: Final[dict[str, str]] = {
    "c_smallint": "smallint",
    "c_integer": "integer",
    "c_bigint": "bigint",
    "c_decimal_38_0": "decimal(38,0)",
    "c_decimal_38_10": "decimal(38,10)",
    "c_decimal_10_2": "decimal(10,2)",
    "c_real": "real",
    "c_double": "double precision",
    "c_boolean": "boolean",
    "c_char": "char(12)",
    "c_varchar": "varchar(300)",
    "c_date": "date",
    "c_timestamp": "timestamp",
    "c_timestamptz": "timestamptz",
    "c_time": "time",
    "c_timetz": "timetz",
    "c_super": f"{FLAVOUR_SCHEMA}.super",
    "c_varbyte": f"{FLAVOUR_SCHEMA}.varbyte",
    "c_geometry": f"{FLAVOUR_SCHEMA}.geometry",
    "c_hllsketch": f"{FLAVOUR_SCHEMA}.hllsketch",
    "c_interval": "interval",
}

EDGE_STRINGS: Final[tuple[str, ...]] = (
    "",  # empty, not NULL
    "NULL",
    "it's",
    'say "hi"',
    "a,b,c",
    "\\",
    "\\N",
    "\\\\N",
    "\\x41",
    "line1\nline2",
    "crlf\r\nend",
    "tab\there",
    "  leading and trailing  ",
    "Crème brûlée à la française",
    "日本語のテキスト",
    "emoji 😀🎉",
    "mixed 'single' \"double\", comma \\ back",
    "x" * 300,  # the declared maximum
)

# Column -> values; row k (from id 2) holds the k-th value of every column, or NULL once a
# column's list is shorter. Row id 1 is NULL in every column.
TYPES_EDGE_VALUES: Final[dict[str, tuple[object, ...]]] = {
    "c_smallint": (-32768, 32767, 0, -1),
    "c_integer": (-2147483648, 2147483647, 0, -1),
    "c_bigint": (-9223372036854775808, 9223372036854775807, 0, -1),
    "c_decimal_38_0": (Decimal("-" + _NINES_38), Decimal(_NINES_38), Decimal(0), Decimal(1)),
    "c_decimal_38_10": (
        Decimal("-" + _NINES_38[:28] + "." + _NINES_38[:10]),
        Decimal(_NINES_38[:28] + "." + _NINES_38[:10]),
        Decimal("0.0000000001"),
        Decimal("-0.0000000001"),
        Decimal("0E-10"),
    ),
    "c_decimal_10_2": (Decimal("-99999999.99"), Decimal("99999999.99"), Decimal("0.01")),
    # NaN and the infinities share one row (id 6) in both float columns.
    "c_real": (-_FLOAT4_MAX, _FLOAT4_MAX, _FLOAT4_MIN_NORMAL, -0.0, math.nan, math.inf, -math.inf),
    "c_double": (
        -_FLOAT8_MAX,
        _FLOAT8_MAX,
        _FLOAT8_MIN_NORMAL,
        -0.0,
        math.nan,
        math.inf,
        -math.inf,
        0.1,
    ),
    "c_boolean": (True, False),
    "c_char": ("", "abcdefghijkl", "Zoë 日本", 'it\'s, "x"', " padded"),
    "c_varchar": EDGE_STRINGS,
    "c_date": (date(1900, 1, 1), date(1969, 12, 31), date(1970, 1, 1), date(9999, 12, 31)),
    "c_timestamp": (
        datetime(1900, 1, 1),
        datetime(1969, 12, 31, 23, 59, 59, 999999),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
        datetime(2021, 3, 14, 2, 30),  # a wall time that does not exist in New York
        datetime(2024, 2, 29, 12, 0, 0, 123456),
    ),
    "c_timestamptz": (
        datetime(1900, 1, 1, tzinfo=_UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=_UTC),
        # Midnight keeps year 9999 in every session time zone (-12:00 to +14:00).
        datetime(9999, 12, 31, tzinfo=_UTC),
        # 2021-03-14 01:30 EST and 03:30 EDT, America/New_York on both sides of its DST change:
        # one hour apart.
        datetime(2021, 3, 14, 1, 30, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2021, 3, 14, 3, 30, tzinfo=timezone(timedelta(hours=-4))),
        datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=_UTC),
    ),
    "c_time": (time(0, 0), time(23, 59, 59, 999999), time(12, 34, 56, 789000)),
    "c_timetz": (
        time(13, 45, 30, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        time(0, 0, tzinfo=_UTC),
        time(23, 59, 59, tzinfo=timezone(timedelta(hours=-8))),
    ),
    "c_super": (
        Jsonb({"name": "Zoë", "tags": ["a", "b"], "nested": {"k": [1, {"deep": None}]}}),
        Jsonb([1, "two", None, True, 3.5]),
        Jsonb("just a string, with: separators"),
        Jsonb(12345678901234567890),
        Jsonb(-0.5),
        Jsonb({}),
        Jsonb([]),
        Jsonb({"cjk": "日本語", "emoji": "😀", "quote": 'he said "hi"', "backslash": "\\"}),
        Jsonb(None),  # JSON null, which is not SQL NULL
    ),
    "c_varbyte": (b"\x00", b"\xff", b"", b"\x00\xff\x00\xff", bytes(range(256))),
    "c_geometry": (wkb_point(1.0, 2.0),),
    "c_hllsketch": (
        '{"version":1,"logm":15,"sparse":{"indices":[4878,9559,14523],"values":[1,2,1]}}',
    ),
    "c_interval": (
        timedelta(0),
        timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5),
        -timedelta(days=3, seconds=1),
        timedelta(microseconds=1),
    ),
}


def types_rows() -> list[tuple[object, ...]]:
    """The rows of public.types in column order (id first): an all-NULL row, then edges."""
    depth = max(len(values) for values in TYPES_EDGE_VALUES.values())
    rows: list[tuple[object, ...]] = [(1, *([None] * len(TYPES_COLUMNS)))]
    for k in range(depth):
        row = [
            TYPES_EDGE_VALUES[c][k] if k < len(TYPES_EDGE_VALUES[c]) else None
            for c in TYPES_COLUMNS
        ]
        rows.append((k + 2, *row))
    return rows


def _require_flavour(conn: psycopg.Connection[Any]) -> None:
    found = conn.execute("SELECT to_regtype(%s)", (f"{FLAVOUR_SCHEMA}.super",)).fetchone()
    if found is None or found[0] is None:
        raise StandInError(
            f"the database has no {FLAVOUR_SCHEMA} schema with Redshift's types",
            fix=(
                "run shiftsync.local.dialect.flavour.install_flavour(conn, database) before seeding"
            ),
        )


def seed_types(conn: psycopg.Connection[Any], grantee: str | None = None) -> int:
    """(Re)create public.types: one column per Redshift type, rows of edge values."""
    _require_flavour(conn)
    columns = sql.SQL(", ").join(
        sql.SQL("{} " + declared).format(sql.Identifier(name))
        for name, declared in TYPES_COLUMNS.items()
    )
    names = sql.SQL(", ").join(map(sql.Identifier, ["id", *TYPES_COLUMNS]))
    marks = sql.SQL(", ").join(sql.Placeholder() * (len(TYPES_COLUMNS) + 1))
    rows = types_rows()
    with conn.transaction():
        conn.execute("DROP TABLE IF EXISTS public.types CASCADE")
        conn.execute(
            sql.SQL("CREATE TABLE public.types (id integer PRIMARY KEY, {})").format(columns)
        )
        conn.cursor().executemany(
            sql.SQL("INSERT INTO public.types ({}) VALUES ({})").format(names, marks), rows
        )
        conn.execute("ANALYZE public.types")
        if grantee is not None:
            grant_select(conn, grantee, "public", ["types"])
    return len(rows)
