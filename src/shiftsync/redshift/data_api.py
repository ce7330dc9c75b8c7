"""The Redshift Data API boundary: the one module that calls the `redshift-data` client.

Every call waits for the process-wide rate limiter, is retried on transient failures
(throttling, `Active*Exceeded`, 5xx, a paused or waking workgroup, dropped connections) with
jittered backoff, and has its failures mapped once, here, into shiftsync's errors. A statement
runs inside `running()`, which cancels it (CancelStatement) if anything ends the wait early:
Ctrl-C, a closed generator, a timeout. `read_select` turns a SELECT into record batches, page by
page, and checks that the rows received are the rows the Data API announced.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

import pyarrow as pa
from botocore import xform_name
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    PaginationError,
    ParamValidationError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from shiftsync.aws.session import EXPIRED_CODES, AssumedRoleSession, error_code
from shiftsync.config import RedshiftServerlessConfig
from shiftsync.errors import (
    AccessError,
    ConfigError,
    ResultLimitError,
    ShiftsyncError,
    SourceError,
    StatementError,
)
from shiftsync.redshift.decode import csv_page_to_batches, json_records_to_batch
from shiftsync.redshift.retry import (
    PollPolicy,
    PollTimeout,
    RateLimiter,
    RetryPolicy,
    poll,
    shared_rate_limiter,
)
from shiftsync.redshift.types import Column

log = logging.getLogger("shiftsync.redshift")

T = TypeVar("T")
ResultFormat = Literal["CSV", "JSON"]

TERMINAL: Final = frozenset({"FINISHED", "FAILED", "ABORTED"})
# Worth another try later: throttling, busy quotas, server faults, a paused or waking workgroup.
RETRIABLE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ActiveStatementsExceededException",
        "ActiveSessionsExceededException",
        "InternalServerException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "DatabaseConnectionException",
        "QueryTimeoutException",
        "ExecuteStatementException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
THROTTLING_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ActiveStatementsExceededException",
        "ActiveSessionsExceededException",
    }
)
ACCESS_CODES: Final = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
    }
)
# The Data API's own words when a result passes its limits (data-api-troubleshooting).
RESULT_SIZE_MESSAGE: Final = "Database response exceeded size limit"
ROW_SIZE_MESSAGE: Final = "Packet for query is too large"
LONG_POLL_SECONDS: Final = 20
# Redshift Serverless stops a query after 86,399 s; shiftsync's default wait is as long.
DEFAULT_STATEMENT_TIMEOUT: Final = 86_400.0
# After CancelStatement, how long to wait for the statement to stop (an UNLOAD may still write).
CANCEL_SETTLE_SECONDS: Final = 10.0
_FIELD_MEMBERS: Final = ("longValue", "doubleValue", "booleanValue", "stringValue", "blobValue")


@dataclass
class ReadStats:
    """Counters of one read (or one catalog call); thread-safe, readable while it runs."""

    method: str = ""
    statements: int = 0
    retries: int = 0
    pages: int = 0
    rows: int = 0
    bytes_received: int = 0
    chunks: int = 0
    parts: int = 0
    staged_deleted: int = 0
    cancelled: int = 0
    fallbacks: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(
        self,
        *,
        statements: int = 0,
        retries: int = 0,
        pages: int = 0,
        rows: int = 0,
        bytes_received: int = 0,
        chunks: int = 0,
        parts: int = 0,
        staged_deleted: int = 0,
        cancelled: int = 0,
    ) -> None:
        with self._lock:
            self.statements += statements
            self.retries += retries
            self.pages += pages
            self.rows += rows
            self.bytes_received += bytes_received
            self.chunks += chunks
            self.parts += parts
            self.staged_deleted += staged_deleted
            self.cancelled += cancelled

    def note(self, fallback: str) -> None:
        with self._lock:
            self.fallbacks.append(fallback)


@dataclass(frozen=True)
class StatementStatus:
    """What DescribeStatement says of a statement."""

    id: str
    status: str
    error: str | None = None
    result_rows: int = -1
    result_size: int = -1
    has_result_set: bool = False


@dataclass(frozen=True)
class ResultPage:
    """One page of GetStatementResultV2 (CSV text) or GetStatementResult (JSON records)."""

    index: int
    total_rows: int
    column_count: int
    text: str = ""
    records: Sequence[Sequence[dict[str, Any]]] = ()
    size: int = 0


class _RepeatedToken(Exception):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def is_retriable(error: Exception) -> bool:
    """Transient: throttled, busy, a 5xx, a paused workgroup or a dropped connection."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(error) in RETRIABLE_CODES or (isinstance(status, int) and status >= 500)
    return isinstance(error, BotoConnectionError | HTTPClientError)


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", "")) or str(error)


class DataApi:
    """The Data API of one workgroup and database, reached through an assumed-role session."""

    def __init__(
        self,
        session: AssumedRoleSession,
        connection: RedshiftServerlessConfig,
        *,
        retry: RetryPolicy | None = None,
        polling: PollPolicy | None = None,
        limiter: RateLimiter | None = None,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    ) -> None:
        self.session = session
        self.connection = connection
        self.retry = retry or RetryPolicy()
        self.polling = polling or PollPolicy()
        self.limiter = limiter or shared_rate_limiter()
        self.statement_timeout = statement_timeout
        # botocore before 1.43.55 has no WaitTimeSeconds: found out on first use.
        self.long_poll = True

    @property
    def db_user(self) -> str:
        """The database user the Data API maps the role to (Redshift Serverless: IAMR:<role>)."""
        return f"IAMR:{self.connection.role_name}"

    def _target(self) -> dict[str, str]:
        return {"WorkgroupName": self.connection.workgroup, "Database": self.connection.database}

    # -- calls -----------------------------------------------------------------------------------
    def _guarded(
        self,
        operation: str,
        what: str,
        stats: ReadStats,
        fn: Callable[[], T],
        *,
        passthrough: frozenset[str] = frozenset(),
    ) -> T:
        """Run fn under the retry policy; map what still fails. `passthrough` codes re-raise."""

        def retriable(error: Exception) -> bool:
            if isinstance(error, ClientError) and error_code(error) in passthrough:
                return False
            return is_retriable(error)

        def count(_retry: int, error: Exception, pause: float) -> None:
            stats.add(retries=1)
            log.info("%s for %s failed (%s); retrying in %.2f s", operation, what, error, pause)

        try:
            return self.retry.run(
                lambda: self.session.call(fn), retriable=retriable, on_retry=count
            )
        except ClientError as error:
            if error_code(error) in passthrough:
                raise
            raise self._mapped(error, operation, what) from error
        except (BotoConnectionError, HTTPClientError) as error:
            raise SourceError(
                f"{what}: redshift-data {operation} failed: the connection to the Data API "
                f"kept failing ({error})",
                fix="check network access to the Data API endpoint (redshift-data."
                f"{self.connection.region}.amazonaws.com, or AWS_ENDPOINT_URL_REDSHIFT_DATA) "
                "and run again",
            ) from error
        except PaginationError as error:
            raise SourceError(
                f"{what}: redshift-data {operation} returned the same NextToken twice ({error})",
                fix="run again; shiftsync stops rather than return an incomplete list",
            ) from error
        except _RepeatedToken as error:
            raise SourceError(
                f"{what}: redshift-data {operation} returned NextToken {error.token[:16]}… "
                "a second time; the listing would loop",
                fix="run again; shiftsync stops rather than return an incomplete list",
            ) from error

    def _mapped(self, error: ClientError, operation: str, what: str) -> ShiftsyncError:
        code, message = error_code(error), _message(error)
        where = f"{what}: redshift-data {operation} failed: {code}: {message}"
        if code in EXPIRED_CODES:
            return AccessError(
                where,
                fix="the role's session expired and a fresh one did not help: check that "
                "shiftsync can still assume the role (`shiftsync check`)",
            )
        if code in ACCESS_CODES:
            action = "GetStatementResult" if operation.startswith("GetStatement") else operation
            return AccessError(
                where,
                fix=f"the role {self.connection.role_arn} needs redshift-data:{action}"
                " and redshift-serverless:GetCredentials on workgroup "
                f"{self.connection.workgroup}; `shiftsync policy` prints the policy it needs",
            )
        if code == "ResourceNotFoundException" and "orkgroup" in message:
            return ConfigError(
                where,
                fix=f"check the workgroup name ({self.connection.workgroup}) and region "
                f"({self.connection.region}) of the connection in shiftsync.yaml",
            )
        if code == "DatabaseConnectionException":
            return SourceError(
                where,
                fix=f"workgroup {self.connection.workgroup} may be paused, resuming or at its "
                f"capacity, or database {self.connection.database} does not exist: check it in "
                "the Redshift console and run again",
            )
        if code in THROTTLING_CODES:
            return SourceError(
                where + f" (still after {self.retry.max_attempts} attempts)",
                fix="lower the sync's concurrency or run fewer shiftsync processes at once: "
                "the Data API's quotas are per AWS account and region",
            )
        if is_retriable(error):
            return SourceError(
                where + f" (still after {self.retry.max_attempts} attempts)",
                fix="the Data API is failing on its side: run again later",
            )
        if code == "ValidationException":
            return SourceError(
                where, fix="the request was refused as invalid: see the message for which part"
            )
        return SourceError(where, fix="see the message; run again once it is fixed")

    def call(
        self,
        operation: str,
        what: str,
        stats: ReadStats,
        *,
        passthrough: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One Data API call, rate-limited, retried and mapped."""
        client = self.session.client("redshift-data")
        method = getattr(client, xform_name(operation))

        def attempt() -> dict[str, Any]:
            self.limiter.acquire(operation)
            response: dict[str, Any] = method(**kwargs)
            stats.add(retries=_botocore_retries(response))
            return response

        return self._guarded(operation, what, stats, attempt, passthrough=passthrough)

    def paginate(
        self, operation: str, result_key: str, what: str, stats: ReadStats, **kwargs: Any
    ) -> list[Any]:
        """Every item of a listing, following its pages to the end (botocore's paginator).

        A failure part-way restarts the listing: lists are small, and a half list is worse.
        """
        client = self.session.client("redshift-data")
        paginator = client.get_paginator(xform_name(operation))

        def collect() -> list[Any]:
            items: list[Any] = []
            seen: set[str] = set()
            pages = iter(paginator.paginate(**kwargs))
            while True:
                self.limiter.acquire(operation)
                page = next(pages, None)
                if page is None:
                    return items
                stats.add(retries=_botocore_retries(page))
                items.extend(page.get(result_key) or [])
                token = page.get("NextToken")
                if token:
                    if token in seen:
                        raise _RepeatedToken(str(token))
                    seen.add(str(token))

        return self._guarded(operation, what, stats, collect)

    # -- statements ------------------------------------------------------------------------------
    def execute(
        self, sql: str, *, what: str, stats: ReadStats, result_format: ResultFormat = "JSON"
    ) -> str:
        """Submit a statement; its Id. One ClientToken for all retries: never two statements."""
        kwargs: dict[str, Any] = {
            **self._target(),
            "Sql": sql,
            "ClientToken": str(uuid.uuid4()),
        }
        if result_format == "CSV":
            kwargs["ResultFormat"] = "CSV"
        response = self.call("ExecuteStatement", what, stats, **kwargs)
        stats.add(statements=1)
        return str(response["Id"])

    def describe(
        self,
        statement_id: str,
        *,
        what: str,
        stats: ReadStats,
        wait_seconds: int | None = None,
        passthrough: frozenset[str] = frozenset(),
    ) -> StatementStatus:
        kwargs: dict[str, Any] = {"Id": statement_id}
        if wait_seconds:
            kwargs["WaitTimeSeconds"] = wait_seconds
        answer = self.call("DescribeStatement", what, stats, passthrough=passthrough, **kwargs)
        return StatementStatus(
            id=statement_id,
            status=str(answer.get("Status", "")),
            error=answer.get("Error"),
            result_rows=int(answer.get("ResultRows", -1)),
            result_size=int(answer.get("ResultSize", -1)),
            has_result_set=bool(answer.get("HasResultSet", False)),
        )

    def _check(
        self, statement_id: str, what: str, stats: ReadStats, left: float
    ) -> StatementStatus:
        wait = int(min(LONG_POLL_SECONDS, left)) if self.long_poll else 0
        if wait >= 1:
            try:
                return self.describe(
                    statement_id,
                    what=what,
                    stats=stats,
                    wait_seconds=wait,
                    passthrough=frozenset({"ActiveWaitingRequestsExceededException"}),
                )
            except ParamValidationError:
                log.info("this botocore has no WaitTimeSeconds: polling instead")
                self.long_poll = False
            except ClientError:
                # Too many waiters on this statement: an ordinary poll this time.
                log.info("DescribeStatement long poll refused for %s; polling", statement_id)
        return self.describe(statement_id, what=what, stats=stats)

    def wait(
        self, statement_id: str, *, what: str, stats: ReadStats, timeout: float | None = None
    ) -> StatementStatus:
        """Wait for a terminal status (FINISHED, FAILED, ABORTED) and return it.

        Long polls (DescribeStatement WaitTimeSeconds) where the SDK and service allow it,
        jittered polling otherwise. A StatementError when `timeout` passes (the statement is
        left running: `running()` cancels it).
        """
        limit = self.statement_timeout if timeout is None else timeout

        def check(left: float) -> StatementStatus | None:
            status = self._check(statement_id, what, stats, left)
            return status if status.status in TERMINAL else None

        try:
            return poll(check, timeout=limit, policy=self.polling)
        except PollTimeout as error:
            raise StatementError(
                f"{what}: statement {statement_id} did not finish within {limit:g} s and was "
                "cancelled",
                statement_id=statement_id,
                fix="read less at once (a filter, fewer columns) or read with UNLOAD",
            ) from error

    def cancel(self, statement_id: str, *, what: str, stats: ReadStats) -> None:
        """Best effort: cancel, then wait briefly until the statement has stopped."""
        try:
            self.call("CancelStatement", what, stats, Id=statement_id)
            stats.add(cancelled=1)
        except ShiftsyncError as error:
            # Already finished, or the Data API is unreachable: nothing more to do here.
            log.info("could not cancel statement %s of %s: %s", statement_id, what, error)
        try:
            poll(
                lambda _left: self._terminal_or_none(statement_id, what, stats),
                timeout=CANCEL_SETTLE_SECONDS,
                policy=self.polling,
            )
        except (PollTimeout, ShiftsyncError) as error:
            log.warning("statement %s of %s may still be running: %s", statement_id, what, error)

    def _terminal_or_none(
        self, statement_id: str, what: str, stats: ReadStats
    ) -> StatementStatus | None:
        status = self.describe(statement_id, what=what, stats=stats)
        return status if status.status in TERMINAL else None

    @contextmanager
    def running(
        self,
        sql: str,
        *,
        what: str,
        stats: ReadStats,
        result_format: ResultFormat = "JSON",
        timeout: float | None = None,
    ) -> Iterator[StatementStatus]:
        """Execute and wait; yields the FINISHED status; cancels unless it reached an end.

        FAILED and ABORTED raise StatementError (ResultLimitError for the Data API's limits).
        """
        statement_id = self.execute(sql, what=what, stats=stats, result_format=result_format)
        ended = False
        try:
            status = self.wait(statement_id, what=what, stats=stats, timeout=timeout)
            ended = True
            if status.status != "FINISHED":
                raise self.failure(status, what)
            yield status
        finally:
            if not ended:
                self.cancel(statement_id, what=what, stats=stats)

    def failure(self, status: StatementStatus, what: str) -> SourceError:
        """The error a FAILED or ABORTED statement becomes."""
        message = status.error or "(no message)"
        if ROW_SIZE_MESSAGE.lower() in message.lower():
            return ResultLimitError(
                f"{what}: a row is wider than the Data API's 64 KB row limit (statement "
                f"{status.id}: {message})",
                fix="read the table with UNLOAD (set unload: in the connection), or exclude "
                "its widest columns",
            )
        if RESULT_SIZE_MESSAGE.lower() in message.lower():
            return ResultLimitError(
                f"{what}: the result is larger than the Data API's result size limit "
                f"(statement {status.id}: {message})",
                fix="read the table with UNLOAD (set unload: in the connection), or read it in "
                "parts with a filter",
            )
        if status.status == "ABORTED":
            return StatementError(
                f"{what}: statement {status.id} was ABORTED: {message}",
                statement_id=status.id,
                fix="it was cancelled by a user or by Redshift (a workgroup limit or a "
                "restart): run again",
            )
        return StatementError(
            f"{what}: statement {status.id} FAILED: {message}",
            statement_id=status.id,
            fix=self._failure_fix(message),
        )

    def _failure_fix(self, message: str) -> str:
        lowered = message.lower()
        if "column" in lowered and "does not exist" in lowered:
            return (
                "the table changed after shiftsync described it (a column was dropped or "
                "renamed): describe it again (`shiftsync discover`) and run again"
            )
        if "does not exist" in lowered and ("relation" in lowered or "table" in lowered):
            return (
                "the table or view is gone or was renamed: check the name with `shiftsync discover`"
            )
        if "permission denied" in lowered:
            return (
                f'grant the database user "{self.db_user}" USAGE on the schema and SELECT on '
                "the table (see docs/aws-setup.md)"
            )
        return "Redshift's message above says what failed: fix the statement or the data"

    def pages(
        self, statement_id: str, *, what: str, stats: ReadStats, csv: bool, prefetch: bool = True
    ) -> Iterator[ResultPage]:
        """The result's pages, in order, following NextToken to the end.

        With `prefetch`, the next page is fetched in a background thread while the caller
        works on the current one.
        """
        operation = "GetStatementResultV2" if csv else "GetStatementResult"

        def fetch(token: str | None) -> dict[str, Any]:
            kwargs: dict[str, Any] = {"Id": statement_id}
            if token:
                kwargs["NextToken"] = token
            return self.call(operation, what, stats, **kwargs)

        pool = ThreadPoolExecutor(1, thread_name_prefix="shiftsync-page") if prefetch else None
        seen: set[str] = set()
        try:
            pending: Future[dict[str, Any]] | None = None
            response = fetch(None)
            index = 0
            while True:
                token = response.get("NextToken") or None
                if token is not None:
                    if token in seen:
                        raise SourceError(
                            f"{what}: GetStatementResult returned NextToken {token[:16]}… a "
                            f"second time for statement {statement_id}",
                            fix="run again; shiftsync stops rather than return a result that "
                            "is incomplete or repeated",
                        )
                    seen.add(token)
                    if pool is not None:
                        pending = pool.submit(fetch, token)
                yield self._page(response, index, csv, what)
                if token is None:
                    return
                response = pending.result() if pending is not None else fetch(token)
                index += 1
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def _page(self, response: dict[str, Any], index: int, csv: bool, what: str) -> ResultPage:
        records = response.get("Records") or []
        total = int(response.get("TotalNumRows", -1))
        columns = len(response.get("ColumnMetadata") or [])
        if not csv:
            return ResultPage(index, total, columns, records=records)
        texts = []
        for record in records:
            if "CSVRecords" not in record:
                raise SourceError(
                    f"{what}: a GetStatementResultV2 page holds {sorted(record)} instead of "
                    "CSVRecords",
                    fix="update shiftsync, or set result_format: json on the connection",
                )
            texts.append(record["CSVRecords"])
        text = "".join(texts)
        return ResultPage(index, total, columns, text=text, size=len(text))

    # -- catalog ---------------------------------------------------------------------------------
    def list_schemas(self, pattern: str, *, stats: ReadStats) -> list[str]:
        found = self.paginate(
            "ListSchemas", "Schemas", "the catalog", stats, **self._target(), SchemaPattern=pattern
        )
        return [str(name) for name in found]

    def list_tables(
        self, schema_pattern: str, table_pattern: str, *, stats: ReadStats
    ) -> list[dict[str, Any]]:
        return self.paginate(
            "ListTables",
            "Tables",
            "the catalog",
            stats,
            **self._target(),
            SchemaPattern=schema_pattern,
            TablePattern=table_pattern,
        )

    def describe_table(
        self, schema: str, table: str, *, what: str, stats: ReadStats
    ) -> list[dict[str, Any]] | None:
        """The table's ColumnMetadata, or None when the Data API says it does not exist."""
        try:
            return self.paginate(
                "DescribeTable",
                "ColumnList",
                what,
                stats,
                **self._target(),
                Schema=schema,
                Table=table,
            )
        except SourceError as error:
            cause = error.__cause__
            if isinstance(cause, ClientError) and error_code(cause) == "ResourceNotFoundException":
                return None
            raise


def _botocore_retries(response: dict[str, Any]) -> int:
    attempts = response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    return attempts if isinstance(attempts, int) else 0


def read_select(
    api: DataApi,
    sql: str,
    columns: Sequence[Column],
    *,
    table: str,
    stats: ReadStats,
    result_format: Literal["csv", "json"] = "csv",
    prefetch: bool = True,
    progress: Callable[[int, int], None] | None = None,
    timeout: float | None = None,
) -> Iterator[pa.RecordBatch]:
    """Run a SELECT built for `columns` and yield its rows as batches, page by page.

    Raises SourceError if the rows received differ from TotalNumRows or ResultRows.
    """
    csv = result_format == "csv"
    what = f"table {table}"
    with api.running(
        sql, what=what, stats=stats, result_format="CSV" if csv else "JSON", timeout=timeout
    ) as status:
        received = 0
        announced: int | None = None
        for page in api.pages(status.id, what=what, stats=stats, csv=csv, prefetch=prefetch):
            stats.add(pages=1, bytes_received=page.size)
            if page.column_count and page.column_count != len(columns):
                raise SourceError(
                    f"{what}: statement {status.id} returned {page.column_count} columns, "
                    f"expected {len(columns)}",
                    fix="the table changed after shiftsync described it: run again",
                )
            if announced is None:
                announced = page.total_rows
            if csv:
                batches: Iterator[pa.RecordBatch] = csv_page_to_batches(
                    page.text, columns, has_header=page.index == 0, table=table
                )
            else:
                batches = iter([json_records_to_batch(page.records, columns, table=table)])
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                received += batch.num_rows
                stats.add(rows=batch.num_rows)
                if progress is not None:
                    progress(batch.num_rows, batch.nbytes)
                yield batch
        expected = [n for n in (announced, status.result_rows) if n is not None and n >= 0]
        if any(n != received for n in expected):
            raise SourceError(
                f"{what}: statement {status.id} announced {expected[0]} rows but {received} "
                "arrived",
                fix="run again; shiftsync refuses a result that is incomplete",
            )


def field_value(field_union: dict[str, Any], *, what: str) -> Any:
    """A GetStatementResult Field as a Python value (str for numerics, dates and times)."""
    if field_union.get("isNull"):
        return None
    for member in _FIELD_MEMBERS:
        if member in field_union:
            return field_union[member]
    raise SourceError(
        f"{what}: a Data API field has no known member: {sorted(field_union)}",
        fix="update shiftsync (the Data API sent a kind of value it does not know)",
    )


def query_rows(
    api: DataApi, sql: str, *, what: str, stats: ReadStats, timeout: float | None = None
) -> list[tuple[Any, ...]]:
    """Run a small statement with the JSON result format; every row as a tuple of values."""
    with api.running(sql, what=what, stats=stats, timeout=timeout) as status:
        if not status.has_result_set:
            return []
        rows: list[tuple[Any, ...]] = []
        announced = -1
        for page in api.pages(status.id, what=what, stats=stats, csv=False, prefetch=False):
            stats.add(pages=1)
            announced = page.total_rows if page.index == 0 else announced
            rows.extend(
                tuple(field_value(item, what=what) for item in record) for record in page.records
            )
        if announced >= 0 and announced != len(rows):
            raise SourceError(
                f"{what}: statement {status.id} announced {announced} rows but {len(rows)} arrived",
                fix="run again; shiftsync refuses a result that is incomplete",
            )
        return rows


def execute_statement(
    api: DataApi, sql: str, *, what: str, stats: ReadStats, timeout: float | None = None
) -> int:
    """Run a statement without a result set; the rows it affected (ResultRows, 0 if unknown)."""
    with api.running(sql, what=what, stats=stats, timeout=timeout) as status:
        return max(status.result_rows, 0)


__all__ = [
    "DataApi",
    "ReadStats",
    "ResultPage",
    "StatementStatus",
    "execute_statement",
    "field_value",
    "is_retriable",
    "query_rows",
    "read_select",
]
