"""/api/v1: the REST API. Every route answers JSON; errors come in the one shape of
problems.py. Starting a run or a check answers 202 with an id to poll.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError

from shiftsync.config import RedshiftServerlessConfig
from shiftsync.engine.observer import SyncOptions
from shiftsync.serve import views
from shiftsync.serve.bodies import (
    ApiObject,
    CheckView,
    ConnectionIn,
    ConnectionView,
    DestinationView,
    ErrorBody,
    PoliciesView,
    RunIn,
    RunOptionsIn,
    Started,
    SyncIn,
    SyncView,
)
from shiftsync.serve.problems import ApiError, validation_message
from shiftsync.serve.state import ServeState, serve_state
from shiftsync.serve.workspace_edit import add_entry

State = Annotated[ServeState, Depends(serve_state)]


def _authorized(request: Request) -> None:
    serve_state(request).guard.check_api(request)


router = APIRouter(prefix="/api/v1", dependencies=[Depends(_authorized)])

_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"description": text, "model": ErrorBody}
    for code, text in (
        (401, "No token, or a wrong one (when the server has a token)."),
        (404, "No such connection, sync, run or check."),
        (422, "A malformed body or parameter."),
    )
}
_RUN_RESPONSES: dict[int | str, dict[str, object]] = {
    **_ERROR_RESPONSES,
    409: {"description": "The sync is already running (code sync_running).", "model": ErrorBody},
}


# --- connections ------------------------------------------------------------------------------


@router.get("/connections", summary="List connections", responses=_ERROR_RESPONSES)
def list_connections(state: State) -> list[ConnectionView]:
    workspace = state.workspace()
    external_id = workspace.external_id
    return [
        views.connection_view(name, conn, external_id)
        for name, conn in workspace.config.connections.items()
    ]


@router.post(
    "/connections", status_code=201, summary="Add a connection", responses=_ERROR_RESPONSES
)
def create_connection(body: ConnectionIn, state: State, response: Response) -> ConnectionView:
    """Adds the connection to shiftsync.yaml (comments kept); answers it with the external ID."""
    workspace = state.workspace()
    entry = body.entry()
    # The connection model says exactly what is wrong with a field, secret-free.
    try:
        RedshiftServerlessConfig.model_validate(entry)
    except ValidationError as error:
        raise ApiError(
            "invalid_request",
            validation_message(error.errors()),
            "correct the fields named above and send them again",
        ) from None
    add_entry(workspace, "connections", body.name, entry)
    response.headers["Location"] = f"/api/v1/connections/{body.name}"
    workspace = state.workspace()
    name, conn = views.need_connection(workspace, body.name)
    return views.connection_view(name, conn, workspace.external_id)


@router.get("/connections/{name}", summary="Show a connection", responses=_ERROR_RESPONSES)
def get_connection(name: str, state: State) -> ConnectionView:
    workspace = state.workspace()
    name, conn = views.need_connection(workspace, name)
    return views.connection_view(name, conn, workspace.external_id)


@router.get(
    "/connections/{name}/policies",
    summary="The IAM role's documents, in every format",
    responses=_ERROR_RESPONSES,
)
def get_policies(name: str, state: State) -> PoliciesView:
    """json, terraform and cloudformation, as `shiftsync policy --format` prints them."""
    workspace = state.workspace()
    views.need_connection(workspace, name)
    return views.policies_view(workspace, name)


@router.post(
    "/connections/{name}/checks",
    status_code=202,
    summary="Start `shiftsync check` for a connection",
    responses=_ERROR_RESPONSES,
)
def start_check(name: str, state: State, response: Response) -> CheckView:
    views.need_connection(state.workspace(), name)
    job = state.checks.start(name)
    response.headers["Location"] = f"/api/v1/checks/{job.check_id}"
    return job.to_json()


@router.get("/checks/{check_id}", summary="A check's results so far", responses=_ERROR_RESPONSES)
def get_check(check_id: str, state: State) -> CheckView:
    job = state.checks.get(check_id)
    if job is None:
        raise ApiError(
            "not_found",
            f"no check {check_id!r} in this server",
            "start one with POST /api/v1/connections/<name>/checks",
        )
    return job.to_json()


# --- destinations -----------------------------------------------------------------------------


@router.get("/destinations", summary="List destinations", responses=_ERROR_RESPONSES)
def list_destinations(state: State) -> list[DestinationView]:
    return [
        views.destination_view(name, dest)
        for name, dest in state.workspace().config.destinations.items()
    ]


# --- syncs ------------------------------------------------------------------------------------


@router.get("/syncs", summary="List syncs with schedules and last runs", responses=_ERROR_RESPONSES)
def list_syncs(state: State) -> list[SyncView]:
    return views.sync_views(state)


@router.post("/syncs", status_code=201, summary="Add a sync", responses=_ERROR_RESPONSES)
def create_sync(body: SyncIn, state: State, response: Response) -> SyncView:
    add_entry(state.workspace(), "syncs", body.name, body.entry())
    response.headers["Location"] = f"/api/v1/syncs/{body.name}"
    return views.sync_views(state, body.name)[0]


@router.get("/syncs/{name}", summary="Show a sync", responses=_ERROR_RESPONSES)
def get_sync(name: str, state: State) -> SyncView:
    views.need_sync(state.workspace(), name)
    return views.sync_views(state, name)[0]


def _start(state: ServeState, sync: str, options: SyncOptions, response: Response) -> Started:
    views.need_sync(state.workspace(), sync)
    job = state.runs.start(sync, options)
    url = f"/api/v1/runs/{job.run_id}"
    response.headers["Location"] = url
    return Started(run_id=job.run_id, sync=sync, url=url)


def _options(body: RunOptionsIn | RunIn | None) -> SyncOptions:
    if body is None:
        return SyncOptions()
    return SyncOptions(
        tables=tuple(body.tables), full_refresh=body.full_refresh, verify=body.verify
    )


@router.post(
    "/syncs/{name}/runs",
    status_code=202,
    summary="Start a run of a sync",
    responses=_RUN_RESPONSES,
)
def start_sync_run(
    name: str, state: State, response: Response, body: RunOptionsIn | None = None
) -> Started:
    """202 with the run id; poll GET /api/v1/runs/{run_id}. 409 while the sync runs."""
    return _start(state, name, _options(body), response)


# --- runs -------------------------------------------------------------------------------------


@router.get("/runs", summary="List runs, newest first", responses=_ERROR_RESPONSES)
def list_runs(
    state: State,
    sync: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[ApiObject]:
    if sync is not None:
        views.need_sync(state.workspace(), sync)
    runs = state.store().list(limit=limit, sync=sync)
    for run in runs:
        run.pop("pid", None)
        run.pop("host", None)
    return runs


@router.post("/runs", status_code=202, summary="Start a run", responses=_RUN_RESPONSES)
def start_run(body: RunIn, state: State, response: Response) -> Started:
    """202 with the run id; poll GET /api/v1/runs/{run_id}. 409 while the sync runs."""
    return _start(state, body.sync, _options(body), response)


@router.get("/runs/{run_id}", summary="Show a run", responses=_ERROR_RESPONSES)
def get_run(run_id: str, state: State) -> ApiObject:
    """`latest` or a unique prefix work as in `shiftsync runs show`."""
    return views.run_detail(state, run_id)


@router.get("/runs/{run_id}/tables", summary="The tables of a run", responses=_ERROR_RESPONSES)
def get_run_tables(run_id: str, state: State) -> list[ApiObject]:
    tables = views.run_detail(state, run_id)["tables"]
    # A run view's tables are a list of objects (run_view, pending_run_view).
    return (
        [table for table in tables if isinstance(table, dict)] if isinstance(tables, list) else []
    )


@router.get(
    "/syncs/{name}/tables/{table}/history",
    summary="A table's rows and duration over the sync's last runs",
    responses=_ERROR_RESPONSES,
)
def get_table_history(name: str, table: str, state: State) -> list[views.TablePoint]:
    views.need_sync(state.workspace(), name)
    return views.table_history(state.store(), name, table)


__all__ = ["router"]
