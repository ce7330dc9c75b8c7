"""Cost guardrails on the stand-in: each run records what Redshift spent on its statements
(SYS_QUERY_HISTORY by query id), a compute budget stops a run with a clear message, and a
run outside its window is refused with exit code 5 (tests/e2e/test_cli_guardrails.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from shiftsync.engine.runs import RunStore
from shiftsync.engine.sync import run_sync
from shiftsync.local.standin import StandIn, StandInInfo
from shiftsync.workspace import Workspace
from tests.support import standin_connection, write_external_id, write_sync_config

TABLES = ["public.category", "public.venue", "public.date"]


def workspace(folder: Path, info: StandInInfo, **sync: Any) -> Workspace:
    write_external_id(folder, info.external_id)
    write_sync_config(
        folder,
        standin_connection(info),
        {"dest": {"type": "duckdb", "path": "out.duckdb"}},
        {"destination": "dest", "tables": TABLES, "concurrency": 1, **sync},
    )
    return Workspace(folder)


def test_a_run_records_what_its_statements_cost(
    tmp_path: Path, info: StandInInfo, standin: StandIn
) -> None:
    record = run_sync(workspace(tmp_path, info), "main")
    assert record.status == "ok"
    cost = record.cost
    assert cost is not None
    assert cost["source"] == "sys_query_history"
    assert cost["statements"] >= 3 * len(TABLES)
    # The stand-in's own timings of the run's statements, as SYS_QUERY_HISTORY reports them.
    assert standin.engine is not None
    ran = [
        s
        for s in standin.engine.statements.values()
        if s.redshift_query_id in set(_query_ids(standin, record.started_at))
    ]
    assert cost["compute_seconds"] > 0
    assert cost["compute_seconds"] <= sum(s.duration_ns for s in ran) / 1e9 + 0.001
    # The role is no superuser: the workgroup's usage is not readable, and the record says so.
    assert any("SYS_SERVERLESS_USAGE" in note for note in cost["notes"])
    listed = RunStore(workspace(tmp_path, info).runs_dir).list()
    assert listed[0]["compute_seconds"] == cost["compute_seconds"]


def _query_ids(standin: StandIn, since: str) -> list[int]:
    assert standin.engine is not None
    start = datetime.fromisoformat(since).timestamp()
    return [
        s.redshift_query_id for s in standin.engine.statements.values() if s.created_at >= start
    ]


def test_a_budget_stops_the_run_with_a_clear_message(
    tmp_path: Path, info: StandInInfo, standin: StandIn
) -> None:
    ws = workspace(tmp_path, info, max_compute_seconds=0.000001)
    record = run_sync(ws, "main")
    assert record.status == "failed"
    for table in record.tables:
        assert table.status == "failed"
        assert table.error_type == "BudgetError"
        assert table.error is not None
        assert "past its budget (max_compute_seconds: 1e-06); no new statement starts" in (
            table.error
        )
    assert any("budget (max_compute_seconds: 1e-06) was spent" in n for n in record.notes)
    assert record.cost is not None
    assert record.cost["refused_statements"] >= len(TABLES)
    # One statement started (the first table's BEGIN); nothing was committed.
    with duckdb.connect(str(tmp_path / "out.duckdb")) as db:
        found = db.execute("select table_name from information_schema.tables").fetchall()
    names = {row[0] for row in found}
    assert not names & {"category", "venue", "date"}
