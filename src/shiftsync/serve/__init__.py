"""`shiftsync serve`: the REST API (/api/v1), the web console, /metrics and the scheduler.

    app.py         the FastAPI application: routes mounted, errors in one shape
    api.py         /api/v1: connections, checks, syncs, runs, tables, destinations
    bodies.py      the API's request and answer models (the console's forms use them too)
    console/       the console's server-rendered pages and htmx fragments: base.py
                   (templates, login, errors), connections.py, runs.py
    security.py    loopback binding, bearer tokens, console sessions, CSRF and Origin checks
    problems.py    the one JSON error shape and the handlers that produce it
    jobs.py        runs and connection checks in background threads, one run per sync
    scheduler.py   the in-server scheduler (engine/schedule.py's cron rules)
    workspace_edit.py  adding a connection to shiftsync.yaml, comments kept
    views.py       what the API and the console show (no secret ever)
    state.py       what one server holds: workspace folder, guard, background jobs
    charts.py      per-table charts as inline SVG, rendered server-side
    metrics.py     Prometheus metrics from the run history

Every route calls the library the CLI calls (engine, aws, config); nothing is duplicated here.
Needs the `serve` extra: pip install 'shiftsync[serve]'.
"""
