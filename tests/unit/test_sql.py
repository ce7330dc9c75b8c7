"""The pure SQL builders: quoting, SELECT, range predicates, UNLOAD, COUNT (golden files).

Run with SHIFTSYNC_UPDATE_GOLDEN=1 to rewrite tests/unit/golden/*.sql after a deliberate change.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from shiftsync.errors import ConfigError, SourceError
from shiftsync.redshift.plan import split_range
from shiftsync.redshift.sql import (
    build_count_sql,
    build_range_predicate,
    build_select_count_sql,
    build_select_sql,
    build_unload_sql,
    qualified,
    quote_ident,
    quote_literal,
    select_expression,
)
from shiftsync.redshift.types import TYPE_CONTRACT, Column

GOLDEN = Path(__file__).parent / "golden"
ROLE = "arn:aws:iam::123456789012:role/shiftsync-unload"

TICKIT_SALES = [
    Column("salesid", "int4", nullable=False),
    Column("listid", "int4", nullable=False),
    Column("sellerid", "int4", nullable=False),
    Column("buyerid", "int4", nullable=False),
    Column("eventid", "int4", nullable=False),
    Column("dateid", "int2", nullable=False),
    Column("qtysold", "int2", nullable=False),
    Column("pricepaid", "numeric", precision=8, scale=2),
    Column("commission", "numeric", precision=8, scale=2),
    Column("saletime", "timestamp"),
]

ALL_TYPES = [
    Column(
        f"c_{name}",
        name,
        precision=38 if name == "numeric" else None,
        scale=10 if name == "numeric" else None,
        length=20 if name in ("bpchar", "varchar", "varbyte") else None,
    )
    for name in TYPE_CONTRACT
]

ODD_COLUMNS = [
    Column("MixedCase", "int4"),
    Column("with space", "varchar"),
    Column('quote"inside', "varchar"),
    Column("select", "timestamptz"),
    Column("ünïcødé ☃", "super"),
    Column("order", "varbyte"),
]


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.sql"
    if os.environ.get("SHIFTSYNC_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with SHIFTSYNC_UPDATE_GOLDEN=1 to create it"
    assert text + "\n" == path.read_text(encoding="utf-8")


def unload_inner_select(unload_sql: str) -> str:
    """The select inside `UNLOAD ('...')`, its doubled quotes undone."""
    match = re.match(r"^UNLOAD \('((?:[^']|'')*)'\)\n", unload_sql)
    assert match is not None
    return match.group(1).replace("''", "'")


# ---------------------------------------------------------------- quoting


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("sales", '"sales"'),
        ("MixedCase", '"MixedCase"'),
        ("with space", '"with space"'),
        ('a"b', '"a""b"'),
        ('""', '""""""'),
        ("select", '"select"'),
        ("ünï☃", '"ünï☃"'),
        ("a'b", '"a\'b"'),
    ],
)
def test_quote_ident(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


@pytest.mark.parametrize("bad", ["", "a\x00b"])
def test_quote_ident_refuses_empty_and_nul(bad: str) -> None:
    with pytest.raises(ConfigError):
        quote_ident(bad)


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("plain", "'plain'"),
        ("", "''"),
        ("O'Brien", "'O''Brien'"),
        ("''", "''''''"),
        ("a\\b", "('a' || chr(92) || 'b')"),
        ("\\", "(chr(92))"),
        ("end\\", "('end' || chr(92))"),
        ("\\\\x", "(chr(92) || chr(92) || 'x')"),
        ("it's C:\\temp", "('it''s C:' || chr(92) || 'temp')"),
        ("ünï\n☃", "'ünï\n☃'"),
    ],
)
def test_quote_literal(value: str, literal: str) -> None:
    assert quote_literal(value) == literal


def test_quote_literal_never_emits_a_backslash() -> None:
    assert "\\" not in quote_literal("\\b\\'\\\\")


def test_quote_literal_refuses_nul() -> None:
    with pytest.raises(ConfigError, match="NUL"):
        quote_literal("a\x00")


def test_qualified() -> None:
    assert qualified("public", 'we"ird') == '"public"."we""ird"'


# ---------------------------------------------------------------- SELECT


def test_every_type_has_an_expression_per_method_that_quotes_the_column() -> None:
    for column in ALL_TYPES:
        for method in ("data_api", "unload"):
            expression = select_expression(column, method)
            assert f'"{column.name}"' in expression
            if expression != f'"{column.name}"':
                assert expression.endswith(f' AS "{column.name}"')


def test_unload_select_casts_the_types_parquet_refuses() -> None:
    for name in ("time", "timetz", "varbyte", "geometry", "geography", "hllsketch", "super"):
        expression = select_expression(Column("c", name), "unload")
        assert expression != '"c"', name


def test_golden_tickit_sales_data_api() -> None:
    sql = build_select_sql("public", "sales", TICKIT_SALES, method="data_api", order_by=["salesid"])
    assert_golden("tickit_sales_data_api", sql)


def test_golden_tickit_sales_unload() -> None:
    sql = build_select_sql("public", "sales", TICKIT_SALES, method="unload")
    assert_golden("tickit_sales_unload", sql)


def test_golden_all_types_data_api() -> None:
    assert_golden(
        "all_types_data_api", build_select_sql("public", "types", ALL_TYPES, method="data_api")
    )


def test_golden_all_types_unload() -> None:
    assert_golden(
        "all_types_unload", build_select_sql("public", "types", ALL_TYPES, method="unload")
    )


def test_golden_odd_identifiers() -> None:
    sql = build_select_sql(
        "My Schema",
        'we"ird table',
        ODD_COLUMNS,
        method="data_api",
        order_by=["MixedCase", 'quote"inside'],
    )
    assert_golden("odd_identifiers_data_api", sql)


def test_golden_where_with_quote_and_backslash() -> None:
    where = build_range_predicate(
        "name",
        "O'Brien \\ C:\\x",
        None,
        low_inclusive=False,
        high_inclusive=False,
        type_name="varchar",
    )
    sql = build_select_sql(
        "public", "users", [Column("name", "varchar")], method="data_api", where=where
    )
    assert_golden("where_quote_backslash", sql)


def test_select_refuses_no_columns_and_unknown_method() -> None:
    with pytest.raises(ConfigError, match="no columns"):
        build_select_sql("s", "t", [], method="data_api")
    with pytest.raises(ConfigError, match="method"):
        build_select_sql("s", "t", TICKIT_SALES, method="jdbc")  # type: ignore[arg-type]


def test_select_refuses_unknown_type() -> None:
    with pytest.raises(SourceError, match="cast it in a view"):
        build_select_sql("s", "t", [Column("c", "money")], method="data_api")


def test_count_sql() -> None:
    assert build_count_sql("public", "sales") == (
        'SELECT count(*) AS "row_count"\nFROM "public"."sales"'
    )
    assert build_count_sql("public", "sales", where='"salesid" > 5') == (
        'SELECT count(*) AS "row_count"\nFROM "public"."sales"\nWHERE "salesid" > 5'
    )


def test_count_of_a_select_wraps_it_whole() -> None:
    select = build_select_sql("public", "sales", TICKIT_SALES[:2], method="unload", where="1 = 0")
    assert build_select_count_sql(select) == (
        f'SELECT count(*) AS "row_count"\nFROM (\n{select}\n) AS "q"'
    )
    with pytest.raises(ConfigError, match="empty SELECT"):
        build_select_count_sql("  ")


# ---------------------------------------------------------------- range predicates


def test_range_predicate_timestamps() -> None:
    predicate = build_range_predicate(
        "saletime",
        "2008-01-01 00:00:00",
        "2008-02-01 00:00:00.5",
        low_inclusive=True,
        high_inclusive=False,
        type_name="timestamp without time zone",
    )
    assert predicate == (
        "\"saletime\" >= '2008-01-01 00:00:00'::timestamp"
        " AND \"saletime\" < '2008-02-01 00:00:00.5'::timestamp"
    )


@pytest.mark.parametrize(
    ("type_name", "low", "expected"),
    [
        ("int4", "42", '"k" > 42'),
        ("bigint", "-0007", '"k" > -7'),
        ("numeric(38,10)", "-12.5000000001", '"k" > -12.5000000001'),
        ("float8", "1.5e-3", "\"k\" > '1.5e-3'::float8"),
        ("real", "-Infinity", "\"k\" > '-Infinity'::float4"),
        ("bool", "t", '"k" > true'),
        ("date", "1969-07-20", "\"k\" > '1969-07-20'::date"),
        (
            "timestamptz",
            "2024-01-31 12:00:00+05:30",
            "\"k\" > '2024-01-31 12:00:00+05:30'::timestamptz",
        ),
        ("time", "23:59:59.999999", "\"k\" > '23:59:59.999999'::time"),
        ("char(3)", " a ", "\"k\" > ' a '"),
    ],
)
def test_range_predicate_literals_by_type(type_name: str, low: str, expected: str) -> None:
    predicate = build_range_predicate(
        "k", low, None, low_inclusive=False, high_inclusive=False, type_name=type_name
    )
    assert predicate == expected


def test_range_predicate_inclusive_high_and_none() -> None:
    assert (
        build_range_predicate(
            "k", None, "10", low_inclusive=False, high_inclusive=True, type_name="int8"
        )
        == '"k" <= 10'
    )
    assert (
        build_range_predicate(
            "k", None, None, low_inclusive=True, high_inclusive=True, type_name="int8"
        )
        is None
    )


@pytest.mark.parametrize(
    ("type_name", "bad"),
    [
        ("int4", "1; drop table x"),
        ("int4", "1.5"),
        ("numeric", "1e5"),
        ("numeric", "0x10"),
        ("float8", "1 or 1=1"),
        ("date", "2024-01-31' or '1'='1"),
        ("timestamp", "yesterday"),
        ("timestamp", "2024-01-31 12:00:00+00"),
        ("bool", "yes"),
    ],
)
def test_range_predicate_refuses_values_not_of_the_type(type_name: str, bad: str) -> None:
    with pytest.raises(ConfigError, match="not a valid"):
        build_range_predicate(
            "k", bad, None, low_inclusive=True, high_inclusive=False, type_name=type_name
        )


@pytest.mark.parametrize(
    ("low", "high"),
    [("0.0000001", "0.0000009"), ("-0.0000009", "0.0000001"), ("1E-7", "1E-6")],
)
def test_key_range_bounds_of_small_decimals_make_valid_predicates(low: str, high: str) -> None:
    """split_range's bounds go straight into build_range_predicate (redshift/chunked.py)."""
    for key_range in split_range(low, high, 4, "numeric"):
        predicate = build_range_predicate(
            "k",
            key_range.low,
            key_range.high,
            low_inclusive=True,
            high_inclusive=key_range.high_inclusive,
            type_name="numeric(10,7)",
        )
        assert predicate is not None
        assert "E" not in predicate


@pytest.mark.parametrize("type_name", ["super", "varbyte", "geometry", "interval", "timetz"])
def test_range_predicate_refuses_unordered_types(type_name: str) -> None:
    with pytest.raises(ConfigError, match="cannot bound a range"):
        build_range_predicate(
            "k", "1", None, low_inclusive=True, high_inclusive=False, type_name=type_name
        )


# ---------------------------------------------------------------- UNLOAD


def test_golden_unload_every_option() -> None:
    select = build_select_sql("public", "sales", TICKIT_SALES, method="unload")
    sql = build_unload_sql(
        select,
        "s3://shiftsync-staging/run-1/public.sales/",
        f"{ROLE},arn:aws:iam::210987654321:role/shiftsync-writer",
        kms_key_id="arn:aws:kms:us-east-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        region="eu-west-1",
        max_file_size_mb=256,
        parallel=False,
    )
    assert_golden("unload_every_option", sql)


def test_golden_unload_select_with_quotes_round_trips() -> None:
    where = build_range_predicate(
        "name", "it's", "zed's", low_inclusive=True, high_inclusive=False, type_name="varchar"
    )
    select = build_select_sql(
        "public",
        "it's",
        [Column("name", "varchar"), Column("blob", "varbyte"), Column("at", "timestamptz")],
        method="unload",
        where=where,
    )
    sql = build_unload_sql(select, "s3://bucket/prefix/", ROLE)
    assert_golden("unload_quotes", sql)
    assert unload_inner_select(sql) == select


def test_unload_round_trips_odd_identifiers() -> None:
    select = build_select_sql("My Schema", 'we"ird', ODD_COLUMNS, method="unload")
    assert unload_inner_select(build_unload_sql(select, "s3://b/p/", ROLE)) == select


def test_unload_defaults_are_minimal() -> None:
    sql = build_unload_sql("SELECT 1", "s3://b/p/", ROLE)
    assert sql.splitlines()[-2:] == ["FORMAT PARQUET", "MANIFEST VERBOSE"]
    assert "PARALLEL" not in sql
    assert "ENCRYPTED" not in sql


def test_unload_refuses_a_backslash_in_the_select() -> None:
    select = build_select_sql("public", "t", [Column("a\\b", "int4")], method="unload")
    with pytest.raises(ConfigError, match="backslash"):
        build_unload_sql(select, "s3://b/p/", ROLE)


def test_unload_accepts_a_backslash_in_a_literal_because_it_is_spelled_chr() -> None:
    where = build_range_predicate(
        "name", "a\\b", None, low_inclusive=True, high_inclusive=False, type_name="varchar"
    )
    select = build_select_sql(
        "public", "t", [Column("name", "varchar")], method="unload", where=where
    )
    assert "chr(92)" in build_unload_sql(select, "s3://b/p/", ROLE)


@pytest.mark.parametrize(
    "select",
    ["select * from t limit 10", "SELECT * FROM t ORDER BY 1 LIMIT 5;", "select 1 limit all"],
)
def test_unload_refuses_an_outer_limit(select: str) -> None:
    with pytest.raises(ConfigError, match="LIMIT"):
        build_unload_sql(select, "s3://b/p/", ROLE)


def test_unload_accepts_a_nested_limit() -> None:
    select = "select * from t where id in (select id from t order by id limit 10)"
    assert build_unload_sql(select, "s3://b/p/", ROLE).startswith("UNLOAD (")


@pytest.mark.parametrize(
    "prefix", ["b/p/", "https://b.s3.amazonaws.com/p/", "s3://", "s3://b/it's/", "s3://b/a b/"]
)
def test_unload_refuses_bad_prefixes(prefix: str) -> None:
    with pytest.raises(ConfigError, match="s3"):
        build_unload_sql("SELECT 1", prefix, ROLE)


@pytest.mark.parametrize(
    "role",
    [
        "default",
        "arn:aws:iam::123:role/short-account",
        "arn:aws:iam::123456789012:user/not-a-role",
        f"{ROLE}, {ROLE}",
        ",".join([ROLE] * 11),
        "arn:aws:iam::123456789012:role/x'y",
    ],
)
def test_unload_refuses_bad_roles(role: str) -> None:
    with pytest.raises(ConfigError, match="IAM_ROLE"):
        build_unload_sql("SELECT 1", "s3://b/p/", role)


def test_unload_accepts_other_partitions_and_paths() -> None:
    role = "arn:aws-cn:iam::123456789012:role/service-role/Redshift"
    assert f"IAM_ROLE '{role}'" in build_unload_sql("SELECT 1", "s3://b/p/", role)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_file_size_mb", 4),
        ("max_file_size_mb", 6201),
        ("region", "eu west"),
        ("kms_key_id", "k'"),
    ],
)
def test_unload_refuses_bad_options(option: str, value: object) -> None:
    with pytest.raises(ConfigError):
        build_unload_sql("SELECT 1", "s3://b/p/", ROLE, **{option: value})  # type: ignore[arg-type]
