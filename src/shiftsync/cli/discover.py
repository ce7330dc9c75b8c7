"""`shiftsync discover` and `shiftsync cleanup`: what a connection holds, and what a crash left.

Thin: find the workspace, build the RedshiftSource of the connection, print what it returns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, TypedDict

import typer

from shiftsync.cli import output
from shiftsync.cli.options import ConnectionArgument, WorkspaceOption, find_workspace
from shiftsync.errors import ConfigError, ShiftsyncError

if TYPE_CHECKING:
    from shiftsync.redshift.catalog import TableInfo
    from shiftsync.redshift.source import RedshiftSource

SUMMARY_HEADERS: Final = ("table", "kind", "rows", "size", "primary key", "method")
COLUMN_HEADERS: Final = ("column", "type", "null", "arrow")


def register(app: typer.Typer) -> None:
    """Add discover and cleanup to the root command."""
    app.command("discover")(discover)
    app.command("cleanup")(cleanup)


def like_pattern(pattern: str) -> str:
    """A name pattern for the Data API (SQL LIKE): `*` and `?` also work, as `%` and `_`."""
    return pattern.replace("*", "%").replace("?", "_") or "%"


# ---------------------------------------------------------------------------------------------
# discover
# ---------------------------------------------------------------------------------------------


class ColumnDocument(TypedDict):
    """One column as `discover --json` prints it."""

    name: str
    type: str
    nullable: bool
    precision: int | None
    scale: int | None
    length: int | None
    arrow_type: str | None
    supported: bool
    problem: str | None


class TableDocument(TypedDict):
    """One table as `discover --json` prints it."""

    schema: str
    name: str
    table: str
    kind: str
    estimated_rows: int | None
    estimated_bytes: int | None
    primary_key: list[str]
    method: str | None
    reason: str
    chunks: int
    columns: list[ColumnDocument]


def discover(
    connection: ConnectionArgument = None,
    schema: str = typer.Option(
        "%",
        "--schema",
        metavar="PATTERN",
        help="Schemas to list: SQL LIKE (% any text, _ one character); * and ? work too.",
    ),
    table: str = typer.Option(
        "%", "--table", metavar="PATTERN", help="Tables and views to list, as --schema."
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print one JSON document: every table with its columns, key, estimates and plan.",
    ),
    workspace: WorkspaceOption = None,
) -> None:
    """List a connection's tables and views: columns, primary key, size and read method.

    Each table is named as the `tables:` list of shiftsync.yaml takes it: a schema or table
    name with a dot, a space, a quote or a wildcard character is double-quoted
    ('"Odd Schema"."Mixed Case"').

    Columns show their Redshift type (with precision, scale or length), nullability and the
    Arrow type they arrive as; a type shiftsync cannot copy is marked unsupported. Estimates come
    from svv_table_info (views have none). The method is what a sync would choose (see
    docs/python-api.md): data_api, or unload, with the reason.

    Exit codes: 0 listed; 1 a table could not be described (the others are listed); 2
    configuration error; 3 AWS refused access.
    """
    from shiftsync.config import table_name_for_config
    from shiftsync.redshift.source import RedshiftSource

    found = find_workspace(workspace)
    name, config = found.config.connection(connection)
    source = RedshiftSource.from_workspace(found, name)
    described = source.describe_matching(like_pattern(schema), like_pattern(table))
    tables: list[TableDocument] = []
    failures: list[dict[str, str]] = []
    for item in described:
        if isinstance(item, tuple):
            ref, error = item
            failures.append(
                {
                    "table": table_name_for_config(ref.schema, ref.name),
                    "error": error.message,
                    "fix": error.fix or "",
                }
            )
        else:
            tables.append(table_document(source, item))
    if as_json:
        output.print_json(
            {
                "connection": name,
                # One of the two: the other is null.
                "workgroup": config.workgroup,
                "cluster_identifier": config.cluster_identifier,
                "database": config.database,
                "tables": tables,
                "errors": failures,
            }
        )
    else:
        _print_tables(name, config.target_label, config.database, tables)
    for failure in failures:
        output.note(f"error: {failure['table']}: {failure['error']}\n  fix: {failure['fix']}")
    if failures:
        raise typer.Exit(1)


def table_document(source: RedshiftSource, info: TableInfo) -> TableDocument:
    """One table as discover prints it (the JSON shape; the text output shows the same)."""
    from shiftsync.redshift.catalog import column_problem
    from shiftsync.redshift.types import arrow_field, type_spelling

    columns: list[ColumnDocument] = []
    for column in info.columns:
        problem = column_problem(column, table=str(info.ref))
        columns.append(
            {
                "name": column.name,
                "type": type_spelling(column) if problem is None else column.type_name,
                "nullable": column.nullable,
                "precision": column.precision,
                "scale": column.scale,
                "length": column.length,
                "arrow_type": None if problem else str(arrow_field(column).type),
                "supported": problem is None,
                "problem": problem.message if problem else None,
            }
        )
    try:
        plan = source.plan(info)
        method: str | None = plan.method
        reason, chunks = plan.reason, plan.chunks
    except ShiftsyncError as error:
        method, reason, chunks = None, error.message, 0
    from shiftsync.config import table_name_for_config

    return {
        "schema": info.ref.schema,
        "name": info.ref.name,
        # The entry of `tables:` that selects exactly this table.
        "table": table_name_for_config(info.ref.schema, info.ref.name),
        "kind": info.kind,
        "estimated_rows": info.estimated_rows,
        "estimated_bytes": info.estimated_bytes,
        "primary_key": list(info.primary_key),
        "method": method,
        "reason": reason,
        "chunks": chunks,
        "columns": columns,
    }


def _size(value: int | None) -> str:
    from shiftsync.redshift.plan import size_text

    return "-" if value is None else size_text(value)


def _print_tables(name: str, target: str, database: str, tables: list[TableDocument]) -> None:
    output.note(f"shiftsync discover: connection {name}, {target}, database {database}")
    if not tables:
        output.echo("no tables or views match")
        return
    rows = [
        (
            t["table"],
            t["kind"].lower(),
            "-" if t["estimated_rows"] is None else f"{t['estimated_rows']:,}",
            _size(t["estimated_bytes"]),
            ", ".join(t["primary_key"]) or "-",
            t["method"] or "-",
        )
        for t in tables
    ]
    count = len(tables)
    title = "1 table or view" if count == 1 else f"{count} tables and views"
    output.print_table(SUMMARY_HEADERS, rows, title=title)
    for t in tables:
        output.echo("")
        output.echo(f"{t['table']} ({t['kind'].lower()}): {t['reason']}")
        column_rows = [
            (
                c["name"],
                c["type"] + ("" if c["supported"] else " (unsupported)"),
                "null" if c["nullable"] else "not null",
                c["arrow_type"] or "-",
            )
            for c in t["columns"]
        ]
        output.print_table(COLUMN_HEADERS, column_rows)
        for c in t["columns"]:
            if c["problem"]:
                output.note(f"  {c['problem']}")


# ---------------------------------------------------------------------------------------------
# cleanup
# ---------------------------------------------------------------------------------------------


def cleanup(
    connection: ConnectionArgument = None,
    older_than: float = typer.Option(
        24.0,
        "--older-than",
        metavar="HOURS",
        min=0,
        # A hundred years: any older cut-off would fall before datetime's year 1.
        max=876_000,
        help="Only objects staged at least this many hours ago (0: everything).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List what would be deleted and delete nothing."
    ),
    workspace: WorkspaceOption = None,
) -> None:
    """Delete staged UNLOAD files that a crashed or killed run left in the staging bucket.

    Every read deletes its own files when it ends, even when it fails; only a process that was
    killed leaves some behind. This lists everything under the connection's unload prefix
    (unload.bucket, unload.prefix) older than --older-than hours and deletes it. Keep the age
    above the longest table read: a younger object may belong to a run still going.

    Exit codes: 0 done (or nothing to do); 1 S3 failed; 2 configuration error (no unload:
    settings in the connection); 3 AWS refused access.
    """
    from shiftsync.redshift.plan import size_text
    from shiftsync.redshift.source import RedshiftSource

    found = find_workspace(workspace)
    name, config = found.config.connection(connection)
    if config.unload is None:
        raise ConfigError(
            f"connection {name} has no unload: settings, so nothing is staged for it",
            fix="name a connection that sets unload: (bucket, prefix)",
        )
    source = RedshiftSource.from_workspace(found, name)
    staged = source.staged_objects(older_than_hours=older_than)
    where = f"s3://{config.unload.bucket}/{config.unload.prefix}"
    now = datetime.now(UTC)
    rows = [
        (
            item.key,
            size_text(item.size),
            f"{(now - item.last_modified).total_seconds() / 3600:.1f} h",
        )
        for item in staged
    ]
    if rows:
        output.print_table(("key", "size", "age"), rows)
    total = size_text(sum(item.size for item in staged))
    if dry_run:
        output.note(
            f"dry run: {len(staged)} object(s), {total}, older than {older_than:g} h under "
            f"{where} would be deleted"
        )
        return
    deleted = source.delete_staged(staged)
    output.note(f"deleted {deleted} of {len(staged)} object(s), {total}, under {where}")
    if deleted != len(staged):
        raise typer.Exit(1)


__all__ = ["cleanup", "discover", "like_pattern", "register", "table_document"]
