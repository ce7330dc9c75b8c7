"""/metrics from the run history: totals per sync and table, cached finished runs."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from shiftsync.engine.runs import RunRecord, RunStore, TableRun
from shiftsync.serve.metrics import metrics_registry, render


def _record(run_id: str, *tables: TableRun) -> RunRecord:
    record = RunRecord(run_id=run_id, sync="nightly", started_at=f"2024-01-01T00:00:0{run_id[-1]}Z")
    record.tables = list(tables)
    record.finish()
    record.finished_at = f"2024-01-01T00:00:1{run_id[-1]}Z"  # each run lasts 10 s
    return record


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counters_add_up_the_run_history(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    ok = TableRun(
        "public.a", "a", "full_refresh", status="ok", rows=10, bytes=100, duration_seconds=1.5
    )
    ok.statements, ok.retries = 3, 2
    ok.verification = {"status": "ok"}
    store.save(_record("20240101T000001Z-aaaaa1", ok))
    bad = TableRun("public.a", "a", "full_refresh", status="ok", rows=5, bytes=50)
    bad.verification = {"status": "mismatch"}
    failed = TableRun("public.b", "", "", status="failed", error="gone")
    store.save(_record("20240101T000002Z-aaaaa2", bad, failed))
    registry = metrics_registry(store)
    samples = _samples(render(registry).decode())
    a = (("sync", "nightly"), ("table", "public.a"))
    assert samples[("shiftsync_table_rows_total", a)] == 15
    assert samples[("shiftsync_table_bytes_total", a)] == 150
    assert samples[("shiftsync_table_seconds_total", a)] == 1.5
    assert samples[("shiftsync_data_api_statements_total", a)] == 3
    assert samples[("shiftsync_retries_total", a)] == 2
    assert samples[("shiftsync_verification_failures_total", a)] == 1
    assert samples[("shiftsync_runs_total", (("status", "ok"), ("sync", "nightly")))] == 1
    assert samples[("shiftsync_run_seconds_total", (("sync", "nightly"),))] == 20
    assert samples[("shiftsync_runs_total", (("status", "partial"), ("sync", "nightly")))] == 1
    outcome = (("status", "failed"), ("sync", "nightly"), ("table", "public.b"))
    assert samples[("shiftsync_table_runs_total", outcome)] == 1
    # A second scrape counts each finished run once; a new run adds to the totals.
    store.save(_record("20240101T000003Z-aaaaa3", ok))
    again = _samples(render(registry).decode())
    assert again[("shiftsync_table_rows_total", a)] == 25
    assert again[("shiftsync_runs_total", (("status", "ok"), ("sync", "nightly")))] == 2


def test_running_runs_are_a_gauge_not_counted(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    running = RunRecord(run_id="20240101T000001Z-bbbbb1", sync="nightly", started_at="x")
    store.save(running)  # status running, this process alive
    samples = _samples(render(metrics_registry(store)).decode())
    assert samples[("shiftsync_runs_running", (("sync", "nightly"),))] == 1
    assert not any(name == "shiftsync_runs_total" for name, _ in samples)
