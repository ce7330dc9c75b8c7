"""The destinations' pure helpers: COPY CSV, type maps, SQL builders, the Parquet pointer.

No database here: what PostgreSQL and DuckDB make of these strings is the contract suite's
job (tests/integration/test_destination_contract.py).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pyarrow as pa
import pytest
from psycopg import sql

from shiftsync.destinations.base import SEQUENCE_COLUMN
from shiftsync.destinations.duckdb_sql import (
    ARROW_TO_DUCKDB,
    DUCKDB_TO_ARROW,
    build_merge_sql,
    build_read_sql,
    decode_total,
    duckdb_type,
    quote_identifier,
)
from shiftsync.destinations.duckdb_sql import arrow_type as duckdb_arrow_type
from shiftsync.destinations.duckdb_sql import build_create_table_sql as duckdb_create_sql
from shiftsync.destinations.parquet_layout import (
    VERSION_FOLDER,
    DatasetPointer,
    folders_in_use,
    from_duckdb_form,
    from_storage,
    to_duckdb_form,
    to_storage,
    to_storage_schema,
    version_folder,
)
from shiftsync.destinations.postgres_copy import bytea_hex, interval_text, to_copy_csv
from shiftsync.destinations.postgres_session import redact_dsn, scrub
from shiftsync.destinations.postgres_sql import (
    ARROW_TO_POSTGRES,
    POSTGRES_TO_ARROW,
    build_copy_sql,
    build_create_table_sql,
    build_profile_sql,
    build_state_sql,
    postgres_type,
    rows_to_table,
)
from shiftsync.destinations.postgres_sql import arrow_type as postgres_arrow_type
from shiftsync.destinations.postgres_sql import build_merge_sql as postgres_merge_sql
from shiftsync.destinations.postgres_sql import build_read_sql as postgres_read_sql
from shiftsync.errors import ConfigError, DestinationError

JSON = pa.json_(pa.string())
DURATION = pa.duration("us")
INTERVAL = pa.month_day_nano_interval()


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def one_column(name: str, array: pa.Array) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([array], names=[name])


# --- bytea_hex ---------------------------------------------------------------------------------


def test_bytea_hex_writes_postgres_hex_format() -> None:
    array = pa.array([b"\x00\xff", b"AZ", b"\x0a\x7f\x80"])
    assert bytea_hex(array).to_pylist() == ["\\x00ff", "\\x415a", "\\x0a7f80"]


def test_bytea_hex_keeps_null_apart_from_empty() -> None:
    assert bytea_hex(pa.array([b"", None, b""])).to_pylist() == ["\\x", None, "\\x"]


def test_bytea_hex_covers_every_byte_value() -> None:
    every = bytes(range(256))
    (text,) = bytea_hex(pa.array([every])).to_pylist()
    assert text == "\\x" + every.hex()


def test_bytea_hex_of_a_slice_reads_only_the_slice() -> None:
    array = pa.array([b"\x01", b"\x02\x03", None, b"\x04"])
    assert bytea_hex(array.slice(1, 2)).to_pylist() == ["\\x0203", None]
    assert bytea_hex(array.slice(3)).to_pylist() == ["\\x04"]


@pytest.mark.parametrize("data_type", [pa.binary(), pa.large_binary()])
def test_bytea_hex_of_only_nulls_and_of_nothing(data_type: pa.DataType) -> None:
    assert bytea_hex(pa.array([None, None], data_type)).to_pylist() == [None, None]
    assert bytea_hex(pa.array([], data_type)).to_pylist() == []


def test_bytea_hex_accepts_large_binary() -> None:
    array = pa.array([b"\xde\xad", None], pa.large_binary())
    assert bytea_hex(array).to_pylist() == ["\\xdead", None]


def test_bytea_hex_returns_strings() -> None:
    assert bytea_hex(pa.array([b"\x01"])).type == pa.string()


# --- interval_text -----------------------------------------------------------------------------


def test_interval_text_is_microseconds_with_nulls_kept() -> None:
    array = pa.array([1, -5, None, 0], DURATION)
    assert interval_text(array).to_pylist() == [
        "1 microseconds",
        "-5 microseconds",
        None,
        "0 microseconds",
    ]


def test_interval_text_does_not_fold_days_or_overflow() -> None:
    # 10 days and 1 µs; then the largest duration[us] an int64 holds.
    array = pa.array([10 * 86_400 * 10**6 + 1, 2**63 - 1], DURATION)
    assert interval_text(array).to_pylist() == [
        "864000000001 microseconds",
        f"{2**63 - 1} microseconds",
    ]


# --- to_copy_csv -------------------------------------------------------------------------------


def test_to_copy_csv_quotes_values_and_leaves_null_empty() -> None:
    batch = pa.RecordBatch.from_pydict(
        {"id": pa.array([1, None], pa.int32()), "s": pa.array(["", None])}
    )
    # PostgreSQL's CSV reads an unquoted empty field as NULL and "" as the empty string.
    assert to_copy_csv(batch) == b'"1",""\n,\n'


def test_to_copy_csv_has_no_header() -> None:
    batch = one_column("a_column_name", pa.array(["x"]))
    assert b"a_column_name" not in to_copy_csv(batch)


def test_to_copy_csv_of_no_rows_is_empty() -> None:
    assert to_copy_csv(one_column("s", pa.array([], pa.string()))) == b""


def test_to_copy_csv_escapes_quotes_commas_and_newlines() -> None:
    text = 'a "quoted", two\nlines\r\nand é ✓'
    data = to_copy_csv(one_column("s", pa.array([text])))
    assert csv_rows(data) == [[text]]


def test_to_copy_csv_writes_every_contract_type_as_postgres_reads_it() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "i": pa.array([-7], pa.int16()),
            "big": pa.array([2**63 - 1], pa.int64()),
            "num": pa.array([Decimal("12345678901234567890.12")], pa.decimal128(22, 2)),
            "flag": pa.array([True]),
            "day": pa.array([date(2024, 2, 29)], pa.date32()),
            "clock": pa.array([time(23, 59, 59, 999_999)], pa.time64("us")),
            "local": pa.array([datetime(2024, 1, 2, 3, 4, 5)], pa.timestamp("us")),
            "instant": pa.array(
                [datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)], pa.timestamp("us", tz="UTC")
            ),
            "raw": pa.array([b"\x00\x10"]),
            "span": pa.array([90_061_000_001], DURATION),
            "doc": pa.ExtensionArray.from_storage(JSON, pa.array(['{"b": 1,  "a": [2]}'])),
        }
    )
    (row,) = csv_rows(to_copy_csv(batch))
    assert row == [
        "-7",
        str(2**63 - 1),
        "12345678901234567890.12",  # as written, never through a float
        "true",
        "2024-02-29",
        "23:59:59.999999",
        "2024-01-02 03:04:05.000000",
        "2024-01-02 03:04:05.000006Z",
        "\\x0010",
        "90061000001 microseconds",
        '{"b": 1,  "a": [2]}',  # the JSON text exactly, spacing and key order kept
    ]


@pytest.mark.parametrize(
    "value", [0.1, 1 / 3, -2.5e-300, 5e-324, 1.7976931348623157e308, 123456789.125]
)
def test_to_copy_csv_writes_doubles_that_read_back_exactly(value: float) -> None:
    ((text,),) = csv_rows(to_copy_csv(one_column("f", pa.array([value], pa.float64()))))
    assert float(text) == value


def test_to_copy_csv_converts_bytea_and_intervals_beside_nulls() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "raw": pa.array([None, b"\xff"], pa.large_binary()),
            "span": pa.array([3, None], DURATION),
        }
    )
    assert to_copy_csv(batch) == b',"3 microseconds"\n"\\xff",\n'


# --- the PostgreSQL type map and SQL ---------------------------------------------------------


@pytest.mark.parametrize("data_type", list(ARROW_TO_POSTGRES))
def test_postgres_type_map_reads_back_what_it_creates(data_type: pa.DataType) -> None:
    # The names format_type() gives back for the columns shiftsync creates map to the same type.
    assert data_type in POSTGRES_TO_ARROW.values()


@pytest.mark.parametrize(("precision", "scale"), [(1, 0), (18, 4), (38, 37)])
def test_postgres_numeric_round_trips(precision: int, scale: int) -> None:
    spelled = postgres_type("t", pa.field("n", pa.decimal128(precision, scale)))
    assert spelled == f"numeric({precision},{scale})"
    assert postgres_arrow_type("t", "n", spelled) == pa.decimal128(precision, scale)


def test_postgres_type_refuses_a_type_outside_the_contract() -> None:
    with pytest.raises(DestinationError) as caught:
        postgres_type("sales", pa.field("span", INTERVAL))
    assert "sales" in caught.value.message
    assert "span" in caught.value.message
    assert caught.value.fix is not None


def test_postgres_arrow_type_refuses_a_foreign_column() -> None:
    with pytest.raises(DestinationError) as caught:
        postgres_arrow_type("sales", "id", "uuid")
    assert "'id'" in caught.value.message
    assert "uuid" in caught.value.message
    assert caught.value.fix is not None
    assert "'sales'" in caught.value.fix


def test_postgres_create_quotes_names_and_adds_the_sequence_to_a_stage() -> None:
    schema = pa.schema([pa.field('a "b"', pa.decimal128(5, 1)), pa.field("doc", JSON)])
    stage = build_create_table_sql(sql.Identifier("stage"), "t", schema, temporary=True)
    assert stage.as_string() == (
        'CREATE TEMPORARY TABLE "stage" ("a ""b""" numeric(5,1), "doc" json, '
        f'"{SEQUENCE_COLUMN}" bigint) ON COMMIT DROP'
    )
    table = build_create_table_sql(sql.Identifier("s", "t"), "t", schema)
    assert table.as_string() == 'CREATE TABLE "s"."t" ("a ""b""" numeric(5,1), "doc" json)'


def test_postgres_copy_names_its_columns() -> None:
    copy = build_copy_sql(sql.Identifier("st"), ["a", 'b"c'])
    assert copy.as_string() == 'COPY "st" ("a", "b""c") FROM STDIN (FORMAT CSV)'


def test_postgres_merge_deletes_staged_keys_then_inserts_the_last_row_per_key() -> None:
    delete, insert = postgres_merge_sql(
        sql.Identifier("s", "t"), sql.Identifier("st"), ["k1", "k2", "v"], ["k1", "k2"]
    )
    assert delete.as_string() == (
        'DELETE FROM "s"."t" AS t USING "st" AS s WHERE t."k1" = s."k1" AND t."k2" = s."k2"'
    )
    assert insert.as_string() == (
        'INSERT INTO "s"."t" ("k1", "k2", "v") SELECT "k1", "k2", "v" FROM '
        '(SELECT DISTINCT ON ("k1", "k2") * FROM "st" ORDER BY "k1", "k2", '
        f'"{SEQUENCE_COLUMN}" DESC) AS latest'
    )


def test_postgres_state_table_lives_in_the_schema() -> None:
    create, upsert = build_state_sql("my schema")
    assert create.as_string().startswith(
        'CREATE TABLE IF NOT EXISTS "my schema"."_shiftsync_state" '
    )
    assert 'ON CONFLICT ("state_key") DO UPDATE' in upsert.as_string()
    assert '"target" = EXCLUDED."target"' in upsert.as_string()


def test_postgres_read_returns_json_as_text_and_intervals_as_microseconds() -> None:
    schema = pa.schema([pa.field("doc", JSON), pa.field("span", DURATION), pa.field("n", "int32")])
    query = postgres_read_sql(sql.Identifier("s", "t"), schema)
    assert query.as_string() == (
        'SELECT "doc"::text, (extract(epoch from "span") * 1000000)::bigint, "n" FROM "s"."t"'
    )


def test_postgres_profile_reads_instants_in_utc() -> None:
    columns = [("at", pa.timestamp("us", tz="UTC")), ("local", pa.timestamp("us"))]
    query = build_profile_sql(sql.Identifier("s", "t"), columns).as_string()
    assert "(min(\"at\") AT TIME ZONE 'UTC')::text" in query
    assert '(min("local"))::text' in query
    assert query.startswith('SELECT count(*), count("at"), NULL, ')


def test_rows_to_table_builds_the_schema_with_json_and_nulls() -> None:
    schema = pa.schema([pa.field("doc", JSON), pa.field("n", pa.int32())])
    table = rows_to_table(schema, [('{"a":1}', 1), (None, None)])
    assert table.schema.equals(schema)
    assert table.column("doc").type == JSON
    assert table.to_pydict() == {"doc": ['{"a":1}', None], "n": [1, None]}


# --- PostgreSQL sessions -------------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        "host=db port=5432 dbname=app user=me password=s3cret",
        "postgresql://me:s3cret@db:5432/app?sslmode=require",
    ],
)
def test_redact_dsn_drops_the_password_and_keeps_the_rest(dsn: str) -> None:
    redacted = redact_dsn(dsn)
    assert "s3cret" not in redacted
    assert "password" not in redacted
    assert "host=db" in redacted
    assert "dbname=app" in redacted


def test_redact_dsn_of_a_broken_dsn_shows_nothing_of_it() -> None:
    assert redact_dsn("this is not=a dsn = s3cret") == "<a DSN that does not parse>"


def test_scrub_hides_the_password_in_a_message() -> None:
    dsn = "host=db password=s3cret"
    message = 'FATAL: password authentication failed ("s3cret")'
    assert scrub(dsn, message) == 'FATAL: password authentication failed ("***")'
    assert scrub("host=db", message) == message


# --- the DuckDB type map and SQL -----------------------------------------------------------


@pytest.mark.parametrize(("data_type", "spelled"), list(ARROW_TO_DUCKDB.items()))
def test_duckdb_type_map_reads_back_what_it_creates(data_type: pa.DataType, spelled: str) -> None:
    assert duckdb_type("t", pa.field("c", data_type)) == spelled
    # DuckDB spells REAL as FLOAT and TIMESTAMPTZ in full in information_schema.
    assert data_type in DUCKDB_TO_ARROW.values()


def test_duckdb_decimal_round_trips() -> None:
    spelled = duckdb_type("t", pa.field("n", pa.decimal128(38, 10)))
    assert spelled == "DECIMAL(38,10)"
    assert duckdb_arrow_type("t", "n", spelled) == pa.decimal128(38, 10)


def test_duckdb_refuses_month_day_nano_intervals() -> None:
    with pytest.raises(DestinationError) as caught:
        duckdb_type("sales", pa.field("span", INTERVAL))
    assert "'sales'" in caught.value.message
    assert "'span'" in caught.value.message


def test_duckdb_arrow_type_refuses_a_foreign_column() -> None:
    with pytest.raises(DestinationError) as caught:
        duckdb_arrow_type("sales", "id", "HUGEINT")
    assert "HUGEINT" in caught.value.message
    assert caught.value.fix is not None


@pytest.mark.parametrize(
    ("name", "quoted"), [("plain", '"plain"'), ('a"b', '"a""b"'), ("x y", '"x y"')]
)
def test_quote_identifier(name: str, quoted: str) -> None:
    assert quote_identifier(name) == quoted


def test_quote_identifier_refuses_the_empty_name_duckdb_refuses() -> None:
    # DuckDB: "zero-length delimited identifier"; refused before any SQL is built.
    with pytest.raises(ConfigError, match="empty identifier"):
        quote_identifier("")


def test_duckdb_stage_gets_the_sequence_column() -> None:
    schema = pa.schema([pa.field("id", pa.int64())])
    assert duckdb_create_sql("st", schema, sequence=True) == (
        f'CREATE TABLE "st" ("id" BIGINT, "{SEQUENCE_COLUMN}" BIGINT)'
    )
    assert duckdb_create_sql("st", schema) == 'CREATE TABLE "st" ("id" BIGINT)'


def test_duckdb_merge_keeps_the_last_row_per_key() -> None:
    delete, insert = build_merge_sql("t", "st", ["k", "v"], ["k"])
    assert delete == 'DELETE FROM "t" USING "st" WHERE "t"."k" = "st"."k"'
    assert insert.endswith(
        f'QUALIFY row_number() OVER (PARTITION BY "k" ORDER BY "{SEQUENCE_COLUMN}" DESC) = 1'
    )


def test_duckdb_read_takes_intervals_as_microseconds() -> None:
    schema = pa.schema([pa.field("span", DURATION), pa.field("n", pa.int32())])
    assert build_read_sql("t", schema) == 'SELECT epoch_us("span") AS "span", "n" FROM "t"'


def test_decode_total_joins_the_split_decimal_sum_exactly() -> None:
    # 38 nines, unscaled, split at 10^18 as the profile SQL splits it.
    unscaled = 10**38 - 1
    total = {"high": unscaled // 10**18, "low": unscaled % 10**18}
    # Decimal's default context would round this to 28 digits.
    assert decode_total(total, pa.decimal128(38, 2)) == Decimal("9" * 36 + ".99")


def test_decode_total_of_negative_parts_and_of_no_rows() -> None:
    # DuckDB's % keeps the dividend's sign, so a negative sum comes back as two negatives.
    total = {"high": -1, "low": -5}
    assert decode_total(total, pa.decimal128(38, 2)) == Decimal("-10000000000000000.05")
    assert decode_total({"high": None, "low": None}, pa.decimal128(38, 0)) == 0


def test_decode_total_passes_plain_sums_through() -> None:
    assert decode_total(7, pa.int64()) == 7
    assert decode_total(None, pa.int64()) is None


# --- the Parquet layout ----------------------------------------------------------------------


def interval_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("span", INTERVAL, metadata={b"shiftsync.redshift_type": b"interval"}),
            pa.field("d", DURATION),
            pa.field("n", pa.int32()),
        ]
    )


def interval_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [
            pa.array([pa.MonthDayNano([1, 2, 3]), None, pa.MonthDayNano([-1, 0, -(10**12)])]),
            pa.array([5, None, -(2**62)], DURATION),
            pa.array([1, 2, None], pa.int32()),
        ],
        schema=interval_schema(),
    )


def test_storage_schema_keeps_intervals_as_16_bytes_and_says_so() -> None:
    stored = to_storage_schema(interval_schema())
    span = stored.field("span")
    assert span.type == pa.binary(16)
    assert span.metadata[b"shiftsync.arrow_type"] == b"month_day_nano_interval"
    assert span.metadata[b"shiftsync.redshift_type"] == b"interval"
    assert stored.field("d").type == DURATION  # Parquet stores a duration natively


def test_storage_round_trip_restores_intervals() -> None:
    batch = interval_batch()
    stored = to_storage(batch, to_storage_schema(batch.schema))
    assert stored.column(0).type == pa.binary(16)
    restored = from_storage(stored, batch.schema)
    assert restored.equals(batch)
    assert restored.schema.equals(batch.schema, check_metadata=True)


def test_from_storage_fills_columns_a_file_lacks_with_null() -> None:
    old_file = pa.RecordBatch.from_pydict({"n": pa.array([7], pa.int32())})
    assert from_storage(old_file, interval_schema()).to_pylist() == [
        {"span": None, "d": None, "n": 7}
    ]


def test_duckdb_form_round_trip_is_exact() -> None:
    batch = interval_batch()
    duck = to_duckdb_form(batch)
    assert [f.type for f in duck.schema] == [pa.binary(16), pa.int64(), pa.int32()]
    assert from_duckdb_form(duck, batch.schema).equals(batch)


def test_pointer_json_round_trip() -> None:
    pointer = DatasetPointer(
        version=3,
        current="v000003-1a2b3c4d",
        files=("v000002-aaaaaaaa/part-00000.parquet", "v000003-1a2b3c4d/part-00000.parquet"),
        rows=3,
        schema=interval_schema(),
        state={"public.sales": {"cursor": "2024-01-01"}},
        previous_files=("v000001-bbbbbbbb/part-00000.parquet",),
        history=({"version": 3, "mode": "append"},),
    )
    text = pointer.to_json("sales")
    document = json.loads(text)
    assert document["target"] == "sales"
    assert document["schema"][0] == {
        "name": "span",
        "type": "month_day_nano_interval",
        "redshift_type": "interval",
    }
    restored = DatasetPointer.from_json(text, "sales/_shiftsync.json")
    assert restored == pointer
    assert restored.schema.equals(pointer.schema, check_metadata=True)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "Expecting value"),
        ('{"format": 2}', "unknown format 2"),
        ('{"format": 1}', "'version'"),
    ],
)
def test_a_broken_pointer_names_the_file(text: str, problem: str) -> None:
    with pytest.raises(DestinationError) as caught:
        DatasetPointer.from_json(text, "/data/sales/_shiftsync.json")
    assert caught.value.message.startswith("/data/sales/_shiftsync.json is not a shiftsync")
    assert problem in caught.value.message
    assert caught.value.fix is not None


def test_version_folders_are_named_as_garbage_collection_expects() -> None:
    assert version_folder(3, "1a2b3c4d") == "v000003-1a2b3c4d"
    assert VERSION_FOLDER.fullmatch(version_folder(1_234_567, "00ff00ff"))
    assert not VERSION_FOLDER.fullmatch("v3-1a2b3c4d")
    assert not VERSION_FOLDER.fullmatch("v000003-1a2b3c4d.tmp")


def test_folders_in_use_cover_the_current_and_the_previous_files() -> None:
    pointer = DatasetPointer(
        version=2,
        current="v000002-aaaaaaaa",
        files=("v000002-aaaaaaaa/part-00000.parquet", "v000002-aaaaaaaa/part-00001.parquet"),
        rows=0,
        schema=pa.schema([]),
        previous_files=("v000001-bbbbbbbb/rewritten/part-00000.parquet",),
    )
    assert folders_in_use(pointer) == {"v000002-aaaaaaaa", "v000001-bbbbbbbb"}
    assert folders_in_use(None) == set()
