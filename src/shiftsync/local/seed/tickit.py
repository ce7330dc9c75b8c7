"""AWS's TICKIT sample, generated inside PostgreSQL at any scale.

Each table is filled by one `INSERT ... SELECT ... FROM generate_series`. Each pseudo-random
column is `hashint8extended(row number, salt)`, PostgreSQL's own 64-bit hash, so the same scale
gives byte-identical tables on every run and no row crosses into Python. Foreign keys hold by
construction: a listing's event, a sale's listing and so on are computed from the same
expressions that generate the referenced rows, instead of being looked up.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any, Final

import psycopg
from psycopg import sql

from shiftsync.errors import StandInError
from shiftsync.local.seed.sql import (
    choice_sql,
    grant_select,
    pick_sql,
    quote_literal,
    text_array_sql,
)

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
