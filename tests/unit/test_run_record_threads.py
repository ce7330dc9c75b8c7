"""The run record is written by worker threads while the run saves it: no save sees half."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shiftsync.engine.runs import RunRecord, RunStore, TableRun


@pytest.fixture
def busy_switching() -> Iterator[None]:
    # Switch threads as often as possible, so that an unguarded write pair is torn.
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


@pytest.mark.usefixtures("busy_switching")
def test_saves_while_many_tables_update_see_whole_updates(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    tables = [TableRun(table=f"public.t{i}", target=f"t{i}", mode="incremental") for i in range(8)]
    record = RunRecord(run_id="20240101T000000Z-abcdef", sync="main", started_at="x")
    record.tables = tables
    done = threading.Event()

    def work(table: TableRun) -> None:
        for step in range(1, 3_000):
            # rows and bytes always move together: bytes is 8 × rows in every whole update.
            table.update(rows=step, bytes=8 * step, verification={"rows": step})
            if step % 100 == 0:
                table.note(f"step {step}")

    workers = [threading.Thread(target=work, args=(t,)) for t in tables]
    for worker in workers:
        worker.start()
    saved: list[str] = []

    def keep_saving() -> None:
        while not done.is_set():
            store.save(record)
            saved.append(store.path(record.run_id).read_text())

    saver = threading.Thread(target=keep_saving)
    saver.start()
    for worker in workers:
        worker.join()
    done.set()
    saver.join()
    store.save(record)
    saved.append(store.path(record.run_id).read_text())

    assert len(saved) > 1
    for text in saved:
        for table in json.loads(text)["tables"]:
            assert table["bytes"] == 8 * table["rows"]
            if table["verification"] is not None:
                assert table["verification"]["rows"] == table["rows"]
    final = json.loads(saved[-1])["tables"]
    assert all(t["rows"] == 2_999 and len(t["notes"]) == 29 for t in final)


def test_update_refuses_an_unknown_field() -> None:
    table = TableRun(table="public.t", target="t", mode="full_refresh")
    with pytest.raises(AttributeError, match="no field 'row'"):
        table.update(row=1)
