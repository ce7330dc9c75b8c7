"""Sessions of the PostgreSQL destination: connecting, session settings, translated errors.

The DSN may hold secrets (password, sslpassword): they are never printed (`redact_dsn`) and
are cut out of psycopg's messages (`scrub`) before they become a DestinationError.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from shiftsync.config.problems import LIBPQ_SECRET_KEYS, mask_credentials
from shiftsync.errors import DestinationError

Connection = psycopg.Connection[TupleRow]

CONNECT_TIMEOUT: Final = 15
# The session settings every value's text form depends on.
_SESSION: Final = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET client_encoding = 'UTF8'",
)


def redact_dsn(dsn: str) -> str:
    """The DSN without its secrets (password, sslpassword), safe to print."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<a DSN that does not parse>"
    for key in LIBPQ_SECRET_KEYS:
        params.pop(key, None)
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def scrub(dsn: str, text: str) -> str:
    """`text` with every secret of the DSN replaced by `***` (and any key=secret left masked)."""
    with contextlib.suppress(psycopg.Error):
        params = conninfo_to_dict(dsn)
        for key in LIBPQ_SECRET_KEYS:
            value = params.get(key)
            if value:
                text = text.replace(str(value), "***")
    return mask_credentials(text)


def fix_for(exc: psycopg.Error) -> str:
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return "grant the user CREATE on the database and the schema (or use the schema's owner)"
    if isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected):
        return "another session holds a lock on the table: let it finish, then run again"
    if isinstance(exc, psycopg.OperationalError):
        return "check that the server is up and reachable, then run again"
    return "read PostgreSQL's message above; fix the table or the data it names and run again"


@contextlib.contextmanager
def translated_errors(dsn: str, schema: str, action: str) -> Iterator[None]:
    """Translate psycopg's errors, naming the database, the schema and the action."""
    try:
        yield
    except psycopg.Error as exc:
        raise DestinationError(
            f"PostgreSQL ({redact_dsn(dsn)}), schema {schema!r}: {action} failed: "
            f"{scrub(dsn, str(exc).strip())}",
            fix=fix_for(exc),
        ) from exc


def connect(dsn: str, schema: str, *, autocommit: bool) -> Connection:
    """A new connection with the session settings applied (and committed)."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        # psycopg's message quotes the DSN, which may hold the password: not repeated.
        raise DestinationError(
            "the PostgreSQL DSN does not parse",
            fix="write it as 'host=… port=… dbname=… user=…' or as a postgresql:// URL",
        ) from None
    # Without a timeout a dropped packet hangs the sync for minutes; the DSN may override.
    if "connect_timeout" not in params:
        params["connect_timeout"] = CONNECT_TIMEOUT
    try:
        connection: Connection = psycopg.connect(make_conninfo("", **params), autocommit=autocommit)
    except psycopg.Error as exc:
        raise DestinationError(
            f"cannot connect to PostgreSQL ({redact_dsn(dsn)}): {scrub(dsn, str(exc).strip())}",
            fix="check host, port, database, user and password in the DSN, and that the "
            "server accepts connections from this machine",
        ) from exc
    with translated_errors(dsn, schema, "setting up the session"):
        for statement in _SESSION:
            connection.execute(statement)
        if not autocommit:
            connection.commit()
    return connection
