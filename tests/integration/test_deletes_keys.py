"""The key text, hash, buckets and checksum of delete detection: the Redshift SQL (run on the
stand-in, whose MD5 and STRTOL follow AWS's documented examples) and shiftsync's own digest of
the same keys read as Arrow agree, for every key type and for composite keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from shiftsync.engine.deletes_digest import KeySet, Summary
from shiftsync.redshift.deletes_sql import (
    build_bucket_keys_sql,
    build_bucket_sql,
    build_key_summary_sql,
)
from shiftsync.redshift.types import Column

COLUMNS = [
    Column("k_int2", "int2"),
    Column("k_int8", "int8"),
    Column("k_numeric", "numeric", precision=12, scale=3),
    Column("k_varchar", "varchar"),
    Column("k_bpchar", "bpchar", length=6),
    Column("k_date", "date"),
    Column("k_ts", "timestamp"),
    Column("k_tstz", "timestamptz"),
    Column("k_bool", "bool"),
]
ROWS = """
(1, 9000000000000000000, 1.5, 'a|1:b', 'ab', '2024-01-31', '2024-01-31 01:02:03.000450',
 '2024-01-31 23:30:00+02', true),
(-2, -1, -0.001, 'é ünïcode  ', 'x    ', '0999-12-31', '2000-02-29 00:00:00',
 '1999-12-31 23:59:59.999999+00', false),
(3, 0, 123456789.000, '', 'c', '2024-02-29', '2024-02-29 12:00:00.5', '2024-06-01 00:00:00-07',
 NULL),
(4, 4, 0, 'x', 'y', '2024-01-01', '2024-01-01 00:00:00', '2024-01-01 00:00:00+00', true)
"""


def test_md5_follows_the_aws_example(admin: psycopg.Connection[Any]) -> None:
    row = admin.execute("SELECT md5('Amazon Redshift')").fetchone()
    assert row == ("f7415e33f972c03abd4f3fed36748f7a",)


@pytest.fixture
def keys_table(admin: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"t_keys_{uuid.uuid4().hex[:8]}"
    table = sql.Identifier("public", name)
    admin.execute(
        sql.SQL(
            "CREATE TABLE {} (k_int2 smallint, k_int8 bigint, k_numeric numeric(12,3), "
            "k_varchar varchar(40), k_bpchar char(6), k_date date, k_ts timestamp, "
            "k_tstz timestamptz, k_bool boolean)"
        ).format(table)
    )
    admin.execute(sql.SQL("INSERT INTO {} VALUES ").format(table) + sql.SQL(ROWS))
    try:
        yield name
    finally:
        admin.execute(sql.SQL("DROP TABLE {}").format(table))


def _arrow(admin: psycopg.Connection[Any], name: str) -> pa.Table:
    cursor = admin.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("public", name)))
    names = [d.name for d in cursor.description or ()]
    rows = cursor.fetchall()
    types = {
        "k_int2": pa.int16(),
        "k_int8": pa.int64(),
        "k_numeric": pa.decimal128(12, 3),
        "k_varchar": pa.string(),
        "k_bpchar": pa.string(),
        "k_date": pa.date32(),
        "k_ts": pa.timestamp("us"),
        "k_tstz": pa.timestamp("us", tz="UTC"),
        "k_bool": pa.bool_(),
    }
    columns = {n: pa.array([r[i] for r in rows], types[n]) for i, n in enumerate(names)}
    # The read path keeps CHAR's padding: the destination holds it.
    columns["k_bpchar"] = pa.array(
        [v.ljust(6) if v else v for v in columns["k_bpchar"].to_pylist()]
    )
    return pa.table(columns)


@pytest.mark.parametrize(
    "key",
    [[c] for c in COLUMNS]
    + [[COLUMNS[3], COLUMNS[4]], [COLUMNS[0], COLUMNS[3], COLUMNS[7]], COLUMNS],
    ids=lambda key: "+".join(c.name for c in key),
)
def test_redshift_sql_and_the_destination_digest_agree(
    admin: psycopg.Connection[Any], keys_table: str, key: list[Column]
) -> None:
    arrow = _arrow(admin, keys_table)
    with KeySet(arrow, [(c, c.name) for c in key]) as mine:
        row = admin.execute(build_key_summary_sql("public", keys_table, key)).fetchone()
        assert row is not None
        assert Summary(int(row[0]), int(row[1] or 0)) == mine.summary()
        buckets = admin.execute(build_bucket_sql("public", keys_table, key, None, buckets=4))
        theirs = {int(b): Summary(int(c), int(s)) for b, c, s in buckets.fetchall()}
        assert theirs == mine.buckets(4)
        listed = build_bucket_keys_sql(
            "public", keys_table, key, None, buckets=4, within=[0, 1, 2, 3]
        )
        texts = {str(r[0]) for r in admin.execute(listed).fetchall()}
        assert texts == mine.texts()
