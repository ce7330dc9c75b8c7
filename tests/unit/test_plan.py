"""The planner (method, chunks, key ranges) and the catalog's pure parts: no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from shiftsync.errors import ConfigError
from shiftsync.redshift.catalog import (
    TableRef,
    catalog_column,
    column_problem,
    estimate_sql,
    estimates_from_rows,
    is_system_schema,
    primary_key_sql,
    primary_keys_from_rows,
)
from shiftsync.redshift.plan import (
    DATA_API_MAX_RESULT_BYTES,
    MB,
    UNLOAD_MIN_ROWS,
    KeyRange,
    ReadPlan,
    can_split,
    choose_method,
    chunk_key,
    estimate_row_width,
    initial_chunks,
    size_text,
    split_range,
    unload_blocker,
    value_width,
)
from shiftsync.redshift.types import Column

WIDTH = 100


def plan(**overrides: Any) -> ReadPlan:
    arguments: dict[str, Any] = {
        "requested": "auto",
        "unload_configured": True,
        "kind": "TABLE",
        "estimated_rows": 1_000,
        "estimated_bytes": 1 * MB,
        "row_width": WIDTH,
    }
    arguments.update(overrides)
    return choose_method(**arguments)


# ---------------------------------------------------------------- choose_method


def test_small_table_goes_through_the_data_api() -> None:
    result = plan()
    assert result == ReadPlan("data_api", result.reason, 1)
    assert "small" in result.reason
    assert "1,000 rows" in result.reason


def test_without_unload_configured_auto_is_always_the_data_api() -> None:
    result = plan(unload_configured=False, estimated_rows=10**9, estimated_bytes=10**12)
    assert result.method == "data_api"
    assert "UNLOAD is off" in result.reason


def test_big_stored_size_with_enough_rows_goes_to_unload() -> None:
    result = plan(estimated_rows=UNLOAD_MIN_ROWS, estimated_bytes=101 * MB, row_width=10)
    assert result.method == "unload"
    assert "stored in Redshift" in result.reason


def test_exactly_100_mb_stored_stays_on_the_data_api() -> None:
    assert plan(estimated_rows=10**6, estimated_bytes=100 * MB, row_width=10).method == "data_api"


def test_a_tiny_wide_table_that_looks_big_in_storage_stays_on_the_data_api() -> None:
    """Redshift stores every column of every slice in at least one 1 MB block."""
    result = plan(estimated_rows=UNLOAD_MIN_ROWS - 1, estimated_bytes=500 * MB, row_width=50)
    assert result.method == "data_api"


def test_many_rows_of_text_go_to_unload_even_when_stored_small() -> None:
    result = plan(estimated_rows=2_000_000, estimated_bytes=10 * MB, row_width=60)
    assert result.method == "unload"
    assert "rows" in result.reason


def test_a_result_past_80_percent_of_the_limit_goes_to_unload() -> None:
    rows = int(0.81 * DATA_API_MAX_RESULT_BYTES) // WIDTH
    result = plan(estimated_rows=rows, estimated_bytes=None)
    assert result.method == "unload"
    assert "500 MB result limit" in result.reason


def test_a_big_result_without_unload_is_read_in_chunks() -> None:
    rows = 3 * DATA_API_MAX_RESULT_BYTES // WIDTH
    result = plan(unload_configured=False, estimated_rows=rows)
    assert result.method == "data_api"
    assert result.chunks == 6  # each chunk aims at half the limit
    assert "6 key-range chunks" in result.reason


def test_a_big_result_without_a_key_column_is_one_statement_with_a_warning() -> None:
    rows = 3 * DATA_API_MAX_RESULT_BYTES // WIDTH
    result = plan(unload_configured=False, estimated_rows=rows, chunkable=False)
    assert result.chunks == 1
    assert "no key column" in result.reason


def test_a_view_without_estimates_goes_through_the_data_api() -> None:
    result = plan(kind="VIEW", estimated_rows=None, estimated_bytes=None)
    assert result.method == "data_api"
    assert "view" in result.reason


def test_a_table_without_estimates_goes_through_the_data_api() -> None:
    result = plan(estimated_rows=None, estimated_bytes=None)
    assert result.method == "data_api"
    assert "no size estimate" in result.reason


def test_stored_bytes_alone_decide_when_rows_are_unknown() -> None:
    assert plan(estimated_rows=None, estimated_bytes=200 * MB).method == "unload"


def test_asking_for_data_api_wins_over_size() -> None:
    result = plan(requested="data_api", estimated_rows=10**7, estimated_bytes=10**10)
    assert result.method == "data_api"
    assert "asked for" in result.reason
    assert result.chunks > 1


def test_asking_for_unload_wins_over_size() -> None:
    assert plan(requested="unload", estimated_rows=1).method == "unload"


def test_asking_for_unload_without_a_bucket_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as raised:
        plan(requested="unload", unload_configured=False)
    assert "unload:" in raised.value.message
    assert raised.value.fix is not None
    assert "bucket" in raised.value.fix


def test_asking_for_unload_of_names_unload_cannot_quote_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="backslash"):
        plan(requested="unload", blocker="a name holds a backslash")


def test_auto_avoids_unload_for_names_it_cannot_quote() -> None:
    result = plan(estimated_rows=10**8, blocker="a name holds a backslash")
    assert result.method == "data_api"
    assert "backslash" in result.reason


def test_an_unknown_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="fast"):
        plan(requested="fast")


# ---------------------------------------------------------------- widths, blockers, sizes


@pytest.mark.parametrize(
    ("column", "width"),
    [
        (Column("a", "int4"), 12),
        (Column("a", "int8"), 21),
        (Column("a", "numeric", precision=8, scale=2), 11),
        (Column("a", "numeric"), 21),
        (Column("a", "varchar", length=10), 11),
        (Column("a", "varchar", length=65535), 257),
        (Column("a", "varchar"), 257),
        (Column("a", "bpchar", length=2), 3),
        (Column("a", "varbyte", length=8), 17),
        (Column("a", "timestamptz"), 31),
        (Column("a", "money"), 32),
    ],
)
def test_value_widths(column: Column, width: int) -> None:
    assert value_width(column) == width


def test_row_width_sums_its_columns_and_is_never_zero() -> None:
    assert estimate_row_width([Column("a", "int4"), Column("b", "bool")]) == 14
    assert estimate_row_width([]) == 1


def test_unload_blocker_names_a_backslash_anywhere() -> None:
    columns = [Column("ok", "int4")]
    assert unload_blocker("public", "t", columns) is None
    assert unload_blocker("pub\\lic", "t", columns) is not None
    assert unload_blocker("public", "t\\", columns) is not None
    assert unload_blocker("public", "t", [Column("a\\b", "int4")]) is not None
    assert unload_blocker("Odd Schema", 'quo"te', [Column("ünï", "int4")]) is None


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KB"), (5 * MB, "5.0 MB"), (3 * 1024**3, "3.0 GB")],
)
def test_size_text(n: int, text: str) -> None:
    assert size_text(n) == text


def test_initial_chunks_follow_the_estimate_with_a_floor() -> None:
    assert initial_chunks(None, 100) == 4
    assert initial_chunks(10, 100) == 4
    assert initial_chunks(10 * DATA_API_MAX_RESULT_BYTES // 100, 100) == 20


# ---------------------------------------------------------------- chunk key


def test_chunk_key_prefers_the_primary_key() -> None:
    columns = [Column("id", "int8", False), Column("day", "date", False)]
    assert chunk_key(columns, ("day",)) == columns[1]


def test_chunk_key_takes_the_first_splittable_key_column_in_key_order() -> None:
    columns = [Column("a", "varchar"), Column("b", "int4", False), Column("c", "int4", False)]
    assert chunk_key(columns, ("a", "c", "b")) == columns[2]


def test_chunk_key_without_a_key_prefers_not_null_integers() -> None:
    columns = [
        Column("when", "timestamp", False),
        Column("maybe", "int8", True),
        Column("n", "numeric", False),
        Column("id", "int4", False),
    ]
    assert chunk_key(columns, ()) == columns[3]


def test_chunk_key_falls_back_to_a_nullable_column() -> None:
    columns = [Column("name", "varchar"), Column("eventid", "int4", True)]
    assert chunk_key(columns, ()) == columns[1]


def test_chunk_key_is_none_without_a_splittable_column() -> None:
    assert chunk_key([Column("a", "varchar"), Column("b", "float8")], ()) is None


# ---------------------------------------------------------------- split_range


def _cover(ranges: list[KeyRange], values: range) -> list[int]:
    """How many ranges hold each integer value (each must be exactly one)."""
    counts = []
    for value in values:
        hits = 0
        for r in ranges:
            low, high = int(r.low or 0), int(r.high or 0)
            if low <= value and (value < high or (r.high_inclusive and value == high)):
                hits += 1
        counts.append(hits)
    return counts


def test_split_integers_into_even_adjacent_ranges() -> None:
    ranges = split_range("1", "100", 4, "int4")
    assert ranges == [
        KeyRange("1", "25", False),
        KeyRange("25", "50", False),
        KeyRange("50", "75", False),
        KeyRange("75", "100", True),
    ]
    assert _cover(ranges, range(1, 101)) == [1] * 100


@pytest.mark.parametrize(("low", "high", "parts"), [(0, 9, 3), (-50, 50, 7), (5, 12, 20)])
def test_integer_ranges_cover_every_key_once(low: int, high: int, parts: int) -> None:
    ranges = split_range(str(low), str(high), parts, "int8")
    assert len(ranges) <= parts
    assert _cover(ranges, range(low - 2, high + 3)) == ([0, 0] + [1] * (high - low + 1) + [0, 0])


def test_a_single_value_cannot_be_split() -> None:
    assert split_range("7", "7", 4, "int4") == [KeyRange("7", "7", True)]
    assert not can_split(KeyRange("7", "7", True), "int4")


def test_two_adjacent_values_split_into_two_ranges() -> None:
    assert split_range("5", "6", 2, "int2") == [KeyRange("5", "6", False), KeyRange("6", "6", True)]
    assert can_split(KeyRange("5", "6", True), "int2")
    assert not can_split(KeyRange("5", "6", False), "int2")


def test_an_exclusive_range_keeps_its_high_bound_excluded() -> None:
    ranges = split_range("0", "10", 2, "int4", high_inclusive=False)
    assert ranges == [KeyRange("0", "5", False), KeyRange("5", "10", False)]


def test_split_dates() -> None:
    ranges = split_range("2008-01-01", "2008-12-31", 2, "date")
    assert ranges == [
        KeyRange("2008-01-01", "2008-07-01", False),
        KeyRange("2008-07-01", "2008-12-31", True),
    ]


def test_split_timestamps_keeps_microseconds() -> None:
    ranges = split_range("2008-01-01 00:00:00", "2008-01-01 00:00:00.000003", 3, "timestamp")
    assert [r.low for r in ranges] == [
        "2008-01-01 00:00:00.000000",
        "2008-01-01 00:00:00.000001",
        "2008-01-01 00:00:00.000002",
    ]


def test_split_timestamptz_in_utc_whatever_the_offset() -> None:
    ranges = split_range("2024-01-01 00:00:00+00", "2024-01-01 02:00:00+02", 2, "timestamptz")
    # 02:00+02 is midnight UTC: one instant, nothing to split.
    assert ranges == [
        KeyRange("2024-01-01 00:00:00.000000+00:00", "2024-01-01 00:00:00.000000+00:00", True)
    ]
    two = split_range("2024-01-01 00:00:00+00", "2024-01-01 04:00:00+02", 2, "timestamptz")
    assert two[0].high == "2024-01-01 01:00:00.000000+00:00"


def test_split_decimals_exactly() -> None:
    ranges = split_range("0.00", "1.00", 4, "numeric")
    assert [r.low for r in ranges] == ["0.00", "0.25", "0.50", "0.75"]
    assert ranges[-1].high == "1.00"


def test_split_huge_decimals_stays_within_the_bounds() -> None:
    low, high = "-" + "9" * 38, "9" * 38
    ranges = split_range(low, high, 3, "numeric")
    assert ranges[0].low == low
    assert ranges[-1].high == high
    assert len(ranges) == 3


def test_small_decimal_bounds_are_written_in_plain_digits() -> None:
    # str(Decimal) writes 1E-7, which the range predicate refuses and Redshift reads as a float.
    ranges = split_range("0.0000001", "0.0000009", 4, "numeric")
    assert ranges == [
        KeyRange("0.0000001", "0.0000003", False),
        KeyRange("0.0000003", "0.0000005", False),
        KeyRange("0.0000005", "0.0000007", False),
        KeyRange("0.0000007", "0.0000009", True),
    ]
    assert split_range("1E-7", "3E-7", 2, "numeric") == [
        KeyRange("0.0000001", "0.0000002", False),
        KeyRange("0.0000002", "0.0000003", True),
    ]


@pytest.mark.parametrize(
    ("low", "high", "parts", "scale", "expected"),
    [
        # One third of 1 is 0.33 at scale 2, not 0.333… to 80 digits.
        ("0.00", "1.00", 3, 2, ["0.00", "0.33", "0.66", "1.00"]),
        ("0", "1", 3, 2, ["0", "0.33", "0.66", "1"]),
        # Without a scale, the one the bounds are written with.
        ("0.00", "1.00", 3, None, ["0.00", "0.33", "0.66", "1.00"]),
        ("10", "20", 3, 0, ["10", "13", "16", "20"]),
        # Rounded down: -1/3 is -0.4 at scale 1.
        ("-1.0", "1.0", 3, 1, ["-1.0", "-0.4", "0.3", "1.0"]),
    ],
)
def test_decimal_split_points_are_rounded_to_the_scale(
    low: str, high: str, parts: int, scale: int | None, expected: list[str]
) -> None:
    ranges = split_range(low, high, parts, "numeric", scale=scale)
    assert [r.low for r in ranges] + [ranges[-1].high] == expected
    assert [r.high_inclusive for r in ranges] == [False] * (len(ranges) - 1) + [True]


def test_decimal_points_that_round_together_are_kept_once() -> None:
    # 0.01 to 0.03 has one value in between at scale 2: eight parts give two ranges.
    ranges = split_range("0.01", "0.03", 8, "numeric", scale=2)
    assert ranges == [KeyRange("0.01", "0.02", False), KeyRange("0.02", "0.03", True)]
    # Adjacent values at the scale: the high one goes alone, as for integers.
    assert split_range("0.01", "0.02", 4, "numeric") == [
        KeyRange("0.01", "0.02", False),
        KeyRange("0.02", "0.02", True),
    ]
    assert not can_split(KeyRange("0.01", "0.02", False), "numeric", scale=2)
    assert can_split(KeyRange("0.01", "0.03", False), "numeric", scale=2)


def test_huge_decimal_split_points_fit_in_38_digits() -> None:
    low, high = "-" + "9" * 28 + "." + "9" * 10, "9" * 28 + "." + "9" * 10
    ranges = split_range(low, high, 7, "numeric", scale=10)
    for bound in [r.low for r in ranges] + [ranges[-1].high]:
        assert bound is not None
        digits = bound.lstrip("-").replace(".", "")
        assert len(digits) <= 38, bound
        assert "E" not in bound
        assert len(bound.partition(".")[2]) == 10


def test_split_refuses_a_negative_scale() -> None:
    with pytest.raises(ConfigError, match="scale"):
        split_range("0", "1", 2, "numeric", scale=-1)


def test_split_refuses_reversed_bounds() -> None:
    with pytest.raises(ConfigError, match="above"):
        split_range("10", "1", 2, "int4")


def test_split_refuses_a_type_it_cannot_cut() -> None:
    with pytest.raises(ConfigError, match="varchar"):
        split_range("a", "z", 2, "varchar")


def test_split_refuses_a_bound_of_the_wrong_type() -> None:
    with pytest.raises(ConfigError, match="not a int4"):
        split_range("one", "9", 2, "int4")


def test_split_refuses_zero_parts() -> None:
    with pytest.raises(ConfigError):
        split_range("1", "9", 0, "int4")


def test_a_null_range_cannot_be_split() -> None:
    assert not can_split(KeyRange(None, None, is_null=True), "int4")


# ---------------------------------------------------------------- table names


@pytest.mark.parametrize(
    ("text", "schema", "name"),
    [
        ("public.sales", "public", "sales"),
        ("sales", "public", "sales"),
        ('"Odd Schema"."Mixed Case"', "Odd Schema", "Mixed Case"),
        ('"a.b"."c"', "a.b", "c"),
        ('public."quo""te"', "public", 'quo"te'),
        ('"x"', "public", "x"),
    ],
)
def test_table_ref_parse(text: str, schema: str, name: str) -> None:
    assert TableRef.parse(text) == TableRef(schema, name)


@pytest.mark.parametrize("text", ["a.b.c", '"open.x', "a.", ".b", '"a"b.c', ""])
def test_table_ref_parse_refuses_malformed_names(text: str) -> None:
    with pytest.raises(ConfigError):
        TableRef.parse(text)


def test_table_ref_prints_and_quotes() -> None:
    ref = TableRef("Odd Schema", 'Mi"xed')
    assert str(ref) == 'Odd Schema.Mi"xed'
    assert ref.sql == '"Odd Schema"."Mi""xed"'


def test_system_schemas() -> None:
    assert is_system_schema("pg_catalog")
    assert is_system_schema("pg_automv")
    assert is_system_schema("information_schema")
    assert not is_system_schema("public")
    assert not is_system_schema("Odd Schema")


# ---------------------------------------------------------------- catalog SQL and rows


def test_primary_key_sql_quotes_its_literals() -> None:
    sql = primary_key_sql("Odd's", "t\\x")
    assert "n.nspname = 'Odd''s'" in sql
    assert "c.relname = ('t' || chr(92) || 'x')" in sql
    assert "con.contype = 'p'" in sql
    assert "LIKE" in primary_key_sql("pub%", "%", exact=False)


def test_estimate_sql_reads_svv_table_info() -> None:
    sql = estimate_sql("public", "sales")
    assert "FROM svv_table_info" in sql
    assert "\"schema\" = 'public'" in sql
    assert "\"table\" = 'sales'" in sql


def test_primary_keys_follow_the_constraint_order_not_the_column_order() -> None:
    rows = [
        ("public", "t", "a", 1, "{3,1}"),
        ("public", "t", "c", 3, "{3,1}"),
        ("public", "u", "id", 1, [1]),
    ]
    keys = primary_keys_from_rows(rows)
    assert keys[TableRef("public", "t")] == ("c", "a")
    assert keys[TableRef("public", "u")] == ("id",)


def test_estimates_convert_blocks_to_bytes_and_text_to_numbers() -> None:
    rows = [("public", "sales", "1725", 3), ("public", "e", None, None), ("s", "t", "12.0", "2")]
    estimates = estimates_from_rows(rows)
    assert estimates[TableRef("public", "sales")] == (1725, 3 * MB)
    assert estimates[TableRef("public", "e")] == (None, None)
    assert estimates[TableRef("s", "t")] == (12, 2 * MB)


def test_catalog_column_keeps_a_type_outside_the_contract() -> None:
    column = catalog_column({"name": "r", "typeName": "int4range", "nullable": 0}, table="s.t")
    assert column == Column("r", "int4range", False)
    problem = column_problem(column, table="s.t")
    assert problem is not None
    assert "'r'" in problem.message
    assert "s.t" in problem.message
    assert problem.fix is not None
    assert "exclude" in problem.fix


def test_catalog_column_of_a_contract_type() -> None:
    meta = {"name": "p", "typeName": "numeric", "precision": 8, "scale": 2, "nullable": 1}
    column = catalog_column(meta, table="s.t")
    assert column == Column("p", "numeric", True, precision=8, scale=2)
    assert column_problem(column) is None
