"""`shiftsync demo`: the whole product on the local stand-in, in about a minute."""

from __future__ import annotations

import shlex
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shiftsync.cli import output
from shiftsync.errors import ShiftsyncError

if TYPE_CHECKING:
    from shiftsync.local.info import StandInInfo
    from shiftsync.workspace import Workspace


def _step(title: str) -> None:
    output.echo("")
    output.echo(f"== {title}")


def _run(arguments: list[str]) -> int:
    """Run a shiftsync command in this process, as a user would type it; its exit code.

    A ShiftsyncError is reported as `shiftsync.cli.main` reports it, and the demo goes on.
    """
    from shiftsync.cli.app import app

    try:
        # Under standalone_mode=False a `typer.Exit(code)` comes back as the return value.
        code = app(arguments, standalone_mode=False)
    except SystemExit as stop:
        return int(stop.code or 0)
    except ShiftsyncError as error:
        typer.echo(f"error: {error}", err=True)
        return error.exit_code
    return code if isinstance(code, int) else 0


ENV_FILE_NAME = "standin.env"


def _keep_up(info: StandInInfo, folder: Path) -> None:
    """Keep the stand-in (the demo's source, with its data and role) up until Ctrl-C/SIGTERM.

    The variables that point shiftsync at it, keys included, go into an owner-only file of the
    workspace rather than onto the screen; a shell that sources it runs any command against
    the same stand-in, so the workspace's cursors and external ID stay valid.
    """
    from shiftsync.cli.local import write_private_text

    env_file = folder / ".shiftsync" / ENV_FILE_NAME
    lines = [f"export {name}={shlex.quote(value)}" for name, value in info.environment().items()]
    write_private_text(env_file, "\n".join(lines) + "\n")
    _step("The stand-in stays up (--keep): explore the workspace from another shell")
    output.echo(f"  cd {shlex.quote(str(folder))} && . .shiftsync/{ENV_FILE_NAME}")
    output.echo("  shiftsync runs; shiftsync discover; shiftsync sync tickit")
    output.echo("Press Ctrl-C here to stop the stand-in.")
    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        env_file.unlink(missing_ok=True)


def _answer_table(rows: list[tuple[object, ...]]) -> None:
    output.print_table(
        ["event", "tickets sold", "revenue"],
        [[str(event), f"{sold:,}", f"{revenue:,.2f}"] for event, sold, revenue in rows],
    )


def _lake_steps(workspace: Workspace, workspace_args: list[str]) -> int:
    """Sync into Iceberg on the stand-in's S3, then answer the demo's query from it with DuckDB;
    the number of steps that failed."""
    import duckdb

    from shiftsync import demo as scenario

    names = " and ".join(scenario.LAKE_TABLES)
    _step(f"shiftsync sync {scenario.LAKE_SYNC}: {names} into Iceberg tables in S3")
    if _run(["sync", scenario.LAKE_SYNC, *workspace_args]) != 0:
        return 1
    _step("The same query, answered by DuckDB from the Iceberg tables")
    try:
        rows = scenario.lake_answer(workspace)
        with duckdb.connect(str(workspace.folder / "demo.duckdb"), read_only=True) as db:
            expected = db.execute(scenario.DEMO_QUERY).fetchall()
    except ShiftsyncError as error:
        output.echo(f"error: {error}", err=True)
        return 1
    except duckdb.Error as error:
        output.echo(f"error: DuckDB cannot answer the query ({error})", err=True)
        return 1
    _answer_table(rows)
    if rows != expected:
        output.echo("error: the Iceberg tables and demo.duckdb answer differently", err=True)
        return 1
    output.echo("")
    output.echo("The Iceberg tables in S3 give the same answer as demo.duckdb.")
    return 0


def demo(
    folder: Path = typer.Option(
        Path("demo"),
        help="Where to write the demo's workspace: a new or empty folder, or an earlier demo's.",
    ),
    scale: float = typer.Option(
        5.8, help="TICKIT scale of the stand-in (5.8 puts about a million rows in sales)."
    ),
    new_rows: int = typer.Option(5000, help="Sales rows to add before the second sync."),
    lake: bool = typer.Option(
        False,
        "--lake",
        help="Also sync sales and event into Iceberg tables in the stand-in's S3 (the lake "
        "extra: pip install 'shiftsync[lake]') and answer the same query from them with DuckDB.",
    ),
    keep: bool = typer.Option(
        False,
        "--keep",
        help="Keep the stand-in up after the demo (until Ctrl-C), to explore the workspace "
        "with shiftsync's other commands from another shell.",
    ),
) -> None:
    """Start the stand-in with TICKIT, check the role, sync into DuckDB, add rows, sync again;
    with --lake, also into Iceberg on S3, queried by DuckDB.

    A step that fails prints its error and the demo goes on with the next one.

    Exit codes: 0 when every step worked; 1 when a step failed; 2 when --folder holds a workspace
    the demo did not write; 4 when the stand-in could not start.
    """
    import duckdb

    from shiftsync.cli.local import require_standin

    require_standin()
    from shiftsync import demo as scenario
    from shiftsync.local.standin import StandIn, StandInOptions

    started = time.monotonic()
    # Refuse someone's workspace before anything is written or started.
    external_id = scenario.start_workspace(folder).external_id
    workspace_folder = folder.resolve()
    _step(f"Starting the local stand-in of Redshift Serverless (TICKIT at scale {scale})")
    stand_in = StandIn(StandInOptions(seed="tickit", scale=scale, external_id=external_id))
    stand_in.start()
    try:
        info = stand_in.info
        output.echo(
            f"stand-in up on {info.endpoint} in {time.monotonic() - started:.1f} s; "
            f"role {info.role_arn}"
        )
        workspace = scenario.prepare_workspace(workspace_folder, info, lake=lake)
        scenario.point_environment_at(info)
        output.echo(
            f"workspace: {workspace.folder} (shiftsync.yaml, external ID {workspace.external_id})"
        )
        failures = 0
        workspace_args = ["--workspace", str(workspace.folder)]

        _step("shiftsync check: proving the role before the first sync")
        failures += _run(["check", *workspace_args]) != 0

        _step("shiftsync sync: every table, small ones by the Data API, big ones by UNLOAD")
        first_sync = _run(["sync", scenario.DEMO_SYNC, *workspace_args])
        failures += first_sync != 0

        _step("An analytic query, answered from demo.duckdb")
        rows = None
        if first_sync != 0:
            output.echo("skipped: the sync above failed")
        else:
            try:
                with duckdb.connect(str(workspace.folder / "demo.duckdb"), read_only=True) as db:
                    rows = db.execute(scenario.DEMO_QUERY).fetchall()
            except duckdb.Error as error:
                failures += 1
                output.echo(f"error: demo.duckdb cannot answer the query ({error})", err=True)
        if rows is not None:
            _answer_table(rows)

        _step(f"Adding {new_rows:,} sales in Redshift, then syncing again")
        with stand_in.admin_connection() as admin:
            admin.execute(scenario.NEW_SALES_SQL, (new_rows,))
            admin.execute("ANALYZE public.sales")
        second_sync = _run(["sync", scenario.DEMO_SYNC, *workspace_args])
        failures += second_sync != 0
        if first_sync == 0 and second_sync == 0:
            output.echo("")
            output.echo(
                "Only the new sales moved: the incremental tables read rows past their "
                "stored cursor and merged them by primary key."
            )
        if lake:
            failures += _lake_steps(workspace, workspace_args)
        if keep:
            _keep_up(stand_in.info, workspace.folder)
    finally:
        stand_in.stop()
    output.echo(
        f"demo finished in {time.monotonic() - started:.0f} s; "
        f"the workspace stays in {workspace_folder}"
    )
    if failures:
        output.echo(f"{failures} step{'s' if failures != 1 else ''} failed", err=True)
        raise SystemExit(1)
