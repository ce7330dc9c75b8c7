"""Decoding Data API CSV pages, Data API JSON records and UNLOAD Parquet batches to Arrow.

All three inputs for the same rows must give the same table, equal to one built by hand.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shiftsync.errors import SourceError
from shiftsync.redshift.decode import (
    csv_page_to_batches,
    csv_page_to_table,
    decode_text,
    json_records_to_batch,
    normalize_parquet_batch,
)
from shiftsync.redshift.types import Column, arrow_schema

COLUMNS = [
    Column("i2", "int2"),
    Column("i4", "int4", nullable=False),
    Column("i8", "int8"),
    Column("n", "numeric", precision=38, scale=10),
    Column("n0", "numeric"),
    Column("f4", "float4"),
    Column("f8", "float8"),
    Column("b", "bool"),
    Column("c", "bpchar", length=5),
    Column("v", "varchar", length=256),
    Column("d", "date"),
    Column("ts", "timestamp"),
    Column("tz", "timestamptz"),
    Column("t", "time"),
    Column("ttz", "timetz"),
    Column("j", "super"),
    Column("vb", "varbyte"),
    Column("g", "geometry"),
    Column("h", "hllsketch"),
    Column("iv", "interval"),
]
NAMES = [column.name for column in COLUMNS]
POINT_1_2_WKB = "0101000000000000000000f03f0000000000000040"
SKETCH = '{"version":1,"logm":15,"sparse":{"indices":[1],"values":[2]}}'
LONG_TEXT = 'He said "hi", then left\nline 2\r\nline 3 \\ back, slash'
FLOAT32_MAX = 3.4028234663852886e38

EXPECTED_ROWS: list[dict[str, Any]] = [
    {
        "i2": 1,
        "i4": 2,
        "i8": 3,
        "n": Decimal("12345.6789000000"),
        "n0": Decimal("42"),
        "f4": 1.5,
        "f8": 0.1,
        "b": True,
        "c": "ab   ",
        "v": LONG_TEXT,
        "d": date(1969, 7, 20),
        "ts": datetime(2020, 1, 2, 3, 4, 5),
        "tz": datetime(2020, 1, 2, 3, 4, 5, 250000, tzinfo=UTC),
        "t": time(10, 30),
        "ttz": "10:30:00+05:30",
        "j": '{"a":[1,"x"],"b":null}',
        "vb": b"\x00\xff",
        "g": bytes.fromhex(POINT_1_2_WKB),
        "h": SKETCH,
        "iv": timedelta(days=1, hours=2, minutes=3, seconds=4.5),
    },
    {
        "i2": -32768,
        "i4": 2147483647,
        "i8": -9223372036854775808,
        "n": Decimal("9999999999999999999999999999.9999999999"),
        "n0": Decimal("-999999999999999999"),
        "f4": FLOAT32_MAX,
        "f8": math.inf,
        "b": False,
        "c": "     ",
        "v": "ünïcødé ☃ 𝄞",
        "d": date(9999, 12, 31),
        "ts": datetime(1900, 1, 1, 0, 0, 0, 1),
        "tz": datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "t": time(23, 59, 59, 999999),
        "ttz": "00:00:00-08:00",
        "j": '"text, with comma"',
        "vb": b"",
        "g": bytes.fromhex(POINT_1_2_WKB),
        "h": "",
        "iv": timedelta(days=-1, seconds=1),
    },
    dict.fromkeys(NAMES),
    {
        "i2": 0,
        "i4": -1,
        "i8": 0,
        "n": Decimal("-0.0000000001"),
        "n0": Decimal("0"),
        "f4": -0.0,
        "f8": math.nan,
        "b": True,
        "c": "x    ",
        "v": "",
        "d": date(1970, 1, 1),
        "ts": datetime(2024, 2, 29, 23, 59, 59, 100000),
        "tz": datetime(2024, 3, 1, 0, 0, tzinfo=UTC),
        "t": time(0, 0),
        "ttz": "12:00:00.5+14:00",
        "j": "null",
        "vb": b"\xde\xad\xbe\xef",
        "g": b"",
        "h": "AQ==",
        "iv": timedelta(0),
    },
]

# What the data_api select returns, as PostgreSQL's COPY ... CSV HEADER prints it. Row 3 (all
# NULL) is a line of empty unquoted fields; the empty string is "".
CSV_TEXT = (
    ",".join(NAMES)
    + "\n"
    + "1,2,3,12345.6789000000,42,1.5,0.1,t,ab   ,"
    + '"He said ""hi"", then left\nline 2\r\nline 3 \\ back, slash",'
    + "1969-07-20,2020-01-02 03:04:05,2020-01-02 03:04:05.250000 AD,10:30:00,10:30:00+05:30,"
    + '"{""a"":[1,""x""],""b"":null}",00ff,'
    + POINT_1_2_WKB
    + ',"'
    + SKETCH.replace('"', '""')
    + '",1 day 02:03:04.5\n'
    + "-32768,2147483647,-9223372036854775808,9999999999999999999999999999.9999999999,"
    + "-999999999999999999,3.4028235e+38,Infinity,f,     ,ünïcødé ☃ 𝄞,9999-12-31,"
    + "1900-01-01 00:00:00.000001,1969-12-31 23:59:59.999999 AD,23:59:59.999999,00:00:00-08,"
    + '"""text, with comma""","",'
    + POINT_1_2_WKB
    + ',"",-1 days +00:00:01\n'
    + "," * (len(NAMES) - 1)
    + "\n"
    + '0,-1,-0,-0.0000000001,-0,-0,NaN,true,x    ,"",1970-01-01,2024-02-29 23:59:59.1,'
    + '2024-03-01 00:00:00.000000 AD,00:00:00,12:00:00.5+14,null,\\xDEADBEEF,"",AQ==,00:00:00\n'
)


def _s(value: str) -> dict[str, Any]:
    return {"stringValue": value}


NULL: dict[str, Any] = {"isNull": True}

# The same rows from GetStatementResult (JSON): ints as longValue, floats as doubleValue,
# booleans as booleanValue, everything else as the same canonical text.
JSON_RECORDS: list[list[dict[str, Any]]] = [
    [
        {"longValue": 1},
        {"longValue": 2},
        {"longValue": 3},
        _s("12345.6789000000"),
        _s("42"),
        {"doubleValue": 1.5},
        {"doubleValue": 0.1},
        {"booleanValue": True},
        _s("ab   "),
        _s(LONG_TEXT),
        _s("1969-07-20"),
        _s("2020-01-02 03:04:05"),
        _s("2020-01-02 03:04:05.250000 AD"),
        _s("10:30:00"),
        _s("10:30:00+05:30"),
        _s('{"a":[1,"x"],"b":null}'),
        _s("00ff"),
        _s(POINT_1_2_WKB),
        _s(SKETCH),
        _s("1 day 02:03:04.5"),
    ],
    [
        {"longValue": -32768},
        {"longValue": 2147483647},
        {"longValue": -9223372036854775808},
        _s("9999999999999999999999999999.9999999999"),
        _s("-999999999999999999"),
        {"doubleValue": FLOAT32_MAX},
        {"doubleValue": math.inf},
        {"booleanValue": False},
        _s("     "),
        _s("ünïcødé ☃ 𝄞"),
        _s("9999-12-31"),
        _s("1900-01-01 00:00:00.000001"),
        _s("1969-12-31 23:59:59.999999 AD"),
        _s("23:59:59.999999"),
        _s("00:00:00-08"),
        _s('"text, with comma"'),
        _s(""),
        _s(POINT_1_2_WKB),
        _s(""),
        _s("-1 days +00:00:01"),
    ],
    [NULL] * len(NAMES),
    [
        {"longValue": 0},
        {"longValue": -1},
        {"longValue": 0},
        _s("-0.0000000001"),
        _s("-0"),
        {"doubleValue": -0.0},
        {"doubleValue": math.nan},
        {"booleanValue": True},
        _s("x    "),
        _s(""),
        _s("1970-01-01"),
        _s("2024-02-29 23:59:59.1"),
        _s("2024-03-01 00:00:00.000000 AD"),
        _s("00:00:00"),
        _s("12:00:00.5+14"),
        _s("null"),
        _s("\\xdeadbeef"),
        _s(""),
        _s("AQ=="),
        _s("00:00:00"),
    ],
]


def expected_table() -> pa.Table:
    schema = arrow_schema(COLUMNS)
    arrays = []
    for field in schema:
        values = [row[field.name] for row in EXPECTED_ROWS]
        if isinstance(field.type, pa.ExtensionType):
            storage = pa.array(values, type=field.type.storage_type)
            arrays.append(pa.ExtensionArray.from_storage(field.type, storage))
        else:
            arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def unload_shaped_table() -> pa.Table:
    """What UNLOAD writes for the unload select: native types, and text for the cast columns."""
    native = expected_table()
    text_columns = {
        "t": ["10:30:00", "23:59:59.999999", None, "00:00:00"],
        "ttz": ["10:30:00+05:30", "00:00:00-08", None, "12:00:00.5+14"],
        "j": ['{"a":[1,"x"],"b":null}', '"text, with comma"', None, "null"],
        "vb": ["00ff", "", None, "deadbeef"],
        "g": [POINT_1_2_WKB, POINT_1_2_WKB, None, ""],
        "iv": ["1 day 02:03:04.5", "-1 days +00:00:01", None, "00:00:00"],
    }
    arrays: dict[str, pa.Array] = {}
    for name in NAMES:
        if name in text_columns:
            arrays[name] = pa.array(text_columns[name], type=pa.string())
        elif name == "tz":
            # TIMESTAMPTZ arrives as the UTC value without a zone.
            arrays[name] = native.column(name).cast(pa.timestamp("us"))
        else:
            arrays[name] = native.column(name).combine_chunks()
    return pa.table(arrays)


def _canonical(value: object) -> object:
    # float.hex tells NaN from NaN-free values and -0.0 from 0.0, which == does not.
    if isinstance(value, float):
        return "nan" if math.isnan(value) else value.hex()
    return value


def assert_same_table(actual: pa.Table, expected: pa.Table) -> None:
    assert actual.schema.equals(expected.schema, check_metadata=True), (
        f"{actual.schema}\n!=\n{expected.schema}"
    )
    actual_rows = [{k: _canonical(v) for k, v in row.items()} for row in actual.to_pylist()]
    expected_rows = [{k: _canonical(v) for k, v in row.items()} for row in expected.to_pylist()]
    assert actual_rows == expected_rows


def table_without_nan(table: pa.Table) -> pa.Table:
    return table.drop_columns(["f8"])


# ---------------------------------------------------------------- the three paths agree


def test_csv_page_gives_the_expected_table() -> None:
    table = csv_page_to_table(CSV_TEXT, COLUMNS, has_header=True)
    assert_same_table(table, expected_table())
    # Arrow's own equality too, where NaN (never equal to itself) is absent.
    assert table_without_nan(table).equals(table_without_nan(expected_table()), True)


def test_json_records_give_the_same_table() -> None:
    batch = json_records_to_batch(JSON_RECORDS, COLUMNS)
    table = pa.Table.from_batches([batch])
    assert_same_table(table, expected_table())
    csv_table = csv_page_to_table(CSV_TEXT, COLUMNS, has_header=True)
    assert table_without_nan(table).equals(table_without_nan(csv_table), True)


def test_parquet_shaped_batch_gives_the_same_table() -> None:
    batch = unload_shaped_table().to_batches()[0]
    table = pa.Table.from_batches([normalize_parquet_batch(batch, COLUMNS)])
    assert_same_table(table, expected_table())


def test_parquet_file_round_trip_gives_the_same_table() -> None:
    buffer = io.BytesIO()
    pq.write_table(unload_shaped_table(), buffer)
    buffer.seek(0)
    batches = [normalize_parquet_batch(b, COLUMNS) for b in pq.read_table(buffer).to_batches()]
    assert_same_table(pa.Table.from_batches(batches), expected_table())


def test_csv_bytes_and_batches() -> None:
    batches = list(csv_page_to_batches(CSV_TEXT.encode(), COLUMNS, has_header=True))
    assert all(batch.schema.equals(arrow_schema(COLUMNS), True) for batch in batches)
    assert_same_table(pa.Table.from_batches(batches), expected_table())


def test_super_and_null_text_are_kept_apart() -> None:
    table = csv_page_to_table(CSV_TEXT, COLUMNS, has_header=True)
    # SQL NULL (row 3) is null; JSON null (row 4) is the text "null".
    assert table.column("j").to_pylist()[2:] == [None, "null"]
    assert table.column("v").to_pylist()[2:] == [None, ""]


# ---------------------------------------------------------------- CSV dialect edges


def test_crlf_line_endings() -> None:
    columns = [Column("a", "int4"), Column("s", "varchar")]
    text = 'a,s\r\n1,x\r\n2,"y\r\nz"\r\n,\r\n'
    table = csv_page_to_table(text, columns, has_header=True)
    assert table.to_pylist() == [
        {"a": 1, "s": "x"},
        {"a": 2, "s": "y\r\nz"},
        {"a": None, "s": None},
    ]


def test_header_with_a_quoted_newline_is_skipped_whole() -> None:
    columns = [Column("odd\nname", "int4"), Column("s", "varchar")]
    text = '"odd\nname",s\n1,a\n'
    table = csv_page_to_table(text, columns, has_header=True)
    assert table.to_pylist() == [{"odd\nname": 1, "s": "a"}]


def test_later_pages_have_no_header() -> None:
    columns = [Column("a", "int4")]
    assert csv_page_to_table("5\n6\n", columns, has_header=False).column("a").to_pylist() == [
        5,
        6,
    ]


@pytest.mark.parametrize(("text", "has_header"), [("", False), ("", True), ("\n", False)])
def test_empty_page(text: str, has_header: bool) -> None:
    columns = [Column("a", "int4"), Column("j", "super")]
    table = csv_page_to_table(text, columns, has_header=has_header)
    assert table.num_rows == 0
    assert table.schema.equals(arrow_schema(columns), True)


def test_header_only_page() -> None:
    columns = [Column("a", "int4"), Column("vb", "varbyte")]
    table = csv_page_to_table("a,vb\n", columns, has_header=True)
    assert table.num_rows == 0
    assert table.schema.equals(arrow_schema(columns), True)


def test_no_trailing_newline() -> None:
    assert csv_page_to_table("a\n7", [Column("a", "int8")], has_header=True).num_rows == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-01-02 03:04:05", datetime(2020, 1, 2, 3, 4, 5)),
        ("2020-01-02 03:04:05.1", datetime(2020, 1, 2, 3, 4, 5, 100000)),
        ("2020-01-02 03:04:05.12", datetime(2020, 1, 2, 3, 4, 5, 120000)),
        ("2020-01-02 03:04:05.123", datetime(2020, 1, 2, 3, 4, 5, 123000)),
        ("2020-01-02 03:04:05.1234", datetime(2020, 1, 2, 3, 4, 5, 123400)),
        ("2020-01-02 03:04:05.12345", datetime(2020, 1, 2, 3, 4, 5, 123450)),
        ("2020-01-02 03:04:05.123456", datetime(2020, 1, 2, 3, 4, 5, 123456)),
        ("2022-02-22 00:00:00.0", datetime(2022, 2, 22)),
        ("1066-10-14 09:00:00", datetime(1066, 10, 14, 9)),
        ("9999-12-31 23:59:59.999999", datetime(9999, 12, 31, 23, 59, 59, 999999)),
    ],
)
def test_timestamps_with_0_to_6_fractional_digits(text: str, expected: datetime) -> None:
    columns = [Column("ts", "timestamp")]
    assert csv_page_to_table(f"{text}\n", columns, has_header=False)["ts"].to_pylist() == [expected]
    batch = json_records_to_batch([[_s(text)]], columns)
    assert batch.column(0).to_pylist() == [expected]


@pytest.mark.parametrize(
    ("text", "expected_utc"),
    [
        ("2020-06-01 12:00:00+00", datetime(2020, 6, 1, 12, tzinfo=UTC)),
        ("2020-06-01 12:00:00.5+05:30", datetime(2020, 6, 1, 6, 30, 0, 500000, tzinfo=UTC)),
        ("2020-06-01 12:00:00-08", datetime(2020, 6, 1, 20, tzinfo=UTC)),
        ("2020-06-01 12:00:00.000001-0930", datetime(2020, 6, 1, 21, 30, 0, 1, tzinfo=UTC)),
        ("2020-06-01 00:30:00+01", datetime(2020, 5, 31, 23, 30, tzinfo=UTC)),
        ("1950-01-01 00:00:00.000000+00", datetime(1950, 1, 1, tzinfo=UTC)),
        ("1950-01-01 00:00:00.000000 AD", datetime(1950, 1, 1, tzinfo=UTC)),
        ("2020-06-01 12:00:00Z", datetime(2020, 6, 1, 12, tzinfo=UTC)),
    ],
)
def test_timestamptz_offsets_become_utc_instants(text: str, expected_utc: datetime) -> None:
    columns = [Column("tz", "timestamptz")]
    assert csv_page_to_table(f"{text}\n", columns, has_header=False)["tz"].to_pylist() == [
        expected_utc
    ]
    assert json_records_to_batch([[_s(text)]], columns).column(0).to_pylist() == [expected_utc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NaN", "nan"),
        ("Infinity", math.inf.hex()),
        ("-Infinity", (-math.inf).hex()),
        ("-0", (-0.0).hex()),
        ("0", (0.0).hex()),
        ("1.7976931348623157e+308", (1.7976931348623157e308).hex()),
        ("5e-324", (5e-324).hex()),
        ("0.1", (0.1).hex()),
    ],
)
def test_float8_specials_and_extremes(text: str, expected: str) -> None:
    columns = [Column("f", "float8")]
    csv_value = csv_page_to_table(f"{text}\n", columns, has_header=False)["f"][0].as_py()
    json_value = json_records_to_batch([[_s(text)]], columns).column(0)[0].as_py()
    assert _canonical(csv_value) == expected
    assert _canonical(json_value) == expected


@pytest.mark.parametrize(
    "text",
    [
        "99999999999999999999999999999.999999999",
        "-99999999999999999999999999999.999999999",
        "0.000000001",
        "-0.000000000",
        "1",
    ],
)
def test_decimal_38_9_is_exact(text: str) -> None:
    columns = [Column("n", "numeric", precision=38, scale=9)]
    csv_value = csv_page_to_table(f"{text}\n", columns, has_header=False)["n"][0].as_py()
    json_value = json_records_to_batch([[_s(text)]], columns).column(0)[0].as_py()
    assert csv_value == json_value == Decimal(text)
    assert isinstance(csv_value, Decimal)


def test_decimal_with_more_digits_than_its_scale_is_refused() -> None:
    columns = [Column("n", "numeric", precision=10, scale=2)]
    with pytest.raises(SourceError, match="'n'"):
        csv_page_to_table("1.234\n", columns, has_header=False)
    with pytest.raises(SourceError, match="'n'"):
        json_records_to_batch([[_s("1.234")]], columns)


@pytest.mark.parametrize(
    ("text", "expected"), [("t", True), ("f", False), ("true", True), ("false", False)]
)
def test_booleans(text: str, expected: bool) -> None:
    columns = [Column("b", "bool")]
    assert csv_page_to_table(f"{text}\n", columns, has_header=False)["b"].to_pylist() == [expected]
    assert json_records_to_batch([[_s(text)]], columns).column(0).to_pylist() == [expected]


def test_dates_before_1970_and_in_year_9999() -> None:
    columns = [Column("d", "date")]
    table = csv_page_to_table("0001-01-01\n1600-02-29\n9999-12-31\n", columns, has_header=False)
    assert table["d"].to_pylist() == [date(1, 1, 1), date(1600, 2, 29), date(9999, 12, 31)]


def test_bpchar_padding_is_kept() -> None:
    columns = [Column("c", "bpchar", length=4)]
    table = csv_page_to_table('"a   "\n    \n', columns, has_header=False)
    assert table["c"].to_pylist() == ["a   ", "    "]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:00", timedelta(0)),
        ("3 days", timedelta(days=3)),
        ("1 day", timedelta(days=1)),
        ("-00:00:00.000001", timedelta(microseconds=-1)),
        ("36:00:00", timedelta(hours=36)),
        ("-2 days -03:04:05.678", -timedelta(days=2, hours=3, minutes=4, seconds=5.678)),
        ("1 day -01:00:00", timedelta(hours=23)),
    ],
)
def test_intervals(text: str, expected: timedelta) -> None:
    columns = [Column("iv", "interval")]
    decoded = decode_text(pa.array([text]), columns[0])
    assert decoded.to_pylist() == [expected]
    assert json_records_to_batch([[_s(text)]], columns).column(0).to_pylist() == [expected]


@pytest.mark.parametrize("text", ["1 year", "2 mons 3 days", "-1 years 00:00:01"])
def test_interval_with_months_is_refused(text: str) -> None:
    with pytest.raises(SourceError, match="months"):
        decode_text(pa.array([text]), Column("iv", "interval"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10:30:00+05", "10:30:00+05:00"),
        ("10:30:00+05:30", "10:30:00+05:30"),
        ("23:59:59.999999-12", "23:59:59.999999-12:00"),
        ("00:00:00+00", "00:00:00+00:00"),
    ],
)
def test_timetz_offsets_are_normalized(text: str, expected: str) -> None:
    assert decode_text(pa.array([text]), Column("x", "timetz")).to_pylist() == [expected]


def test_hex_decoding_handles_prefix_case_empty_null_and_slices() -> None:
    values = pa.array(["0aFF", None, "\\x00", "", "\\x", "ABcd01"])
    column = Column("vb", "varbyte")
    expected = [b"\n\xff", None, b"\x00", b"", b"", b"\xab\xcd\x01"]
    assert decode_text(values, column).to_pylist() == expected
    assert decode_text(values.slice(2, 3), column).to_pylist() == expected[2:5]


def test_large_page_is_decoded_across_csv_blocks() -> None:
    columns = [Column("i", "int8"), Column("vb", "varbyte"), Column("iv", "interval")]
    rows = 60_000
    text = "".join(f"{i},{i:08x},{i % 5} days 00:00:{i % 60:02d}\n" for i in range(rows))
    table = csv_page_to_table(text, columns, has_header=False)
    assert table.num_rows == rows
    assert table.column("vb").num_chunks >= 2  # more than one CSV block: chunked decoding
    assert table.column("vb")[rows - 1].as_py() == bytes.fromhex(f"{rows - 1:08x}")
    assert table.column("iv")[12_345].as_py() == timedelta(days=12_345 % 5, seconds=12_345 % 60)


# ---------------------------------------------------------------- refusals name the column


@pytest.mark.parametrize(
    ("column", "text"),
    [
        (Column("qty", "int2"), "40000"),
        (Column("qty", "int4"), "x"),
        (Column("qty", "date"), "2020-13-01"),
        (Column("qty", "date"), "0044-03-15 BC"),
        (Column("qty", "time"), "24:00:00"),
        (Column("qty", "varbyte"), "abc"),
        (Column("qty", "varbyte"), "zz"),
        (Column("qty", "bool"), "yes"),
        (Column("qty", "timetz"), "10:30"),
        (Column("qty", "interval"), "soon"),
        (Column("qty", "interval"), '""'),
        (Column("qty", "timestamptz"), "2020-01-01 00:00:00"),
        (Column("qty", "timestamptz"), "0044-03-15 10:00:00.000000 BC"),
        (Column("qty", "timestamp"), "0044-03-15 10:00:00 BC"),
        (Column("qty", "timestamp"), "10000-01-01 00:00:00"),
    ],
)
def test_bad_values_are_refused_naming_the_column(column: Column, text: str) -> None:
    with pytest.raises(SourceError) as caught:
        csv_page_to_table(f"{text}\n", [column], has_header=False, table="public.sales")
    assert "'qty'" in caught.value.message
    assert "public.sales" in caught.value.message
    assert caught.value.fix


def test_ragged_csv_is_refused() -> None:
    with pytest.raises(SourceError, match="could not be parsed"):
        csv_page_to_table("1,2\n3\n", [Column("a", "int4"), Column("b", "int4")], has_header=False)


def test_json_record_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(SourceError, match="2 fields, expected 1"):
        json_records_to_batch([[{"longValue": 1}, {"longValue": 2}]], [Column("a", "int4")])


def test_json_unknown_member_is_refused() -> None:
    with pytest.raises(SourceError, match="no known member"):
        json_records_to_batch([[{"SDK_UNKNOWN_MEMBER": {"name": "x"}}]], [Column("a", "int4")])


def test_json_long_out_of_range_is_refused() -> None:
    with pytest.raises(SourceError, match="'a'"):
        json_records_to_batch([[{"longValue": 70000}]], [Column("a", "int2")])


# ---------------------------------------------------------------- JSON specifics


def test_json_empty_and_all_null() -> None:
    columns = [Column("a", "int4"), Column("j", "super")]
    assert json_records_to_batch([], columns).num_rows == 0
    batch = json_records_to_batch([[NULL, NULL]], columns)
    assert batch.schema.equals(arrow_schema(columns), True)
    assert batch.to_pylist() == [{"a": None, "j": None}]


def test_json_mixed_members_go_through_text() -> None:
    # A float column may carry NaN as a string next to doubles.
    columns = [Column("f", "float8")]
    batch = json_records_to_batch([[{"doubleValue": 1.25}], [_s("NaN")], [NULL]], columns)
    assert [_canonical(v) for v in batch.column(0).to_pylist()] == [(1.25).hex(), "nan", None]


@pytest.mark.parametrize("type_name", ["float8", "float4"])
def test_json_non_finite_doubles_sent_as_strings_become_floats(type_name: str) -> None:
    """The AWS JSON 1.1 protocol sends NaN and the infinities as JSON strings in doubleValue;
    botocore and our records parser leave them as str."""
    columns = [Column("f", type_name)]
    records: list[list[dict[str, Any]]] = [
        [{"doubleValue": "NaN"}],
        [{"doubleValue": "Infinity"}],
        [{"doubleValue": "-Infinity"}],
        [{"doubleValue": 1.5}],
        [NULL],
    ]
    values = json_records_to_batch(records, columns).column(0).to_pylist()
    assert [_canonical(v) for v in values] == [
        "nan",
        math.inf.hex(),
        (-math.inf).hex(),
        (1.5).hex(),
        None,
    ]


@pytest.mark.parametrize("text", ["nan", "inf", "1.5", ""])
def test_json_other_string_doubles_are_refused_naming_the_column(text: str) -> None:
    records = [[{"doubleValue": "NaN"}], [{"doubleValue": text}]]
    with pytest.raises(SourceError) as caught:
        json_records_to_batch(records, [Column("ratio", "float8")], table="public.odds")
    # The value refused is the bad one, not the NaN before it.
    assert repr(text) in caught.value.message
    assert "'ratio'" in caught.value.message
    assert "public.odds" in caught.value.message
    assert caught.value.fix


def test_json_blob_for_varbyte() -> None:
    batch = json_records_to_batch([[{"blobValue": b"\x01\x02"}]], [Column("vb", "varbyte")])
    assert batch.column(0).to_pylist() == [b"\x01\x02"]


def test_json_float4_from_double_is_the_float4_value() -> None:
    columns = [Column("f", "float4")]
    from_json = json_records_to_batch([[{"doubleValue": 1.1}]], columns).column(0)[0].as_py()
    from_csv = csv_page_to_table("1.1\n", columns, has_header=False)["f"][0].as_py()
    assert from_json == from_csv == pytest.approx(1.1, rel=1e-7)


# ---------------------------------------------------------------- Parquet specifics


def test_parquet_zoned_timestamps_keep_their_instant() -> None:
    instant = datetime(2020, 6, 1, 12, tzinfo=UTC)
    paris = pa.array([instant], type=pa.timestamp("us", tz="UTC")).cast(
        pa.timestamp("us", tz="Europe/Paris")
    )
    columns = [Column("tz", "timestamptz")]
    batch = pa.record_batch({"tz": paris})
    assert normalize_parquet_batch(batch, columns).column(0).to_pylist() == [instant]


def test_parquet_nanosecond_and_narrower_int_columns_are_cast() -> None:
    columns = [Column("ts", "timestamp"), Column("i2", "int2"), Column("n", "numeric")]
    batch = pa.record_batch(
        {
            "ts": pa.array([1_000], type=pa.timestamp("ns")),
            "i2": pa.array([7], type=pa.int32()),
            "n": pa.array([Decimal("5")], type=pa.decimal128(5, 0)),
        }
    )
    result = normalize_parquet_batch(batch, columns)
    assert result.schema.equals(arrow_schema(columns), True)
    assert result.to_pylist() == [
        {"ts": datetime(1970, 1, 1, 0, 0, 0, 1), "i2": 7, "n": Decimal("5")}
    ]


def test_parquet_columns_match_case_insensitively_and_extras_are_ignored() -> None:
    columns = [Column("MixedCase", "int4"), Column("j", "super")]
    batch = pa.record_batch(
        {
            "extra": pa.array([0]),
            "mixedcase": pa.array([1], type=pa.int32()),
            "j": pa.array(["{}"]).dictionary_encode(),
        }
    )
    result = normalize_parquet_batch(batch, columns)
    assert result.schema.equals(arrow_schema(columns), True)
    assert result.to_pylist() == [{"MixedCase": 1, "j": "{}"}]


def test_parquet_missing_column_is_refused_naming_it() -> None:
    batch = pa.record_batch({"a": pa.array([1])})
    with pytest.raises(SourceError, match="no column 'b'"):
        normalize_parquet_batch(batch, [Column("b", "int4")], table="public.t")


def test_parquet_value_out_of_range_is_refused() -> None:
    batch = pa.record_batch({"a": pa.array([2**40], type=pa.int64())})
    with pytest.raises(SourceError, match="'a'"):
        normalize_parquet_batch(batch, [Column("a", "int4")])
