"""The console's base: templates, the page helper, the routers, login, error pages."""

from __future__ import annotations

import secrets
from datetime import datetime
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from shiftsync.serve.security import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, TOKEN_ENV
from shiftsync.serve.state import ServeState, serve_state

State = Annotated[ServeState, Depends(serve_state)]

_ENV = Environment(
    loader=PackageLoader("shiftsync.serve", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=_ENV)
router = APIRouter(include_in_schema=False)


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


def page(request: Request, template: str, status: int = 200, **context: object) -> Response:
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


def html_error(status: int, message: str, fix: str | None) -> HTMLResponse:
    """An error page for the console (the API answers JSON instead)."""
    template = _ENV.get_template("error.html")
    return HTMLResponse(template.render(message=message, fix=fix, status=status), status)


__all__ = [
    "LoginRequired",
    "State",
    "console",
    "duration",
    "html_error",
    "page",
    "router",
    "static_folder",
    "templates",
]
