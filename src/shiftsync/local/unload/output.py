"""What an UNLOAD writes, pure: object names, how each column is written, the manifest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from shiftsync.local.unload.grammar import (
    MAX_MAX_FILE_BYTES,
    PARQUET_SIZE_STEP,
    UnloadCommand,
    UnloadError,
    UnloadFormat,
)

# -- file names ---------------------------------------------------------------------------------


def file_extension(command: UnloadCommand) -> str:
    if command.extension is not None:
        return "." + command.extension.lstrip(".") if command.extension else ""
    return ".parquet" if command.format == "PARQUET" else ""


def data_key(command: UnloadCommand, slice_number: int, part: int) -> str:
    """`<prefix>0000_part_00.parquet` per slice, or `<prefix>000.parquet` with PARALLEL OFF."""
    if command.parallel:
        return f"{command.prefix}{slice_number:04d}_part_{part:02d}{file_extension(command)}"
    return f"{command.prefix}{part:03d}{file_extension(command)}"


def manifest_key(command: UnloadCommand) -> str:
    return f"{command.prefix}manifest"


def effective_max_file_bytes(command: UnloadCommand, default: int = MAX_MAX_FILE_BYTES) -> int:
    size = command.max_file_bytes or default
    if command.format == "PARQUET" and size >= PARQUET_SIZE_STEP:
        size -= size % PARQUET_SIZE_STEP
    return size


# -- columns ------------------------------------------------------------------------------------

# Redshift's spelling of each result type, as UNLOAD's errors and the manifest name them.
REDSHIFT_TYPE_TITLES: Final[dict[str, str]] = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "numeric": "numeric",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "bpchar": "character",
    "varchar": "character varying",
    "date": "date",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "time": "time without time zone",
    "timetz": "time with time zone",
    "varbyte": "varbyte",
    "varbinary": "varbyte",
    "geometry": "geometry",
    "geography": "geography",
    "hllsketch": "hllsketch",
    "super": "super",
    "interval": "interval",
}
# Types Redshift refuses to write to Parquet ("… is only supported for TEXT/CSV.").
PARQUET_REFUSED: Final = frozenset(
    {"time", "timetz", "varbyte", "varbinary", "geometry", "geography", "hllsketch"}
)
_BINARY: Final = frozenset({"varbyte", "varbinary", "geometry", "geography"})
_ARROW_TYPES: Final[dict[str, pa.DataType]] = {
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us"),
}


@dataclass(frozen=True)
class ColumnPlan:
    name: str
    type_name: str
    sql: str  # the expression COPY writes, over the subquery's column alias
    arrow: pa.DataType


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def plan_columns(columns: Sequence[Mapping[str, Any]], fmt: UnloadFormat) -> list[ColumnPlan]:
    """How each result column (Data API ColumnMetadata) is written; refused types raise."""
    plans: list[ColumnPlan] = []
    for index, column in enumerate(columns):
        name, type_name = str(column["name"]), str(column["typeName"])
        ref = _quote_ident(f"c{index}")
        if fmt == "PARQUET" and type_name in PARQUET_REFUSED:
            title = REDSHIFT_TYPE_TITLES[type_name]
            raise UnloadError(
                f'ERROR: UNLOAD {title} column "{name}" is only supported for TEXT/CSV.'
            )
        expression = ref
        arrow: pa.DataType = _ARROW_TYPES.get(type_name, pa.string())
        if type_name == "timestamptz" and fmt == "PARQUET":
            # Parquet gets the UTC instant without its zone, as Redshift writes it.
            expression = f"({ref} AT TIME ZONE 'UTC')"
        elif type_name == "numeric":
            precision, scale = int(column.get("precision") or 0), int(column.get("scale") or 0)
            if 0 < precision <= 38:
                arrow = pa.decimal128(precision, scale)
        elif type_name == "super":
            expression = f"rs_catalog.json_serialize({ref}::jsonb::rs_catalog.super)"
        elif type_name in _BINARY:
            expression = f"encode({ref}::bytea, 'hex')"
        plans.append(ColumnPlan(name, type_name, expression, arrow))
    return plans


def copy_sql(query: str, plans: Sequence[ColumnPlan], command: UnloadCommand) -> str:
    """The COPY that streams the query's rows as CSV text, one expression per column."""
    aliases = ", ".join(_quote_ident(f"c{i}") for i in range(len(plans)))
    select = ", ".join(plan.sql for plan in plans) or "NULL"
    options = ["FORMAT csv"]
    if command.format == "CSV":
        options.append(f"DELIMITER {_quote_literal(command.delimiter)}")
        if command.null_as is not None:
            options.append(f"NULL {_quote_literal(command.null_as)}")
    return (
        f"COPY (SELECT {select} FROM ({query}) AS unload_query({aliases})) "
        f"TO STDOUT ({', '.join(options)})"
    )


def csv_header(plans: Sequence[ColumnPlan], delimiter: str) -> bytes:
    """The header line Redshift writes with HEADER: the column names, quoted only when needed."""
    fields = []
    for plan in plans:
        name = plan.name
        if any(c in name for c in (delimiter, '"', "\n", "\r")):
            name = '"' + name.replace('"', '""') + '"'
        fields.append(name)
    return (delimiter.join(fields) + "\n").encode()


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# -- manifest -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenFile:
    key: str
    content_length: int
    record_count: int


def manifest_type(column: Mapping[str, Any]) -> dict[str, Any]:
    type_name = str(column["typeName"])
    element: dict[str, Any] = {"base": REDSHIFT_TYPE_TITLES.get(type_name, type_name)}
    if type_name == "numeric" and column.get("precision"):
        element["precision"] = int(column["precision"])
        element["scale"] = int(column.get("scale") or 0)
    elif type_name in ("bpchar", "varchar") and column.get("length"):
        element["max_length"] = int(column["length"])
    return element


def build_manifest(
    bucket: str,
    files: Sequence[WrittenFile],
    columns: Sequence[Mapping[str, Any]],
    *,
    verbose: bool,
) -> dict[str, Any]:
    """The manifest document; VERBOSE adds record counts, the schema, totals and the author."""
    if not verbose:
        return {
            "entries": [
                {"url": f"s3://{bucket}/{f.key}", "meta": {"content_length": f.content_length}}
                for f in files
            ]
        }
    return {
        "entries": [
            {
                "url": f"s3://{bucket}/{f.key}",
                "meta": {"content_length": f.content_length, "record_count": f.record_count},
            }
            for f in files
        ],
        "schema": {
            "elements": [{"name": str(c["name"]), "type": manifest_type(c)} for c in columns]
        },
        "meta": {
            "content_length": sum(f.content_length for f in files),
            "record_count": sum(f.record_count for f in files),
        },
        "author": {"name": "Amazon Redshift", "version": "1.0.0"},
    }
