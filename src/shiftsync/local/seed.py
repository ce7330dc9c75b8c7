"""Deterministic sample data for the stand-in: TICKIT, every Redshift type, odd identifiers.

TICKIT is generated inside PostgreSQL with `INSERT ... SELECT ... FROM generate_series`. Each
pseudo-random column is `hashint8extended(row number, salt)`, PostgreSQL's own 64-bit hash, so
the same scale gives byte-identical tables on every run and no row crosses into Python. Foreign
keys hold by construction: a listing's event, a sale's listing and so on are computed from the
same expressions that generate the referenced rows, instead of being looked up.

Every function replaces what it seeds (DROP ... CASCADE, so views over the seeded tables are
dropped too) and commits. seed_types needs `install_flavour` to have run on the database first
(its columns use the flavour's domains); seed_odd_identifiers needs seed_tickit first.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from shiftsync.errors import StandInError
from shiftsync.local.flavour import FLAVOUR_SCHEMA

# Row counts of AWS's TICKIT sample, the counts at scale 1.
TICKIT_ROWS: Final[dict[str, int]] = {
    "users": 49_990,
    "venue": 202,
    "category": 11,
    "date": 365,
    "event": 8_798,
    "listing": 192_497,
    "sales": 172_456,
}
# These follow `scale`; the others are fixed dimensions.
SCALED_TABLES: Final = frozenset({"users", "event", "listing", "sales"})

# Columns as in AWS's CREATE TABLE statements for TICKIT (DISTKEY/SORTKEY left out).
TICKIT_DDL: Final[dict[str, str]] = {
    "users": (
        "userid integer NOT NULL, username char(8), firstname varchar(30),"
        " lastname varchar(30), city varchar(30), state char(2), email varchar(100),"
        " phone char(14), likesports boolean, liketheatre boolean, likeconcerts boolean,"
        " likejazz boolean, likeclassical boolean, likeopera boolean, likerock boolean,"
        " likevegas boolean, likebroadway boolean, likemusicals boolean"
    ),
    "venue": (
        "venueid smallint NOT NULL, venuename varchar(100), venuecity varchar(30),"
        " venuestate char(2), venueseats integer"
    ),
    "category": (
        "catid smallint NOT NULL, catgroup varchar(10), catname varchar(10), catdesc varchar(50)"
    ),
    "date": (
        "dateid smallint NOT NULL, caldate date NOT NULL, day char(3) NOT NULL,"
        " week smallint NOT NULL, month char(5) NOT NULL, qtr char(5) NOT NULL,"
        " year smallint NOT NULL, holiday boolean DEFAULT false"
    ),
    "event": (
        "eventid integer NOT NULL, venueid smallint NOT NULL, catid smallint NOT NULL,"
        " dateid smallint NOT NULL, eventname varchar(200), starttime timestamp"
    ),
    "listing": (
        "listid integer NOT NULL, sellerid integer NOT NULL, eventid integer NOT NULL,"
        " dateid smallint NOT NULL, numtickets smallint NOT NULL,"
        " priceperticket decimal(8,2), totalprice decimal(8,2), listtime timestamp"
    ),
    "sales": (
        "salesid integer NOT NULL, listid integer NOT NULL, sellerid integer NOT NULL,"
        " buyerid integer NOT NULL, eventid integer NOT NULL, dateid smallint NOT NULL,"
        " qtysold smallint NOT NULL, pricepaid decimal(8,2), commission decimal(8,2),"
        " saletime timestamp"
    ),
}
TICKIT_KEYS: Final[dict[str, str]] = {
    "users": "userid",
    "venue": "venueid",
    "category": "catid",
    "date": "dateid",
    "event": "eventid",
    "listing": "listid",
    "sales": "salesid",
}

CATEGORIES: Final[tuple[tuple[int, str, str, str], ...]] = (
    (1, "Sports", "MLB", "Major League Baseball"),
    (2, "Sports", "NHL", "National Hockey League"),
    (3, "Sports", "NFL", "National Football League"),
    (4, "Sports", "NBA", "National Basketball Association"),
    (5, "Sports", "MLS", "Major League Soccer"),
    (6, "Shows", "Musicals", "Musical theatre"),
    (7, "Shows", "Plays", "All non-musical theatre"),
    (8, "Shows", "Opera", "All opera and light opera"),
    (9, "Concerts", "Pop", "All rock and pop music concerts"),
    (10, "Concerts", "Jazz", "All jazz singers and bands"),
    (11, "Concerts", "Classical", "All symphony, concerto, and choir concerts"),
)

# The sample's calendar: 365 days of 2008 from dateid 1827, as in AWS's data.
FIRST_DATEID: Final = 1827
FIRST_DAY: Final = date(2008, 1, 1)
US_HOLIDAYS_2008: Final[tuple[date, ...]] = (
    date(2008, 1, 1), date(2008, 1, 21), date(2008, 2, 18), date(2008, 5, 26),
    date(2008, 7, 4), date(2008, 9, 1), date(2008, 10, 13), date(2008, 11, 11),
    date(2008, 11, 27), date(2008, 12, 25),
)  # fmt: skip

FIRST_NAMES: Final[tuple[str, ...]] = (
    "Rafael", "Vladimir", "Lars", "Barry", "Reagan", "Victor", "Julie", "Charity", "Axel",
    "Griffin", "Hiram", "Tamekah", "Nora", "Kirsten", "Aurora", "Colton", "Imani", "Quinn",
    "Zelda", "Basil", "Ivana", "Merritt", "Odessa", "Thaddeus", "Yoshi", "Leila", "Mona",
    "Keegan", "Phoebe", "Uriel", "Wanda", "Xena", "Elton", "Fiona", "Gage", "Hedy",
)  # fmt: skip
LAST_NAMES: Final[tuple[str, ...]] = (
    "Hernandez", "Hanson", "Zimmerman", "Grant", "Dodson", "Turner", "Ortiz", "Bishop",
    "Cannon", "Delgado", "Ewing", "Flores", "Gallegos", "Holder", "Irwin", "Jacobs", "Kirby",
    "Lamb", "Mcknight", "Nieves", "Oneal", "Pruitt", "Quinn", "Rowe", "Salinas", "Tillman",
    "Underwood", "Vance", "Wolfe", "Young",
)  # fmt: skip
CITIES: Final[tuple[tuple[str, str], ...]] = (
    ("San Diego", "CA"), ("Naperville", "IL"), ("Kent", "WA"), ("Augusta", "GA"),
    ("Boston", "MA"), ("Austin", "TX"), ("Denver", "CO"), ("Miami", "FL"), ("Toledo", "OH"),
    ("Reno", "NV"), ("Salem", "OR"), ("Tempe", "AZ"), ("Provo", "UT"), ("Camden", "NJ"),
    ("Albany", "NY"), ("Mobile", "AL"), ("Duluth", "MN"), ("Omaha", "NE"), ("Tulsa", "OK"),
    ("Laramie", "WY"), ("Bangor", "ME"), ("Dover", "DE"), ("Erie", "PA"), ("Flint", "MI"),
    ("Quebec", "QC"), ("Halifax", "NS"),
)  # fmt: skip
LOREM: Final[tuple[str, ...]] = (
    "turpis", "accumsan", "laoreet", "sodales", "mauris", "blandit", "etiam", "libero",
    "nunc", "velit", "arcu", "metus", "nulla", "felis", "quam", "lectus", "magna", "dolor",
)  # fmt: skip
TOP_LEVEL_DOMAINS: Final[tuple[str, ...]] = ("com", "org", "net", "edu", "ca", "us")
VENUE_KINDS: Final[tuple[str, ...]] = (
    "Stadium", "Arena", "Park", "Center", "Theatre", "Field", "Hall", "Amphitheatre", "Garden",
)  # fmt: skip
EVENT_NAMES: Final[tuple[str, ...]] = (
    "Gotterdammerung", "Mamma Mia!", "Shrek the Musical", "La Boheme", "Macbeth", "Hamlet",
    "Wicked", "Jersey Boys", "Tosca", "Carmen", "The Magic Flute", "Kings of Leon",
    "Linkin Park", "Dave Matthews Band", "Norah Jones", "Diana Krall", "Yo-Yo Ma", "Joshua Bell",
    "Rock of Ages", "Spamalot", "Grease", "Rent", "Chicago", "Cirque du Soleil", "The Police",
    "Radiohead", "Coldplay", "Beyonce", "Wynton Marsalis", "Pink Martini", "Phantom of the Opera",
    "Les Miserables", "Aida", "Otello", "Rigoletto", "A Streetcar Named Desire",
)  # fmt: skip


def scaled_count(table: str, scale: float) -> int:
    """Rows of a TICKIT table at `scale`: linear for the fact-like tables, at least one row."""
    if not math.isfinite(scale) or scale <= 0:
        raise StandInError(
            f"TICKIT scale {scale!r} is not a positive number",
            fix="pass a scale above 0, such as 0.01, 1 or 6",
        )
    base = TICKIT_ROWS[table]
    if table not in SCALED_TABLES:
        return base
    return max(1, math.floor(base * scale + 0.5))


def coprime_stride(n: int) -> int:
    """A stride that visits each of 0..n-1 once under `i * stride % n`: a prime not dividing n."""
    for prime in (104_729, 7_919, 1_009, 101, 13):
        if n % prime:
            return prime
    return 1  # only when n is a multiple of all of them; a stride of 1 is still a bijection


def pick_sql(row: str, salt: int, n: str | int) -> str:
    """SQL for a pseudo-random integer in [0, n) drawn from the bigint expression `row`.

    `row` and `n` are SQL expressions built in this module, never outside text.
    """
    return f"(((hashint8extended({row}, {int(salt)}) & 2147483647) % ({n}))::integer)"


def quote_literal(value: object) -> str:
    """A value as a SQL literal, quoted by psycopg (the generators below are plain text)."""
    return sql.Literal(value).as_string()


def text_array_sql(values: Sequence[str]) -> str:
    """ARRAY['a', 'b', ...]::text[] with every element quoted as a literal."""
    return f"ARRAY[{', '.join(map(quote_literal, values))}]::text[]"


def choice_sql(values: Sequence[str], row: str, salt: int) -> str:
    """One of `values`, picked by the row: ARRAY[...][1 + pick]."""
    return f"({text_array_sql(values)})[1 + {pick_sql(row, salt, len(values))}]"


def _table(name: str) -> sql.Composed:
    return sql.SQL("public.{}").format(sql.Identifier(name))


def _caldate_sql(dateid: str) -> str:
    return f"({quote_literal(FIRST_DAY)} + ({dateid} - {FIRST_DATEID}))"


def _city_lateral_sql(row: str, salt: int) -> str:
    """A lateral `c` with a (city, state) pair picked by the row."""
    cities = text_array_sql([city for city, _ in CITIES])
    states = text_array_sql([state for _, state in CITIES])
    return (
        f" CROSS JOIN LATERAL (SELECT ({cities})[k] AS city, ({states})[k] AS state"
        f" FROM (SELECT 1 + {pick_sql(row, salt, len(CITIES))}) AS ck(k)) AS c"
    )


def users_sql(n_users: int) -> str:
    u = "u"
    letters = [f"chr(65 + {pick_sql(u, salt, 26)})" for salt in (1, 2, 3, 5, 6, 7)]
    # Like AWS's PGL08LJI: three letters, two digits, three letters.
    username = " || ".join(
        [*letters[:3], f"lpad({pick_sql(u, 4, 100)}::text, 2, '0')", *letters[3:]]
    )
    email = (
        f"{choice_sql(LOREM, u, 16)} || '.' || {choice_sql(LOREM, u, 17)} || '@'"
        f" || {choice_sql(LOREM, u, 18)} || {choice_sql(LOREM, u, 19)}"
        f" || '.' || {choice_sql(TOP_LEVEL_DOMAINS, u, 11)}"
    )
    phone = (
        f"'(' || (200 + {pick_sql(u, 13, 800)}) || ') '"
        f" || lpad({pick_sql(u, 14, 1000)}::text, 3, '0')"
        f" || '-' || lpad({pick_sql(u, 15, 10000)}::text, 4, '0')"
    )
    # A third of the preferences are unknown (NULL).
    likes = ", ".join(
        f"(ARRAY[NULL, true, false]::boolean[])[1 + {pick_sql(u, salt, 3)}]"
        for salt in range(20, 30)
    )
    return (
        f"INSERT INTO public.users SELECT {u}, {username},"
        f" {choice_sql(FIRST_NAMES, u, 8)}, {choice_sql(LAST_NAMES, u, 9)}, c.city, c.state,"
        f" {email}, {phone}, {likes}"
        f" FROM generate_series(1::bigint, {int(n_users)}) AS g({u})"
        f"{_city_lateral_sql(u, 10)}"
    )


def venue_sql() -> str:
    v = "v"
    name = (
        f"c.city || ' ' || {choice_sql(LAST_NAMES, v, 42)}"
        f" || ' ' || {choice_sql(VENUE_KINDS, v, 43)}"
    )
    seats = (
        f"CASE {pick_sql(v, 44, 6)} WHEN 0 THEN NULL WHEN 1 THEN 0"
        f" ELSE 5000 + {pick_sql(v, 45, 70000)} END"
    )
    return (
        f"INSERT INTO public.venue SELECT {v}, {name}, c.city, c.state, {seats}"
        f" FROM generate_series(1::bigint, {TICKIT_ROWS['venue']}) AS g({v})"
        f"{_city_lateral_sql(v, 41)}"
    )


def date_sql() -> str:
    return (
        f"INSERT INTO public.date SELECT {FIRST_DATEID} + d, cal, left(to_char(cal, 'DY'), 2),"
        " d / 7 + 1, to_char(cal, 'MON'), extract(quarter FROM cal)::text,"
        f" extract(year FROM cal), cal = ANY({quote_literal(list(US_HOLIDAYS_2008))})"
        f" FROM generate_series(0, {TICKIT_ROWS['date'] - 1}) AS g(d)"
        f" CROSS JOIN LATERAL (SELECT {quote_literal(FIRST_DAY)} + d AS cal) AS c"
    )


def _event_dateid_sql(eventid: str) -> str:
    return f"({FIRST_DATEID} + {pick_sql(eventid, 52, TICKIT_ROWS['date'])})"


def event_sql(n_events: int) -> str:
    e = "e"
    starttime = (
        f"{_caldate_sql(_event_dateid_sql(e))}"
        f" + make_interval(hours => 14 + {pick_sql(e, 54, 6)},"
        f" mins => 30 * {pick_sql(e, 55, 2)})"
    )
    return (
        f"INSERT INTO public.event SELECT {e}, 1 + {pick_sql(e, 50, TICKIT_ROWS['venue'])},"
        f" 1 + {pick_sql(e, 51, TICKIT_ROWS['category'])}, {_event_dateid_sql(e)},"
        f" {choice_sql(EVENT_NAMES, e, 53)}, {starttime}"
        f" FROM generate_series(1::bigint, {int(n_events)}) AS g({e})"
    )


def listing_rows_sql(listid_source: str, counts: dict[str, int]) -> str:
    """SELECT of every listing column for the listids that `listid_source` yields.

    `listid_source` is a FROM item with one bigint column `listid`. The sales generator uses
    this same text, so each sale agrees with its listing without a join.
    """
    lid = "src.listid"
    window = f"least(ev.event_dateid - {FIRST_DATEID}, 60) + 1"  # listed up to 60 days before
    return (
        f"SELECT {lid} AS listid, 1 + {pick_sql(lid, 61, counts['users'])} AS sellerid,"
        " ev.eventid, ev.event_dateid,"
        f" ev.event_dateid - {pick_sql(lid, 62, window)} AS dateid,"
        f" 1 + {pick_sql(lid, 63, 30)} AS numtickets,"
        f" (2000 + {pick_sql(lid, 64, 248000)}) / 100.0 AS priceperticket,"
        f" make_interval(secs => {pick_sql(lid, 65, 43200)}) AS listoffset"
        f" FROM {listid_source}"
        f" CROSS JOIN LATERAL (SELECT eventid, {_event_dateid_sql('eventid')} AS event_dateid"
        f" FROM (SELECT 1 + {pick_sql(lid, 60, counts['event'])}) AS pe(eventid)) AS ev"
    )


def listing_sql(counts: dict[str, int]) -> str:
    source = f"generate_series(1::bigint, {int(counts['listing'])}) AS src(listid)"
    return (
        "INSERT INTO public.listing"
        " SELECT l.listid, l.sellerid, l.eventid, l.dateid, l.numtickets, l.priceperticket,"
        f" l.numtickets * l.priceperticket, {_caldate_sql('l.dateid')} + l.listoffset"
        f" FROM ({listing_rows_sql(source, counts)}) AS l"
    )


def sales_sql(counts: dict[str, int]) -> str:
    s = "s"
    n_listings = int(counts["listing"])
    # Sale s takes listing (s-1)*stride mod L + 1: distinct listings while sales <= listings.
    source = f"(SELECT ({s} - 1) * {coprime_stride(n_listings)} % {n_listings} + 1) AS src(listid)"
    sale_dateid = f"(l.dateid + {pick_sql(s, 71, 'l.event_dateid - l.dateid + 1')})"
    # Listings are timed in the morning and sales in the afternoon, so a sale never precedes
    # its listing even on the same day.
    saletime = (
        f"{_caldate_sql(sale_dateid)} + make_interval(secs => 43200 + {pick_sql(s, 73, 43200)})"
    )
    return (
        f"INSERT INTO public.sales SELECT {s}, l.listid, l.sellerid,"
        f" 1 + {pick_sql(s, 70, counts['users'])}, l.eventid, {sale_dateid},"
        " q.qtysold, q.qtysold * l.priceperticket,"
        f" round(q.qtysold * l.priceperticket * 0.15, 2), {saletime}"
        f" FROM generate_series(1::bigint, {int(counts['sales'])}) AS g({s})"
        f" CROSS JOIN LATERAL ({listing_rows_sql(source, counts)}) AS l"
        f" CROSS JOIN LATERAL (SELECT 1 + {pick_sql(s, 72, 'l.numtickets')} AS qtysold) AS q"
    )


def tickit_insert_sql(counts: dict[str, int]) -> list[str]:
    """The generating INSERTs, in an order where every referenced table comes first."""
    return [
        users_sql(counts["users"]),
        venue_sql(),
        date_sql(),
        event_sql(counts["event"]),
        listing_sql(counts),
        sales_sql(counts),
    ]


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


def _require_flavour(conn: psycopg.Connection[Any]) -> None:
    found = conn.execute("SELECT to_regtype(%s)", (f"{FLAVOUR_SCHEMA}.super",)).fetchone()
    if found is None or found[0] is None:
        raise StandInError(
            f"the database has no {FLAVOUR_SCHEMA} schema with Redshift's types",
            fix="run shiftsync.local.flavour.install_flavour(conn, database) before seeding",
        )


def seed_tickit(
    conn: psycopg.Connection[Any], scale: float, grantee: str | None = None
) -> dict[str, int]:
    """(Re)create AWS's TICKIT sample in schema public at `scale`; returns {table: rows}."""
    counts = {table: scaled_count(table, scale) for table in TICKIT_ROWS}
    with conn.transaction():
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        conn.execute("SET LOCAL work_mem = '64MB'")
        conn.execute(
            sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(
                sql.SQL(", ").join(_table(t) for t in TICKIT_DDL)
            )
        )
        for table, columns in TICKIT_DDL.items():
            conn.execute(sql.SQL("CREATE TABLE {} (" + columns + ")").format(_table(table)))
        conn.cursor().executemany("INSERT INTO public.category VALUES (%s, %s, %s, %s)", CATEGORIES)
        for statement in tickit_insert_sql(counts):
            conn.execute(statement)
        for table, key in TICKIT_KEYS.items():
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                    _table(table), sql.Identifier(key)
                )
            )
        conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(_table, TICKIT_DDL))))
        if grantee is not None:
            grant_select(conn, grantee, "public", list(TICKIT_DDL))
    return counts


# --- every Redshift type, with edge values -------------------------------------------------

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


# --- identifiers that need quoting, a view, a table without a key --------------------------

ODD_SCHEMA: Final = "Odd Schema"
ODD_TABLE: Final = "Mixed Case"
# Reserved word, space, embedded double quote, non-ASCII, another reserved word.
ODD_COLUMNS: Final[dict[str, str]] = {
    "id": "integer PRIMARY KEY",
    "Select": "varchar(50)",
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
    """(Re)create "Odd Schema"."Mixed Case", view public.sales_summary, public.events_log.

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


def seed_all(
    conn: psycopg.Connection[Any], scale: float, grantee: str | None = None
) -> dict[str, int]:
    """Everything above; returns rows per table (public tables by name, others schema.table)."""
    counts = seed_tickit(conn, scale, grantee)
    counts["types"] = seed_types(conn, grantee)
    seed_odd_identifiers(conn, grantee)
    counts["events_log"] = EVENTS_LOG_ROWS
    counts[f"{ODD_SCHEMA}.{ODD_TABLE}"] = len(ODD_ROWS)
    return counts
