"""The console's connection pages: the guide's form, the external ID, policies, the test."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from shiftsync.aws.policy import POLICY_FORMATS
from shiftsync.config import RedshiftServerlessConfig
from shiftsync.errors import ShiftsyncError
from shiftsync.serve import views
from shiftsync.serve.bodies import ConnectionIn, UnloadIn
from shiftsync.serve.console.base import State, console, page
from shiftsync.serve.problems import ApiError, validation_message
from shiftsync.serve.workspace_edit import add_entry

# --- connections --------------------------------------------------------------------------------


def _connections_page(
    request: Request, state: State, *, form: dict[str, str] | None = None, error: str = ""
) -> Response:
    workspace = state.workspace()
    external_id = workspace.external_id
    connections = [
        views.connection_view(name, conn, external_id)
        for name, conn in workspace.config.connections.items()
    ]
    return page(
        request,
        "connections.html",
        status=422 if error else 200,
        connections=connections,
        external_id=external_id,
        form=form or {},
        error=error,
    )


@console.get("/connections")
def connections_page(request: Request, state: State) -> Response:
    return _connections_page(request, state)


@console.post("/connections")
def add_connection(
    request: Request,
    state: State,
    csrf_token: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    region: Annotated[str, Form()] = "",
    workgroup: Annotated[str, Form()] = "",
    database: Annotated[str, Form()] = "",
    role_arn: Annotated[str, Form()] = "",
    unload: Annotated[str, Form()] = "",
    bucket: Annotated[str, Form()] = "",
    bucket_region: Annotated[str, Form()] = "",
) -> Response:
    state.guard.check_csrf(request, csrf_token)
    form = {
        "unload": unload,
        "name": name.strip(),
        "region": region.strip(),
        "workgroup": workgroup.strip(),
        "database": database.strip(),
        "role_arn": role_arn.strip(),
        "bucket": bucket.strip(),
        "bucket_region": bucket_region.strip(),
    }
    if unload and not form["bucket"]:
        return _connections_page(
            request,
            state,
            form=form,
            error="Unload data to S3 is checked but the bucket is empty: enter the bucket name "
            "(or uncheck it)",
        )
    try:
        staging = (
            UnloadIn(bucket=form["bucket"], region=form["bucket_region"] or None)
            if unload
            else None
        )
        body = ConnectionIn(
            name=form["name"],
            region=form["region"],
            workgroup=form["workgroup"],
            database=form["database"],
            role_arn=form["role_arn"],
            unload=staging,
        )
        RedshiftServerlessConfig.model_validate(body.entry())
        add_entry(state.workspace(), "connections", body.name, body.entry())
    except ValidationError as error:
        return _connections_page(
            request, state, form=form, error=validation_message(error.errors())
        )
    except ApiError as error:
        return _connections_page(request, state, form=form, error=error.message)
    return RedirectResponse(f"/connections/{body.name}", status_code=303)


@console.get("/connections/{name}")
def connection_page(request: Request, name: str, state: State) -> Response:
    workspace = state.workspace()
    name, conn = views.need_connection(workspace, name)
    check = state.checks.latest(name)
    return page(
        request,
        "connection.html",
        connection=views.connection_view(name, conn, workspace.external_id),
        check=check.to_json() if check else None,
    )


@console.get("/connections/{name}/policies")
def policies_fragment(request: Request, name: str, state: State) -> Response:
    """Loaded by the connection page after it shows: finding the principal asks AWS STS."""
    workspace = state.workspace()
    name, _ = views.need_connection(workspace, name)
    try:
        policies = views.policies_view(workspace, name)
    except ShiftsyncError as error:
        return page(request, "_message.html", error=error.message, fix=error.fix)
    return page(request, "_policies.html", policies=policies, formats=POLICY_FORMATS)


@console.post("/connections/{name}/checks")
def start_check(request: Request, name: str, state: State) -> Response:
    state.guard.check_csrf(request, None)
    views.need_connection(state.workspace(), name)
    job = state.checks.start(name)
    return page(request, "_checks.html", check=job.to_json())


@console.get("/checks/{check_id}")
def check_fragment(request: Request, check_id: str, state: State) -> Response:
    job = state.checks.get(check_id)
    if job is None:
        raise ApiError("not_found", f"no check {check_id!r}", "press Test connection again")
    return page(request, "_checks.html", check=job.to_json())
