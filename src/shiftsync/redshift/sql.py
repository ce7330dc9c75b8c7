"""Pure SQL builders for Redshift: quoting, the read SELECT, range predicates, UNLOAD, COUNT.

No I/O. Every identifier goes through `quote_ident` and every literal through `quote_literal`.

Backslashes: Redshift may treat a backslash inside a string literal as an escape (UNLOAD's own
docs have asked for `\\'` and `\\\\` in the quoted query), PostgreSQL does not. So no literal
built here ever contains one: `quote_literal` spells it `chr(92)`, and `build_unload_sql`
refuses a select that still contains a backslash (one inside a quoted identifier).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final, Literal

from shiftsync.errors import ConfigError
from shiftsync.redshift.plan import KeyRange
from shiftsync.redshift.types import Column, canonical_type_name, rule_for
from shiftsync.sql_quote import quote_redshift

Method = Literal["data_api", "unload"]

_BACKSLASH_SQL: Final = "chr(92)"
_INTEGER: Final = re.compile(r"^[+-]?\d+$")
_DECIMAL: Final = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_FLOAT: Final = re.compile(r"^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]?Infinity)$")
_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME: Final = r"\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?"
_TIMESTAMP: Final = re.compile(rf"^\d{{4}}-\d{{2}}-\d{{2}}(?:[ T]{_TIME})?$")
_TIMESTAMPTZ: Final = re.compile(
    rf"^\d{{4}}-\d{{2}}-\d{{2}}(?:[ T]{_TIME})?(?:Z|[+-]\d{{2}}(?::?\d{{2}})?)?$"
)
_TIME_ONLY: Final = re.compile(rf"^{_TIME}$")
_BOOL: Final = {"true": "true", "t": "true", "false": "false", "f": "false"}

# How a bound of a range predicate is written, per canonical type. Types absent here cannot
# bound a range (SUPER, VARBYTE, GEOMETRY... have no useful order).
RANGE_LITERALS: Final[Mapping[str, str]] = {
    "int2": "integer",
    "int4": "integer",
    "int8": "integer",
    "numeric": "decimal",
    "float4": "float",
    "float8": "float",
    "bool": "bool",
    "bpchar": "string",
    "varchar": "string",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "time": "time",
}

_ARN: Final = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_KMS_KEY: Final = re.compile(r"^[\w:/+=,.@-]+$")
_REGION: Final = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")
_TRAILING_LIMIT: Final = re.compile(r"\blimit\s+(?:\d+|all)\s*;?\s*$", re.IGNORECASE)
MAX_ROLE_CHAIN: Final = 10
MIN_FILE_SIZE_MB: Final = 5
MAX_FILE_SIZE_MB: Final = 6200


def quote_ident(name: str) -> str:
    """Always double-quote a Redshift identifier, doubling inner double quotes."""
    return quote_redshift(name)


def quote_literal(value: str) -> str:
    """A SQL string literal; a backslash is spelled `chr(92)` so it means itself everywhere."""
    if "\x00" in value:
        raise ConfigError(
            f"value {value!r} contains a NUL character, which SQL cannot hold",
            fix="remove the NUL character from the value",
        )
    if "\\" not in value:
        return _plain_literal(value)
    parts = value.split("\\")
    pieces: list[str] = []
    for index, part in enumerate(parts):
        if index:
            pieces.append(_BACKSLASH_SQL)
        if part:
            pieces.append(_plain_literal(part))
    return "(" + " || ".join(pieces) + ")"


def _plain_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def qualified(schema: str, table: str) -> str:
    """`"schema"."table"`."""
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def select_expression(column: Column, method: Method) -> str:
    """The select-list entry of one column: its method's expression, aliased back to its name."""
    rule = rule_for(column)
    template = rule.data_api_sql if method == "data_api" else rule.unload_sql
    quoted = quote_ident(column.name)
    expression = template.replace("{col}", quoted)
    if expression == quoted:
        return quoted
    return f"{expression} AS {quoted}"


def build_select_sql(
    schema: str,
    table: str,
    columns: Sequence[Column],
    *,
    method: Method,
    where: str | None = None,
    order_by: Sequence[str] = (),
) -> str:
    """The SELECT that reads `columns` of a table for one read method.

    `where` is an already-built boolean SQL expression (see `build_range_predicate`).
    """
    if method not in ("data_api", "unload"):
        raise ConfigError(f"read method {method!r} is not known", fix="use 'data_api' or 'unload'")
    if not columns:
        raise ConfigError(
            f"table {schema}.{table}: no columns to read",
            fix="select at least one column, or remove the table from the sync",
        )
    select_list = ",\n  ".join(select_expression(column, method) for column in columns)
    sql = f"SELECT\n  {select_list}\nFROM {qualified(schema, table)}"
    if where:
        sql += f"\nWHERE {where}"
    if order_by:
        # Qualified, so ORDER BY means the table's column and not the select's alias of the
        # same name (a wrapped text form such as json_serialize does not sort the same way).
        keys = (f"{quote_ident(table)}.{quote_ident(name)}" for name in order_by)
        sql += "\nORDER BY " + ", ".join(keys)
    return sql


def build_count_sql(schema: str, table: str, where: str | None = None) -> str:
    """`SELECT count(*)` of a table, optionally filtered."""
    sql = f"SELECT count(*) AS {quote_ident('row_count')}\nFROM {qualified(schema, table)}"
    if where:
        sql += f"\nWHERE {where}"
    return sql


def build_select_count_sql(select_sql: str) -> str:
    """`SELECT count(*)` of the rows an already-built SELECT returns."""
    if not select_sql.strip():
        raise ConfigError("an empty SELECT cannot be counted", fix="give the SELECT to count")
    count = quote_ident("row_count")
    return f"SELECT count(*) AS {count}\nFROM (\n{select_sql}\n) AS {quote_ident('q')}"


def build_range_predicate(
    column: str,
    low: str | None,
    high: str | None,
    *,
    low_inclusive: bool,
    high_inclusive: bool,
    type_name: str,
) -> str | None:
    """`"col" >= low AND "col" < high` (either bound optional); None when both are None.

    Bounds arrive as text (from state files or key ranges); each is checked against the
    column's type before it is written into SQL.
    """
    canonical = canonical_type_name(type_name, column=column)
    kind = RANGE_LITERALS.get(canonical)
    if kind is None:
        raise ConfigError(
            f"column {column!r} has type {canonical}, which cannot bound a range",
            fix="choose a cursor or key column of a numeric, text, date or time type",
        )
    quoted = quote_ident(column)
    terms: list[str] = []
    if low is not None:
        operator = ">=" if low_inclusive else ">"
        terms.append(f"{quoted} {operator} {_typed_literal(low, kind, canonical, column)}")
    if high is not None:
        operator = "<=" if high_inclusive else "<"
        terms.append(f"{quoted} {operator} {_typed_literal(high, kind, canonical, column)}")
    if not terms:
        return None
    return " AND ".join(terms)


def range_predicate(key: Column, key_range: KeyRange) -> str:
    """The condition of one range (quoted identifier, typed literals)."""
    quoted = quote_ident(key.name)
    if key_range.is_null:
        return f"{quoted} IS NULL"
    predicate = build_range_predicate(
        key.name,
        key_range.low,
        key_range.high,
        low_inclusive=True,
        high_inclusive=key_range.high_inclusive,
        type_name=key.type_name,
    )
    return predicate if predicate is not None else f"{quoted} IS NOT NULL"


def _typed_literal(value: str, kind: str, canonical: str, column: str) -> str:
    text = value.strip()
    if kind == "integer" and _INTEGER.match(text):
        return str(int(text))
    if kind == "decimal" and _DECIMAL.match(text):
        return text
    if kind == "float" and _FLOAT.match(text):
        return f"{_plain_literal(text)}::{canonical}"
    if kind == "bool" and text.lower() in _BOOL:
        return _BOOL[text.lower()]
    if kind == "string":
        # Strings are compared as they are: no strip.
        return quote_literal(value)
    patterns = {
        "date": _DATE,
        "timestamp": _TIMESTAMP,
        "timestamptz": _TIMESTAMPTZ,
        "time": _TIME_ONLY,
    }
    pattern = patterns.get(kind)
    if pattern is not None and pattern.match(text):
        return f"{_plain_literal(text)}::{canonical}"
    raise ConfigError(
        f"bound {value!r} for column {column!r} is not a valid {canonical} value",
        fix=f"give a {canonical} value such as {_EXAMPLES[kind]}",
    )


_EXAMPLES: Final[Mapping[str, str]] = {
    "integer": "42",
    "decimal": "12.50",
    "float": "1.5e3",
    "bool": "true",
    "date": "2024-01-31",
    "timestamp": "2024-01-31 12:00:00.000000",
    "timestamptz": "2024-01-31 12:00:00+00",
    "time": "12:00:00",
}


def build_unload_sql(
    select_sql: str,
    s3_prefix: str,
    iam_role: str,
    *,
    kms_key_id: str | None = None,
    region: str | None = None,
    max_file_size_mb: int | None = None,
    parallel: bool = True,
) -> str:
    """`UNLOAD ('<select>') TO '<prefix>' IAM_ROLE '<arn>' FORMAT PARQUET MANIFEST VERBOSE ...`."""
    _check_unload_select(select_sql)
    _check_s3_prefix(s3_prefix)
    _check_iam_role(iam_role)
    lines = [
        f"UNLOAD ({_plain_literal(select_sql)})",
        f"TO {_plain_literal(s3_prefix)}",
        f"IAM_ROLE {_plain_literal(iam_role)}",
        "FORMAT PARQUET",
        "MANIFEST VERBOSE",
    ]
    if not parallel:
        lines.append("PARALLEL OFF")
    if max_file_size_mb is not None:
        if not MIN_FILE_SIZE_MB <= max_file_size_mb <= MAX_FILE_SIZE_MB:
            raise ConfigError(
                f"UNLOAD max file size {max_file_size_mb} MB is out of range",
                fix=f"use {MIN_FILE_SIZE_MB}..{MAX_FILE_SIZE_MB} MB",
            )
        lines.append(f"MAXFILESIZE {max_file_size_mb} MB")
    if region is not None:
        if not _REGION.match(region):
            raise ConfigError(
                f"UNLOAD region {region!r} is not an AWS region name",
                fix="use the bucket's region, such as us-east-1",
            )
        lines.append(f"REGION {_plain_literal(region)}")
    if kms_key_id is not None:
        if not _KMS_KEY.match(kms_key_id):
            raise ConfigError(
                f"UNLOAD KMS key {kms_key_id!r} is not a key id, alias or ARN",
                fix="give the KMS key id or ARN of the staging bucket's key",
            )
        lines.append(f"ENCRYPTED KMS_KEY_ID {_plain_literal(kms_key_id)}")
    return "\n".join(lines)


def _check_unload_select(select_sql: str) -> None:
    if "\\" in select_sql:
        raise ConfigError(
            "the UNLOAD select contains a backslash (in a column or table name), which "
            "Redshift may read as an escape inside UNLOAD's quoted query",
            fix="read this table with method data_api, or rename the column",
        )
    if "\x00" in select_sql:
        raise ConfigError(
            "the UNLOAD select contains a NUL character", fix="remove it from the names"
        )
    if _TRAILING_LIMIT.search(select_sql):
        raise ConfigError(
            "the UNLOAD select ends with LIMIT, which Redshift refuses in UNLOAD",
            fix="move the LIMIT into a subquery (where key in (select ... limit n)) or read "
            "the table with method data_api",
        )


def _check_s3_prefix(s3_prefix: str) -> None:
    if not s3_prefix.startswith("s3://") or len(s3_prefix) <= len("s3://"):
        raise ConfigError(
            f"UNLOAD target {s3_prefix!r} is not an s3:// prefix",
            fix="set the staging location to s3://bucket/prefix/",
        )
    if any(ch in s3_prefix for ch in "'\\\x00") or any(ch.isspace() for ch in s3_prefix):
        raise ConfigError(
            f"UNLOAD target {s3_prefix!r} contains a quote, backslash or blank",
            fix="use an S3 prefix made of letters, digits, '/', '-', '_' and '.'",
        )


def _check_iam_role(iam_role: str) -> None:
    roles = iam_role.split(",")
    if len(roles) > MAX_ROLE_CHAIN or not all(_ARN.match(role) for role in roles):
        raise ConfigError(
            f"UNLOAD IAM_ROLE {iam_role!r} is not an IAM role ARN or a chain of at most "
            f"{MAX_ROLE_CHAIN} comma-separated ARNs (no spaces)",
            fix="give the ARN of the role associated with the Redshift namespace, e.g. "
            "arn:aws:iam::123456789012:role/redshift-unload",
        )
