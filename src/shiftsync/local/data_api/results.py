"""Statement results kept on disk, in pages bounded in bytes, as the Data API caches them.

Keeping pages in files keeps the stand-in's memory flat whatever the result size.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

ResultFormat = Literal["JSON", "CSV"]

# PostgreSQL type names → the names Redshift reports in ColumnMetadata.typeName.
REDSHIFT_TYPE_NAMES: Final[dict[str, str]] = {
    "text": "varchar",
    "name": "varchar",
    "char": "bpchar",
    "bytea": "varbyte",
    "json": "super",
    "jsonb": "super",
    "oid": "int8",
    "float4": "float4",
    "float8": "float8",
}

LONG_TYPES: Final = frozenset({"int2", "int4", "int8"})
DOUBLE_TYPES: Final = frozenset({"float4", "float8"})
SIGNED_TYPES: Final = LONG_TYPES | DOUBLE_TYPES | {"numeric"}


class LimitExceeded(Exception):
    """A result broke one of the Data API's limits; the statement FAILS with this message."""


@dataclass(frozen=True)
class Limits:
    max_sql_bytes: int = 100 * 1024
    max_row_bytes: int = 64 * 1024
    max_result_bytes: int = 500 * 1024 * 1024
    page_bytes: int = 1024 * 1024
    result_ttl_seconds: float = 24 * 3600


# precision/scale the Data API reports for types without parameters (Redshift's JDBC values;
# AWS documents none of them: int and timestamp seen in AWS's answers, the others unverified).
FIXED_PRECISION: Final[dict[str, tuple[int, int]]] = {
    "int2": (5, 0),
    "int4": (10, 0),
    "int8": (19, 0),
    "float4": (8, 8),
    "float8": (17, 17),
    "bool": (1, 0),
    "date": (13, 0),
    "time": (15, 6),
    "timetz": (21, 6),
    "timestamp": (29, 6),
    "timestamptz": (35, 6),
}
# A character type without a length: Redshift's VARCHAR/TEXT default is 256 bytes; an
# expression of PostgreSQL's unbounded text has no such default, so it reports the maximum.
MAX_VARCHAR_BYTES: Final = 65535


def column_metadata(
    name: str,
    type_name: str,
    typmod: int,
    *,
    schema: str = "",
    table: str = "",
    nullable: int = 1,
    default: str | None = None,
    label: bool = True,
) -> dict[str, Any]:
    """One ColumnMetadata entry, shaped as the Data API returns it.

    A character type's size is in `precision`, with `length` 0, as AWS fills it; DescribeTable's
    entries have no `label` (`label=False`).
    """
    type_name = REDSHIFT_TYPE_NAMES.get(type_name, type_name)
    precision, scale = FIXED_PRECISION.get(type_name, (0, 0))
    if type_name == "numeric" and typmod >= 4:
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    elif type_name in ("varchar", "bpchar") and typmod >= 4:
        precision = typmod - 4
    elif type_name == "varchar":
        precision = MAX_VARCHAR_BYTES
    meta: dict[str, Any] = {
        "isCaseSensitive": type_name in ("varchar", "bpchar"),
        "isCurrency": False,
        "isSigned": type_name in SIGNED_TYPES,
        "length": 0,
        "name": name,
        "nullable": nullable,
        "precision": precision,
        "scale": scale,
        "schemaName": schema,
        "tableName": table,
        "typeName": type_name,
    }
    if label:
        meta["label"] = name
    if default is not None:
        meta["columnDefault"] = default
    return meta


def json_field(raw: bytes | None, type_name: str, *, blob: bool = False) -> dict[str, Any]:
    """A Field union from PostgreSQL's text form of a value.

    `blob`: VARBYTE as `blobValue` (base64 on the wire) instead of hex `stringValue`; AWS does
    not say which it sends, so the stand-in can serve both.
    """
    if raw is None:
        return {"isNull": True}
    if blob and type_name == "varbyte" and raw.startswith(b"\\x"):
        return {"blobValue": base64.b64encode(bytes.fromhex(raw[2:].decode())).decode()}
    if type_name in LONG_TYPES:
        return {"longValue": int(raw)}
    if type_name in DOUBLE_TYPES:
        return {"doubleValue": _double(float(raw))}
    if type_name == "bool":
        return {"booleanValue": raw == b"t"}
    if type_name == "varbyte" and raw.startswith(b"\\x"):
        return {"stringValue": raw[2:].decode()}
    return {"stringValue": raw.decode()}


def _double(number: float) -> float | str:
    """A doubleValue: JSON has no NaN or infinities, so the AWS JSON 1.1 protocol sends them as
    the strings "NaN", "Infinity" and "-Infinity" (Python's json would write bare NaN tokens,
    which are not JSON)."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def csv_field(raw: bytes | None) -> bytes:
    """PostgreSQL's CSV rendering of a value: NULL unquoted empty, "" for the empty string."""
    if raw is None:
        return b""
    if raw == b"" or any(c in raw for c in (b",", b'"', b"\n", b"\r")) or raw != raw.strip():
        return b'"' + raw.replace(b'"', b'""') + b'"'
    return raw


@dataclass
class StoredResult:
    """The pages of one statement's result, in a folder of its own."""

    folder: Path
    result_format: ResultFormat
    limits: Limits
    columns: list[dict[str, Any]] = field(default_factory=list)
    page_rows: list[int] = field(default_factory=list)
    total_rows: int = 0
    total_bytes: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _buffer_rows: int = 0
    _json_first: bool = True
    # The CSV header line (kept to serve it again under a framing that repeats it).
    csv_header: bytes = b""

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    # -- writing ---------------------------------------------------------------------------
    def _check_row(self, size: int) -> None:
        if size > self.limits.max_row_bytes:
            raise LimitExceeded(
                f"ERROR: Packet for query is too large ({size} > {self.limits.max_row_bytes}). "
                "The Data API returns rows of at most 64 KB."
            )
        self.total_bytes += size
        if self.total_bytes > self.limits.max_result_bytes:
            raise LimitExceeded("ERROR: Database response exceeded size limit")

    def add_csv_line(
        self, line: bytes | bytearray | memoryview, *, is_header: bool = False
    ) -> None:
        if is_header:
            self.csv_header = bytes(line)
        else:
            self._check_row(len(line))
            self._buffer_rows += 1
            self.total_rows += 1
        self._buffer += line
        if len(self._buffer) >= self.limits.page_bytes:
            self._flush()

    def add_json_row(self, fields: list[dict[str, Any]]) -> None:
        # allow_nan=False: a bare NaN token is not JSON, and AWS never sends one.
        # ensure_ascii=False: the limit is on the row's UTF-8 bytes, not on \\u escapes.
        encoded = json.dumps(
            fields, separators=(",", ":"), allow_nan=False, ensure_ascii=False
        ).encode()
        self._check_row(len(encoded))
        self._buffer += (b"[" if self._json_first else b",") + encoded
        self._json_first = False
        self._buffer_rows += 1
        self.total_rows += 1
        if len(self._buffer) >= self.limits.page_bytes:
            self._flush()

    def _flush(self) -> None:
        if self.result_format == "JSON":
            body = bytes(self._buffer) + b"]" if self._buffer else b"[]"
            self._json_first = True
        else:
            body = bytes(self._buffer)
        (self.folder / f"page-{len(self.page_rows):06d}").write_bytes(body)
        self.page_rows.append(self._buffer_rows)
        self._buffer.clear()
        self._buffer_rows = 0

    def finish(self) -> None:
        if self._buffer or not self.page_rows:
            self._flush()

    # -- reading ---------------------------------------------------------------------------
    def page_count(self) -> int:
        return len(self.page_rows)

    def page(self, index: int) -> bytes:
        return (self.folder / f"page-{index:06d}").read_bytes()

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def encode_token(statement_id: str, page: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([statement_id, page]).encode()).decode()


def decode_token(token: str) -> tuple[str, int] | None:
    try:
        statement_id, page = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(statement_id, str) or not isinstance(page, int):
        return None
    return statement_id, page
