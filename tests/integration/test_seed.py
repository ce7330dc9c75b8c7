"""The Redshift flavour and the sample data on a real PostgreSQL (one cluster per module)."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shiftsync.errors import StandInError
from shiftsync.local.dialect.flavour import FLAVOUR_SCHEMA, install_flavour
from shiftsync.local.postgres import TempPostgres
from shiftsync.local.seed.seeding import (
    EDGE_STRINGS,
    EVENTS_LOG_ROWS,
    TICKIT_KEYS,
    TICKIT_ROWS,
    TYPES_COLUMNS,
    seed_all,
    seed_odd_identifiers,
    seed_tickit,
    seed_types,
    wkb_point,
)

SCALE = 0.01
READER = "IAMR:shiftsync-reader"
STRANGER = "stranger"
SMALL_COUNTS = {
    "users": 500,
    "venue": 202,
    "category": 11,
    "date": 365,
    "event": 88,
    "listing": 1925,
    "sales": 1725,
}
Conn = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def pg() -> Iterator[TempPostgres]:
    server = TempPostgres().start()
    try:
        with psycopg.connect(server.dsn("postgres"), autocommit=True) as admin:
            for name in ("dev", "dev2", "big", "bare"):
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(STRANGER)))
        yield server
    finally:
        server.stop()


def _connect(pg: TempPostgres, database: str, user: str = "postgres") -> Conn:
    return psycopg.connect(pg.dsn(database), user=user, autocommit=True)


@pytest.fixture(scope="module")
def seeded(pg: TempPostgres) -> dict[str, dict[str, int]]:
    """dev and dev2 seeded the same way; dev2 through a connection that is not autocommit."""
    counts: dict[str, dict[str, int]] = {}
    with _connect(pg, "dev") as conn:
        install_flavour(conn, "dev")
        counts["dev"] = seed_all(conn, SCALE, grantee=READER)
    with psycopg.connect(pg.dsn("dev2")) as conn:
        install_flavour(conn, "dev2")
        install_flavour(conn, "dev2")  # a second install changes nothing
        counts["dev2"] = seed_all(conn, SCALE)
    return counts


@pytest.fixture
def dev(pg: TempPostgres, seeded: dict[str, dict[str, int]]) -> Iterator[Conn]:
    with _connect(pg, "dev") as conn:
        yield conn


def _scalar(conn: Conn, query: str | sql.Composed, params: tuple[object, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _table_md5(conn: Conn, table: str, key: str) -> str:
    query = sql.SQL("SELECT md5(string_agg(t::text, '|' ORDER BY t.{})) FROM public.{} AS t")
    row = conn.execute(query.format(sql.Identifier(key), sql.Identifier(table))).fetchone()
    assert row is not None
    return str(row[0])


# --- TICKIT -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big(pg: TempPostgres) -> dict[str, int]:
    """Database big at scale 1, the size of AWS's sample (about 1.5 s to seed)."""
    with _connect(pg, "big") as conn:
        install_flavour(conn, "big")
        return seed_tickit(conn, 1.0)


def _count(conn: Conn, table: str) -> int:
    count: int = _scalar(
        conn, sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(table))
    )
    return count


def test_scale_one_has_the_aws_sample_row_counts(pg: TempPostgres, big: dict[str, int]) -> None:
    with _connect(pg, "big") as conn:
        actual = {table: _count(conn, table) for table in TICKIT_ROWS}
    expected = {
        "users": 49_990,
        "venue": 202,
        "category": 11,
        "date": 365,
        "event": 8_798,
        "listing": 192_497,
        "sales": 172_456,
    }
    assert big == expected
    assert actual == expected


def test_small_scale_counts_are_returned_and_true(
    dev: Conn, seeded: dict[str, dict[str, int]]
) -> None:
    for table, rows in SMALL_COUNTS.items():
        assert seeded["dev"][table] == rows
        assert _count(dev, table) == rows


def test_seed_all_reports_every_table(seeded: dict[str, dict[str, int]]) -> None:
    assert seeded["dev"] == {
        **SMALL_COUNTS,
        "types": seeded["dev"]["types"],
        "events_log": EVENTS_LOG_ROWS,
        "odd schema.mixed case": 3,
    }
    assert seeded["dev"]["types"] > 10


def test_same_scale_gives_identical_data(pg: TempPostgres, seeded: object) -> None:
    with _connect(pg, "dev") as one, _connect(pg, "dev2") as two:
        for table, key in {**TICKIT_KEYS, "types": "id"}.items():
            assert _table_md5(one, table, key) == _table_md5(two, table, key), table


def test_reseeding_replaces_rather_than_appends(pg: TempPostgres, seeded: object) -> None:
    with _connect(pg, "dev2") as conn:
        before = _table_md5(conn, "sales", "salesid")
        assert seed_tickit(conn, SCALE)["sales"] == SMALL_COUNTS["sales"]
        assert _scalar(conn, "SELECT count(*) FROM public.sales") == SMALL_COUNTS["sales"]
        assert _table_md5(conn, "sales", "salesid") == before


def test_primary_keys_are_declared(dev: Conn) -> None:
    rows = dev.execute(
        "SELECT n.nspname, r.relname, a.attname FROM pg_constraint AS c"
        " JOIN pg_class AS r ON r.oid = c.conrelid"
        " JOIN pg_namespace AS n ON n.oid = r.relnamespace"
        " JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
        " WHERE c.contype = 'p' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    ).fetchall()
    keys = {(schema, table): column for schema, table, column in rows}
    assert keys == {
        **{("public", table): key for table, key in TICKIT_KEYS.items()},
        ("public", "types"): "id",
        ("odd schema", "mixed case"): "id",
    }  # and none on events_log


ORPHANS = {
    "sale without its listing": "SELECT count(*) FROM sales s"
    " LEFT JOIN listing l USING (listid) WHERE l.listid IS NULL",
    "sale whose seller or event differs from its listing's": "SELECT count(*) FROM sales s"
    " JOIN listing l USING (listid) WHERE s.sellerid <> l.sellerid OR s.eventid <> l.eventid",
    "sale of more tickets than listed": "SELECT count(*) FROM sales s"
    " JOIN listing l USING (listid) WHERE s.qtysold > l.numtickets OR s.qtysold < 1",
    "sale before its listing or after its event": "SELECT count(*) FROM sales s"
    " JOIN listing l USING (listid) JOIN event e ON e.eventid = s.eventid"
    " WHERE s.dateid < l.dateid OR s.dateid > e.dateid OR s.saletime <= l.listtime",
    "sale price not quantity times price": "SELECT count(*) FROM sales s"
    " JOIN listing l USING (listid) WHERE s.pricepaid <> s.qtysold * l.priceperticket"
    " OR s.commission <> round(s.pricepaid * 0.15, 2)",
    "listing total not tickets times price": "SELECT count(*) FROM listing"
    " WHERE totalprice <> numtickets * priceperticket",
    "buyer not a user": "SELECT count(*) FROM sales s"
    " LEFT JOIN users u ON u.userid = s.buyerid WHERE u.userid IS NULL",
    "seller not a user": "SELECT count(*) FROM listing l"
    " LEFT JOIN users u ON u.userid = l.sellerid WHERE u.userid IS NULL",
    "sale date not in date": "SELECT count(*) FROM sales s"
    " LEFT JOIN date d USING (dateid) WHERE d.dateid IS NULL",
    "listing event missing": "SELECT count(*) FROM listing l"
    " LEFT JOIN event e USING (eventid) WHERE e.eventid IS NULL",
    "listing after its event": "SELECT count(*) FROM listing l"
    " JOIN event e USING (eventid) WHERE l.dateid > e.dateid",
    "event venue missing": "SELECT count(*) FROM event e"
    " LEFT JOIN venue v USING (venueid) WHERE v.venueid IS NULL",
    "event category missing": "SELECT count(*) FROM event e"
    " LEFT JOIN category c USING (catid) WHERE c.catid IS NULL",
    "event date missing": "SELECT count(*) FROM event e"
    " LEFT JOIN date d USING (dateid) WHERE d.dateid IS NULL",
    "event start not on its date": "SELECT count(*) FROM event e"
    " JOIN date d USING (dateid) WHERE e.starttime::date <> d.caldate",
}


@pytest.mark.parametrize("what", sorted(ORPHANS))
def test_foreign_keys_hold(dev: Conn, what: str) -> None:
    assert _scalar(dev, ORPHANS[what]) == 0


def test_fact_tables_are_varied(dev: Conn) -> None:
    assert _scalar(dev, "SELECT count(DISTINCT eventid) FROM sales") > 50
    assert _scalar(dev, "SELECT count(DISTINCT buyerid) FROM sales") > 400
    assert _scalar(dev, "SELECT count(DISTINCT username) FROM users") > 490
    assert _scalar(dev, "SELECT count(*) FROM users WHERE likesports IS NULL") > 50
    assert _scalar(dev, "SELECT count(*) FROM date WHERE holiday") == 10


# --- the flavour ------------------------------------------------------------------------------


def test_redshift_type_names_show_in_the_catalog(dev: Conn) -> None:
    rows = dev.execute(
        "SELECT a.attname, t.typname, format_type(a.atttypid, a.atttypmod)"
        " FROM pg_attribute AS a JOIN pg_type AS t ON t.oid = a.atttypid"
        " WHERE a.attrelid = 'public.types'::regclass AND a.attnum > 0"
    ).fetchall()
    names = {column: typname for column, typname, _ in rows}
    formatted = {column: text for column, _, text in rows}
    assert names["c_super"] == "super"
    assert names["c_varbyte"] == "varbyte"
    assert names["c_geometry"] == "geometry"
    assert names["c_hllsketch"] == "hllsketch"
    assert names["c_smallint"] == "int2"
    assert names["c_char"] == "bpchar"
    assert names["c_timetz"] == "timetz"
    assert formatted["c_super"] == "super"  # rs_catalog is on the search_path, so unqualified
    assert formatted["c_decimal_38_10"] == "numeric(38,10)"
    assert set(names) == {"id", *TYPES_COLUMNS}


def test_other_redshift_type_names_can_be_declared(dev: Conn) -> None:
    with dev.transaction(force_rollback=True):
        dev.execute("CREATE TABLE t_alias (a varbinary, b geography, c super)")
        rows = dev.execute(
            "SELECT t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
            " WHERE a.attrelid = 't_alias'::regclass AND a.attnum > 0 ORDER BY a.attnum"
        ).fetchall()
    assert [r[0] for r in rows] == ["varbinary", "geography", "super"]


def test_new_connections_resolve_flavour_names(pg: TempPostgres, seeded: object) -> None:
    with _connect(pg, "dev", user=READER) as conn:
        path = _scalar(conn, "SHOW search_path")
        assert path.endswith(FLAVOUR_SCHEMA)
        assert _scalar(conn, "SELECT len('abc')") == 3


def test_json_serialize_is_compact(dev: Conn) -> None:
    text = _scalar(
        dev,
        "SELECT json_serialize(json_parse(%s))",
        ('{"b": [1, 2, {"c": "x, y: z"}], "a": "say \\"hi, you\\": ok", "u": "日本 😀"}',),
    )
    assert text == '{"a":"say \\"hi, you\\": ok","b":[1,2,{"c":"x, y: z"}],"u":"日本 😀"}'
    assert _scalar(dev, "SELECT json_serialize(json_parse('\"a, b\"'))") == '"a, b"'
    assert _scalar(dev, "SELECT json_serialize(json_parse('[]'))") == "[]"
    assert _scalar(dev, "SELECT json_serialize(NULL)") is None


def test_json_serialize_reads_super_columns(dev: Conn) -> None:
    text = _scalar(dev, "SELECT json_serialize(c_super) FROM types WHERE id = 3")
    assert text == '[1,"two",null,true,3.5]'
    assert _scalar(dev, "SELECT pg_typeof(json_parse('1'))::text") == "super"


def test_varbyte_functions(dev: Conn) -> None:
    row = dev.execute(
        "SELECT from_varbyte('\\x00FF7a'::bytea, 'hex'), from_varbyte(to_varbyte('Zoë', 'utf8'),"
        " 'utf-8'), from_varbyte('\\x05'::bytea, 'binary'), to_varbyte('00ff', 'hex'),"
        " to_hex('\\xABcd'::bytea), to_hex(255), to_varbyte('101', 'binary'),"
        " from_varbyte('\\x00ff'::bytea, 'base64')"
    ).fetchone()
    assert row == ("00ff7a", "Zoë", "00000101", b"\x00\xff", "abcd", "ff", b"\x05", "AP8=")
    assert _scalar(dev, "SELECT from_varbyte(c_varbyte, 'hex') FROM types WHERE id = 4") == ""


def test_unknown_varbyte_format_is_an_error(dev: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown format"):
        dev.execute("SELECT from_varbyte('\\x00'::bytea, 'ebcdic')")


def test_geometry_functions_keep_the_wkb(dev: Conn) -> None:
    assert _scalar(dev, "SELECT st_asbinary(c_geometry) FROM types WHERE id = 2") == wkb_point(
        1.0, 2.0
    )
    assert _scalar(dev, "SELECT pg_typeof(st_geomfromwkb(%s))::text", (wkb_point(3, 4),)) == (
        "geometry"
    )


def test_len_follows_redshift(dev: Conn) -> None:
    row = dev.execute(
        "SELECT len('abc  '), len('abc  '::char(8)), len('abc  '::varchar),"
        " len('\\x0102'::bytea), len(c_varchar), len(NULL) FROM types WHERE c_varchar = %s",
        ("日本語のテキスト",),
    ).fetchone()
    assert row == (5, 3, 5, 2, len("日本語のテキスト"), None)


def test_strtol_matches_the_aws_examples(dev: Conn) -> None:
    row = dev.execute(
        "SELECT strtol('0xf', 16), strtol('abcd1234', 16), strtol('1234567', 10),"
        " strtol('1234567', 8), strtol('110101', 2), strtol('', 10), strtol('  -7fz', 16)"
    ).fetchone()
    assert row == (15, 2882343476, 1234567, 342391, 53, 0, -127)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="base"):
        dev.execute("SELECT strtol('1', 1)")
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        dev.execute("SELECT strtol('ffffffffffffffffff', 16)")


def test_convert_timezone_both_forms(dev: Conn) -> None:
    row = dev.execute(
        "SELECT convert_timezone('UTC', 'America/New_York', '2021-03-14 06:30:00'),"
        " convert_timezone('UTC', 'America/New_York', '2021-03-14 07:30:00'),"
        " convert_timezone('America/New_York', '2021-07-01 12:00:00'),"
        " convert_timezone('America/New_York', 'UTC', '2021-01-01 00:00:00')"
    ).fetchone()
    assert row == (
        datetime(2021, 3, 14, 1, 30),
        datetime(2021, 3, 14, 3, 30),
        datetime(2021, 7, 1, 8, 0),
        datetime(2021, 1, 1, 5, 0),
    )


def test_getdate_is_utc_in_whole_seconds(dev: Conn) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    value = _scalar(dev, "SELECT getdate()")
    assert value.microsecond == 0
    assert abs(value - now) < timedelta(seconds=5)
    assert _scalar(dev, "SELECT pg_typeof(getdate())::text") == "timestamp without time zone"


def test_svv_table_info_lists_user_tables(dev: Conn, seeded: dict[str, dict[str, int]]) -> None:
    rows = dev.execute(
        'SELECT "database", "schema", "table", table_id, tbl_rows, estimated_visible_rows, size,'
        " diststyle, sortkey1, encoded, unsorted, pct_used FROM svv_table_info"
    ).fetchall()
    by_name = {(r[1], r[2]): r for r in rows}
    expected = {("public", t) for t in [*TICKIT_ROWS, "types", "events_log"]}
    assert set(by_name) == expected | {("odd schema", "mixed case")}
    for (schema, table), row in by_name.items():
        assert row[0] == "dev"
        assert row[3] == _scalar(
            dev, "SELECT %s::regclass::oid::bigint", (f'"{schema}"."{table}"',)
        )
        assert row[4] == row[5]
        assert row[6] >= 1
        assert row[7:11] == ("AUTO(EVEN)", None, "Y", None)
        assert 0 <= row[11] <= 100
    for table, rows_expected in seeded["dev"].items():
        schema, _, name = table.rpartition(".")
        assert by_name[(schema or "public", name)][4] == rows_expected, table


def test_svv_table_info_size_counts_megabytes(pg: TempPostgres, big: dict[str, int]) -> None:
    with _connect(pg, "big") as conn:
        row = conn.execute(
            "SELECT size, (SELECT pg_total_relation_size('public.sales'))"
            " FROM svv_table_info WHERE \"table\" = 'sales'"
        ).fetchone()
    assert row is not None
    assert row[0] == math.ceil(row[1] / 1048576)
    assert row[0] > 5  # 172,456 sales and their key


def test_svv_table_info_skips_views_and_hidden_schemas(dev: Conn) -> None:
    schemas = {r[0] for r in dev.execute('SELECT DISTINCT "schema" FROM svv_table_info')}
    assert FLAVOUR_SCHEMA not in schemas
    assert not any(s.startswith("pg_") or s == "information_schema" for s in schemas)
    assert (
        _scalar(dev, "SELECT count(*) FROM svv_table_info WHERE \"table\" = 'sales_summary'") == 0
    )


# --- grants -----------------------------------------------------------------------------------


def test_grantee_can_read_every_seeded_relation(pg: TempPostgres, seeded: object) -> None:
    with _connect(pg, "dev", user=READER) as conn:
        assert _scalar(conn, "SELECT current_user") == READER
        assert _scalar(conn, "SELECT count(*) FROM public.sales") == SMALL_COUNTS["sales"]
        assert _scalar(conn, "SELECT count(*) FROM public.types") > 10
        assert _scalar(conn, 'SELECT count(*) FROM "odd schema"."mixed case"') == 3
        assert _scalar(conn, "SELECT count(*) FROM public.sales_summary") > 0
        assert _scalar(conn, "SELECT count(*) FROM public.events_log") == EVENTS_LOG_ROWS
        assert _scalar(conn, "SELECT count(*) FROM svv_table_info") == 10
        assert _scalar(conn, "SELECT json_serialize(c_super) FROM types WHERE id = 7") == "{}"
        assert _scalar(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False


def test_others_are_refused(pg: TempPostgres, seeded: object) -> None:
    with _connect(pg, "dev", user=STRANGER) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute("SELECT count(*) FROM public.sales")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute('SELECT count(*) FROM "odd schema"."mixed case"')
        assert _scalar(conn, "SELECT count(*) FROM svv_table_info") == 0
        assert _scalar(conn, "SELECT strtol('ff', 16)") == 255  # functions are for everyone


# --- edge values ------------------------------------------------------------------------------


def _column(conn: Conn, column: str) -> list[Any]:
    query = sql.SQL("SELECT {} FROM public.types WHERE {} IS NOT NULL ORDER BY id")
    ident = sql.Identifier(column)
    return [r[0] for r in conn.execute(query.format(ident, ident))]


def test_all_null_row(dev: Conn) -> None:
    row = dev.execute("SELECT * FROM public.types WHERE id = 1").fetchone()
    assert row is not None
    assert row[1:] == (None,) * len(TYPES_COLUMNS)


def test_decimal_and_integer_extremes_are_exact(dev: Conn) -> None:
    nines = "9" * 38
    assert _column(dev, "c_decimal_38_0")[:2] == [Decimal("-" + nines), Decimal(nines)]
    frac = nines[:28] + "." + nines[:10]
    assert _column(dev, "c_decimal_38_10")[:4] == [
        Decimal("-" + frac),
        Decimal(frac),
        Decimal("0.0000000001"),
        Decimal("-0.0000000001"),
    ]
    assert _column(dev, "c_decimal_10_2")[:2] == [Decimal("-99999999.99"), Decimal("99999999.99")]
    assert _column(dev, "c_smallint")[:2] == [-(2**15), 2**15 - 1]
    assert _column(dev, "c_integer")[:2] == [-(2**31), 2**31 - 1]
    assert _column(dev, "c_bigint")[:2] == [-(2**63), 2**63 - 1]


def test_floats_keep_extremes_nan_infinity_and_negative_zero(dev: Conn) -> None:
    reals = _column(dev, "c_real")
    float32_max = struct.unpack("<f", struct.pack("<I", 0x7F7FFFFF))[0]
    assert struct.pack("<f", reals[1]) == struct.pack("<f", float32_max)
    doubles = _column(dev, "c_double")
    assert doubles[:2] == [-1.7976931348623157e308, 1.7976931348623157e308]
    for values in (reals, doubles):
        assert any(math.isnan(v) for v in values)
        assert math.inf in values
        assert -math.inf in values
        assert any(v == 0 and math.copysign(1, v) < 0 for v in values)
    row = dev.execute("SELECT c_real::text, c_double::text FROM types WHERE id = 6").fetchone()
    assert row == ("NaN", "NaN")


def test_empty_string_is_not_null(dev: Conn) -> None:
    assert _scalar(dev, "SELECT count(*) FROM types WHERE c_varchar = ''") == 1
    assert _scalar(dev, "SELECT count(*) FROM types WHERE c_varchar = 'NULL'") == 1
    empty_id = _scalar(dev, "SELECT id FROM types WHERE c_varchar = ''")
    assert _scalar(dev, "SELECT c_varchar IS NULL FROM types WHERE id = %s", (empty_id,)) is False
    assert _scalar(dev, "SELECT count(*) FROM types WHERE c_varbyte = ''::bytea") == 1


def test_every_edge_string_round_trips(dev: Conn) -> None:
    assert _column(dev, "c_varchar") == list(EDGE_STRINGS)


def test_timestamps_round_trip(dev: Conn) -> None:
    plain = _column(dev, "c_timestamp")
    assert datetime(1900, 1, 1) in plain
    assert datetime(1969, 12, 31, 23, 59, 59, 999999) in plain
    assert datetime(9999, 12, 31, 23, 59, 59, 999999) in plain
    instants = _column(dev, "c_timestamptz")
    est = datetime(2021, 3, 14, 6, 30, tzinfo=UTC)  # 01:30 EST
    edt = datetime(2021, 3, 14, 7, 30, tzinfo=UTC)  # 03:30 EDT
    assert est in instants
    assert edt in instants
    assert datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=UTC) in instants
    assert min(instants).year == 1900
    assert max(instants).year == 9999


def test_timetz_keeps_its_offset(dev: Conn) -> None:
    first = _column(dev, "c_timetz")[0]
    assert first.utcoffset() == timedelta(hours=5, minutes=30)
    assert _scalar(dev, "SELECT c_timetz::text FROM types WHERE id = 2") == "13:45:30.123456+05:30"


def test_super_values_round_trip(dev: Conn) -> None:
    values = _column(dev, "c_super")
    assert values[0] == {"name": "Zoë", "tags": ["a", "b"], "nested": {"k": [1, {"deep": None}]}}
    assert 12345678901234567890 in values
    assert "just a string, with: separators" in values
    kinds = [r[0] for r in dev.execute("SELECT jsonb_typeof(c_super) FROM types ORDER BY id")]
    assert {"object", "array", "string", "number", "null"} <= set(kinds)
    assert kinds[0] is None  # SQL NULL differs from the JSON null further down


def test_bytes_round_trip(dev: Conn) -> None:
    values = _column(dev, "c_varbyte")
    assert values[:4] == [b"\x00", b"\xff", b"", b"\x00\xff\x00\xff"]
    assert bytes(range(256)) in values
    assert _column(dev, "c_geometry") == [wkb_point(1.0, 2.0)]
    assert _column(dev, "c_interval")[1] == timedelta(days=1, seconds=7384, microseconds=5)


# --- odd identifiers and failures ----------------------------------------------------------


def test_odd_identifiers_need_quoting(dev: Conn) -> None:
    columns = [
        r[0]
        for r in dev.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " ORDER BY attnum",
            ('"odd schema"."mixed case"',),
        )
    ]
    assert columns == ["id", "select", "has space", 'quo"te', "ünïcödé", "from"]
    assert _scalar(dev, 'SELECT "quo""te" FROM "odd schema"."mixed case" WHERE id = 1') == (
        'say "hi"'
    )


def test_view_reads_like_a_table(dev: Conn) -> None:
    assert _scalar(dev, "SELECT sum(total_paid) FROM sales_summary") == _scalar(
        dev, "SELECT sum(pricepaid) FROM sales"
    )
    assert _scalar(dev, "SELECT count(*) FROM sales_summary") == _scalar(
        dev, "SELECT count(DISTINCT eventid) FROM sales"
    )


def test_events_log_has_no_key_and_a_duplicate(dev: Conn) -> None:
    assert _scalar(dev, "SELECT count(*) FROM events_log") == EVENTS_LOG_ROWS
    assert _scalar(dev, "SELECT count(*) FROM (SELECT DISTINCT * FROM events_log) d") == 100


def test_seeding_without_the_flavour_is_refused(pg: TempPostgres) -> None:
    with _connect(pg, "bare") as conn, pytest.raises(StandInError, match="install_flavour"):
        seed_types(conn)


def test_odd_identifiers_need_tickit_first(pg: TempPostgres) -> None:
    with _connect(pg, "bare") as conn, pytest.raises(StandInError, match="seed_tickit"):
        seed_odd_identifiers(conn)


def test_flavour_refuses_another_databases_name(pg: TempPostgres) -> None:
    with _connect(pg, "bare") as conn, pytest.raises(StandInError, match="'dev'"):
        install_flavour(conn, "dev")
