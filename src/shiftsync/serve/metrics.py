"""Prometheus metrics at /metrics, from the workspace's run history.

The run history is the record of every run, whoever started it (this server, its scheduler,
`shiftsync sync` in a shell, an orchestrator through the Python API), so the counters are read
from it at each scrape: a finished run is read once and cached (its file does not change
again), running ones are counted as running. Counters therefore cover the whole history kept
in .shiftsync/runs/, and survive a restart of the server.

    shiftsync_runs_total{sync,status}                     finished runs
    shiftsync_runs_running{sync}                          runs going now
    shiftsync_last_run_timestamp_seconds{sync,status}     when the last run of each sync ended
    shiftsync_run_seconds_total{sync}                     wall time of finished runs
    shiftsync_table_rows_total{sync,table}                rows written
    shiftsync_table_bytes_total{sync,table}               bytes read from the source
    shiftsync_table_seconds_total{sync,table}             time spent per table
    shiftsync_table_runs_total{sync,table,status}         table runs by outcome
    shiftsync_data_api_statements_total{sync,table}       Data API statements (ExecuteStatement)
    shiftsync_retries_total{sync,table}                   retried AWS calls
    shiftsync_throttles_total{sync,table}                 of which throttled (ThrottlingException)
    shiftsync_verification_failures_total{sync,table}     verifications that found a mismatch
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shiftsync.engine.runs import RunRecord, RunStore, TableRun
from shiftsync.errors import StateError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_TABLE_COUNTERS: tuple[tuple[str, Callable[[TableRun], float], str], ...] = (
    ("table_rows", lambda run: run.rows, "Rows written to the destination, per table."),
    ("table_bytes", lambda run: run.bytes, "Bytes read from the source, per table."),
    ("table_seconds", lambda run: run.duration_seconds, "Seconds spent per table."),
    ("data_api_statements", lambda run: run.statements, "Data API statements run, per table."),
    ("retries", lambda run: run.retries, "Retried AWS calls, per table."),
    # The run record does not count throttles apart yet (docs/serve.md): the family stays 0.
    ("throttles", lambda run: 0, "Retries caused by throttling, per table."),
)


def _seconds(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class _Totals:
    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], int] = defaultdict(int)
        self.table: dict[str, dict[tuple[str, str], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self.table_runs: dict[tuple[str, str, str], int] = defaultdict(int)
        self.mismatches: dict[tuple[str, str], int] = defaultdict(int)
        self.last: dict[str, tuple[float, str]] = {}
        self.run_seconds: dict[str, float] = defaultdict(float)

    def add(self, record: RunRecord) -> None:
        self.runs[(record.sync, record.status)] += 1
        ended = _seconds(record.finished_at)
        if ended is not None and ended >= self.last.get(record.sync, (0.0, ""))[0]:
            self.last[record.sync] = (ended, record.status)
        began = _seconds(record.started_at)
        if ended is not None and began is not None and ended >= began:
            self.run_seconds[record.sync] += ended - began
        for table in record.tables:
            key = (record.sync, table.table)
            for name, count, _ in _TABLE_COUNTERS:
                self.table[name][key] += count(table)
            self.table_runs[(record.sync, table.table, table.status)] += 1
            if (table.verification or {}).get("status") == "mismatch":
                self.mismatches[key] += 1


class RunHistoryCollector(Collector):
    """Reads .shiftsync/runs/ at each scrape; finished runs are cached by run id."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._done: set[str] = set()
        self._totals = _Totals()

    def _refresh(self) -> dict[str, int]:
        running: dict[str, int] = defaultdict(int)
        for summary in self.store.list():
            run_id, status = str(summary["run_id"]), str(summary["status"])
            if run_id in self._done:
                continue
            if status == "running":
                running[str(summary["sync"])] += 1
                continue
            try:
                record = self.store.load(run_id)
            except StateError:
                continue
            record.status = status  # type: ignore[assignment]
            self._totals.add(record)
            self._done.add(run_id)
        return running

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            running = self._refresh()
            totals = self._totals
            runs = CounterMetricFamily(
                "shiftsync_runs", "Finished runs, by sync and status.", labels=["sync", "status"]
            )
            for (sync, status), count in sorted(totals.runs.items()):
                runs.add_metric([sync, status], count)
            yield runs
            going = GaugeMetricFamily(
                "shiftsync_runs_running", "Runs going now, by sync.", labels=["sync"]
            )
            for sync, count in sorted(running.items()):
                going.add_metric([sync], count)
            yield going
            last = GaugeMetricFamily(
                "shiftsync_last_run_timestamp_seconds",
                "When the last run of each sync ended (Unix time), with its status.",
                labels=["sync", "status"],
            )
            for sync, (ended, status) in sorted(totals.last.items()):
                last.add_metric([sync, status], ended)
            yield last
            wall = CounterMetricFamily(
                "shiftsync_run_seconds", "Wall time of finished runs, by sync.", labels=["sync"]
            )
            for sync, seconds in sorted(totals.run_seconds.items()):
                wall.add_metric([sync], seconds)
            yield wall
            for name, _, text in _TABLE_COUNTERS:
                family = CounterMetricFamily(f"shiftsync_{name}", text, labels=["sync", "table"])
                for (sync, table), value in sorted(totals.table[name].items()):
                    family.add_metric([sync, table], value)
                yield family
            outcomes = CounterMetricFamily(
                "shiftsync_table_runs",
                "Table runs, by outcome.",
                labels=["sync", "table", "status"],
            )
            for (sync, table, status), count in sorted(totals.table_runs.items()):
                outcomes.add_metric([sync, table, status], count)
            yield outcomes
            mismatches = CounterMetricFamily(
                "shiftsync_verification_failures",
                "Verifications that found the destination differing from the source.",
                labels=["sync", "table"],
            )
            for (sync, table), count in sorted(totals.mismatches.items()):
                mismatches.add_metric([sync, table], count)
            yield mismatches


def metrics_registry(store: RunStore) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunHistoryCollector(store))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


__all__ = ["CONTENT_TYPE", "RunHistoryCollector", "metrics_registry", "render"]
