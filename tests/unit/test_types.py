"""The type contract: aliases, parameters, Arrow types, and the docs that render it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from shiftsync.errors import SourceError
from shiftsync.redshift.types import (
    NULLABLE_METADATA_KEY,
    TYPE_CONTRACT,
    TYPE_METADATA_KEY,
    Column,
    ParsedType,
    arrow_field,
    arrow_schema,
    canonical_type_name,
    column_from_metadata,
    column_from_type,
    contract_markdown_table,
    parse_type,
    type_spelling,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "types.md"

EXPECTED_ARROW: dict[str, pa.DataType] = {
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "numeric": pa.decimal128(18, 0),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "bpchar": pa.string(),
    "varchar": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "time": pa.time64("us"),
    "timetz": pa.string(),
    "super": pa.json_(pa.string()),
    "varbyte": pa.binary(),
    "geometry": pa.binary(),
    "geography": pa.binary(),
    "hllsketch": pa.string(),
    "interval": pa.duration("us"),
}


def test_contract_covers_exactly_the_expected_types() -> None:
    assert set(TYPE_CONTRACT) == set(EXPECTED_ARROW)


@pytest.mark.parametrize("name", list(TYPE_CONTRACT))
def test_every_rule_is_complete(name: str) -> None:
    rule = TYPE_CONTRACT[name]
    assert rule.arrow_type(Column("c", name)) == EXPECTED_ARROW[name]
    assert "{col}" in rule.data_api_sql
    assert "{col}" in rule.unload_sql
    assert rule.text_decoder in {
        "cast",
        "bool",
        "string",
        "timestamptz",
        "time",
        "timetz",
        "json",
        "hex",
        "interval",
    }
    assert rule.note.strip()
    assert canonical_type_name(name) == name


@pytest.mark.parametrize("name", list(TYPE_CONTRACT))
def test_every_canonical_type_is_documented(name: str) -> None:
    assert f"`{name}`" in DOCS.read_text(encoding="utf-8")


def test_docs_carry_the_generated_contract_table() -> None:
    assert contract_markdown_table() in DOCS.read_text(encoding="utf-8"), (
        "docs/types.md is out of date: paste contract_markdown_table() into it"
    )


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("smallint", "int2"),
        ("INTEGER", "int4"),
        ("int", "int4"),
        ("bigint", "int8"),
        ("decimal", "numeric"),
        ("real", "float4"),
        ("double precision", "float8"),
        ("float", "float8"),
        ("boolean", "bool"),
        ("char", "bpchar"),
        ("character", "bpchar"),
        ("nchar", "bpchar"),
        ("character varying", "varchar"),
        ("nvarchar", "varchar"),
        ("text", "varchar"),
        ("timestamp without time zone", "timestamp"),
        ("timestamp with time zone", "timestamptz"),
        ("time without time zone", "time"),
        ("Time  With   Time Zone", "timetz"),
        ("varbinary", "varbyte"),
        ("binary varying", "varbyte"),
        ("interval day to second", "interval"),
    ],
)
def test_aliases(raw: str, canonical: str) -> None:
    assert canonical_type_name(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("numeric(38,10)", ParsedType("numeric", precision=38, scale=10)),
        ("DECIMAL( 12 , 2 )", ParsedType("numeric", precision=12, scale=2)),
        ("numeric(10)", ParsedType("numeric", precision=10, scale=0)),
        ("numeric", ParsedType("numeric")),
        ("character varying(256)", ParsedType("varchar", length=256)),
        ("varchar(max)", ParsedType("varchar", length=65535)),
        ("char(1)", ParsedType("bpchar", length=1)),
        ("varbyte(1024)", ParsedType("varbyte", length=1024)),
        ("timestamptz", ParsedType("timestamptz")),
    ],
)
def test_parse_type_with_parameters(raw: str, parsed: ParsedType) -> None:
    assert parse_type(raw) == parsed


@pytest.mark.parametrize(
    "raw",
    [
        "money",
        "int4[]",
        "numeric(39,0)",
        "numeric(10,11)",
        "int(4)",
        "varchar(1,2)",
        "interval year to month",
        "",
    ],
)
def test_unknown_or_unrepresentable_types_are_refused_naming_table_and_column(raw: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_type(raw, table="public.sales", column="price")
    assert "public.sales" in caught.value.message
    assert "'price'" in caught.value.message
    assert caught.value.fix == "cast it in a view or exclude the column"


def test_default_numeric_is_decimal_18_0() -> None:
    field = arrow_field(Column("n", "numeric"))
    assert field.type == pa.decimal128(18, 0)
    assert field.metadata[TYPE_METADATA_KEY.encode()] == b"numeric(18,0)"


def test_fields_are_nullable_and_carry_the_source_type_and_nullability() -> None:
    field = arrow_field(Column("price", "numeric", nullable=False, precision=38, scale=10))
    assert field.nullable
    assert field.type == pa.decimal128(38, 10)
    assert field.metadata == {
        TYPE_METADATA_KEY.encode(): b"numeric(38,10)",
        NULLABLE_METADATA_KEY.encode(): b"false",
    }


def test_type_spelling() -> None:
    assert type_spelling(Column("c", "varchar", length=256)) == "varchar(256)"
    assert type_spelling(Column("c", "bpchar")) == "bpchar"
    assert type_spelling(Column("c", "timestamptz")) == "timestamptz"


def test_arrow_schema_keeps_order_and_names() -> None:
    schema = arrow_schema([Column("b", "int4"), Column("A b", "varchar")])
    assert schema.names == ["b", "A b"]
    assert schema.types == [pa.int32(), pa.string()]


def test_unknown_type_name_in_a_column_is_refused() -> None:
    with pytest.raises(SourceError, match="'c'"):
        arrow_field(Column("c", "money"))


def test_column_from_type() -> None:
    assert column_from_type("p", "numeric(8,2)", nullable=False) == Column(
        "p", "numeric", nullable=False, precision=8, scale=2
    )


def test_column_from_data_api_metadata() -> None:
    # Shapes from the Data API docs: varchar(200) has precision 200 and length 0.
    assert column_from_metadata(
        {"name": "v", "typeName": "varchar", "precision": 200, "scale": 0, "length": 0}
    ) == Column("v", "varchar", length=200)
    assert column_from_metadata(
        {"name": "p", "typeName": "numeric", "precision": 8, "scale": 2, "nullable": 0}
    ) == Column("p", "numeric", nullable=False, precision=8, scale=2)
    assert column_from_metadata(
        {"name": "t", "typeName": "timestamp", "precision": 29, "scale": 6, "nullable": 1}
    ) == Column("t", "timestamp")


def test_super_is_json_in_duckdb() -> None:
    # The reason SUPER is Arrow's JSON extension type: DuckDB ingests it as JSON.
    column = Column("doc", "super")
    table = pa.Table.from_arrays(
        [pa.ExtensionArray.from_storage(arrow_field(column).type, pa.array(['{"a": [1, 2]}']))],
        schema=arrow_schema([column]),
    )
    con = duckdb.connect()
    con.register("t", table)
    assert con.sql("select typeof(doc), doc->'$.a[1]' from t").fetchall() == [("JSON", "2")]


def test_interval_duration_is_an_interval_in_duckdb() -> None:
    column = Column("gap", "interval")
    table = pa.Table.from_arrays(
        [pa.array([90_000_000_000], type=pa.duration("us"))], schema=arrow_schema([column])
    )
    con = duckdb.connect()
    con.register("t", table)
    assert con.sql("select typeof(gap), epoch(gap) from t").fetchall() == [("INTERVAL", 90000.0)]


def test_every_contract_type_survives_parquet_in_memory() -> None:
    # Parquet is a destination: every contract type must be writable and read back unchanged.
    import io

    import pyarrow.parquet as pq

    columns = [Column(f"c_{name}", name) for name in TYPE_CONTRACT]
    schema = arrow_schema(columns)
    table = schema.empty_table()
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    buffer.seek(0)
    assert pq.read_table(buffer).schema.equals(schema, check_metadata=True)


def test_column_from_metadata_numeric_edges() -> None:
    # PostgreSQL reports a huge precision for an unconstrained numeric: Redshift's default.
    assert column_from_metadata(
        {"name": "n", "typeName": "numeric", "precision": 131089, "scale": 0}
    ) == Column("n", "numeric")
    assert column_from_metadata({"name": "n", "typeName": "numeric(12,3)"}) == Column(
        "n", "numeric", precision=12, scale=3
    )
    with pytest.raises(SourceError, match="scale"):
        column_from_metadata({"name": "n", "typeName": "numeric", "precision": 5, "scale": 9})


def test_column_from_metadata_refuses_unknown_types_naming_the_column() -> None:
    with pytest.raises(SourceError, match=r"'x' of table public\.t"):
        column_from_metadata({"name": "x", "typeName": "_int4"}, table="public.t")
