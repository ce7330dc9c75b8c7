"""The SQL builders of delete detection (pure) and the destination's side of the same digest."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from shiftsync.engine.deletes import (
    DeletePass,
    bucket_count,
    check_deletes,
    find_deleted,
    rows_with_keys,
)
from shiftsync.engine.deletes_digest import KeySet, Summary, python_hash_parts
from shiftsync.errors import ConfigError
from shiftsync.redshift.data_api_results import Row
from shiftsync.redshift.deletes_sql import (
    bucket_sql,
    build_bucket_keys_sql,
    build_bucket_sql,
    build_key_summary_sql,
    key_text_sql,
    value_sql,
)
from shiftsync.redshift.types import Column

ID = Column("id", "int4")
NAME = Column("name", "varchar")


def test_one_integer_key_is_its_decimal_text() -> None:
    assert key_text_sql([ID]) == 'cast("id" as varchar)'


@pytest.mark.parametrize(
    ("type_name", "expected"),
    [
        ("int2", 'cast("c" as varchar)'),
        ("int8", 'cast("c" as varchar)'),
        ("numeric", 'cast("c" as varchar)'),
        ("varchar", '"c"'),
        ("bpchar", 'rtrim("c")'),
        ("date", "to_char(\"c\", 'YYYY-MM-DD')"),
        ("timestamp", "to_char(\"c\", 'YYYY-MM-DD HH24:MI:SS.US')"),
        ("timestamptz", "to_char(convert_timezone('UTC', \"c\"), 'YYYY-MM-DD HH24:MI:SS.US')"),
        ("bool", "CASE WHEN \"c\" THEN 'true' WHEN NOT \"c\" THEN 'false' END"),
    ],
)
def test_key_text_per_type(type_name: str, expected: str) -> None:
    assert key_text_sql([Column("c", type_name)]) == expected


def test_a_composite_key_prefixes_text_parts_with_their_byte_length() -> None:
    assert key_text_sql([ID, NAME]) == (
        "(cast(\"id\" as varchar)) || '|' || (cast(octet_length(\"name\") as varchar) || ':' || "
        '"name")'
    )


@pytest.mark.parametrize("type_name", ["float8", "float4", "super", "varbyte", "time", "geometry"])
def test_types_without_an_exact_key_text_are_refused(type_name: str) -> None:
    with pytest.raises(ConfigError, match="no exact key text"):
        key_text_sql([Column("c", type_name)])


def test_no_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs a primary key"):
        key_text_sql([])


def test_identifiers_are_quoted() -> None:
    sql = build_key_summary_sql('we"ird', "t t", [Column('k"ey', "int4")])
    assert '"we""ird"."t t"' in sql
    assert 'cast("k""ey" as varchar)' in sql


def test_summary_is_one_row_of_count_and_checksum() -> None:
    sql = build_key_summary_sql("public", "sales", [ID], "\"region\" = 'eu'")
    assert sql == (
        "SELECT count(h), sum(v)\n"
        "FROM (SELECT h, cast(strtol(substring(h, 9, 12), 16) as decimal(38,0)) AS v FROM "
        '(SELECT md5(cast("id" as varchar)) AS h FROM "public"."sales" '
        'WHERE "region" = \'eu\') AS "hashed") AS "keys"'
    )


def test_summary_with_a_window_also_sums_the_rows_inside_it() -> None:
    sql = build_key_summary_sql("public", "sales", [ID], window='"id" <= 10')
    assert 'CASE WHEN "id" <= 10 THEN 1 ELSE 0 END AS w' in sql
    assert "count(CASE WHEN w = 1 THEN h END)" in sql
    assert "sum(CASE WHEN w = 1 THEN v END)" in sql
    assert sql.count("strtol") == 1  # each key's value is computed once


def test_buckets_group_by_the_first_eight_hex_digits() -> None:
    sql = build_bucket_sql("public", "sales", [ID], None, buckets=1024)
    assert 'mod(strtol(substring(h, 1, 8), 16), 1024) AS "bucket"' in sql
    assert sql.endswith("GROUP BY 1")
    assert "WHERE h IS NOT NULL" in sql


def test_buckets_within_coarser_buckets_bisect() -> None:
    sql = build_bucket_sql(
        "public", "sales", [ID], None, buckets=1024 * 64, within=[5, 3, 5], within_buckets=1024
    )
    assert "mod(strtol(substring(h, 1, 8), 16), 65536) AS" in sql
    assert "AND mod(strtol(substring(h, 1, 8), 16), 1024) IN (3, 5)" in sql


def test_buckets_within_a_split_that_does_not_divide_is_refused() -> None:
    with pytest.raises(ConfigError):
        build_bucket_sql("s", "t", [ID], None, buckets=64, within=[1], within_buckets=128)


@pytest.mark.parametrize("buckets", [0, 3, 100, 1 << 25])
def test_bucket_counts_must_be_powers_of_two(buckets: int) -> None:
    with pytest.raises(ConfigError):
        bucket_sql(buckets)


def test_bucket_keys_lists_the_key_text_of_chosen_buckets() -> None:
    sql = build_bucket_keys_sql("public", "sales", [ID], None, buckets=16, within=[2, 1])
    assert sql.startswith("SELECT k\nFROM (SELECT h, k FROM (SELECT md5(")
    assert sql.count("strtol") == 1  # the bucket only: no value is summed
    assert 'cast("id" as varchar) AS k FROM "public"."sales"' in sql
    assert sql.endswith("IN (1, 2)")


def test_an_empty_bucket_list_is_refused() -> None:
    with pytest.raises(ConfigError):
        build_bucket_keys_sql("s", "t", [ID], None, buckets=16, within=[])


def test_value_is_48_bits_as_a_decimal() -> None:
    assert value_sql() == "cast(strtol(substring(h, 9, 12), 16) as decimal(38,0))"


@pytest.mark.parametrize(("keys", "buckets"), [(0, 16), (10_000, 16), (16_385, 32), (10**6, 1024)])
def test_bucket_count_aims_at_a_thousand_keys_per_bucket(keys: int, buckets: int) -> None:
    assert bucket_count(keys) == buckets


# --- the destination's side ------------------------------------------------------------------


def test_python_hash_parts_follow_the_documented_md5_example() -> None:
    # AWS's MD5 example: md5('Amazon Redshift') = f7415e33f972c03abd4f3fed36748f7a.
    digest = hashlib.md5(b"Amazon Redshift", usedforsecurity=False).hexdigest()
    assert digest == "f7415e33f972c03abd4f3fed36748f7a"
    assert python_hash_parts("Amazon Redshift", 1 << 24) == (
        0xF7415E33 % (1 << 24),
        0xF972C03ABD4F,
    )


def _keyset(table: pa.Table, columns: list[Column]) -> KeySet:
    return KeySet(table, [(c, c.name) for c in columns])


@pytest.mark.parametrize(
    ("column", "array", "texts"),
    [
        (Column("c", "int8"), pa.array([-5, 12], pa.int64()), ["-5", "12"]),
        (
            Column("c", "numeric", precision=10, scale=2),
            pa.array([Decimal("12.50"), Decimal("-0.01")], pa.decimal128(12, 3)),
            ["12.50", "-0.01"],
        ),
        (Column("c", "bpchar"), pa.array(["ab  ", "c"]), ["ab", "c"]),
        (Column("c", "varchar"), pa.array(["ab  ", "é"]), ["ab  ", "é"]),
        (Column("c", "date"), pa.array([date(2024, 1, 31)]), ["2024-01-31"]),
        (
            Column("c", "timestamp"),
            pa.array([datetime(2024, 1, 31, 1, 2, 3, 450)], pa.timestamp("us")),
            ["2024-01-31 01:02:03.000450"],
        ),
        (
            Column("c", "timestamptz"),
            pa.array([datetime(2024, 1, 31, 23, 0, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
            ["2024-01-31 23:00:00.000000"],
        ),
        (Column("c", "bool"), pa.array([True, False]), ["true", "false"]),
    ],
)
def test_destination_key_text_per_type(column: Column, array: pa.Array, texts: list[str]) -> None:
    with _keyset(pa.table({"c": array}), [column]) as keys:
        assert keys.texts() == set(texts)
        expected = [python_hash_parts(t, 1) for t in texts]
        assert keys.summary() == Summary(len(texts), sum(v for _, v in expected))


def test_composite_destination_keys_are_unambiguous() -> None:
    table = pa.table({"a": ["x|1:y", "x"], "b": ["z", "1:y|z"]})
    columns = [Column("a", "varchar"), Column("b", "varchar")]
    with _keyset(table, columns) as keys:
        assert keys.texts() == {"5:x|1:y|1:z", "1:x|5:1:y|z"}


def test_null_keys_are_in_no_count() -> None:
    with _keyset(pa.table({"id": pa.array([1, None], pa.int32())}), [ID]) as keys:
        assert keys.summary().count == 1


class _Source:
    """Answers the three statements of delete detection for a set of integer keys."""

    def __init__(self, keys: list[int]) -> None:
        self.texts = [str(k) for k in keys]
        self.sql: list[str] = []

    def __call__(self, sql: str) -> list[Row]:
        self.sql.append(sql)
        if sql.startswith("SELECT count(h)"):
            values = [python_hash_parts(t, 1)[1] for t in self.texts]
            return [(len(values), str(sum(values)))]
        buckets = int(sql.split("), 16), ")[1].split(")")[0])
        if sql.startswith("SELECT k"):
            listed = {int(b) for b in sql.rsplit("IN (", 1)[1].rstrip(")").split(", ")}
            return [(t,) for t in self.texts if python_hash_parts(t, buckets)[0] in listed]
        groups: dict[int, list[int]] = {}
        for t in self.texts:
            bucket, value = python_hash_parts(t, buckets)
            groups.setdefault(bucket, []).append(value)
        return [(b, len(v), str(sum(v))) for b, v in groups.items()]


def _find(
    source_keys: list[int], destination_keys: list[int], keys_per_fetch: int = 65_536
) -> tuple[list[str], DeletePass]:
    source = _Source(source_keys)
    report = DeletePass("hard")

    def read_all() -> tuple[pa.Table, int, int]:
        table = pa.table({"id": pa.array(source_keys, pa.int32())})
        return table, table.nbytes, 1

    with _keyset(pa.table({"id": pa.array(destination_keys, pa.int32())}), [ID]) as keys:
        found = find_deleted(
            source,
            read_all,
            schema="public",
            table="t",
            key=[ID],
            where=None,
            window=None,
            destination=keys,
            report=report,
            keys_per_fetch=keys_per_fetch,
        )
    return sorted(found, key=int), report


def test_no_change_costs_one_statement() -> None:
    found, report = _find(list(range(5000)), list(range(5000)))
    assert (found, report.statements, report.strategy) == ([], 1, "summary")


def test_a_few_deletes_are_found_in_at_most_three_statements() -> None:
    keys = list(range(20_000))
    gone = [17, 4242, 19_999]
    found, report = _find([k for k in keys if k not in gone], keys)
    assert found == [str(k) for k in gone]
    assert report.statements <= 3
    assert report.bytes < 0.1 * sum(len(str(k)) for k in keys)


def test_new_source_rows_and_deletes_in_one_bucket_are_found_by_keys() -> None:
    keys = list(range(300))
    source = [k for k in keys if k not in (5, 6, 7)] + [1000 + k for k in range(40)]
    found, report = _find(source, keys)
    assert found == ["5", "6", "7"]
    assert report.statements <= 3


def test_many_deletes_read_every_key_once() -> None:
    keys = list(range(2000))
    found, report = _find(keys[:1000], keys)
    assert found == [str(k) for k in keys[1000:]]
    assert report.strategy == "full_read"
    assert report.statements == 2


def test_a_view_and_hashed_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="on a view"):
        check_deletes("public.v", "hard", kind="VIEW", key=[ID], hashed=())
    with pytest.raises(ConfigError, match="is hashed"):
        check_deletes("public.t", "soft", kind="TABLE", key=[ID], hashed={"id"})
    with pytest.raises(ConfigError, match="no exact key text"):
        check_deletes("public.t", "soft", kind="TABLE", key=[Column("f", "float8")], hashed=())
    check_deletes("public.t", "ignore", kind="VIEW", key=(), hashed=())


def test_rows_with_keys_keeps_every_column_type() -> None:
    ids = pa.array([1, 2, 3], pa.int32())
    table = pa.table({"id": ids, "doc": pa.array(['{"a":1}', None, "x"])})
    picked = rows_with_keys(table, pa.table({"id": pa.array([3, 1], pa.int32())}), ["id"])
    assert picked.to_pylist() == [{"id": 1, "doc": '{"a":1}'}, {"id": 3, "doc": "x"}]


def test_a_destination_that_cannot_apply_deletes_is_refused() -> None:
    with pytest.raises(ConfigError, match="not supported by iceberg") as raised:
        check_deletes(
            "public.t",
            "hard",
            kind="TABLE",
            key=[ID],
            hashed=(),
            destination_kind="iceberg",
            destination_supports=False,
        )
    assert "deletes: ignore" in (raised.value.fix or "")


def test_the_run_line_says_how_many_rows_were_deleted() -> None:
    from shiftsync.cli.progress import deletes_text
    from shiftsync.engine.runs import TableRun

    table = TableRun("public.t", "t", "incremental")
    assert deletes_text(table) == ""
    table.deletes = {"policy": "hard", "deleted": 1234}
    assert deletes_text(table) == ", 1,234 deleted"
    table.deletes = {"policy": "soft", "deleted": 2}
    assert deletes_text(table) == ", 2 marked deleted"
    table.deletes = {"policy": "soft", "deleted": 0}
    assert deletes_text(table) == ""


def test_runs_show_gives_the_delete_pass() -> None:
    from shiftsync.cli.sync import detail_lines
    from shiftsync.engine.runs import TableRun

    table = TableRun("public.t", "t", "incremental")
    table.deletes = DeletePass("hard", 37, 2, 27846, "buckets", 1.25).to_json()
    assert detail_lines(table) == [
        "deletes (hard): 37 found by buckets in 2 statement(s), 27,846 bytes, 1.25s"
    ]


def test_a_bucket_with_two_gone_keys_is_split_again() -> None:
    keys = list(range(20_000))
    buckets = bucket_count(len(keys), 2)
    first = 123
    target = python_hash_parts(str(first), buckets)[0]
    second = next(k for k in keys if k != first and python_hash_parts(str(k), buckets)[0] == target)
    found, report = _find([k for k in keys if k not in (first, second)], keys, keys_per_fetch=10)
    assert found == sorted([str(first), str(second)], key=int)
    assert report.steps[:3] == ["summary", f"buckets/{buckets}", f"buckets/{buckets * 64}"]
