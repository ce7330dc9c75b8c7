"""`shiftsync sync` and `shiftsync runs`: run a sync, and read the run history.

Exit codes of `sync`: 0 every table copied and verified; 1 some table failed (the others
still ran); 2 the configuration or the command line is wrong; 3 AWS refused access; 5 the
sync may not run now (outside its only_between window).

Output: progress on stderr (a live display on a terminal, one line per event otherwise), the
summary on stdout; with `--json` stdout holds one JSON document and nothing else.
"""

from __future__ import annotations

import enum
import sys
from datetime import datetime
from pathlib import Path
from typing import Final

import typer

from shiftsync.cli import output
from shiftsync.cli.options import WorkspaceOption, find_workspace
from shiftsync.cli.progress import (
    LiveProgress,
    PlainProgress,
    count_text,
    load_text,
    megabytes,
    thousands,
    verification_text,
)
from shiftsync.engine.observer import SyncObserver, SyncOptions
from shiftsync.engine.runs import (
    DEFAULT_RETENTION,
    CostJson,
    RunRecord,
    RunStore,
    TableRun,
    VerificationJson,
    effective_status,
    parse_age,
)
from shiftsync.errors import ConfigError, ShiftsyncError
from shiftsync.workspace import Workspace

runs_app = typer.Typer(
    help="The run history of this workspace: list runs, or show one.",
    invoke_without_command=True,
    no_args_is_help=False,
)


# --- formatting helpers (pure) ----------------------------------------------------------


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
    print_run_notes(record)
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
        f"run {record.run_id}: {record.status}, {count_text(len(record.tables), 'table')}"
        f"{f' ({failed} failed)' if failed else ''}, {count_text(rows_total, 'row')}"
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
    print_run_notes(record)


def print_run_notes(record: RunRecord) -> None:
    for note in record.notes:
        if not is_warning(note):
            output.echo(f"note: {note}")
    print_warnings(record)


def is_warning(note: str) -> bool:
    return note.startswith("warning: ")


def print_warnings(record: RunRecord) -> None:
    """A warning (a pattern that matches no table) goes to stderr, --json or not: it asks the
    person at the keyboard to change shiftsync.yaml."""
    for note in record.notes:
        if is_warning(note):
            output.echo(note, err=True)


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
    workspace: WorkspaceOption = None,
) -> None:
    """Copy a sync's tables into its destination, verify them, and record the run.

    Full-refresh tables are replaced whole: readers see the old table until the new one is
    complete (for DuckDB, readers in other processes wait for the run to end, or read its
    reader_copy; see docs/destinations.md). Incremental tables read the rows whose tracking
    field grew and commit them with the new cursor in one transaction, so a killed run loses
    or doubles nothing. After each table, row counts and checksums computed on Redshift and in
    the destination are compared.
    Tables run in parallel (concurrency); a table that fails does not stop the others.

    Exit codes: 0 all tables ok; 1 some table failed (also when its max_compute_seconds
    budget stopped it); 2 configuration or usage; 3 AWS access; 5 outside the sync's
    only_between window (nothing ran).
    """
    options = SyncOptions(
        tables=tuple(tables),
        full_refresh=full_refresh,
        dry_run=dry_run,
        verify=not no_verify,
        executor=executor.value if executor is not None else None,
        ray_address=ray_address,
    )
    try:
        _sync(sync_name, options, json_output, workspace)
    except ShiftsyncError as error:
        if json_output:
            # --json promises one document on stdout, also when the run cannot start.
            output.print_json(
                {
                    "status": "error",
                    "error": error.message,
                    "fix": error.fix,
                    "error_type": type(error).__name__,
                    "exit_code": error.exit_code,
                }
            )
        raise


def _sync(
    sync_name: str | None, options: SyncOptions, json_output: bool, workspace: Path | None
) -> None:
    # The engine loads boto3, pyarrow and DuckDB: only a sync needs them, not `runs` or --help.
    from shiftsync.engine.sync import exit_code_of, run_sync

    found = find_workspace(workspace)
    dry_run = options.dry_run
    if output.is_terminal(sys.stderr) and not json_output and not dry_run:
        with LiveProgress(output.console(sys.stderr)) as live:
            record = run_sync(found, sync_name, options, observer=live)
    elif dry_run:
        record = run_sync(found, sync_name, options, observer=SyncObserver())
    else:
        with PlainProgress() as plain:
            record = run_sync(found, sync_name, options, observer=plain)
    code = exit_code_of(record)
    if json_output:
        output.print_json({**record.to_json(), "exit_code": code, "dry_run": dry_run})
        print_warnings(record)
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
    workspace: WorkspaceOption = None,
) -> None:
    """List recent runs, newest first (`shiftsync runs show RUN` for one run).

    A run whose process was killed shows as interrupted. Exit codes: 0 listed; 2 no workspace.
    """
    if ctx.invoked_subcommand is not None:
        return
    found = find_workspace(workspace)
    listed = RunStore(found.runs_dir).list(limit=limit, sync=sync_name)
    if not listed and sync_name is not None:
        _refuse_unknown_sync(found, sync_name)
    if json_output:
        output.print_json(listed)
        return
    if not listed:
        output.note(
            f"no runs of sync {sync_name} yet: `shiftsync sync {sync_name}` records one"
            if sync_name
            else "no runs yet: `shiftsync sync` records one"
        )
        return
    headers = [
        "run",
        "sync",
        "started",
        "time",
        "status",
        "tables",
        "failed",
        "rows",
        "compute s",
    ]
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
            _seconds_text(r.get("compute_seconds")),
        ]
        for r in listed
    ]
    output.print_table(headers, rows)


def _seconds_text(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.1f}"


def cost_lines(cost: CostJson | None) -> list[str]:
    """What the run's statements cost Redshift, as `runs show` prints it."""
    if not cost:
        return []
    lines = [
        f"redshift: {cost.get('statements', 0)} statements, "
        f"{_seconds_text(cost.get('compute_seconds'))} s of execution "
        f"(from {cost.get('source', '-')})"
        + (
            f", budget {cost['budget_seconds']:g} s"
            if isinstance(cost.get("budget_seconds"), int | float)
            else ""
        )
    ]
    if cost.get("serverless_charged_rpu_seconds") is not None:
        lines.append(
            f"workgroup usage over the run: {cost.get('serverless_rpu_seconds')} RPU-seconds, "
            f"{cost.get('serverless_charged_rpu_seconds')} charged"
        )
    notes = cost.get("notes")
    lines += [f"note: {note}" for note in notes] if isinstance(notes, list) else []
    return lines


@runs_app.command("prune")
def prune(
    older_than: str = typer.Option(
        f"{DEFAULT_RETENTION.days}d",
        "--older-than",
        metavar="AGE",
        help="Delete the runs that started longer ago than this: 30d, 12h, 90m, 2w.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would go; delete nothing."),
    json_output: bool = typer.Option(False, "--json", help="Print the pruned runs as JSON."),
    workspace: WorkspaceOption = None,
) -> None:
    """Delete old run records (a sync already deletes those older than 90 days).

    A run still going is kept. State (cursors) is not touched. Exit codes: 0 pruned (or nothing
    to prune); 2 a wrong --older-than or no workspace.
    """
    age = parse_age(older_than)
    pruned = _store(workspace).prune(age, dry_run=dry_run)
    if json_output:
        output.print_json({"dry_run": dry_run, "older_than": older_than, "runs": pruned})
        return
    verb = "would delete" if dry_run else "deleted"
    for run in pruned:
        output.echo(f"{verb} run {run['run_id']} ({run['sync']}, {run['started_at']})")
    output.note(f"{verb} {count_text(len(pruned), 'run')} older than {older_than}")


def _refuse_unknown_sync(found: Workspace, sync_name: str) -> None:
    """ConfigError when no sync of the configuration has that name (and no run recorded it)."""
    config = found.config
    names = [*config.syncs, *config.unresolved("syncs")]
    if sync_name not in names:
        raise ConfigError(
            f"{found.config_path} has no sync named {sync_name!r}, and no run of it is recorded",
            fix=f"use one of: {', '.join(names) or '(none: add syncs: to the file)'}",
        )


def detail_lines(table: TableRun) -> list[str]:
    lines: list[str] = []
    if table.cursor_from or table.cursor_to:
        lines.append(f"cursor: {table.cursor_from or '(start)'} -> {table.cursor_to}")
    for change in table.schema_changes:
        lines.append(
            f"schema change: {change.get('kind')} {change.get('column')!r} "
            f"({change.get('old_type')} -> {change.get('new_type')})"
        )
    verification: VerificationJson = table.verification or {}
    if verification:
        lines.append(
            f"verification: {verification.get('status')}, rows source "
            f"{verification.get('source_rows')} / destination "
            f"{verification.get('destination_rows')}, "
            f"{verification.get('columns_checked')} columns"
        )
        mismatches = verification.get("mismatches")
        for m in mismatches if isinstance(mismatches, list) else ():
            if not isinstance(m, dict):
                continue
            where = "row count" if m.get("column") is None else f"{m['column']!r} {m['measure']}"
            lines.append(
                f"  mismatch: {where}: source {m['source']}, destination {m['destination']}"
            )
    if table.deletes:
        d = table.deletes
        lines.append(
            f"deletes ({d.get('policy')}): {d.get('deleted')} found by {d.get('strategy')} in "
            f"{d.get('statements')} statement(s), {thousands(d.get('bytes'))} bytes, "
            f"{d.get('seconds')}s"
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
    workspace: WorkspaceOption = None,
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
    for line in cost_lines(record.cost):
        output.echo(line)
    output.print_table(SUMMARY_HEADERS, summary_rows(record))
    for table in record.tables:
        lines = detail_lines(table)
        if lines:
            output.echo(f"{table.table}:")
            for line in lines:
                output.echo(f"  {line}")


__all__ = ["LiveProgress", "PlainProgress", "runs_app", "summary_rows", "sync"]
