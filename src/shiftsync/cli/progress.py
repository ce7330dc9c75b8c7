"""What `shiftsync sync` shows while it runs: log lines with a heartbeat, or a live display.

Not on a terminal (logs, CI, pipes), `PlainProgress` logs one line per event on the
`shiftsync.progress` logger (so `--log-format json` and `--log-file` apply), and while a table
is quiet (a long statement, an UNLOAD) a heartbeat line every `heartbeat` seconds says it is
still going. On a terminal, `LiveProgress` draws a rich progress display: per table the rows,
the rate, the share of the estimated rows and the time left, and the tables done of all.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Final

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from shiftsync.engine.observer import SyncObserver
from shiftsync.engine.runs import RunRecord, TableRun

MB: Final = 1024 * 1024
# Seconds without a line about a table before the heartbeat says it is still going.
HEARTBEAT_ENV: Final = "SHIFTSYNC_HEARTBEAT_SECONDS"
DEFAULT_HEARTBEAT: Final = 30.0

log = logging.getLogger("shiftsync.progress")


def megabytes(count: int | None) -> str:
    return "" if count is None else f"{count / MB:.1f}"


def thousands(count: int | None) -> str:
    return "" if count is None else f"{count:,}"


def count_text(count: int, noun: str) -> str:
    """`1 row`, `2 rows`, `1,234 rows`."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def load_text(table: TableRun) -> str:
    return f"{table.mode}/{table.load}" if table.load else table.mode


def verification_text(table: TableRun) -> str:
    status = (table.verification or {}).get("status")
    return {"ok": "verified", "mismatch": "MISMATCH", "skipped": "not verified"}.get(
        str(status), ""
    )


def heartbeat_seconds() -> float:
    """The heartbeat interval: $SHIFTSYNC_HEARTBEAT_SECONDS, else 30 s."""
    try:
        value = float(os.environ.get(HEARTBEAT_ENV, DEFAULT_HEARTBEAT))
    except ValueError:
        return DEFAULT_HEARTBEAT
    return value if value > 0 else DEFAULT_HEARTBEAT


def deletes_text(table: TableRun) -> str:
    """`, 3 deleted` (or `marked deleted` under soft) after a delete pass that found rows."""
    found = int((table.deletes or {}).get("deleted") or 0)
    if not found:
        return ""
    verb = "marked deleted" if (table.deletes or {}).get("policy") == "soft" else "deleted"
    return f", {found:,} {verb}"


class PlainProgress(SyncObserver):
    """One log line per event, and a heartbeat for quiet tables; close() stops the heartbeat."""

    def __init__(self, heartbeat: float | None = None) -> None:
        self.heartbeat = heartbeat if heartbeat is not None else heartbeat_seconds()
        self._lock = threading.Lock()
        # Per table in flight: its run, when it started, when a line last said something.
        self._going: dict[str, tuple[TableRun, float, float]] = {}
        self._rows: dict[str, int] = {}
        self._done = 0
        self._total = 0
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _line(self, table: TableRun | None, text: str, **fields: object) -> None:
        extra = {"table": table.table, **fields} if table is not None else fields
        log.info(text, extra=extra)
        if table is not None:
            with self._lock:
                if table.table in self._going:
                    run, started, _ = self._going[table.table]
                    self._going[table.table] = (run, started, time.monotonic())

    def run_planned(self, record: RunRecord) -> None:
        self._total = len(record.tables)

    def table_started(self, table: TableRun) -> None:
        now = time.monotonic()
        with self._lock:
            self._going[table.table] = (table, now, now)
            if self._beat is None:
                self._beat = threading.Thread(
                    target=self._heartbeat, name="shiftsync-heartbeat", daemon=True
                )
                self._beat.start()
        cursor = f", from {table.cursor_from}" if table.cursor_from else ""
        self._line(
            table,
            f"{table.table}: reading ({table.method}, {load_text(table)}{cursor})",
            event="table_started",
            method=table.method,
        )

    def table_progress(self, table: TableRun, rows: int, bytes_read: int) -> None:
        with self._lock:
            self._rows[table.table] = rows

    def table_finished(self, table: TableRun) -> None:
        with self._lock:
            self._going.pop(table.table, None)
            self._done += 1
            done, total = self._done, self._total
        of = f" ({done}/{total} tables)" if total else ""
        if table.status == "ok":
            verified = verification_text(table)
            self._line(
                table,
                f"{table.table}: ok, {count_text(table.rows, 'row')}, "
                f"{megabytes(table.bytes)} MB{deletes_text(table)} "
                f"in {table.duration_seconds:.1f}s"
                f"{', ' + verified if verified else ''}{of}",
                event="table_finished",
                status=table.status,
                rows=table.rows,
                retries=table.retries,
            )
        else:
            self._line(
                table,
                f"{table.table}: FAILED: {table.error}{of}",
                event="table_finished",
                status=table.status,
            )

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat / 4):
            now = time.monotonic()
            with self._lock:
                quiet = [
                    (run, started)
                    for run, started, said in self._going.values()
                    if now - said >= self.heartbeat
                ]
                rows = dict(self._rows)
            for run, started in quiet:
                read = rows.get(run.table, 0)
                self._line(
                    run,
                    f"{run.table}: still reading ({run.method}), {count_text(read, 'row')} so "
                    f"far, {now - started:.0f} s",
                    event="heartbeat",
                    rows=read,
                )

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LiveProgress(SyncObserver):
    """A live display: per table rows, rate, % of the estimate, time left; tables done of all."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>14}"),
            TextColumn("{task.fields[method]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._overall: TaskID | None = None
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def run_planned(self, record: RunRecord) -> None:
        with self._lock:
            self._overall = self.progress.add_task(
                "tables", total=len(record.tables), rate="", method=""
            )

    def _task(self, table: TableRun) -> TaskID:
        with self._lock:
            if table.table not in self._tasks:
                self._tasks[table.table] = self.progress.add_task(
                    escape(table.table), total=None, rate="", method="", start=False
                )
            return self._tasks[table.table]

    def table_started(self, table: TableRun) -> None:
        task = self._task(table)
        self._started[table.table] = time.monotonic()
        self.progress.start_task(task)
        # The estimate (svv_table_info) gives the bar its length; unknown, it stays a pulse.
        self.progress.update(
            task, total=table.estimated_rows or None, completed=0, method=table.method or ""
        )

    def table_progress(self, table: TableRun, rows: int, bytes_read: int) -> None:
        task = self._task(table)
        elapsed = max(time.monotonic() - self._started.get(table.table, time.monotonic()), 1e-3)
        total = self.progress.tasks[task].total if task < len(self.progress.tasks) else None
        # An estimate that was low must not show more than 100 %.
        if total is not None and rows > total:
            self.progress.update(task, total=rows)
        self.progress.update(task, completed=rows, rate=f"{rows / elapsed:,.0f} rows/s")

    def table_finished(self, table: TableRun) -> None:
        task = self._task(table)
        status = "ok" if table.status == "ok" else "FAILED"
        self.progress.update(
            task,
            description=escape(f"{table.table} [{status}]"),
            total=max(table.rows, 1),
            completed=max(table.rows, 1) if table.status == "ok" else 0,
            method=table.method or "",
        )
        self.progress.stop_task(task)
        if self._overall is not None:
            self.progress.advance(self._overall)


__all__ = [
    "DEFAULT_HEARTBEAT",
    "HEARTBEAT_ENV",
    "LiveProgress",
    "PlainProgress",
    "count_text",
    "heartbeat_seconds",
    "load_text",
    "megabytes",
    "thousands",
    "verification_text",
]
