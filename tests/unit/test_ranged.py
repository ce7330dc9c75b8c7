"""Planning a ranged UNLOAD read: how many ranges, which, their SQL, and the checkpoint."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from shiftsync.config import UnloadConfig
from shiftsync.errors import ConfigError
from shiftsync.redshift.catalog import TableInfo, TableRef
from shiftsync.redshift.plan import KeyRange
from shiftsync.redshift.ranged import (
    MAX_RANGES,
    RangedProgress,
    RangedSelect,
    area_root,
    plan_ranges,
    range_count,
    range_reads,
    read_fingerprint,
    unfinished_keys,
    usable,
)
from shiftsync.redshift.sql import build_select_sql, range_predicate
from shiftsync.redshift.types import Column

MIB = 1024 * 1024
ID = Column("id", "int8", nullable=False)
NULLABLE_ID = Column("id", "int8", nullable=True)
DAY = Column("day", "date", nullable=False)


@pytest.mark.parametrize(
    ("estimated_bytes", "range_mb", "expected"),
    [
        (None, 1024, 1),  # unknown size: one UNLOAD
        (0, 1024, 1),
        (1024 * MIB, 1024, 1),  # at the threshold: one UNLOAD
        (1024 * MIB + 1, 1024, 2),
        (10 * 1024 * MIB, 1024, 10),
        (10 * 1024 * MIB, 0, 1),  # turned off
        (10 * 1024 * MIB, None, 1),  # no unload: settings
        (10**15, 1, MAX_RANGES),  # capped
        (3 * MIB, 0.5, 6),  # fractions of a MB
    ],
)
def test_range_count(estimated_bytes: int | None, range_mb: float | None, expected: int) -> None:
    assert range_count(estimated_bytes, range_mb) == expected


def test_ranges_are_open_at_both_ends() -> None:
    ranges = plan_ranges("1", "100", 4, ID)
    assert len(ranges) == 4
    assert ranges[0].low is None
    assert ranges[0].high is not None
    assert ranges[-1].high is None
    assert ranges[-1].low is not None
    # Adjacent: each range starts where the one before ends.
    for before, after in itertools.pairwise(ranges):
        assert before.high == after.low
        assert before.high_inclusive is False
    assert not any(r.is_null for r in ranges)


def test_a_nullable_key_gets_a_range_for_its_nulls() -> None:
    ranges = plan_ranges("1", "100", 3, NULLABLE_ID)
    assert ranges[-1] == KeyRange(None, None, is_null=True)
    assert len([r for r in ranges if not r.is_null]) == 3


def test_one_key_value_or_none_is_one_range() -> None:
    assert plan_ranges("5", "5", 4, ID) == [KeyRange(None, None, True)]
    assert plan_ranges(None, None, 4, ID) == [KeyRange(None, None)]
    assert plan_ranges(None, None, 4, NULLABLE_ID) == [
        KeyRange(None, None),
        KeyRange(None, None, is_null=True),
    ]


def test_date_keys_split_too() -> None:
    ranges = plan_ranges("2024-01-01", "2024-12-31", 4, DAY)
    assert len(ranges) == 4
    assert ranges[1].low is not None
    assert ranges[1].low.startswith("2024-")


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ConfigError):
        plan_ranges("100", "1", 4, ID)


def test_range_predicates_quote_and_type_their_parts() -> None:
    ranges = plan_ranges("1", "100", 2, ID)
    first, last = (range_predicate(ID, r) for r in ranges)
    assert first.startswith('"id" < ')
    assert ">=" not in first
    assert last.startswith('"id" >= ')
    assert "<" not in last
    assert range_predicate(ID, KeyRange(None, None)) == '"id" IS NOT NULL'
    assert range_predicate(ID, KeyRange(None, None, is_null=True)) == '"id" IS NULL'
    odd = Column('we"ird', "int4", nullable=False)
    assert range_predicate(odd, KeyRange("1", "2", False)).startswith('"we""ird" >= ')
    with pytest.raises(ConfigError):
        range_predicate(ID, KeyRange("1; DROP TABLE x", "2", False))


def test_the_fingerprint_names_the_select_and_the_key() -> None:
    base = read_fingerprint("SELECT a FROM t", "id")
    assert base == read_fingerprint("SELECT a FROM t", "id")
    assert base != read_fingerprint("SELECT a, b FROM t", "id")
    assert base != read_fingerprint("SELECT a FROM t", "day")


def progress(**changes: Any) -> RangedProgress:
    area = "shiftsync/ranges/public.sales/abc/"
    values: dict[str, Any] = {
        "fingerprint": "f" * 32,
        "area": area,
        "key": "id",
        "ranges": plan_ranges("1", "100", 3, NULLABLE_ID),
        "done": {0: (f"{area}r0-1234_", 10), 3: (f"{area}r3-5678_", 0)},
    }
    values.update(changes)
    return RangedProgress(**values)


def test_progress_survives_the_run_record() -> None:
    saved = progress()
    assert RangedProgress.from_json(saved.to_json()) == saved


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(version=2),
        lambda d: d.pop("ranges"),
        lambda d: d.update(ranges=[]),
        lambda d: d.update(done={"9": {"prefix": d["area"] + "r9_", "rows": 1}}),
        lambda d: d.update(done={"0": {"prefix": "elsewhere/r0_", "rows": 1}}),
        lambda d: d.update(done={"x": {}}),
        lambda d: d["ranges"][0].update(low=5),
    ],
)
def test_a_damaged_checkpoint_starts_the_read_over(damage: Any) -> None:
    data = progress().to_json()
    damage(data)
    assert RangedProgress.from_json(data) is None


def test_none_or_empty_is_no_checkpoint() -> None:
    assert RangedProgress.from_json(None) is None
    assert RangedProgress.from_json({}) is None


def test_only_the_same_read_inside_the_tables_area_resumes() -> None:
    unload = UnloadConfig(bucket="staging-bucket")
    root = area_root(unload, TableRef("public", "sales"))
    assert root == "shiftsync/ranges/public.sales/"
    earlier = progress()
    assert usable(earlier, "f" * 32, root) is earlier
    assert usable(earlier, "g" * 32, root) is None  # another select or key
    assert usable(progress(area="shiftsync/ranges/public.other/abc/"), "f" * 32, root) is None
    assert usable(progress(area=root), "f" * 32, root) is None  # never the whole table folder
    assert usable(None, "f" * 32, root) is None


def test_each_range_read_has_its_select_a_fresh_prefix_and_its_staged_files() -> None:
    state = progress()
    info = TableInfo(TableRef("public", "sales"), "TABLE", (ID,), ("id",), None, None)
    names = iter(["aaaa", "bbbb", "cccc", "dddd"])
    read = RangedSelect(info, (ID,), "id > 0", NULLABLE_ID, 4)
    reads = range_reads(state, read, name=lambda: next(names))
    assert [r.index for r in reads] == [0, 1, 2, 3]
    assert [r.prefix for r in reads] == [
        f"{state.area}r0-aaaa_",
        f"{state.area}r1-bbbb_",
        f"{state.area}r2-cccc_",
        f"{state.area}r3-dddd_",
    ]
    # The finished ranges carry where their files are; the others run their UNLOAD.
    assert reads[0].staged == (f"{state.area}r0-1234_", 10)
    assert reads[3].staged == (f"{state.area}r3-5678_", 0)
    assert reads[1].staged is None
    assert reads[2].staged is None
    for range_read, key_range in zip(reads, state.ranges, strict=True):
        condition = f"(id > 0) AND {range_predicate(NULLABLE_ID, key_range)}"
        assert range_read.select == build_select_sql(
            "public", "sales", (ID,), method="unload", where=condition
        )
    assert "IS NULL" in reads[3].select


def test_a_range_read_without_a_filter_has_the_range_condition_alone() -> None:
    info = TableInfo(TableRef("public", "sales"), "TABLE", (ID,), ("id",), None, None)
    (read, *_) = range_reads(progress(), RangedSelect(info, (ID,), None, NULLABLE_ID, 4))
    assert f"WHERE {range_predicate(NULLABLE_ID, progress().ranges[0])}" in read.select
    assert read.prefix.startswith(f"{progress().area}r0-")


def test_a_range_is_finished_once_and_moved_when_staged_again() -> None:
    state = progress()
    assert not state.finished(0, f"{state.area}r0-1234_", 10)  # already checkpointed
    assert state.finished(1, f"{state.area}r1-9999_", 7)
    assert state.done[1] == (f"{state.area}r1-9999_", 7)
    # Its files were gone and its UNLOAD ran again: the checkpoint names the new ones.
    assert state.finished(0, f"{state.area}r0-abcd_", 10)
    assert RangedProgress.from_json(state.to_json()) == state


def test_only_the_checkpointed_ranges_files_are_kept() -> None:
    state = progress()
    area = state.area
    keys = [
        f"{area}r0-1234_0000_part_00.parquet",
        f"{area}r0-1234_manifest",
        f"{area}r0-0000_0000_part_00.parquet",  # an earlier UNLOAD of range 0 that failed
        f"{area}r1-9999_0000_part_00.parquet",  # a range stopped before it was checkpointed
        f"{area}r3-5678_manifest",
        "shiftsync/ranges/public.sales/other/r1-9999_manifest",  # another read's area
    ]
    assert unfinished_keys(keys, state) == [keys[2], keys[3]]
    assert unfinished_keys(keys, progress(done={})) == keys[:5]
    assert unfinished_keys([], state) == []


def test_a_ranged_select_joins_its_filter_and_a_ranges_condition() -> None:
    info = TableInfo(TableRef("public", "sales"), "TABLE", (ID,), ("id",), None, None)
    filtered = RangedSelect(info, (ID,), "id > 0", NULLABLE_ID, 4)
    assert filtered.narrowed('"id" < 5') == '(id > 0) AND "id" < 5'
    assert filtered.select() == build_select_sql(
        "public", "sales", (ID,), method="unload", where="id > 0"
    )
    whole = RangedSelect(info, (ID,), None, NULLABLE_ID, 4)
    assert whole.narrowed('"id" < 5') == '"id" < 5'
    assert whole.select() == build_select_sql("public", "sales", (ID,), method="unload")
