"""Helpers the tests of `shiftsync serve` share: a workspace on the stand-in, error shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from shiftsync.local.standin import StandInInfo
from shiftsync.workspace import Workspace
from tests.support import connection_yaml, wait_until, write_external_id

# Values the server must never show: a PostgreSQL password and a webhook's signing secret.
PG_PASSWORD: Final = "pg-password-never-shown"
HOOK_SECRET: Final = "hook-secret-never-shown-0123456789"
TOKEN: Final = "a-test-token-of-32-characters-xx"


def serve_workspace(
    folder: Path,
    info: StandInInfo,
    *,
    tables: tuple[str, ...] = ("public.category", "public.venue"),
    alerts: str = "",
    schedule: str | None = None,
) -> Workspace:
    """A workspace whose sync `nightly` copies `tables` of the stand-in into DuckDB.

    A PostgreSQL destination with a password in its DSN (from ${SERVE_TEST_PG_DSN}) is defined
    too, unused: the API must not show its DSN.
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_external_id(folder, info.external_id)
    schedule_line = f'    schedule: "{schedule}"\n' if schedule else ""
    (folder / "shiftsync.yaml").write_text(
        "# a comment that must survive edits from the console\n"
        "connections:\n"
        f"{connection_yaml('wh', info)}"
        "destinations:\n"
        "  local:\n"
        "    type: duckdb\n"
        "    path: out.duckdb\n"
        "  pg:\n"
        "    type: postgres\n"
        "    dsn: ${SERVE_TEST_PG_DSN}\n"
        "syncs:\n"
        "  nightly:\n"
        "    source: wh\n"
        "    destination: local\n"
        f"{schedule_line}"
        f"    tables: [{', '.join(repr(t) for t in tables)}]\n"
        f"{alerts}"
    )
    return Workspace(folder)


def pg_dsn() -> str:
    return f"postgresql://someone:{PG_PASSWORD}@127.0.0.1:1/db"


def assert_error_shape(body: Any, code: str) -> dict[str, Any]:
    """The one error shape; returns its inner object."""
    assert isinstance(body, dict)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "fix"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert "Traceback" not in error["message"]
    return dict(error)


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], seconds: float = 60.0) -> Any:
    """Call `fetch` until `done(result)`; AssertionError after `seconds`."""
    seen = [fetch()]

    def finished() -> bool:
        if done(seen[-1]):
            return True
        seen.append(fetch())
        return done(seen[-1])

    try:
        wait_until(finished, what="done", seconds=seconds, interval=0.05)
    except AssertionError as error:
        raise AssertionError(f"{error}; last seen: {seen[-1]}") from None
    return seen[-1]
