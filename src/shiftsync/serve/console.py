"""The web console: server-rendered pages (Jinja2) with htmx for the live parts.

    /                         redirects to /syncs
    /connections              the connections, and the form to add one (the guide's form)
    /connections/{name}       its external ID (copy button), policies, "Test connection"
    /syncs                    syncs with schedules, next slot, last state, "Run now"
    /runs, /runs/{id}         run history; a run's tables, refreshed while it runs
    /syncs/{s}/tables/{t}     charts of a table's rows and duration over its last runs
    /login, /logout           only when the server has an API token

Pages call the same library and views as the API. Forms carry a CSRF token (double submit,
see security.py); htmx sends it as a header on every request it makes.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError

from shiftsync.aws.policy import POLICY_FORMATS
from shiftsync.config import RedshiftServerlessConfig
from shiftsync.errors import ShiftsyncError
from shiftsync.serve import charts, views
from shiftsync.serve.bodies import ConnectionIn, SyncIn, UnloadIn
from shiftsync.serve.problems import ApiError, validation_message
from shiftsync.serve.security import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, TOKEN_ENV
from shiftsync.serve.state import ServeState, serve_state
from shiftsync.serve.workspace_edit import add_entry

State = Annotated[ServeState, Depends(serve_state)]

_ENV = Environment(
    loader=PackageLoader("shiftsync.serve", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=_ENV)
router = APIRouter(include_in_schema=False)

TERMINAL = frozenset({"ok", "partial", "failed", "interrupted"})


def static_folder() -> str:
    return str(resources.files("shiftsync.serve") / "static")


class LoginRequired(Exception):
    pass


def _allowed(request: Request) -> None:
    if not serve_state(request).guard.console_allowed(request):
        raise LoginRequired


def _csrf(request: Request) -> str:
    value = request.cookies.get(CSRF_COOKIE)
    if not value:
        value = secrets.token_urlsafe(32)
        request.state.new_csrf = value
    return value


def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    csrf = _csrf(request)
    state = serve_state(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "csrf": csrf,
            "csrf_field": CSRF_FIELD,
            "has_token": state.guard.token is not None,
            **context,
        },
        status_code=status,
    )
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", path="/")
    return response


def duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    try:
        seconds = (
            datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))
        ).total_seconds()
    except ValueError:
        return ""
    return f"{seconds:.1f} s"


_ENV.filters["thousands"] = lambda n: "" if n is None else f"{n:,}"
_ENV.filters["megabytes"] = lambda n: "" if n is None else f"{n / 1048576:.2f}"
_ENV.globals["duration"] = duration


# --- login --------------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request) -> Response:
    return page(request, "login.html", token_env=TOKEN_ENV)


@router.post("/login")
def login(
    request: Request,
    state: State,
    token: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()],
) -> Response:
    state.guard.check_csrf(request, csrf_token)
    if not state.guard.token_matches(token):
        return page(
            request, "login.html", status=401, token_env=TOKEN_ENV, error="the token is wrong"
        )
    response = RedirectResponse("/syncs", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, state.guard.new_session(), httponly=True, samesite="strict", path="/"
    )
    return response


@router.post("/logout")
def logout(request: Request, state: State, csrf_token: Annotated[str, Form()]) -> Response:
    state.guard.check_csrf(request, csrf_token)
    state.guard.end_session(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


console = APIRouter(include_in_schema=False, dependencies=[Depends(_allowed)])


@console.get("/")
def home() -> Response:
    return RedirectResponse("/syncs", status_code=303)


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


def _run_context(state: ServeState, run_id: str) -> dict[str, Any]:
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


def html_error(status: int, message: str, fix: str | None) -> HTMLResponse:
    """An error page for the console (the API answers JSON instead)."""
    template = _ENV.get_template("error.html")
    return HTMLResponse(template.render(message=message, fix=fix, status=status), status)


__all__ = ["console", "html_error", "router", "static_folder"]
