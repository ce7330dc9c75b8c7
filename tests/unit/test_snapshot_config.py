"""`snapshot:` on a sync: its values, its default, and what `consistent` refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_config import S, line_for, load, problems, with_value


def test_each_table_reads_one_snapshot_by_default(tmp_path: Path) -> None:
    sync = load(tmp_path, with_value(f"{S}.concurrency", 4)).syncs["nightly"]
    assert sync.snapshot == "table"


@pytest.mark.parametrize("value", ["table", "consistent", "none"])
def test_snapshot_values_load(tmp_path: Path, value: str) -> None:
    assert load(tmp_path, with_value(f"{S}.snapshot", value)).syncs["nightly"].snapshot == value


def test_consistent_with_tables_at_once_is_refused(tmp_path: Path) -> None:
    data = with_value(f"{S}.snapshot", "consistent")
    data["syncs"]["nightly"]["concurrency"] = 3
    line = line_for(problems(tmp_path, data), f"{S}.concurrency")
    assert "snapshot: consistent reads every table in one Redshift session" in line
    assert "(got 3)" in line
    assert "1 (or leave concurrency out), or snapshot: table" in line


def test_consistent_with_one_table_at_a_time_loads(tmp_path: Path) -> None:
    data = with_value(f"{S}.snapshot", "consistent")
    data["syncs"]["nightly"]["concurrency"] = 1
    assert load(tmp_path, data).syncs["nightly"].concurrency == 1


def test_an_unknown_snapshot_is_refused(tmp_path: Path) -> None:
    line = line_for(problems(tmp_path, with_value(f"{S}.snapshot", "global")), f"{S}.snapshot")
    assert "table, consistent or none" in line


def test_consistent_on_ray_workers_is_refused(tmp_path: Path) -> None:
    data = with_value(f"{S}.snapshot", "consistent")
    data["syncs"]["nightly"]["executor"] = "ray"
    line = line_for(problems(tmp_path, data), f"{S}.executor")
    assert "Ray workers read in sessions of their own" in line
    assert "local (or leave executor out), or snapshot: table" in line
