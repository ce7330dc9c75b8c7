"""Run-history retention: `RunStore.prune` and the ages `shiftsync runs prune` takes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shiftsync.engine.runs import RunRecord, RunStore, parse_age
from shiftsync.errors import ConfigError

NOW = datetime(2024, 3, 1, tzinfo=UTC)


def saved(store: RunStore, run_id: str, started: datetime, status: str = "ok") -> RunRecord:
    run = RunRecord(
        run_id=run_id,
        sync="nightly",
        started_at=started.isoformat().replace("+00:00", "Z"),
        status=status,  # type: ignore[arg-type]
    )
    store.save(run)
    return run


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        (" 1d ", timedelta(days=1)),
    ],
)
def test_parse_age(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["30", "d", "1y", "-1d", "1.5d", "", "30 days"])
def test_parse_age_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="is not an age") as info:
        parse_age(text)
    assert info.value.fix is not None
    assert "--older-than 30d" in info.value.fix


def test_prune_deletes_old_runs_and_their_index_lines(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    old = saved(store, "20240101T000000Z-aaaaaa", NOW - timedelta(days=60))
    recent = saved(store, "20240225T000000Z-bbbbbb", NOW - timedelta(days=5))
    pruned = store.prune(timedelta(days=30), now=NOW)
    assert [run["run_id"] for run in pruned] == [old.run_id]
    assert [run["run_id"] for run in store.list()] == [recent.run_id]
    assert not store.path(old.run_id).exists()
    assert store.path(recent.run_id).exists()


def test_prune_dry_run_deletes_nothing(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    old = saved(store, "20240101T000000Z-aaaaaa", NOW - timedelta(days=60))
    assert [run["run_id"] for run in store.prune(timedelta(days=30), now=NOW, dry_run=True)] == [
        old.run_id
    ]
    assert store.path(old.run_id).exists()


def test_prune_keeps_a_run_still_going(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    going = RunRecord(
        run_id="20240101T000000Z-cccccc", sync="nightly", started_at="2024-01-01T00:00:00.000Z"
    )
    assert going.pid == os.getpid()  # this process: alive
    store.save(going)
    assert store.prune(timedelta(days=1), now=NOW) == []
    assert store.path(going.run_id).exists()


def test_prune_of_an_empty_history(tmp_path: Path) -> None:
    assert RunStore(tmp_path / "none").prune(timedelta(days=1)) == []
