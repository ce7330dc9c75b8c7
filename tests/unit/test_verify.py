from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from shiftsync.destinations.base import ColumnProfile, TableProfile
from shiftsync.engine.verify import (
    ProfileColumn,
    VerificationResult,
    build_duplicate_key_sql,
    build_profile_sql,
    compare_profiles,
    parse_source_profile,
    raise_for_mismatch,
    source_expressions,
)
from shiftsync.errors import VerificationError
from shiftsync.redshift.types import Column


def pc(name: str, type_name: str, *, hashed: bool = False, **params: int) -> ProfileColumn:
    return ProfileColumn(Column(name, type_name, **params), name, hashed=hashed)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (pc("a", "int4"), ('count("a")', 'sum("a")', "NULL", "NULL")),
        (pc("a", "int8"), ('count("a")', 'sum(cast("a" as decimal(38,0)))', "NULL", "NULL")),
        (pc("a", "numeric", precision=8, scale=2), ('count("a")', 'sum("a")', "NULL", "NULL")),
        (pc("a", "varchar"), ('count("a")', 'sum(octet_length("a"))', "NULL", "NULL")),
        (pc("a", "bpchar"), ('count("a")', 'sum(octet_length("a"))', "NULL", "NULL")),
        (
            pc("a", "super"),
            ('count("a")', 'sum(octet_length(json_serialize("a")))', "NULL", "NULL"),
        ),
        (pc("a", "varbyte"), ('count("a")', 'sum(len("a"))', "NULL", "NULL")),
        (pc("a", "geometry"), ('count("a")', 'sum(len(st_asbinary("a")))', "NULL", "NULL")),
        (
            pc("a", "hllsketch"),
            ('count("a")', 'sum(octet_length(cast("a" as varchar)))', "NULL", "NULL"),
        ),
        (pc("a", "bool"), ('count("a")', 'count(CASE WHEN "a" THEN 1 END)', "NULL", "NULL")),
        (pc("a", "float8"), ('count("a")', "NULL", "NULL", "NULL")),
        (pc("a", "float4"), ('count("a")', "NULL", "NULL", "NULL")),
        (pc("a", "interval"), ('count("a")', "NULL", "NULL", "NULL")),
        (pc("a", "timetz"), ('count("a")', "NULL", "NULL", "NULL")),
        (
            pc("a", "date"),
            (
                'count("a")',
                "NULL",
                "to_char(min(\"a\"), 'YYYY-MM-DD')",
                "to_char(max(\"a\"), 'YYYY-MM-DD')",
            ),
        ),
        (
            pc("a", "timestamp"),
            (
                'count("a")',
                "NULL",
                "to_char(min(\"a\"), 'YYYY-MM-DD HH24:MI:SS.US')",
                "to_char(max(\"a\"), 'YYYY-MM-DD HH24:MI:SS.US')",
            ),
        ),
        (
            pc("a", "timestamptz"),
            (
                'count("a")',
                "NULL",
                "to_char(convert_timezone('UTC', min(\"a\")), 'YYYY-MM-DD HH24:MI:SS.US')",
                "to_char(convert_timezone('UTC', max(\"a\")), 'YYYY-MM-DD HH24:MI:SS.US')",
            ),
        ),
        (
            pc("a", "time"),
            ('count("a")', "NULL", 'cast(min("a") as varchar)', 'cast(max("a") as varchar)'),
        ),
        (pc("a", "varchar", hashed=True), ('count("a")', '64 * count("a")', "NULL", "NULL")),
        (pc("a", "int4", hashed=True), ('count("a")', '64 * count("a")', "NULL", "NULL")),
    ],
)
def test_source_expressions(column: ProfileColumn, expected: tuple[str, ...]) -> None:
    assert source_expressions(column) == expected


def test_build_profile_sql_quotes_and_filters() -> None:
    columns = [pc('we"ird', "int4"), pc("Name", "varchar")]
    sql = build_profile_sql("Odd Schema", "Mixed Case", columns, where='"id" <= 10')
    assert sql == (
        'SELECT count(*), count("we""ird"), sum("we""ird"), NULL, NULL, count("Name"), '
        'sum(octet_length("Name")), NULL, NULL\n'
        'FROM "Odd Schema"."Mixed Case"\n'
        'WHERE "id" <= 10'
    )


def test_build_profile_sql_without_where() -> None:
    sql = build_profile_sql("public", "t", [pc("a", "int4")])
    assert "WHERE" not in sql
    assert sql.startswith('SELECT count(*), count("a")')


def test_hashed_column_profile_is_hex_text() -> None:
    column = pc("email", "varchar", hashed=True)
    assert column.data_type == pa.string()
    assert not column.count_only


COLUMNS = [
    pc("id", "int4"),
    pc("price", "numeric", precision=8, scale=2),
    pc("name", "varchar"),
    pc("flag", "bool"),
    pc("at", "timestamp"),
    pc("score", "float8"),
    pc("big", "int8"),
]


def test_parse_source_profile_reads_data_api_values() -> None:
    # The Data API's JSON result: longValue for counts, stringValue for numeric sums.
    row = [
        3,
        *(3, 6, None, None),
        *(2, "10.5", None, None),
        *(3, 12, None, None),
        *(3, 2, None, None),
        *(3, None, "2008-01-01 00:00:00.000000", "2008-12-31 23:59:59.500000"),
        *(2, None, None, None),
        *(1, "9223372036854775808", None, None),
    ]
    profile = parse_source_profile(row, COLUMNS)
    assert profile.rows == 3
    assert profile.columns["id"] == ColumnProfile(3, "6")
    assert profile.columns["price"] == ColumnProfile(2, "10.50")
    assert profile.columns["name"] == ColumnProfile(3, "12")
    assert profile.columns["flag"] == ColumnProfile(3, "2")
    assert profile.columns["at"] == ColumnProfile(
        3, None, "2008-01-01 00:00:00.000000", "2008-12-31 23:59:59.500000"
    )
    assert profile.columns["score"] == ColumnProfile(2)
    assert profile.columns["big"] == ColumnProfile(1, "9223372036854775808")


def test_parse_source_profile_of_an_empty_table() -> None:
    row = [0, *(0, None, None, None), *(0, None, None, None)]
    profile = parse_source_profile(row, COLUMNS[:2])
    assert profile.rows == 0
    assert profile.columns["id"] == ColumnProfile(0, "0")
    assert profile.columns["price"] == ColumnProfile(0, "0.00")


def test_parse_source_profile_refuses_a_short_row() -> None:
    with pytest.raises(VerificationError):
        parse_source_profile([1, 1], COLUMNS[:1])


def profile(rows: int, **columns: ColumnProfile) -> TableProfile:
    return TableProfile(rows, columns)


GOOD = profile(
    3,
    id=ColumnProfile(3, "6"),
    price=ColumnProfile(2, "10.50"),
    name=ColumnProfile(3, "12"),
    flag=ColumnProfile(3, "2"),
    at=ColumnProfile(3, None, "2008-01-01 00:00:00.000000", "2008-12-31 23:59:59.500000"),
    score=ColumnProfile(2),
    big=ColumnProfile(1, "1"),
)


def test_equal_profiles_are_ok() -> None:
    result = compare_profiles(COLUMNS, GOOD, GOOD)
    assert result.status == "ok"
    assert result.mismatches == ()
    assert result.columns_checked == len(COLUMNS)
    raise_for_mismatch("public.t", "t", result)  # does not raise


def test_widened_decimal_compares_numerically() -> None:
    wider = profile(3, **{**dict(GOOD.columns), "price": ColumnProfile(2, "10.5000")})
    assert compare_profiles(COLUMNS, GOOD, wider).status == "ok"


def test_row_count_mismatch() -> None:
    more = profile(4, **dict(GOOD.columns))
    result = compare_profiles(COLUMNS, GOOD, more)
    assert result.status == "mismatch"
    (mismatch,) = result.mismatches
    assert (mismatch.column, mismatch.source, mismatch.destination) == (None, "3", "4")


@pytest.mark.parametrize(
    ("column", "changed", "measure"),
    [
        ("id", ColumnProfile(3, "7"), "sum"),
        ("id", ColumnProfile(2, "6"), "non-NULL count"),
        ("name", ColumnProfile(3, "13"), "total bytes"),
        ("flag", ColumnProfile(3, "1"), "count of true"),
        (
            "at",
            ColumnProfile(3, None, "2008-01-01 00:00:00.000001", "2008-12-31 23:59:59.500000"),
            "minimum",
        ),
        (
            "at",
            ColumnProfile(3, None, "2008-01-01 00:00:00.000000", "2009-12-31 23:59:59.500000"),
            "maximum",
        ),
    ],
)
def test_column_mismatches(column: str, changed: ColumnProfile, measure: str) -> None:
    tampered = profile(3, **{**dict(GOOD.columns), column: changed})
    result = compare_profiles(COLUMNS, GOOD, tampered)
    assert result.status == "mismatch"
    (mismatch,) = result.mismatches
    assert mismatch.column == column
    assert mismatch.measure == measure
    with pytest.raises(VerificationError) as caught:
        raise_for_mismatch("public.t", "t", result)
    message = str(caught.value)
    assert "public.t" in message
    assert repr(column) in message
    assert mismatch.source in message
    assert mismatch.destination in message


def test_float_columns_compare_counts_only() -> None:
    # A float's destination profile carries no total: only the non-NULL count counts.
    floats = profile(3, **{**dict(GOOD.columns), "score": ColumnProfile(2, "999")})
    assert compare_profiles(COLUMNS, GOOD, floats).status == "ok"
    fewer = profile(3, **{**dict(GOOD.columns), "score": ColumnProfile(1)})
    assert compare_profiles(COLUMNS, GOOD, fewer).status == "mismatch"


def test_missing_destination_column_is_a_mismatch() -> None:
    columns = dict(GOOD.columns)
    del columns["name"]
    result = compare_profiles(COLUMNS, GOOD, profile(3, **columns))
    assert [m.column for m in result.mismatches] == ["name"]


def test_many_mismatches_are_summarised() -> None:
    bad = profile(9, **{name: ColumnProfile(0, "0", "x", "y") for name in dict(GOOD.columns)})
    result = compare_profiles(COLUMNS, GOOD, bad)
    with pytest.raises(VerificationError, match="more"):
        raise_for_mismatch("public.t", "t", result)


def test_result_json_round_trip() -> None:
    tampered = profile(4, **{**dict(GOOD.columns), "id": ColumnProfile(3, "7")})
    result = compare_profiles(COLUMNS, GOOD, tampered)
    assert VerificationResult.from_json(result.to_json()) == result
    assert Decimal(result.to_json()["mismatches"][1]["destination"]) == 7


def test_duplicate_key_sql() -> None:
    assert build_duplicate_key_sql("public", "t", ["a", "B"], '"x" > 1') == (
        'SELECT cast("a" as varchar), cast("B" as varchar), count(*)\n'
        'FROM "public"."t"\n'
        'WHERE "x" > 1\n'
        'GROUP BY "a", "B"\n'
        "HAVING count(*) > 1\n"
        "LIMIT 1"
    )
    assert "WHERE" not in build_duplicate_key_sql("public", "t", ["a"])


def test_mismatch_fix_explains_incremental_limits() -> None:
    tampered = profile(3, **{**dict(GOOD.columns), "name": ColumnProfile(2, "9")})
    result = compare_profiles(COLUMNS, GOOD, tampered)
    with pytest.raises(VerificationError) as caught:
        raise_for_mismatch("public.t", "t", result, incremental=True)
    assert caught.value.fix is not None
    assert "--full-refresh --tables public.t" in caught.value.fix
    assert "tracking field" in caught.value.fix
    with pytest.raises(VerificationError) as caught:
        raise_for_mismatch("public.t", "t", result)
    assert caught.value.fix is not None
    assert "tracking field" not in caught.value.fix


# --- wide tables: the profile in column chunks -------------------------------------------------


def wide(n: int) -> list[ProfileColumn]:
    return [ProfileColumn(Column(f"c{i}", "int4"), f"c{i}") for i in range(n)]


def test_1600_columns_make_six_statements_each_under_sql_limits() -> None:
    from shiftsync.engine.verify import PROFILE_CHUNK, column_chunks

    chunks = column_chunks(wide(1600))
    assert [len(c) for c in chunks] == [300, 300, 300, 300, 300, 100]
    assert [c.target for chunk in chunks for c in chunk] == [f"c{i}" for i in range(1600)]
    for chunk in chunks:
        # The select list: count(*), then four entries per column (NULLs included), under
        # PostgreSQL's 1,664 target-list entries and Redshift's 1,600 columns.
        select_list = build_profile_sql("public", "t", chunk).split("\nFROM")[0]
        assert select_list.count(", ") + 1 == 1 + 4 * len(chunk) <= 1 + 4 * PROFILE_CHUNK < 1600
    assert column_chunks([]) == [()]


def test_chunk_profiles_merge_and_a_changing_row_count_is_refused() -> None:
    from shiftsync.engine.verify import merge_profiles

    first = TableProfile(3, {"a": ColumnProfile(3, "6")})
    second = TableProfile(3, {"b": ColumnProfile(2, "1")})
    merged = merge_profiles("table public.t", [first, second])
    assert merged.rows == 3
    assert set(merged.columns) == {"a", "b"}
    with pytest.raises(VerificationError, match="row count changed") as caught:
        merge_profiles("table public.t", [first, TableProfile(4, {})])
    assert "3, 4" in str(caught.value)
