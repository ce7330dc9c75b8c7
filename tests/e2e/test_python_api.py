"""`shiftsync.run_sync` as an orchestrator calls it: the run record back, errors from the one
tree; and the docs' Airflow and Dagster examples are valid Python that calls it so."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import duckdb
import pytest
import yaml

import shiftsync
from shiftsync.engine.runs import RunRecord, RunStore
from shiftsync.errors import ConfigError, ShiftsyncError, SyncFailedError
from shiftsync.local.standin import StandInInfo
from tests.e2e.test_cli_config import write_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIFTSYNC_TEST_UNSET_DSN", "SHIFTSYNC_CONFIG", "SHIFTSYNC_ENV"):
        monkeypatch.delenv(name, raising=False)


def test_run_sync_returns_the_recorded_run(tmp_path: Path, info: StandInInfo) -> None:
    write_config(tmp_path / "shiftsync.yaml", info)
    record = shiftsync.run_sync("local_copy", workspace=tmp_path)
    assert isinstance(record, RunRecord)
    assert record.status == "ok"
    assert [(t.table, t.status, t.rows) for t in record.tables] == [("public.category", "ok", 11)]
    assert RunStore(tmp_path / ".shiftsync" / "runs").load(record.run_id).status == "ok"
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM category").fetchone() == (11,)


def test_a_failed_table_raises_with_the_record(tmp_path: Path, info: StandInInfo) -> None:
    path = write_config(tmp_path / "shiftsync.yaml", info)
    config = yaml.safe_load(path.read_text())
    config["syncs"]["local_copy"]["tables"] = [
        "public.category",
        {"include": "public.venue", "columns": {"exclude": ["no_such_column"]}},
    ]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SyncFailedError) as info_:
        shiftsync.run_sync("local_copy", workspace=tmp_path)
    failure = info_.value
    assert isinstance(failure, ShiftsyncError)
    assert failure.exit_code == 1
    record = failure.record
    assert isinstance(record, RunRecord)
    assert record.status == "partial"
    assert failure.message.startswith(f"sync local_copy, run {record.run_id}: partial, 1 of 2")
    assert "public.venue" in failure.message
    assert failure.fix
    returned = shiftsync.run_sync("local_copy", workspace=tmp_path, raise_on_failure=False)
    assert returned.status == "partial"


def test_errors_before_the_run_come_from_the_tree(tmp_path: Path, info: StandInInfo) -> None:
    path = write_config(tmp_path / "conf.yaml", info)
    with pytest.raises(ConfigError) as unknown:
        shiftsync.run_sync("nope", config=path)
    assert unknown.value.exit_code == 2
    with pytest.raises(ConfigError, match="export SHIFTSYNC_TEST_UNSET_DSN="):
        shiftsync.run_sync("report", config=path)
    assert shiftsync.run_sync("local_copy", config=path, dry_run=True).tables[0].status == (
        "planned"
    )


def python_blocks() -> list[str]:
    """The examples of run_sync in the docs (other blocks show signatures, not programs)."""
    found = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [block for block in found if "run_sync" in block]


def test_the_orchestrator_examples_parse_and_call_run_sync() -> None:
    blocks = python_blocks()
    assert len(blocks) == 4
    for block in blocks:
        ast.parse(block)
    airflow = next(b for b in blocks if "from airflow" in b)
    dagster = next(b for b in blocks if "import dagster" in b)
    for example in (airflow, dagster):
        calls = [
            node
            for node in ast.walk(ast.parse(example))
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "shiftsync.run_sync"
        ]
        assert calls, example
        known = set(shiftsync.run_sync.__code__.co_varnames)
        assert {k.arg for call in calls for k in call.keywords} <= known
