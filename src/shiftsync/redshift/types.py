"""The type contract: each Redshift type, the Arrow type it becomes, and how each read path
selects it so that the Data API (CSV or JSON) and UNLOAD (Parquet) deliver identical tables.

`TYPE_CONTRACT` is the one table; `docs/types.md` renders it (`contract_markdown_table`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import pyarrow as pa

from shiftsync.errors import SourceError

TYPE_METADATA_KEY: Final = "shiftsync.redshift_type"
NULLABLE_METADATA_KEY: Final = "shiftsync.redshift_nullable"

# Redshift's DECIMAL without a precision is DECIMAL(18,0).
DEFAULT_NUMERIC_PRECISION: Final = 18
DEFAULT_NUMERIC_SCALE: Final = 0
MAX_NUMERIC_PRECISION: Final = 38
VARCHAR_MAX_LENGTH: Final = 65535

# How a value's text (CSV field, JSON stringValue, or a Parquet column the UNLOAD select turned
# into text) becomes its Arrow value. See decode.py.
TextDecoder = Literal[
    "cast", "bool", "string", "timestamptz", "time", "timetz", "json", "hex", "interval"
]


@dataclass(frozen=True)
class Column:
    """One column of a Redshift table or result, with its canonical Redshift type name."""

    name: str
    type_name: str
    nullable: bool = True
    precision: int | None = None
    scale: int | None = None
    length: int | None = None


@dataclass(frozen=True)
class ParsedType:
    """A Redshift type spelling split into its canonical name and parameters."""

    name: str
    precision: int | None = None
    scale: int | None = None
    length: int | None = None


@dataclass(frozen=True)
class TypeRule:
    """How one canonical Redshift type travels to Arrow.

    `data_api_sql` and `unload_sql` are select expressions with `{col}` standing for the quoted
    column; `text_decoder` says how the canonical text those expressions produce is decoded.
    """

    arrow_type: Callable[[Column], pa.DataType]
    data_api_sql: str
    unload_sql: str
    text_decoder: TextDecoder
    note: str


def _decimal(column: Column) -> pa.DataType:
    precision, scale = numeric_params(column)
    return pa.decimal128(precision, scale)


def _fixed(arrow_type: pa.DataType) -> Callable[[Column], pa.DataType]:
    def factory(_column: Column) -> pa.DataType:
        return arrow_type

    return factory


COL: Final = "{col}"
# TIMESTAMPTZ: the server's text depends on the session time zone; this gives UTC with a fixed
# six-digit fraction. The era (" AD"/" BC") is printed because YYYY alone drops "BC"; the
# decoder reads " AD" as UTC and refuses BC.
TIMESTAMPTZ_DATA_API_SQL: Final = (
    "to_char(convert_timezone('UTC', {col}), 'YYYY-MM-DD HH24:MI:SS.US BC')"
)
TEXT_SQL: Final = "cast({col} as varchar)"
HEX_SQL: Final = "from_varbyte({col}, 'hex')"
WKB_HEX_SQL: Final = "from_varbyte(st_asbinary({col}), 'hex')"
JSON_SQL: Final = "json_serialize({col})"

TYPE_CONTRACT: Final[Mapping[str, TypeRule]] = {
    "int2": TypeRule(_fixed(pa.int16()), COL, COL, "cast", "SMALLINT."),
    "int4": TypeRule(_fixed(pa.int32()), COL, COL, "cast", "INTEGER."),
    "int8": TypeRule(_fixed(pa.int64()), COL, COL, "cast", "BIGINT."),
    "numeric": TypeRule(
        _decimal,
        COL,
        COL,
        "cast",
        "Exact: decimal128(p,s); DECIMAL without precision is Redshift's DECIMAL(18,0).",
    ),
    "float4": TypeRule(
        _fixed(pa.float32()),
        COL,
        COL,
        "cast",
        "NaN, Infinity and -Infinity kept. Data API text is exact only if the server prints "
        "round-trip digits (PostgreSQL 12+ does; Redshift unverified).",
    ),
    "float8": TypeRule(
        _fixed(pa.float64()),
        COL,
        COL,
        "cast",
        "As float4.",
    ),
    "bool": TypeRule(_fixed(pa.bool_()), COL, COL, "bool", "CSV text t/f (true/false accepted)."),
    "bpchar": TypeRule(
        _fixed(pa.string()),
        COL,
        COL,
        "string",
        "CHAR is blank-padded by Redshift; the padding is kept as Redshift returns it.",
    ),
    "varchar": TypeRule(_fixed(pa.string()), COL, COL, "string", "VARCHAR, TEXT, NVARCHAR."),
    "date": TypeRule(
        _fixed(pa.date32()), COL, COL, "cast", "YYYY-MM-DD; dates BC are refused (SourceError)."
    ),
    "timestamp": TypeRule(
        _fixed(pa.timestamp("us")),
        COL,
        COL,
        "cast",
        "No time zone; 0-6 fractional digits accepted; timestamps BC are refused.",
    ),
    "timestamptz": TypeRule(
        _fixed(pa.timestamp("us", tz="UTC")),
        TIMESTAMPTZ_DATA_API_SQL,
        COL,
        "timestamptz",
        "The instant, in UTC. UNLOAD writes the UTC value without a zone; it is read as UTC.",
    ),
    "time": TypeRule(
        _fixed(pa.time64("us")),
        COL,
        TEXT_SQL,
        "time",
        "UNLOAD refuses TIME in Parquet, so it travels as text. 24:00:00 has no Arrow value "
        "and is refused.",
    ),
    "timetz": TypeRule(
        _fixed(pa.string()),
        COL,
        TEXT_SQL,
        "timetz",
        "No Arrow type keeps an offset: ISO text HH:MM:SS[.ffffff]+HH:MM, e.g. 10:30:00+05:30.",
    ),
    "super": TypeRule(
        _fixed(pa.json_(pa.string())),
        JSON_SQL,
        JSON_SQL,
        "json",
        "JSON text in Arrow's canonical JSON extension type (DuckDB reads it as JSON). "
        "json_serialize returns VARCHAR: values over 64K are refused by Redshift.",
    ),
    "varbyte": TypeRule(
        _fixed(pa.binary()),
        HEX_SQL,
        HEX_SQL,
        "hex",
        "Travels as hex text (UNLOAD refuses VARBYTE in Parquet); decoded to bytes.",
    ),
    "geometry": TypeRule(
        _fixed(pa.binary()),
        WKB_HEX_SQL,
        WKB_HEX_SQL,
        "hex",
        "WKB (ST_AsBinary) as hex text; the SRID is not carried.",
    ),
    "geography": TypeRule(
        _fixed(pa.binary()),
        WKB_HEX_SQL,
        WKB_HEX_SQL,
        "hex",
        "As geometry (unverified on Redshift).",
    ),
    "hllsketch": TypeRule(
        _fixed(pa.string()),
        TEXT_SQL,
        TEXT_SQL,
        "string",
        "The sketch's text form (JSON when sparse, Base64 when dense); unverified.",
    ),
    "interval": TypeRule(
        _fixed(pa.duration("us")),
        TEXT_SQL,
        TEXT_SQL,
        "interval",
        "INTERVAL DAY TO SECOND as duration[us] (DuckDB and Parquet take it); a value with "
        "months or years is refused, and INTERVAL YEAR TO MONTH columns too.",
    ),
}

TYPE_ALIASES: Final[Mapping[str, str]] = {
    "smallint": "int2",
    "int2": "int2",
    "integer": "int4",
    "int": "int4",
    "int4": "int4",
    "bigint": "int8",
    "int8": "int8",
    "decimal": "numeric",
    "numeric": "numeric",
    "real": "float4",
    "float4": "float4",
    "double precision": "float8",
    "double": "float8",
    "float8": "float8",
    "float": "float8",
    "boolean": "bool",
    "bool": "bool",
    "char": "bpchar",
    "character": "bpchar",
    "nchar": "bpchar",
    "bpchar": "bpchar",
    "varchar": "varchar",
    "character varying": "varchar",
    "nvarchar": "varchar",
    "text": "varchar",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp without time zone": "timestamp",
    "timestamptz": "timestamptz",
    "timestamp with time zone": "timestamptz",
    "time": "time",
    "time without time zone": "time",
    "timetz": "timetz",
    "time with time zone": "timetz",
    "varbyte": "varbyte",
    "varbinary": "varbyte",
    "binary varying": "varbyte",
    "super": "super",
    "geometry": "geometry",
    "geography": "geography",
    "hllsketch": "hllsketch",
    "interval": "interval",
    "interval day to second": "interval",
    "intervald2s": "interval",
}

# Known types that no Arrow type holds exactly: refused with their own reason.
REFUSED_TYPES: Final[Mapping[str, str]] = {
    "interval year to month": "months have no fixed length, so no duration holds them exactly",
    "intervaly2m": "months have no fixed length, so no duration holds them exactly",
}

_TYPE_PATTERN: Final = re.compile(
    r"^\s*(?P<name>[a-z][a-z0-9 ]*?)\s*(?:\(\s*(?P<p1>\d+|max)\s*(?:,\s*(?P<p2>\d+)\s*)?\))?\s*$"
)
_NUMERIC_NAMES: Final = frozenset({"numeric"})
_LENGTH_NAMES: Final = frozenset({"bpchar", "varchar", "varbyte"})


def _where(table: str | None, column: str | None) -> str:
    if table and column:
        return f"column {column!r} of table {table}"
    if column:
        return f"column {column!r}"
    if table:
        return f"table {table}"
    return "a column"


def _refuse(raw: str, reason: str, table: str | None, column: str | None) -> SourceError:
    return SourceError(
        f"{_where(table, column)} has Redshift type {raw!r}, which shiftsync cannot copy "
        f"exactly: {reason}",
        fix="cast it in a view or exclude the column",
    )


def parse_type(raw: str, *, table: str | None = None, column: str | None = None) -> ParsedType:
    """Split a Redshift type spelling such as `numeric(38,10)` or `character varying(256)`."""
    text = " ".join(raw.lower().replace('"', "").split())
    match = _TYPE_PATTERN.match(text)
    if match is None:
        raise _refuse(raw, "the type is not one shiftsync knows", table, column)
    name = match.group("name")
    if name in REFUSED_TYPES:
        raise _refuse(raw, REFUSED_TYPES[name], table, column)
    canonical = TYPE_ALIASES.get(name)
    if canonical is None:
        raise _refuse(raw, "the type is not one shiftsync knows", table, column)
    p1, p2 = match.group("p1"), match.group("p2")
    if canonical in _NUMERIC_NAMES:
        if p1 == "max":
            raise _refuse(raw, "numeric(max) is not a type", table, column)
        precision = int(p1) if p1 is not None else None
        scale = int(p2) if p2 is not None else (0 if precision is not None else None)
        _check_numeric(raw, precision, scale, table, column)
        return ParsedType(canonical, precision=precision, scale=scale)
    if p2 is not None:
        raise _refuse(raw, "the type takes at most one parameter", table, column)
    if canonical in _LENGTH_NAMES and p1 is not None:
        length = VARCHAR_MAX_LENGTH if p1 == "max" else int(p1)
        return ParsedType(canonical, length=length)
    if p1 is not None:
        raise _refuse(raw, "the type takes no parameter", table, column)
    return ParsedType(canonical)


def _check_numeric(
    raw: str, precision: int | None, scale: int | None, table: str | None, column: str | None
) -> None:
    if precision is not None and not 1 <= precision <= MAX_NUMERIC_PRECISION:
        raise _refuse(raw, f"precision must be 1..{MAX_NUMERIC_PRECISION}", table, column)
    if precision is not None and scale is not None and not 0 <= scale <= precision:
        raise _refuse(raw, "scale must be between 0 and the precision", table, column)


def canonical_type_name(raw: str, *, table: str | None = None, column: str | None = None) -> str:
    """The canonical (lower-case, Redshift internal) name of a type spelling or alias."""
    return parse_type(raw, table=table, column=column).name


def column_from_type(
    name: str, raw_type: str, *, nullable: bool = True, table: str | None = None
) -> Column:
    """A Column from a name and a type spelling such as `numeric(12,2)`."""
    parsed = parse_type(raw_type, table=table, column=name)
    return Column(
        name=name,
        type_name=parsed.name,
        nullable=nullable,
        precision=parsed.precision,
        scale=parsed.scale,
        length=parsed.length,
    )


def column_from_metadata(meta: Mapping[str, object], *, table: str | None = None) -> Column:
    """A Column from one Data API `ColumnMetadata` entry (DescribeTable or a result).

    The Data API puts a character type's length in `precision` and 0 in `length`.
    """
    name = str(meta.get("name") or meta.get("label") or "")
    raw_type = str(meta.get("typeName", ""))
    parsed = parse_type(raw_type, table=table, column=name)
    precision = _positive_int(meta.get("precision"))
    nullable = meta.get("nullable", 1) != 0
    if parsed.name == "numeric":
        precision = precision or parsed.precision
        if precision is not None and precision > MAX_NUMERIC_PRECISION:
            # Redshift never reports this; PostgreSQL (the stand-in) does for an unconstrained
            # numeric. Fall back to the default; a value that does not fit is refused later.
            precision = None
        if precision is None:
            return Column(name, "numeric", nullable)
        scale = _positive_int(meta.get("scale"), allow_zero=True)
        scale = scale if scale is not None else (parsed.scale or 0)
        _check_numeric(raw_type, precision, scale, table, name)
        return Column(name, "numeric", nullable, precision=precision, scale=scale)
    if parsed.name in _LENGTH_NAMES:
        length = _positive_int(meta.get("length")) or precision or parsed.length
        return Column(name, parsed.name, nullable, length=length)
    return Column(name, parsed.name, nullable)


def _positive_int(value: object, *, allow_zero: bool = False) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if value > 0 or (allow_zero and value == 0):
        return value
    return None


def rule_for(column: Column, *, table: str | None = None) -> TypeRule:
    """The contract's rule for a column; unknown type names are refused with a SourceError."""
    rule = TYPE_CONTRACT.get(column.type_name)
    if rule is None:
        raise _refuse(column.type_name, "the type is not one shiftsync knows", table, column.name)
    return rule


def numeric_params(column: Column) -> tuple[int, int]:
    """Precision and scale of a numeric column, with Redshift's DECIMAL(18,0) default."""
    if column.precision is None:
        return DEFAULT_NUMERIC_PRECISION, DEFAULT_NUMERIC_SCALE
    return column.precision, column.scale or 0


def type_spelling(column: Column) -> str:
    """The column's type with its parameters, e.g. `numeric(38,10)` or `varchar(256)`."""
    if column.type_name == "numeric":
        precision, scale = numeric_params(column)
        return f"numeric({precision},{scale})"
    if column.type_name in _LENGTH_NAMES and column.length is not None:
        return f"{column.type_name}({column.length})"
    return column.type_name


def arrow_field(column: Column) -> pa.Field:
    """The Arrow field of a column: always nullable; the source's nullability is metadata."""
    rule = rule_for(column)
    metadata = {
        TYPE_METADATA_KEY: type_spelling(column),
        NULLABLE_METADATA_KEY: "true" if column.nullable else "false",
    }
    # Nullable everywhere so that the two read paths never differ on a flag.
    return pa.field(column.name, rule.arrow_type(column), nullable=True, metadata=metadata)


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    """The Arrow schema every read path of these columns delivers."""
    return pa.schema([arrow_field(column) for column in columns])


def contract_markdown_table() -> str:
    """The contract as a Markdown table; docs/types.md carries it verbatim (a test checks)."""
    lines = [
        "| Redshift type | Arrow type | Data API select | UNLOAD select | Notes |",
        "|---|---|---|---|---|",
    ]
    for name, rule in TYPE_CONTRACT.items():
        example = Column("c", name, precision=38 if name == "numeric" else None, scale=10)
        arrow = str(rule.arrow_type(example)).replace("decimal128(38, 10)", "decimal128(p, s)")
        data_api = rule.data_api_sql.replace("{col}", "c").replace("|", "\\|")
        unload = rule.unload_sql.replace("{col}", "c").replace("|", "\\|")
        lines.append(f"| `{name}` | `{arrow}` | `{data_api}` | `{unload}` | {rule.note} |")
    return "\n".join(lines) + "\n"
