from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shiftsync.engine.runs import (
    RUN_ID_RE,
    RunRecord,
    RunStore,
    TableRun,
    effective_status,
    new_run_id,
    summarize_status,
)
from shiftsync.errors import ConfigError, StateError


def record(run_id: str, sync: str = "nightly", statuses: tuple[str, ...] = ("ok",)) -> RunRecord:
    tables = [
        TableRun(f"public.t{i}", f"t{i}", "full_refresh", status=s, rows=10, bytes=100)  # type: ignore[arg-type]
        for i, s in enumerate(statuses)
    ]
    return RunRecord(run_id=run_id, sync=sync, started_at="2024-01-01T00:00:00.000Z", tables=tables)


def test_new_run_id_sorts_by_time() -> None:
    early = new_run_id(datetime(2024, 1, 1, tzinfo=UTC))
    late = new_run_id(datetime(2024, 1, 2, tzinfo=UTC))
    assert RUN_ID_RE.fullmatch(early)
    assert early.startswith("20240101T000000Z-")
    assert early < late
    assert new_run_id() != new_run_id()


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("ok", "ok"), "ok"),
        (("ok", "failed"), "partial"),
        (("failed",), "failed"),
        ((), "ok"),
        (("planned", "ok"), "ok"),
        (("planned", "failed"), "partial"),
    ],
)
def test_summarize_status(statuses: tuple[str, ...], expected: str) -> None:
    assert summarize_status(record("x", statuses=statuses).tables) == expected


def test_run_level_error_fails_the_run() -> None:
    assert summarize_status([], "destination unreachable") == "failed"


def test_record_json_round_trip() -> None:
    original = record("20240101T000000Z-abcdef", statuses=("ok", "failed"))
    original.tables[1].error = "boom"
    original.tables[0].schema_changes = [{"kind": "add_column", "column": "x"}]
    original.tables[0].verification = {"status": "ok"}
    assert RunRecord.from_json(json.loads(json.dumps(original.to_json()))) == original


def test_unknown_keys_are_ignored_when_reading() -> None:
    data = record("20240101T000000Z-abcdef").to_json()
    data["future_key"] = 1
    data["tables"][0]["future_key"] = 2
    assert RunRecord.from_json(data).run_id == "20240101T000000Z-abcdef"


def test_save_list_and_load(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    first = record("20240101T000000Z-aaaaaa")
    first.finish()
    second = record("20240102T000000Z-bbbbbb", sync="other", statuses=("ok", "failed"))
    second.finish()
    store.save(first)
    store.save(second)
    listed = store.list()
    assert [r["run_id"] for r in listed] == [second.run_id, first.run_id]
    assert listed[0]["status"] == "partial"
    assert listed[0]["failed"] == 1
    assert listed[0]["rows"] == 20
    assert [r["run_id"] for r in store.list(limit=1)] == [second.run_id]
    assert [r["run_id"] for r in store.list(sync="nightly")] == [first.run_id]
    assert store.load(first.run_id) == first
    assert store.load("20240102").run_id == second.run_id
    assert store.load("latest").run_id == second.run_id
    # No temporary file is left next to the records.
    assert sorted(p.name for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")) == [
        f"{first.run_id}.json",
        f"{second.run_id}.json",
        "index.json",
    ]


def test_saving_again_replaces_the_summary(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = record("20240101T000000Z-aaaaaa")
    store.save(run)
    run.tables[0].rows = 99
    run.finish()
    store.save(run)
    (summary,) = store.list()
    assert summary["rows"] == 99
    assert summary["status"] == "ok"


def test_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = record("20240101T000000Z-aaaaaa")
    run.finish()
    store.save(run)
    (tmp_path / "index.json").write_text("{not json")
    assert [r["run_id"] for r in store.list()] == [run.run_id]
    (tmp_path / "index.json").unlink()
    assert [r["run_id"] for r in store.list()] == [run.run_id]
    assert json.loads((tmp_path / "index.json").read_text())["runs"][0]["run_id"] == run.run_id


def test_damaged_record_is_skipped_in_rebuild_and_reported_on_load(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    good = record("20240101T000000Z-aaaaaa")
    store.save(good)
    (tmp_path / "20240102T000000Z-bbbbbb.json").write_text("[]garbage")
    (tmp_path / "index.json").unlink()
    assert [r["run_id"] for r in store.list()] == [good.run_id]
    with pytest.raises(StateError, match="20240102T000000Z-bbbbbb"):
        store.load("20240102T000000Z-bbbbbb")


def test_load_unknown_and_ambiguous(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.save(record("20240101T000000Z-aaaaaa"))
    store.save(record("20240101T000000Z-bbbbbb"))
    with pytest.raises(ConfigError, match="no run"):
        store.load("2023")
    with pytest.raises(ConfigError, match="matches 2 runs"):
        store.load("20240101")
    with pytest.raises(ConfigError, match="no run yet"):
        RunStore(tmp_path / "empty").load("latest")


def test_runs_started_in_the_same_second_list_by_their_start_time(tmp_path: Path) -> None:
    # The random part of the id must not decide which of two same-second runs is newest.
    store = RunStore(tmp_path)
    earlier = record("20240101T000000Z-ffffff")
    earlier.started_at = "2024-01-01T00:00:00.100Z"
    later = record("20240101T000000Z-000000")
    later.started_at = "2024-01-01T00:00:00.900Z"
    for run in (earlier, later):
        run.finish()
        store.save(run)
    assert [r["run_id"] for r in store.list()] == [later.run_id, earlier.run_id]
    assert store.load("latest").run_id == later.run_id


def test_list_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert RunStore(tmp_path / "nothing").list() == []


def test_running_record_of_a_dead_process_is_interrupted() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(finished.stdout)
    run = record("20240101T000000Z-aaaaaa")
    summary = run.summary()
    assert summary["status"] == "running"
    assert effective_status(summary) == "running"  # this process is alive
    assert effective_status({**summary, "pid": dead_pid}) == "interrupted"
    assert effective_status({**summary, "pid": dead_pid, "host": "elsewhere"}) == "running"
    assert effective_status({**summary, "status": "ok", "pid": dead_pid}) == "ok"
    assert os.getpid() == summary["pid"]


@pytest.mark.parametrize("text", ["/abs", "../20240101", "2024*", "a b"])
def test_show_refuses_what_is_not_a_run_id(tmp_path: Path, text: str) -> None:
    store = RunStore(tmp_path)
    store.save(record("20240101T000000Z-aaaaaa"))
    with pytest.raises(ConfigError, match="is not a run id"):
        store.load(text)


def test_a_run_record_that_is_not_an_object_is_a_state_error(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.path("20240101T000000Z-aaaaaa").write_text("[]", encoding="utf-8")
    with pytest.raises(StateError, match="cannot be read"):
        store.load("20240101T000000Z-aaaaaa")
