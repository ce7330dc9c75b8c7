"""Check, once per connection, that the Data API's CSV reads as shiftsync expects.

AWS documents no CSV dialect for GetStatementResultV2 (how NULL, the empty string, quotes and
newlines come). shiftsync reads PostgreSQL's (RFC 4180, NULL an empty unquoted field, the
empty string `""`). Rather than guess, a probe statement returns the values that tell
dialects apart through both result formats; if the CSV reading differs from the JSON one, the
connection reads JSON results from then on, and says so. The verdict is kept per workspace in
`.shiftsync/csv_dialect.json` (owner-only), keyed by region, workgroup and database.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from shiftsync.errors import StateError
from shiftsync.redshift.sql import quote_ident, quote_literal
from shiftsync.redshift.stats import ReadStats
from shiftsync.redshift.types import Column

if TYPE_CHECKING:
    from shiftsync.config import RedshiftServerlessConfig
    from shiftsync.redshift.data_api import DataApi

log = logging.getLogger("shiftsync.redshift")

ResultFormat = Literal["csv", "json"]
CACHE_FILE_NAME: Final = "csv_dialect.json"
LONG_VALUE: Final = "0123456789abcdef" * 640  # 10 KB: longer than any parser's first guess

# name → value (None is NULL): each one tells some CSV dialect from PostgreSQL's.
PROBE_VALUES: Final[dict[str, str | None]] = {
    "null": None,
    "empty": "",
    "null_text": "NULL",
    "backslash_n": "\\N",
    "quotes": 'say "hi"',
    "comma": "a,b",
    "newline": "two\nlines",
    "crlf": "cr\r\nlf",
    "unicode": "ünïcödé 日本 😀",
    "padded": "  padded  ",
    "long": LONG_VALUE,
}


def probe_sql() -> str:
    """One row, one varchar column per probe value."""
    items = []
    for name, value in PROBE_VALUES.items():
        literal = "NULL" if value is None else quote_literal(value)
        items.append(f"CAST({literal} AS varchar(65535)) AS {quote_ident(name)}")
    return "SELECT " + ", ".join(items)


def probe_columns() -> list[Column]:
    return [Column(name, "varchar", True, length=65535) for name in PROBE_VALUES]


@dataclass(frozen=True)
class Verdict:
    result_format: ResultFormat
    detail: str


def differences(csv_row: dict[str, object], json_row: dict[str, object]) -> list[str]:
    """The probe values whose CSV reading differs from the JSON one (pure)."""
    return [name for name in PROBE_VALUES if csv_row.get(name) != json_row.get(name)]


def run_probe(api: DataApi) -> Verdict:
    """Run the probe through both formats and judge the CSV dialect."""
    from shiftsync.redshift.data_api_results import read_select

    rows: dict[str, dict[str, object]] = {}
    for result_format in ("csv", "json"):
        batches = list(
            read_select(
                api,
                probe_sql(),
                probe_columns(),
                table="(CSV dialect probe)",
                stats=ReadStats(method="csv_probe"),
                result_format=result_format,
                prefetch=False,
            )
        )
        found = [row for batch in batches for row in batch.to_pylist()]
        rows[result_format] = found[0] if len(found) == 1 else {}
    different = differences(rows["csv"], rows["json"])
    if different:
        return Verdict(
            "json",
            "the Data API's CSV differs from the JSON results for "
            + ", ".join(different)
            + "; reading JSON results",
        )
    return Verdict("csv", "the Data API's CSV reads as its JSON results")


def cache_key(connection: RedshiftServerlessConfig) -> str:
    target = connection.workgroup or f"cluster:{connection.cluster_identifier}"
    return f"{connection.region}/{target}/{connection.database}"


def _read_cache(path: Path) -> dict[str, dict[str, str]]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _write_cache(path: Path, entries: dict[str, dict[str, str]]) -> None:
    """Replace the cache in one step; the file is owner-only from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(entries, handle, indent=2, sort_keys=True)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


class CsvDialectGuard:
    """The result format one connection reads with: CSV until the probe says otherwise."""

    def __init__(self, cache_path: Path | None, connection: RedshiftServerlessConfig) -> None:
        self.cache_path = cache_path
        self.connection = connection
        self._lock = threading.Lock()
        self._verdict: Verdict | None = None

    def verdict(self, api: DataApi, *, fresh: bool = False) -> Verdict:
        """The cached verdict, or a new probe's (always a new one when `fresh`)."""
        with self._lock:
            if self._verdict is not None and not fresh:
                return self._verdict
            key = cache_key(self.connection)
            cached = None if fresh or self.cache_path is None else _read_cache(self.cache_path)
            entry = cached.get(key) if cached else None
            if entry and entry.get("result_format") in ("csv", "json"):
                self._verdict = Verdict(
                    "csv" if entry["result_format"] == "csv" else "json",
                    str(entry.get("detail", "")),
                )
                return self._verdict
            verdict = run_probe(api)
            if verdict.result_format == "json":
                log.warning("connection %s: %s", key, verdict.detail)
            if self.cache_path is not None:
                entries = _read_cache(self.cache_path)
                entries[key] = {"result_format": verdict.result_format, "detail": verdict.detail}
                try:
                    _write_cache(self.cache_path, entries)
                except OSError as error:
                    raise StateError(
                        f"cannot write {self.cache_path}: {error.strerror or error}",
                        fix=f"make {self.cache_path.parent} writable by this user",
                    ) from error
            self._verdict = verdict
            return verdict

    def result_format(self, api: DataApi) -> ResultFormat:
        return self.verdict(api).result_format
