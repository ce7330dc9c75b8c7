"""The Redshift Data API's statement machinery, on a real PostgreSQL.

Each statement runs on its own connection, as the database user `IAMR:<role>` (created on first
use with PUBLIC's privileges only, as Redshift does), in a pool of worker threads. Results go to
disk in pages (see results.py). Status moves SUBMITTED → PICKED → STARTED → FINISHED | FAILED |
ABORTED, as DescribeStatement reports it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq, sql

from shiftsync.local.data_api.results import (
    LimitExceeded,
    Limits,
    ResultFormat,
    StoredResult,
    column_metadata,
    csv_field,
    json_field,
)
from shiftsync.local.dialect import sqltext
from shiftsync.local.postgres import TempPostgres

log = logging.getLogger("shiftsync.local")

TERMINAL = frozenset({"FINISHED", "FAILED", "ABORTED"})
_QUERY_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN"})
_query_ids = itertools.count(100_000)
_SHOW_SEARCH_PATH = re.compile(r"\s*show\s+search_path\s*", re.IGNORECASE)
_SEARCH_PATH_SQL = (
    "SELECT array_to_string(array_remove(string_to_array(current_setting('search_path'), ', '),"
    " 'rs_catalog'), ', ') AS search_path"
)


class StatementFailure(Exception):
    """The statement FAILS with this message (Redshift's words where we know them)."""


@dataclass
class Statement:
    id: str
    owner_arn: str
    owner_userid: str
    db_user: str
    database: str
    workgroup: str
    query_string: str
    parameters: list[dict[str, str]]
    result_format: ResultFormat
    statement_name: str | None = None
    # The request's key for `workgroup`: WorkgroupName, or ClusterIdentifier (a cluster).
    target_key: str = "WorkgroupName"
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    status: str = "SUBMITTED"
    error: str | None = None
    duration_ns: int = 0
    result_rows: int = -1
    result_size: int = -1
    has_result_set: bool = False
    redshift_pid: int = 0
    redshift_query_id: int = field(default_factory=lambda: next(_query_ids))
    result: StoredResult | None = None
    sub_statements: list[Statement] = field(default_factory=list)
    is_batch: bool = False
    cancel_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    finished_at: float | None = None
    # The Data API session the statement runs in (data_api/sessions.py), if any.
    session_id: str | None = None
    started_at: float | None = None

    def set_status(self, status: str) -> None:
        self.status = status
        self.updated_at = time.time()


@dataclass(frozen=True)
class Submission:
    owner_arn: str
    owner_userid: str
    db_user: str
    database: str
    workgroup: str
    sqls: list[str]
    is_batch: bool
    parameters: list[dict[str, str]]
    result_format: ResultFormat
    statement_name: str | None
    client_token: str | None
    target_key: str = "WorkgroupName"
    session_id: str | None = None


# A hook the UNLOAD plug-in fills: (engine, connection, statement, sql) → rows written.
UnloadHandler = Callable[["DataApiEngine", psycopg.Connection[Any], Statement, str], int]
# A hook the fault injector fills: called when a statement starts; may sleep or raise.
StatementHook = Callable[[Statement], None]
# The sessions plug-in fills this: the open connection of a statement's session (not closed
# after the statement: the session keeps it, with its transaction).
SessionConnection = Callable[[Statement], psycopg.Connection[Any]]


class DataApiEngine:
    def __init__(self, pg: TempPostgres, limits: Limits | None = None, workers: int = 8) -> None:
        self.pg = pg
        self.limits = limits or Limits()
        self.statements: dict[str, Statement] = {}
        self._tokens: dict[tuple[str, str], tuple[str, Submission]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="statement")
        self._results_root = Path(tempfile.mkdtemp(prefix="shiftsync-results-"))
        self._db_users: set[tuple[str, str]] = set()
        self.unload_handler: UnloadHandler | None = None
        self.statement_hook: StatementHook | None = None
        self.session_connection: SessionConnection | None = None
        # Called with every statement once it ended (sessions, system views, call counts).
        self.finished_hooks: list[StatementHook] = []
        # Called before a statement runs, after its hook (system views refresh themselves).
        self.prepare_hooks: list[StatementHook] = []
        # Redshift's `enable_case_sensitive_identifier` (off by default): while off, quoted
        # identifiers are folded to lower case as unquoted ones are.
        self.case_sensitive_identifiers = False
        # A CSV dialect other than PostgreSQL's, to show a client that probes it: NULL as this
        # text instead of an empty field (None: PostgreSQL's).
        self.csv_null_text: str | None = None
        # VARBYTE in JSON results as blobValue instead of hex stringValue (AWS: undocumented).
        self.varbyte_as_blob = False

    def fold_identifiers(self, text: str) -> str:
        """The SQL as Redshift reads it under the current identifier setting."""
        if self.case_sensitive_identifiers:
            return text
        return sqltext.fold_quoted_identifiers(text)

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for statement in list(self.statements.values()):
            if statement.status not in TERMINAL:
                self._cancel_backend(statement)
        import shutil

        shutil.rmtree(self._results_root, ignore_errors=True)

    # -- submission ----------------------------------------------------------------------------
    def submit(self, request: Submission) -> Statement:
        if request.client_token:
            key = (request.owner_userid.split(":")[0], request.client_token)
            with self._lock:
                known = self._tokens.get(key)
            if known is not None:
                statement_id, earlier = known
                if earlier != request:
                    raise ValueError("ClientToken was already used with different parameters")
                found = self.statements.get(statement_id)
                # Its statement has expired (AWS keeps tokens 8 h, results 24 h): start afresh.
                if found is not None:
                    return found
        statement = Statement(
            id=str(uuid.uuid4()),
            owner_arn=request.owner_arn,
            owner_userid=request.owner_userid,
            db_user=request.db_user,
            database=request.database,
            workgroup=request.workgroup,
            # AWS describes a batch's parent without a QueryString and with query id 0; the
            # texts are on its sub-statements.
            query_string=request.sqls[0] if not request.is_batch else "",
            parameters=request.parameters,
            result_format=request.result_format,
            statement_name=request.statement_name,
            is_batch=request.is_batch,
            target_key=request.target_key,
            session_id=request.session_id,
        )
        if request.is_batch:
            statement.redshift_query_id = 0
            for number, text in enumerate(request.sqls, start=1):
                statement.sub_statements.append(
                    Statement(
                        id=f"{statement.id}:{number}",
                        owner_arn=request.owner_arn,
                        owner_userid=request.owner_userid,
                        db_user=request.db_user,
                        database=request.database,
                        workgroup=request.workgroup,
                        query_string=text,
                        parameters=request.parameters,
                        result_format=request.result_format,
                    )
                )
        with self._lock:
            self.statements[statement.id] = statement
            for sub in statement.sub_statements:
                self.statements[sub.id] = sub
            if request.client_token:
                key = (request.owner_userid.split(":")[0], request.client_token)
                self._tokens[key] = (statement.id, request)
        self._pool.submit(self._run, statement)
        return statement

    def wait(self, statement: Statement, seconds: float) -> None:
        if seconds > 0:
            statement.done.wait(seconds)

    def cancel(self, statement: Statement) -> bool:
        if statement.status in TERMINAL:
            return False
        statement.cancel_requested = True
        self._cancel_backend(statement)
        return True

    def abort_from_server(self, statement: Statement) -> None:
        """End a running statement as the server would (for fault injection)."""
        self.cancel(statement)

    def _cancel_backend(self, statement: Statement) -> None:
        statement.cancel_requested = True
        if statement.redshift_pid:
            try:
                with psycopg.connect(self.pg.dsn("postgres"), autocommit=True) as admin:
                    admin.execute("SELECT pg_cancel_backend(%s)", (statement.redshift_pid,))
            except psycopg.Error:
                log.exception("could not cancel backend %s", statement.redshift_pid)

    def expire_results(self, older_than: float | None = None) -> int:
        """Drop results older than the limit (or `older_than` seconds); returns how many."""
        limit = self.limits.result_ttl_seconds if older_than is None else older_than
        now, count = time.time(), 0
        for statement in list(self.statements.values()):
            if statement.finished_at is not None and now - statement.finished_at >= limit:
                with self._lock:
                    self.statements.pop(statement.id, None)
                if statement.result is not None:
                    statement.result.discard()
                count += 1
        return count

    # -- execution -----------------------------------------------------------------------------
    def ensure_db_user(self, database: str, db_user: str) -> None:
        if (database, db_user) in self._db_users:
            return
        with psycopg.connect(self.pg.dsn(database), autocommit=True) as admin:
            exists = admin.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (db_user,)
            ).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateObject):
                    admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(db_user)))
        self._db_users.add((database, db_user))

    def _run(self, statement: Statement) -> None:
        started = time.monotonic_ns()
        statement.started_at = time.time()
        statement.set_status("PICKED")
        try:
            self.ensure_db_user_safely(statement)
            with self._connection(statement) as conn:
                statement.redshift_pid = conn.info.backend_pid
                for sub in statement.sub_statements:
                    sub.redshift_pid = statement.redshift_pid
                statement.set_status("STARTED")
                if self.statement_hook is not None:
                    self.statement_hook(statement)
                for prepare in self.prepare_hooks:
                    prepare(statement)
                if statement.is_batch:
                    self._run_batch(conn, statement)
                else:
                    self._run_one(conn, statement)
            statement.set_status("FINISHED")
        except psycopg.errors.QueryCanceled:
            self._end(
                statement,
                "ABORTED" if statement.cancel_requested else "FAILED",
                "ERROR: Query cancelled.",
            )
        except psycopg.Error as error:
            self._end(statement, "FAILED", _pg_message(error))
        except (StatementFailure, LimitExceeded) as error:
            self._end(statement, "FAILED", str(error))
        except Exception as error:  # never let a worker die silently
            log.exception("statement %s crashed", statement.id)
            self._end(statement, "FAILED", f"ERROR: internal error in the stand-in: {error}")
        finally:
            statement.duration_ns = time.monotonic_ns() - started
            statement.finished_at = time.time()
            for sub in statement.sub_statements:
                sub.finished_at = statement.finished_at
                sub.done.set()
            for finished in self.finished_hooks:
                try:
                    finished(statement)
                except Exception:
                    log.exception("finished hook failed for statement %s", statement.id)
            statement.done.set()

    @contextlib.contextmanager
    def _connection(self, statement: Statement) -> Iterator[psycopg.Connection[Any]]:
        if statement.session_id is not None and self.session_connection is not None:
            # The session's connection outlives the statement, with its open transaction.
            yield self.session_connection(statement)
            return
        with psycopg.connect(
            self.pg.dsn(statement.database, user=statement.db_user),
            autocommit=True,
            options="-c TimeZone=UTC -c DateStyle=ISO",
        ) as conn:
            yield conn

    def ensure_db_user_safely(self, statement: Statement) -> None:
        try:
            self.ensure_db_user(statement.database, statement.db_user)
        except psycopg.OperationalError as error:
            raise StatementFailure(_connection_message(error)) from error

    def _end(self, statement: Statement, status: str, message: str) -> None:
        statement.error = message
        statement.set_status(status)
        for sub in statement.sub_statements:
            if sub.status not in TERMINAL:
                sub.error = message
                sub.set_status(status if sub.status == "STARTED" else "ABORTED")

    def _run_batch(self, conn: psycopg.Connection[Any], statement: Statement) -> None:
        conn.execute("BEGIN")
        for sub in statement.sub_statements:
            sub.set_status("STARTED")
            started = time.monotonic_ns()
            try:
                self._run_one(conn, sub)
            except Exception:
                # A batch is one transaction: the statements before the failing one undo too.
                if not conn.closed:
                    conn.execute("ROLLBACK")
                raise
            finally:
                sub.duration_ns = time.monotonic_ns() - started
            sub.set_status("FINISHED")
        conn.execute("COMMIT")
        statement.result_rows = sum(max(s.result_rows, 0) for s in statement.sub_statements)
        statement.has_result_set = any(s.has_result_set for s in statement.sub_statements)

    def _run_one(self, conn: psycopg.Connection[Any], statement: Statement) -> None:
        text = _bind_parameters(self.fold_identifiers(statement.query_string), statement.parameters)
        _check_identifier_lengths(text)
        keyword = sqltext.first_keyword(text)
        if _SHOW_SEARCH_PATH.fullmatch(sqltext.strip_trailing_semicolon(text)):
            # rs_catalog is the stand-in's own schema: Redshift's path does not show it.
            text = _SEARCH_PATH_SQL
            keyword = "SELECT"
        if keyword == "UNLOAD":
            if self.unload_handler is None:
                raise StatementFailure("ERROR: UNLOAD is not supported by this stand-in")
            statement.result_rows = self.unload_handler(self, conn, statement, text)
            statement.result_size = 0
            return
        columns = self._describe(conn, text)
        if not columns:
            cursor = conn.execute(text.encode(), prepare=False)
            statement.result_rows = max(cursor.rowcount, 0)
            statement.result_size = 0
            return
        result = StoredResult(
            self._results_root / statement.id, statement.result_format, self.limits, columns=columns
        )
        statement.result = result
        statement.has_result_set = True
        if statement.result_format == "CSV" and keyword in ("SELECT", "WITH", "VALUES", "TABLE"):
            self._copy_csv(conn, text, result)
        else:
            self._fetch_rows(conn, text, result, keyword)
        result.finish()
        statement.result_rows = result.total_rows
        statement.result_size = result.total_bytes

    def _describe(self, conn: psycopg.Connection[Any], text: str) -> list[dict[str, Any]]:
        pgconn = conn.pgconn
        prepared = pgconn.prepare(b"", text.encode())
        if prepared.status != pq.ExecStatus.COMMAND_OK:
            raise StatementFailure(_result_message(prepared))
        described = pgconn.describe_prepared(b"")
        if described.status != pq.ExecStatus.COMMAND_OK:
            raise StatementFailure(_result_message(described))
        if described.nfields == 0:
            return []
        wanted = [
            (described.ftype(i), described.ftable(i), described.ftablecol(i))
            for i in range(described.nfields)
        ]
        names = _type_names(conn, wanted)
        columns = []
        for i in range(described.nfields):
            raw_name = described.fname(i)
            name = raw_name.decode() if raw_name else f"?column?{i}"
            type_name, schema, table, not_null = names[i]
            columns.append(
                column_metadata(
                    name,
                    type_name,
                    described.fmod(i),
                    schema=schema,
                    table=table,
                    nullable=0 if not_null else 1,
                )
            )
        return columns

    def _copy_csv(self, conn: psycopg.Connection[Any], text: str, result: StoredResult) -> None:
        body = sqltext.strip_trailing_semicolon(text)
        null = self.csv_null_text
        options = "" if null is None else ", NULL '" + null.replace("'", "''") + "'"
        command = f"COPY ({body}) TO STDOUT (FORMAT csv, HEADER true{options})"
        with conn.cursor() as cursor, cursor.copy(command.encode()) as copy:
            first = True
            for line in copy:
                result.add_csv_line(line, is_header=first)
                first = False

    def _fetch_rows(
        self, conn: psycopg.Connection[Any], text: str, result: StoredResult, keyword: str
    ) -> None:
        type_names = [c["typeName"] for c in result.columns]
        pgconn = conn.pgconn
        streaming = keyword in ("SELECT", "WITH", "VALUES", "TABLE")
        # Inside a session's open transaction the cursor lives in that transaction: BEGIN
        # and ROLLBACK here would end the caller's transaction.
        outer = pgconn.transaction_status != pq.TransactionStatus.IDLE
        if streaming:
            body = sqltext.strip_trailing_semicolon(text)
            if not outer:
                _exec(pgconn, b"BEGIN")
            _exec(pgconn, b"DECLARE shiftsync_rows NO SCROLL CURSOR FOR " + body.encode())
        try:
            while True:
                batch = _exec(
                    pgconn,
                    b"FETCH 2000 FROM shiftsync_rows" if streaming else text.encode(),
                    rows=True,
                )
                for row in range(batch.ntuples):
                    values = [batch.get_value(row, col) for col in range(batch.nfields)]
                    if result.result_format == "JSON":
                        result.add_json_row(
                            [
                                json_field(v, t, blob=self.varbyte_as_blob)
                                for v, t in zip(values, type_names, strict=True)
                            ]
                        )
                    else:
                        line = b",".join(csv_field(v) for v in values) + b"\n"
                        result.add_csv_line(line)
                if not streaming or batch.ntuples == 0:
                    break
        finally:
            if streaming:
                pgconn.exec_(b"CLOSE shiftsync_rows" if outer else b"ROLLBACK")


# Redshift's identifiers hold up to 127 bytes; PostgreSQL (NAMEDATALEN 64) cuts them at 63
# without failing, so two long names could silently become one. The stand-in refuses instead.
REDSHIFT_IDENTIFIER_BYTES = 127
POSTGRES_IDENTIFIER_BYTES = 63


def _check_identifier_lengths(text: str) -> None:
    for name, size in sqltext.identifier_lengths(text):
        if size > REDSHIFT_IDENTIFIER_BYTES:
            raise StatementFailure(
                f'ERROR: identifier "{name[:40]}…" is {size} bytes; Redshift identifiers hold '
                f"at most {REDSHIFT_IDENTIFIER_BYTES}"
            )
        if size > POSTGRES_IDENTIFIER_BYTES:
            raise StatementFailure(
                f'ERROR: identifier "{name[:40]}…" is {size} bytes: Redshift takes up to '
                f"{REDSHIFT_IDENTIFIER_BYTES}, but the shiftsync stand-in (PostgreSQL) holds at "
                f"most {POSTGRES_IDENTIFIER_BYTES}"
            )


def _exec(pgconn: pq.abc.PGconn, command: bytes, rows: bool = False) -> pq.abc.PGresult:
    outcome = pgconn.exec_(command)
    expected = pq.ExecStatus.TUPLES_OK if rows else pq.ExecStatus.COMMAND_OK
    if outcome.status not in (expected, pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        message = _result_message(outcome)
        if outcome.error_field(pq.DiagnosticField.SQLSTATE) == b"57014":
            raise psycopg.errors.QueryCanceled(message)
        raise StatementFailure(message)
    return outcome


def _with_position(message: str, position: str | bytes | None) -> str:
    """Redshift adds the error's place in the statement on a line of its own, as PostgreSQL's
    clients show it: `ERROR: syntax error at or near "x"` + `\n  Position: 8`."""
    if isinstance(position, bytes):
        position = position.decode(errors="replace")
    return f"{message}\n  Position: {position}" if position else message


def _result_message(result: pq.abc.PGresult) -> str:
    primary = result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)
    text = primary.decode(errors="replace") if primary else "unknown error"
    return _with_position(
        f"ERROR: {text}", result.error_field(pq.DiagnosticField.STATEMENT_POSITION)
    )


def _pg_message(error: psycopg.Error) -> str:
    primary = error.diag.message_primary if error.diag else None
    if primary:
        return _with_position(f"ERROR: {primary}", error.diag.statement_position)
    return f"ERROR: {str(error).strip().splitlines()[-1] if str(error).strip() else error}"


def _connection_message(error: psycopg.OperationalError) -> str:
    """The server's own words (`FATAL: database "x" does not exist`), without host and port."""
    found = re.search(r"\b(FATAL|ERROR):\s+(.+)", str(error))
    return f"{found.group(1)}: {found.group(2).strip()}" if found else _pg_message(error)


def _bind_parameters(text: str, parameters: list[dict[str, str]]) -> str:
    if not parameters:
        return text
    values: Mapping[str, str] = {p["name"]: p["value"] for p in parameters}
    missing = [n for n in sqltext.parameter_names(text) if n not in values]
    if missing:
        raise StatementFailure(f"ERROR: no value given for parameter :{missing[0]}")
    return sqltext.substitute_parameters(text, values, lambda v: "'" + v.replace("'", "''") + "'")


def _type_names(
    conn: psycopg.Connection[Any], wanted: list[tuple[int, int, int]]
) -> list[tuple[str, str, str, bool]]:
    """Per result column: (type name, schema, table, NOT NULL); domains by their own name."""
    rows = conn.execute(
        """
        SELECT w.ord,
               coalesce(dt.typname, bt.typname),
               coalesce(n.nspname, ''),
               coalesce(c.relname, ''),
               coalesce(a.attnotnull, false)
        FROM unnest(%s::oid[], %s::oid[], %s::int[]) WITH ORDINALITY AS w(typ, tab, col, ord)
        JOIN pg_type bt ON bt.oid = w.typ
        LEFT JOIN pg_attribute a ON a.attrelid = w.tab AND a.attnum = w.col AND w.tab <> 0
        LEFT JOIN pg_type dt ON dt.oid = a.atttypid AND dt.typtype = 'd'
        LEFT JOIN pg_class c ON c.oid = w.tab
        LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
        ORDER BY w.ord
        """,
        ([w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted]),
        prepare=False,
    ).fetchall()
    return [(r[1], r[2], r[3], r[4]) for r in rows]
