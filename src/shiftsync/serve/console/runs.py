"""The console's sync and run pages: syncs, Run now, live run pages, per-table charts."""

from __future__ import annotations

from typing import Annotated, Final, TypedDict

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from shiftsync.json_types import JsonObject
from shiftsync.serve import charts, views
from shiftsync.serve.bodies import SyncIn
from shiftsync.serve.console.base import State, console, page
from shiftsync.serve.problems import ApiError, validation_message
from shiftsync.serve.state import ServeState
from shiftsync.serve.workspace_edit import add_entry

# A run in one of these states changes no more: its page stops polling.
TERMINAL: Final = frozenset({"ok", "partial", "failed", "interrupted"})

# --- syncs and runs -----------------------------------------------------------------------------


def _syncs_page(
    request: Request, state: ServeState, *, form: dict[str, str] | None = None, error: str = ""
) -> Response:
    workspace = state.workspace()
    return page(
        request,
        "syncs.html",
        status=422 if error else 200,
        syncs=views.sync_views(state),
        connections=list(workspace.config.connections),
        destinations=[
            views.destination_view(n, d) for n, d in workspace.config.destinations.items()
        ],
        form=form or {},
        error=error,
    )


@console.get("/syncs")
def syncs_page(request: Request, state: State) -> Response:
    return _syncs_page(request, state)


@console.post("/syncs")
def add_sync(
    request: Request,
    state: State,
    csrf_token: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    source: Annotated[str, Form()] = "",
    destination: Annotated[str, Form()] = "",
    tables: Annotated[str, Form()] = "",
    schedule: Annotated[str, Form()] = "",
) -> Response:
    state.guard.check_csrf(request, csrf_token)
    form = {
        "name": name.strip(),
        "source": source,
        "destination": destination,
        "tables": tables,
        "schedule": schedule.strip(),
    }
    patterns = [t.strip() for t in tables.replace(",", "\n").splitlines() if t.strip()]
    try:
        body = SyncIn(
            name=form["name"],
            source=source,
            destination=destination,
            tables=patterns,
            schedule=form["schedule"] or None,
        )
        add_entry(state.workspace(), "syncs", body.name, body.entry())
    except ValidationError as error:
        return _syncs_page(request, state, form=form, error=validation_message(error.errors()))
    except ApiError as error:
        return _syncs_page(request, state, form=form, error=error.message)
    return RedirectResponse("/syncs", status_code=303)


@console.post("/syncs/{name}/runs")
def run_now(request: Request, name: str, state: State) -> Response:
    state.guard.check_csrf(request, None)
    views.need_sync(state.workspace(), name)
    try:
        job = state.runs.start(name)
    except ApiError as error:
        return page(request, "_message.html", error=error.message, fix=error.fix)
    response = Response(status_code=204)
    response.headers["HX-Redirect"] = f"/runs/{job.run_id}"
    return response


@console.get("/runs")
def runs_page(request: Request, state: State) -> Response:
    return page(request, "runs.html", runs=state.store().list(limit=100))


class _RunPage(TypedDict):
    run: JsonObject
    live: bool


def _run_context(state: ServeState, run_id: str) -> _RunPage:
    run = views.run_detail(state, run_id)
    return {"run": run, "live": run["status"] not in TERMINAL}


@console.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, state: State) -> Response:
    return page(request, "run.html", **_run_context(state, run_id))


@console.get("/runs/{run_id}/tables")
def run_tables_fragment(request: Request, run_id: str, state: State) -> Response:
    return page(request, "_run_tables.html", **_run_context(state, run_id))


@console.get("/syncs/{name}/tables/{table}")
def table_page(request: Request, name: str, table: str, state: State) -> Response:
    views.need_sync(state.workspace(), name)
    points = views.table_history(state.store(), name, table)
    labels = [p.started_at[:19].replace("T", " ") for p in points]
    failed = [p.status != "ok" for p in points]
    rows_chart = charts.line_chart(
        f"{table}: rows per run", [p.rows for p in points], labels, failed=failed
    )
    time_chart = charts.line_chart(
        f"{table}: seconds per run",
        [p.seconds for p in points],
        labels,
        unit="s",
        failed=failed,
        color="#2ca02c",
    )
    return page(
        request,
        "table.html",
        sync=name,
        table=table,
        points=list(reversed(points)),
        rows_chart=rows_chart,
        time_chart=time_chart,
    )
