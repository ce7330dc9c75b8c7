"""`shiftsync sync` and `shiftsync runs`: run a sync, and read the run history.

Exit codes of `sync`: 0 every table copied and verified; 1 some table failed (the others
still ran); 2 the configuration or the command line is wrong; 3 AWS refused access.

Output: progress on stderr (a live display on a terminal, one line per event otherwise), the
summary on stdout; with `--json` stdout holds one JSON document and nothing else.
"""

from __future__ import annotations

import enum
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from shiftsync.cli import output
from shiftsync.cli.options import WORKSPACE_OPTION, find_workspace
from shiftsync.engine.observer import SyncObserver, SyncOptions
from shiftsync.engine.runs import RunRecord, RunStore, TableRun, effective_status

MB: Final = 1024 * 1024

runs_app = typer.Typer(
    help="The run history of this workspace: list runs, or show one.",
    invoke_without_command=True,
    no_args_is_help=False,
)


# --- formatting helpers (pure) ----------------------------------------------------------


def megabytes(count: int | None) -> str:
    return "" if count is None else f"{count / MB:.1f}"


def thousands(count: int | None) -> str:
    return "" if count is None else f"{count:,}"


def verification_text(table: TableRun) -> str:
    verification = table.verification or {}
    status = verification.get("status")
    if status == "ok":
        return "verified"
    if status == "mismatch":
        return "MISMATCH"
    if status == "skipped":
        return "not verified"
    return ""


def load_text(table: TableRun) -> str:
    return f"{table.mode}/{table.load}" if table.load else table.mode


def duration_text(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    try:
        seconds = (_parse_time(end) - _parse_time(start)).total_seconds()
    except ValueError:
        return ""
    return f"{seconds:.1f}s"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- progress ---------------------------------------------------------------------------


class PlainProgress(SyncObserver):
    """One line per event on stderr: for logs, CI and pipes."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}

    def _line(self, text: str) -> None:
        with self._lock:
            stamp = time.strftime("%H:%M:%S")
            print(f"{stamp} {text}", file=self._stream, flush=True)

    def table_started(self, table: TableRun) -> None:
        self._started[table.table] = time.monotonic()
        cursor = f", from {table.cursor_from}" if table.cursor_from else ""
        self._line(f"{table.table}: reading ({table.method}, {load_text(table)}{cursor})")

    def table_finished(self, table: TableRun) -> None:
        if table.status == "ok":
            verified = verification_text(table)
            self._line(
                f"{table.table}: ok, {thousands(table.rows)} rows, {megabytes(table.bytes)} MB "
                f"in {table.duration_seconds:.1f}s{', ' + verified if verified else ''}"
            )
        else:
            self._line(f"{table.table}: FAILED: {table.error}")


class LiveProgress(SyncObserver):
    """A live display per table (rows, MB, rate, method) while the run goes."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[rows]:>12} rows"),
            TextColumn("{task.fields[mb]:>9} MB"),
            TextColumn("{task.fields[rate]:>12}"),
            TextColumn("{task.fields[method]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _task(self, table: TableRun) -> TaskID:
        with self._lock:
            if table.table not in self._tasks:
                self._tasks[table.table] = self.progress.add_task(
                    escape(table.table), rows="", mb="", rate="", method="", start=False
                )
            return self._tasks[table.table]

    def table_started(self, table: TableRun) -> None:
        task = self._task(table)
        self._started[table.table] = time.monotonic()
        self.progress.start_task(task)
        self.progress.update(task, rows="0", mb="0.0", rate="", method=table.method or "")

    def table_progress(self, table: TableRun, rows: int, bytes_read: int) -> None:
        elapsed = max(time.monotonic() - self._started.get(table.table, time.monotonic()), 1e-3)
        self.progress.update(
            self._task(table),
            rows=thousands(rows),
            mb=megabytes(bytes_read),
            rate=f"{rows / elapsed:,.0f} rows/s",
        )

    def table_finished(self, table: TableRun) -> None:
        task = self._task(table)
        status = "ok" if table.status == "ok" else "FAILED"
        self.progress.update(
            task,
            description=escape(f"{table.table} [{status}]"),
            rows=thousands(table.rows),
            mb=megabytes(table.bytes),
            method=table.method or "",
        )
        self.progress.stop_task(task)


# --- sync ---------------------------------------------------------------------------------


SUMMARY_HEADERS: Final = (
    "table",
    "target",
    "mode",
    "method",
    "rows",
    "MB",
    "time",
    "check",
    "status",
)


def summary_rows(record: RunRecord) -> list[list[str]]:
    return [
        [
            t.table,
            t.target,
            load_text(t),
            t.method or "",
            thousands(t.rows),
            megabytes(t.bytes),
            f"{t.duration_seconds:.1f}s",
            verification_text(t),
            t.status,
        ]
        for t in record.tables
    ]


def print_summary(record: RunRecord) -> None:
    output.print_table(SUMMARY_HEADERS, summary_rows(record))
    for note in record.notes:
        output.echo(f"note: {note}")
    for table in record.tables:
        for note in table.notes:
            output.echo(f"note: {table.table}: {note}")
    for table in record.failed_tables:
        output.echo(f"error: {table.table}: {table.error}")
        if table.fix:
            output.echo(f"  fix: {table.fix}")
    failed = len(record.failed_tables)
    rows_total = sum(t.rows for t in record.tables)
    output.echo(
        f"run {record.run_id}: {record.status}, {len(record.tables)} tables"
        f"{f' ({failed} failed)' if failed else ''}, {thousands(rows_total)} rows"
    )


def print_plan(record: RunRecord) -> None:
    headers = ["table", "target", "method", "mode", "est. rows", "est. MB", "notes"]
    rows = [
        [
            t.table,
            t.target,
            t.method or "",
            load_text(t),
            thousands(t.estimated_rows),
            megabytes(t.estimated_bytes),
            "; ".join(t.notes) if t.status != "failed" else f"error: {t.error}",
        ]
        for t in record.tables
    ]
    output.print_table(headers, rows, title=f"plan of sync {record.sync} (dry run: no data moved)")


class Executor(enum.StrEnum):
    local = "local"
    ray = "ray"


def sync(
    sync_name: str | None = typer.Argument(
        None, metavar="SYNC", help="The sync to run (default: the only one in shiftsync.yaml)."
    ),
    tables: list[str] = typer.Option(
        [],
        "--tables",
        "-t",
        help='Only these tables: "schema.table" or "table", * and ? as wildcards (repeatable).',
    ),
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="Ignore stored cursors: replace incremental tables whole."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan (method, mode, estimates) and move no data."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the run as one JSON document."),
    no_verify: bool = typer.Option(
        False, "--no-verify", help="Skip the row count and checksum comparison after each table."
    ),
    executor: Executor | None = typer.Option(
        None,
        "--executor",
        help="Where the table reads run (default: the sync's executor:): local, or ray.",
    ),
    ray_address: str | None = typer.Option(
        None, "--ray-address", metavar="HOST:PORT", help="The Ray cluster of --executor ray."
    ),
    workspace: Path | None = WORKSPACE_OPTION,
) -> None:
    """Copy a sync's tables into its destination, verify them, and record the run.

    Full-refresh tables are replaced whole: readers see the old table until the new one is
    complete. Incremental tables read the rows whose tracking field grew and commit them with
    the new cursor in one transaction, so a killed run loses or doubles nothing. After each
    table, row counts and checksums computed on Redshift and in the destination are compared.
    Tables run in parallel (concurrency); a table that fails does not stop the others.

    Exit codes: 0 all tables ok; 1 some table failed; 2 configuration or usage; 3 AWS access.
    """
    # The engine loads boto3, pyarrow and DuckDB: only a sync needs them, not `runs` or --help.
    from shiftsync.engine.sync import exit_code_of, run_sync

    found = find_workspace(workspace)
    options = SyncOptions(
        tables=tuple(tables),
        full_refresh=full_refresh,
        dry_run=dry_run,
        verify=not no_verify,
        executor=executor.value if executor is not None else None,
        ray_address=ray_address,
    )
    if output.is_terminal(sys.stderr) and not json_output and not dry_run:
        with LiveProgress(output.console(sys.stderr)) as live:
            record = run_sync(found, sync_name, options, observer=live)
    else:
        observer = SyncObserver() if dry_run else PlainProgress()
        record = run_sync(found, sync_name, options, observer=observer)
    code = exit_code_of(record)
    if json_output:
        output.print_json({**record.to_json(), "exit_code": code, "dry_run": dry_run})
    elif dry_run:
        print_plan(record)
    else:
        print_summary(record)
    # main() ignores typer.Exit's code under standalone_mode=False; SystemExit is kept.
    raise SystemExit(code)


# --- runs -----------------------------------------------------------------------------------


def _store(workspace: Path | None) -> RunStore:
    return RunStore(find_workspace(workspace).runs_dir)


@runs_app.callback()
def runs(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs, newest first."),
    sync_name: str | None = typer.Option(None, "--sync", help="Only the runs of this sync."),
    workspace: Path | None = WORKSPACE_OPTION,
) -> None:
    """List recent runs, newest first (`shiftsync runs show RUN` for one run).

    A run whose process was killed shows as interrupted. Exit codes: 0 listed; 2 no workspace.
    """
    if ctx.invoked_subcommand is not None:
        return
    listed = _store(workspace).list(limit=limit, sync=sync_name)
    if json_output:
        output.print_json(listed)
        return
    if not listed:
        output.note("no runs yet: `shiftsync sync` records one")
        return
    headers = ["run", "sync", "started", "time", "status", "tables", "failed", "rows"]
    rows = [
        [
            str(r["run_id"]),
            str(r["sync"]),
            str(r["started_at"]),
            duration_text(r.get("started_at"), r.get("finished_at")),
            str(r["status"]),
            str(r.get("tables", "")),
            str(r.get("failed", "")),
            thousands(r.get("rows")),
        ]
        for r in listed
    ]
    output.print_table(headers, rows)


def _detail_lines(table: TableRun) -> list[str]:
    lines: list[str] = []
    if table.cursor_from or table.cursor_to:
        lines.append(f"cursor: {table.cursor_from or '(start)'} -> {table.cursor_to}")
    for change in table.schema_changes:
        lines.append(
            f"schema change: {change.get('kind')} {change.get('column')!r} "
            f"({change.get('old_type')} -> {change.get('new_type')})"
        )
    verification: Mapping[str, Any] = table.verification or {}
    if verification:
        lines.append(
            f"verification: {verification.get('status')}, rows source "
            f"{verification.get('source_rows')} / destination "
            f"{verification.get('destination_rows')}, "
            f"{verification.get('columns_checked')} columns"
        )
        for m in verification.get("mismatches", ()):
            where = "row count" if m.get("column") is None else f"{m['column']!r} {m['measure']}"
            lines.append(
                f"  mismatch: {where}: source {m['source']}, destination {m['destination']}"
            )
    if table.retries:
        lines.append(f"retries: {table.retries}")
    lines += [f"note: {note}" for note in table.notes]
    if table.error:
        lines.append(f"error: {table.error}")
        if table.fix:
            lines.append(f"  fix: {table.fix}")
    return lines


@runs_app.command("show")
def show(
    run_id: str = typer.Argument(..., metavar="RUN", help="A run id, a unique prefix, or latest."),
    json_output: bool = typer.Option(False, "--json", help="Print the run record as JSON."),
    workspace: Path | None = WORKSPACE_OPTION,
) -> None:
    """Show one run: per table the method, mode, rows, bytes, duration, checks and errors.

    Also the cursor moved, the schema changes applied, each verification difference, retries
    and notes. Exit codes: 0 shown; 2 no such run (or the prefix matches several).
    """
    record = _store(workspace).load(run_id)
    if json_output:
        output.print_json(record.to_json())
        return
    output.echo(
        f"run {record.run_id} of sync {record.sync}: {effective_status(record.summary())}, "
        f"started {record.started_at}, finished {record.finished_at or '-'}"
    )
    if record.error:
        output.echo(f"error: {record.error}")
    for note in record.notes:
        output.echo(f"note: {note}")
    output.print_table(SUMMARY_HEADERS, summary_rows(record))
    for table in record.tables:
        lines = _detail_lines(table)
        if lines:
            output.echo(f"{table.table}:")
            for line in lines:
                output.echo(f"  {line}")


__all__ = ["LiveProgress", "PlainProgress", "runs_app", "summary_rows", "sync"]
