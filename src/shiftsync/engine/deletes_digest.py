"""The destination's side of delete detection: the same key text, hash, buckets and checksums
that redshift/deletes_sql.py computes in Redshift, computed by shiftsync over Arrow key columns
(the destination's keys, or keys read from the source) in an in-memory DuckDB.

Whatever the destination (DuckDB, PostgreSQL, Parquet, Iceberg, Delta), its keys are read as
Arrow and hashed here, so one implementation of the key text serves them all;
`key_text_duckdb` mirrors `deletes_sql.KEY_TEXT_SQL` type by type, and the tests run both on
the same values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import duckdb
import pyarrow as pa

from shiftsync.redshift.deletes_sql import (
    BUCKET_HEX,
    KEY_SEPARATOR,
    KEY_TEXT_SQL,
    LENGTH_PREFIXED,
    VALUE_HEX,
    VALUE_START,
    check_buckets,
)
from shiftsync.redshift.types import Column
from shiftsync.sql_quote import quote_standard

TIMESTAMP_FORMAT: Final = "%Y-%m-%d %H:%M:%S.%f"

# Redshift type → DuckDB SQL giving the same key text ({col}: the quoted Arrow column).
KEY_TEXT_DUCKDB: Final[Mapping[str, str]] = {
    "int2": "cast({col} AS VARCHAR)",
    "int4": "cast({col} AS VARCHAR)",
    "int8": "cast({col} AS VARCHAR)",
    "numeric": "cast({col} AS VARCHAR)",
    "varchar": "{col}",
    "bpchar": "rtrim({col}, ' ')",
    "date": "strftime({col}, '%Y-%m-%d')",
    "timestamp": f"strftime({{col}}, '{TIMESTAMP_FORMAT}')",
    "timestamptz": f"strftime({{col}}, '{TIMESTAMP_FORMAT}')",  # the session is in UTC
    "bool": "CASE WHEN {col} THEN 'true' WHEN NOT {col} THEN 'false' END",
}
assert KEY_TEXT_DUCKDB.keys() == KEY_TEXT_SQL.keys()

_KEYS: Final = "_keys"
_ARROW: Final = "_arrow_keys"


def key_text_duckdb(columns: Sequence[tuple[Column, str]]) -> str:
    """The key text as a DuckDB expression over Arrow columns: (source column, Arrow name)."""
    parts: list[str] = []
    for column, name in columns:
        text = KEY_TEXT_DUCKDB[column.type_name].replace("{col}", quote_standard(name))
        if column.type_name == "numeric" and column.scale is not None:
            # A destination may hold a widened decimal; Redshift prints the source's scale.
            cast = f"cast({quote_standard(name)} AS DECIMAL(38, {int(column.scale)}))"
            text = f"cast({cast} AS VARCHAR)"
        if len(columns) > 1 and column.type_name in LENGTH_PREFIXED:
            text = f"cast(strlen({text}) AS VARCHAR) || ':' || {text}"
        parts.append(text)
    if len(parts) == 1:
        return parts[0]
    return f" || '{KEY_SEPARATOR}' || ".join(f"({p})" for p in parts)


@dataclass(frozen=True)
class Summary:
    """A set of keys' count and checksum (the sum of their 48-bit hash values)."""

    count: int
    checksum: int


class KeySet:
    """A set of keys with their text, hash bucket and hash value, in an in-memory DuckDB.

    `columns` pairs each key column (its Redshift type) with its name in `keys`.
    """

    def __init__(self, keys: pa.Table, columns: Sequence[tuple[Column, str]]) -> None:
        self.names = [name for _, name in columns]
        self._db = duckdb.connect()
        self._db.execute("SET TimeZone = 'UTC'")
        self._db.register(_ARROW, keys.select(self.names))
        text = key_text_duckdb(columns)
        # Key columns become _c0, _c1, ... so that no key name can meet k, x or v.
        originals = ", ".join(f"{quote_standard(n)} AS _c{i}" for i, n in enumerate(self.names))
        positional = ", ".join(f"_c{i}" for i in range(len(self.names)))
        self._db.execute(
            f"CREATE TABLE {_KEYS} AS SELECT {positional}, _k AS k, "
            f"CAST('0x' || substr(_h, 1, {BUCKET_HEX}) AS UBIGINT) AS x, "
            f"CAST('0x' || substr(_h, {VALUE_START}, {VALUE_HEX}) AS BIGINT) AS v "
            f"FROM (SELECT {positional}, _k, md5(_k) AS _h FROM "
            f"(SELECT {originals}, {text} AS _k FROM {_ARROW})) WHERE _k IS NOT NULL"
        )
        self._db.unregister(_ARROW)

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self._db.close()

    def __enter__(self) -> KeySet:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def summary(self) -> Summary:
        (row,) = self._db.execute(f"SELECT count(*), coalesce(sum(v), 0) FROM {_KEYS}").fetchall()
        return Summary(int(row[0]), int(row[1]))

    def buckets(
        self, buckets: int, within: Sequence[int] = (), within_buckets: int = 0
    ) -> dict[int, Summary]:
        check_buckets(buckets)
        sql = f"SELECT x % {buckets} AS b, count(*), sum(v) FROM {_KEYS}"
        if within:
            check_buckets(within_buckets)
            listed = ", ".join(str(int(b)) for b in sorted(set(within)))
            sql += f" WHERE x % {within_buckets} IN ({listed})"
        rows = self._db.execute(sql + " GROUP BY b").fetchall()
        return {int(b): Summary(int(c), int(s)) for b, c, s in rows}

    def single_key(self, buckets: int, bucket: int, value: int) -> str | None:
        """The text of the one key of `bucket` whose hash value is `value`, or None."""
        rows = self._db.execute(
            f"SELECT k FROM {_KEYS} WHERE x % {buckets} = ? AND v = ? LIMIT 2",
            [bucket, value],
        ).fetchall()
        return str(rows[0][0]) if len(rows) == 1 else None

    def texts(self, buckets: int = 1, within: Sequence[int] = ()) -> set[str]:
        """The key texts (of the buckets `within` of `buckets`, or all)."""
        sql = f"SELECT k FROM {_KEYS}"
        if within:
            check_buckets(buckets)
            sql += f" WHERE x % {buckets} IN ({', '.join(str(int(b)) for b in set(within))})"
        return {str(row[0]) for row in self._db.execute(sql).fetchall()}

    def rows_of(self, texts: Sequence[str]) -> pa.Table:
        """The original key columns of the keys whose text is in `texts`."""
        self._db.register("_wanted", pa.table({"k": pa.array(list(texts), pa.string())}))
        try:
            originals = ", ".join(f"_c{i} AS {quote_standard(n)}" for i, n in enumerate(self.names))
            return self._db.sql(
                f"SELECT {originals} FROM {_KEYS} SEMI JOIN _wanted USING (k)"
            ).to_arrow_table()
        finally:
            self._db.unregister("_wanted")

    def anti_join(self, other: KeySet) -> list[str]:
        """The texts of keys here that `other` lacks (one anti-join in DuckDB, via Arrow)."""
        theirs = other._db.sql(f"SELECT k FROM {_KEYS}").to_arrow_table()
        self._db.register("_theirs", theirs)
        try:
            rows = self._db.execute(f"SELECT k FROM {_KEYS} ANTI JOIN _theirs USING (k)")
            return [str(r[0]) for r in rows.fetchall()]
        finally:
            self._db.unregister("_theirs")


def python_hash_parts(text: str, buckets: int) -> tuple[int, int]:
    """(bucket, value) of one key text, as Redshift computes them (for tests and checks)."""
    import hashlib

    digest = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
    start = VALUE_START - 1
    return int(digest[:BUCKET_HEX], 16) % buckets, int(digest[start : start + VALUE_HEX], 16)


__all__ = ["KEY_TEXT_DUCKDB", "KeySet", "Summary", "key_text_duckdb", "python_hash_parts"]
