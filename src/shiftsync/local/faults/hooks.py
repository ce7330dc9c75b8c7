"""Where injected faults meet redshift-data operations and statements.

- `before_operation` (redshift_data.PluginState.before_operation) raises redshift-data's own
  errors, in its JSON shape, after IAM has let the call in.
- `statement_hook` (DataApiEngine.statement_hook) delays, fails or aborts a statement as it
  starts.
HTTP-level faults are faults/http.py's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final

import psycopg
from moto.core.exceptions import JsonRESTError

from shiftsync.local.data_api.statements import DataApiEngine, Statement, StatementFailure
from shiftsync.local.faults.kinds import DEFAULT_FAILURE_MESSAGE, FaultRegistry

# -- redshift-data operations -------------------------------------------------------------------

_OPERATION_ERRORS: Final[dict[str, tuple[str, str, int]]] = {
    "throttle": ("ThrottlingException", "Rate exceeded", 400),
    "server_error": (
        "InternalServerException",
        "The server encountered an internal error (injected by a stand-in fault).",
        500,
    ),
    "active_statements": (
        "ActiveStatementsExceededException",
        "Active statements exceeded the allowed quota (200).",
        400,
    ),
}


def before_operation(registry: FaultRegistry) -> Callable[[str, dict[str, Any]], None]:
    """redshift_data.PluginState.before_operation: raise the operation's injected error."""

    def hook(operation: str, body: dict[str, Any]) -> None:
        fault = registry.take("operation", service="redshift-data", operation=operation)
        if fault is None:
            return
        if fault.spec.kind == "pause_workgroup":
            workgroup = body.get("WorkgroupName") or "the workgroup"
            error_type, status = "DatabaseConnectionException", 500
            message = (
                f"Connection to the database failed: workgroup {workgroup} was paused and is "
                "resuming. Retry the request."
            )
        else:
            error_type, message, status = _OPERATION_ERRORS[fault.spec.kind]
        error = JsonRESTError(error_type, message)
        error.code = status
        raise error

    return hook


# -- statements ---------------------------------------------------------------------------------


def statement_hook(
    registry: FaultRegistry, engine: DataApiEngine, sleep: Callable[[float], None] = time.sleep
) -> Callable[[Statement], None]:
    """engine.statement_hook: delay, fail or abort a statement as it starts."""

    def hook(statement: Statement) -> None:
        fault = registry.take("statement", sql=statement.query_string)
        if fault is None:
            return
        spec = fault.spec
        if spec.kind == "delay":
            _sleep_unless_cancelled(statement, registry.delay_seconds(fault), sleep)
        elif spec.kind == "fail_statement":
            raise StatementFailure(spec.message or DEFAULT_FAILURE_MESSAGE)
        elif spec.kind == "abort_statement":
            if not spec.after_seconds:
                statement.cancel_requested = True
                raise psycopg.errors.QueryCanceled("canceling statement due to a stand-in fault")
            timer = threading.Timer(spec.after_seconds, engine.abort_from_server, (statement,))
            timer.daemon = True
            timer.start()

    return hook


def _sleep_unless_cancelled(
    statement: Statement, seconds: float, sleep: Callable[[float], None]
) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if statement.cancel_requested:
            raise psycopg.errors.QueryCanceled("canceling statement due to user request")
        sleep(min(left, 0.05))
    if statement.cancel_requested:
        raise psycopg.errors.QueryCanceled("canceling statement due to user request")
