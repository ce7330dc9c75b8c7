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

from shiftsync.serve.console import connections as connections
from shiftsync.serve.console import runs as runs
from shiftsync.serve.console.base import (
    LoginRequired,
    console,
    html_error,
    router,
    static_folder,
)

__all__ = ["LoginRequired", "console", "html_error", "router", "static_folder"]
