"""Pure pieces of the stand-in's sample data and Redshift flavour: counts, SQL text, values."""

from __future__ import annotations

import math
import struct
from datetime import date

import pytest

from shiftsync.errors import StandInError
from shiftsync.local.dialect.flavour import (
    FLAVOUR_SCHEMA,
    FUNCTIONS_SQL,
    REDSHIFT_DOMAINS,
    SVV_TABLE_INFO_SQL,
    build_create_domain_sql,
    build_database_search_path_sql,
)
from shiftsync.local.seed.seeding import (
    EDGE_STRINGS,
    SCALED_TABLES,
    TICKIT_DDL,
    TICKIT_KEYS,
    TICKIT_ROWS,
    TYPES_COLUMNS,
    TYPES_EDGE_VALUES,
    choice_sql,
    coprime_stride,
    listing_rows_sql,
    listing_sql,
    pick_sql,
    quote_literal,
    sales_sql,
    scaled_count,
    text_array_sql,
    tickit_insert_sql,
    types_rows,
    wkb_point,
)

AWS_SAMPLE_ROWS = {
    "users": 49_990,
    "venue": 202,
    "category": 11,
    "date": 365,
    "event": 8_798,
    "listing": 192_497,
    "sales": 172_456,
}


def test_scale_one_is_the_aws_sample() -> None:
    assert {t: scaled_count(t, 1.0) for t in TICKIT_ROWS} == AWS_SAMPLE_ROWS


def test_fact_tables_grow_linearly_and_dimensions_stay() -> None:
    assert scaled_count("sales", 6) == 6 * 172_456
    assert scaled_count("listing", 0.5) == 96_249  # 96,248.5 rounds half up
    assert scaled_count("users", 0.01) == 500
    for fixed in ("venue", "category", "date"):
        assert scaled_count(fixed, 0.01) == AWS_SAMPLE_ROWS[fixed]
        assert scaled_count(fixed, 6) == AWS_SAMPLE_ROWS[fixed]


def test_tiny_scale_keeps_one_row() -> None:
    assert {t: scaled_count(t, 1e-9) for t in SCALED_TABLES} == dict.fromkeys(SCALED_TABLES, 1)


def test_sales_never_outnumber_listings() -> None:
    for scale in (1e-6, 3e-6, 0.0001, 0.01, 0.37, 1, 2.5, 6, 100):
        assert scaled_count("sales", scale) <= scaled_count("listing", scale)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.nan, math.inf])
def test_bad_scale_is_refused_with_a_fix(scale: float) -> None:
    with pytest.raises(StandInError) as caught:
        scaled_count("sales", scale)
    assert "scale" in caught.value.message
    assert caught.value.fix


@pytest.mark.parametrize("n", [1, 2, 13, 101, 1925, 192_497, 104_729, 104_729 * 7_919, 1_154_982])
def test_stride_is_coprime(n: int) -> None:
    assert math.gcd(coprime_stride(n), n) == 1


@pytest.mark.parametrize("n", [1, 7, 13 * 101, 1000])
def test_stride_visits_every_listing_once(n: int) -> None:
    stride = coprime_stride(n)
    assert sorted(i * stride % n for i in range(n)) == list(range(n))


def test_pick_sql_is_a_bounded_integer_expression() -> None:
    text = pick_sql("g.i", 7, 365)
    assert text == "(((hashint8extended(g.i, 7) & 2147483647) % (365))::integer)"
    assert pick_sql("x", 1, "l.numtickets").endswith("% (l.numtickets))::integer)")


def test_text_array_quotes_every_element() -> None:
    assert text_array_sql(["a", "it's"]) == "ARRAY['a', 'it''s']::text[]"


def test_literals_are_quoted_by_psycopg() -> None:
    assert quote_literal("O'Hare") == "'O''Hare'"
    assert quote_literal(date(2008, 1, 1)) == "'2008-01-01'::date"


def test_choice_indexes_from_one() -> None:
    text = choice_sql(["x", "y", "z"], "u", 3)
    assert text.startswith("(ARRAY['x', 'y', 'z']::text[])[1 + ")
    assert "% (3))::integer)]" in text


def _small_counts() -> dict[str, int]:
    return {table: scaled_count(table, 0.01) for table in TICKIT_ROWS}


def test_tickit_inserts_fill_referenced_tables_first() -> None:
    statements = tickit_insert_sql(_small_counts())
    targets = [s.split()[2] for s in statements]
    assert targets == [
        "public.users",
        "public.venue",
        "public.date",
        "public.event",
        "public.listing",
        "public.sales",
    ]  # category is fixed data, inserted with parameters


def test_tickit_inserts_generate_the_scaled_counts() -> None:
    counts = _small_counts()
    statements = dict(
        zip(
            ["users", "venue", "date", "event", "listing", "sales"],
            tickit_insert_sql(counts),
            strict=True,
        )
    )
    for table in ("users", "venue", "event", "listing", "sales"):
        assert f"generate_series(1::bigint, {counts[table]})" in statements[table], table
    assert "generate_series(0, 364)" in statements["date"]
    assert "random()" not in " ".join(statements.values())


def test_sales_reuse_the_listing_generator() -> None:
    counts = _small_counts()
    listing = listing_sql(counts)
    sales = sales_sql(counts)
    columns, laterals = listing_rows_sql("X", counts).split(" FROM X")
    for part in (columns, laterals):
        assert part in listing
        assert part in sales
    stride = coprime_stride(counts["listing"])
    assert f"(s - 1) * {stride} % {counts['listing']} + 1" in sales


def test_tickit_tables_have_keys_and_columns() -> None:
    assert set(TICKIT_DDL) == set(TICKIT_KEYS) == set(TICKIT_ROWS)
    for table, key in TICKIT_KEYS.items():
        assert TICKIT_DDL[table].startswith(f"{key} ")
    assert "priceperticket decimal(8,2)" in TICKIT_DDL["listing"]
    assert "saletime timestamp" in TICKIT_DDL["sales"]
    likes = [c for c in TICKIT_DDL["users"].split(", ") if c.startswith("like")]
    assert len(likes) == 10
    assert all(c.endswith(" boolean") for c in likes)


def test_wkb_point_is_the_21_bytes_of_point_1_2() -> None:
    wkb = wkb_point(1.0, 2.0)
    assert len(wkb) == 21
    assert wkb.hex() == "0101000000000000000000f03f0000000000000040"
    assert struct.unpack("<BIdd", wkb) == (1, 1, 1.0, 2.0)


def test_every_type_column_has_edge_values() -> None:
    assert set(TYPES_EDGE_VALUES) == set(TYPES_COLUMNS)
    assert all(TYPES_EDGE_VALUES[c] for c in TYPES_COLUMNS)


def test_types_rows_start_all_null_and_number_from_one() -> None:
    rows = types_rows()
    assert rows[0] == (1, *([None] * len(TYPES_COLUMNS)))
    assert [row[0] for row in rows] == list(range(1, len(rows) + 1))
    assert {len(row) for row in rows} == {len(TYPES_COLUMNS) + 1}
    assert len(rows) == 1 + max(len(v) for v in TYPES_EDGE_VALUES.values())


def test_types_rows_keep_each_edge_value_once_in_its_column() -> None:
    rows = types_rows()
    for index, column in enumerate(TYPES_COLUMNS, start=1):
        values = [row[index] for row in rows[1:] if row[index] is not None]
        assert len(values) == len(TYPES_EDGE_VALUES[column])


def test_edge_strings_cover_the_tricky_cases() -> None:
    must = {"", "NULL", "\\", "\\N", "\\x41", "line1\nline2", "crlf\r\nend", "tab\there"}
    assert must <= set(EDGE_STRINGS)
    assert any("'" in s for s in EDGE_STRINGS)
    assert any('"' in s for s in EDGE_STRINGS)
    assert any(s != s.strip() for s in EDGE_STRINGS)
    assert any(ord(ch) > 0xFFFF for s in EDGE_STRINGS for ch in s)  # an emoji
    assert max(map(len, EDGE_STRINGS)) == 300  # varchar(300), full


def test_char_values_fit_char_12() -> None:
    assert all(isinstance(v, str) and len(v) <= 12 for v in TYPES_EDGE_VALUES["c_char"])


def test_float_edges_hold_nan_infinity_and_negative_zero() -> None:
    for column in ("c_real", "c_double"):
        floats = [v for v in TYPES_EDGE_VALUES[column] if isinstance(v, float)]
        assert any(math.isnan(v) for v in floats)
        assert math.inf in floats
        assert -math.inf in floats
        assert any(v == 0 and math.copysign(1, v) < 0 for v in floats)


def test_real_extremes_are_exact_float32_values() -> None:
    for value in TYPES_EDGE_VALUES["c_real"]:
        assert isinstance(value, float)
        if math.isfinite(value):
            assert struct.unpack("<f", struct.pack("<f", value))[0] == value


def test_create_domain_quotes_names() -> None:
    assert build_create_domain_sql("super", "jsonb").as_string() == (
        'CREATE DOMAIN "rs_catalog"."super" AS jsonb'
    )


def test_create_domain_refuses_unknown_base() -> None:
    with pytest.raises(ValueError, match="base type"):
        build_create_domain_sql("evil", "jsonb; DROP TABLE x")


def test_search_path_quotes_the_database_name() -> None:
    text = build_database_search_path_sql('we"ird db').as_string()
    assert text == ('ALTER DATABASE "we""ird db" SET search_path = "$user", "public", "rs_catalog"')


def test_redshift_domains() -> None:
    assert FLAVOUR_SCHEMA == "rs_catalog"
    assert REDSHIFT_DOMAINS == {
        "super": "jsonb",
        "varbyte": "bytea",
        "varbinary": "bytea",
        "geometry": "bytea",
        "geography": "bytea",
        "hllsketch": "text",
    }


def test_flavour_objects_live_in_the_flavour_schema() -> None:
    for statement in (*FUNCTIONS_SQL, SVV_TABLE_INFO_SQL):
        head = statement.strip().split("(")[0]
        assert f" {FLAVOUR_SCHEMA}." in head, head


def test_svv_table_info_hides_system_and_flavour_schemas() -> None:
    assert "'rs_catalog'" in SVV_TABLE_INFO_SQL
    assert "'information_schema'" in SVV_TABLE_INFO_SQL
    assert "has_table_privilege" in SVV_TABLE_INFO_SQL
