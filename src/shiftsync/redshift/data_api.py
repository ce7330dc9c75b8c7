"""The Redshift Data API boundary: the one module that calls the `redshift-data` client.

Every call waits for the process-wide rate limiter, is retried on transient failures
(throttling, `Active*Exceeded`, 5xx, a paused or waking workgroup, dropped connections) with
jittered backoff, and has its failures mapped once, at this boundary, into shiftsync's
errors. A statement runs inside `running()`, which cancels it (CancelStatement) if anything
ends the wait early: Ctrl-C, a closed generator, a timeout. `read_select` turns a SELECT into
record batches, page by page, and checks that the rows received are the rows the Data API
announced.

The error mapping is in data_api_errors.py, result paging and reading in data_api_results.py,
the read counters in stats.py.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    PaginationError,
    ParamValidationError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from shiftsync.aws.session import AssumedRoleSession, error_code
from shiftsync.config import DataApiTarget, RedshiftServerlessConfig
from shiftsync.errors import (
    ConfigError,
    ResultLimitError,
    ShiftsyncError,
    SourceError,
    StatementError,
)
from shiftsync.redshift.data_api_errors import (
    ACCESS_CODES,
    RESULT_SIZE_MESSAGE,
    RETRIABLE_CODES,
    ROW_SIZE_MESSAGE,
    THROTTLING_CODES,
    RepeatedToken,
    is_retriable,
    mapped_call_error,
    mapped_client_error,
    missing_database_named,
    statement_failure,
)
from shiftsync.redshift.data_api_results import (
    ResultPage,
    execute_statement,
    field_value,
    query_rows,
    read_select,
    result_pages,
)
from shiftsync.redshift.rate_limit import Limiter, shared_file_limiter
from shiftsync.redshift.records_parser import install_records_parser
from shiftsync.redshift.retry import (
    DATA_API_RATES,
    PollPolicy,
    PollTimeout,
    RateLimiter,
    RetryPolicy,
    poll,
    shared_rate_limiter,
)
from shiftsync.redshift.snapshot import SessionPool, Transaction, restart
from shiftsync.redshift.spend import Spend
from shiftsync.redshift.stats import ReadStats

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient
    from mypy_boto3_redshift_data.type_defs import (
        ColumnMetadataTypeDef,
        DescribeStatementRequestTypeDef,
        ExecuteStatementInputTypeDef,
        TableMemberTypeDef,
    )

log = logging.getLogger("shiftsync.redshift")

T = TypeVar("T")
# A Data API answer (a TypedDict of the stubs): each carries botocore's ResponseMetadata.
Answer = TypeVar("Answer", bound=Mapping[str, object])
Item = TypeVar("Item")
ResultFormat = Literal["CSV", "JSON"]

TERMINAL: Final = frozenset({"FINISHED", "FAILED", "ABORTED"})
LONG_POLL_SECONDS: Final = 20
# Redshift Serverless stops a query after 86,399 s; shiftsync's default wait is as long.
DEFAULT_STATEMENT_TIMEOUT: Final = 86_400.0
# Answers that say the account's call rate is past its quota (not a concurrency limit).
RATE_THROTTLING_CODES: Final = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
# After CancelStatement, how long to wait for the statement to stop (an UNLOAD may still write).
CANCEL_SETTLE_SECONDS: Final = 10.0


class StatementListener(Protocol):
    """Told of each statement a `running()` block submits and of its end, so that a run can
    record them (a killed run's statements are cancelled by the next run before its staging
    is deleted)."""

    def submitted(self, statement_id: str) -> None: ...

    def ended(self, statement_id: str) -> None: ...

    def session_opened(self, session_id: str) -> None:
        """A transaction's session began (its BEGIN returned the SessionId)."""

    def session_ended(self, session_id: str) -> None:
        """The transaction's COMMIT or ROLLBACK was sent."""


@dataclass(frozen=True)
class StatementStatus:
    """What DescribeStatement says of a statement."""

    id: str
    status: str
    error: str | None = None
    result_rows: int = -1
    result_size: int = -1
    has_result_set: bool = False
    query_id: int | None = None
    duration_ns: int = -1


class DataApi:
    """The Data API of one workgroup and database, reached through an assumed-role session."""

    def __init__(
        self,
        session: AssumedRoleSession,
        connection: RedshiftServerlessConfig,
        *,
        retry: RetryPolicy | None = None,
        polling: PollPolicy | None = None,
        limiter: Limiter | None = None,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    ) -> None:
        self.session = session
        self.connection = connection
        self.retry = retry or RetryPolicy()
        self.polling = polling or PollPolicy()
        self.limiter: Limiter = limiter or limiter_for(connection)
        self.statement_timeout = statement_timeout
        # botocore before 1.43.55 has no WaitTimeSeconds: found out on first use.
        self.long_poll = True
        self._parsing_client: RedshiftDataAPIServiceClient | None = None
        # The transaction statements join (snapshot.py): the thread's own, else the shared one.
        self._tx_local = threading.local()
        self._shared_tx: Transaction | None = None
        # Sessions whose transaction ended, for the next one to begin in (snapshot.py).
        self.sessions = SessionPool()
        # What this source's statements cost, and the budget that stops new ones (spend.py).
        self.spend = Spend()
        # Statements a `running()` block waits on, so Ctrl-C can cancel them from another thread.
        self._running: dict[str, str] = {}
        self._running_lock = threading.Lock()
        # Set by cancel_running: a statement submitted after it is cancelled at once.
        self._stopping = False
        self.listener: StatementListener | None = None
        self._known_databases: list[str] | None = None

    @property
    def db_user(self) -> str:
        """The database user the Data API logs in as (the role itself: IAMR:<role>)."""
        return self.connection.login_user

    def _target(self) -> DataApiTarget:
        """WorkgroupName, or ClusterIdentifier with DbUser or SecretArn; and Database."""
        return self.connection.data_api_target()

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
            if self._database_missing(error):
                return False  # waiting will not create it
            return is_retriable(error)

        def count(_retry: int, error: Exception, pause: float) -> None:
            stats.add(retries=1)
            if isinstance(error, ClientError) and error_code(error) in RATE_THROTTLING_CODES:
                self.limiter.throttled(operation)
            log.debug("%s for %s failed (%s); retrying in %.2f s", operation, what, error, pause)

        try:
            return self.retry.run(
                lambda: self.session.call(fn), retriable=retriable, on_retry=count, label=operation
            )
        except ClientError as error:
            if error_code(error) in passthrough:
                raise
            if self._database_missing(error):
                raise self._unknown_database(what) from error
            raise mapped_client_error(
                error, operation, what, self.connection, self.retry.max_attempts
            ) from error
        except (BotoConnectionError, HTTPClientError, PaginationError, RepeatedToken) as error:
            raise mapped_call_error(error, operation, what, self.connection) from error

    def call(
        self,
        operation: str,
        what: str,
        stats: ReadStats,
        request: Callable[[RedshiftDataAPIServiceClient], Answer],
        *,
        passthrough: frozenset[str] = frozenset(),
    ) -> Answer:
        """One Data API call (`request` calls the client's method for `operation`),
        rate-limited, retried and mapped."""
        client = self._client()

        def attempt() -> Answer:
            self.limiter.acquire(operation)
            response = request(client)
            stats.add(retries=_botocore_retries(response))
            return response

        return self._guarded(operation, what, stats, attempt, passthrough=passthrough)

    def _client(self) -> RedshiftDataAPIServiceClient:
        # The session's clients are untyped where they are made (aws/): this is the one
        # place a redshift-data client comes in, so it gets its stub type here.
        client: RedshiftDataAPIServiceClient = self.session.client("redshift-data")
        if client is not self._parsing_client:
            install_records_parser(client)
            # botocore retries throttled calls itself: hear of each one to slow down.
            client.meta.events.register("needs-retry.redshift-data", self._heard_retry)
            self._parsing_client = client
        return client

    def _heard_retry(self, response: object = None, operation: object = None, **_: object) -> None:
        if not isinstance(response, tuple) or len(response) != 2 or operation is None:
            return
        http, parsed = response
        if getattr(http, "status_code", 200) < 400 or not isinstance(parsed, dict):
            return
        # A FAILED statement's description also holds "Error" (its message): a string.
        error = parsed.get("Error")
        code = error.get("Code") if isinstance(error, dict) else None
        if code in RATE_THROTTLING_CODES:
            self.limiter.throttled(str(getattr(operation, "name", operation)))

    def paginate(
        self,
        operation: str,
        what: str,
        stats: ReadStats,
        listing: Callable[[RedshiftDataAPIServiceClient], Iterable[Answer]],
        items_of: Callable[[Answer], Sequence[Item]],
    ) -> list[Item]:
        """Every item of a listing, following its pages to the end (`listing` runs botocore's
        paginator of `operation`; `items_of` picks a page's items).

        A failure part-way restarts the listing: lists are small, and a half list is worse.
        """
        client = self._client()

        def collect() -> list[Item]:
            items: list[Item] = []
            seen: set[str] = set()
            pages = iter(listing(client))
            while True:
                self.limiter.acquire(operation)
                page = next(pages, None)
                if page is None:
                    return items
                stats.add(retries=_botocore_retries(page))
                items.extend(items_of(page))
                token = page.get("NextToken")
                if token:
                    if token in seen:
                        raise RepeatedToken(str(token))
                    seen.add(str(token))

        return self._guarded(operation, what, stats, collect)

    # -- statements ------------------------------------------------------------------------------
    def current_transaction(self) -> Transaction | None:
        if getattr(self._tx_local, "detached", False):
            return None
        found: Transaction | None = getattr(self._tx_local, "tx", None)
        return found if found is not None else self._shared_tx

    @contextmanager
    def outside_transaction(self) -> Iterator[None]:
        """Statements of the calling thread inside the block join no transaction, not even a
        shared one: each runs on its own connection, on the database as it is now."""
        previous = getattr(self._tx_local, "detached", False)
        self._tx_local.detached = True
        try:
            yield
        finally:
            self._tx_local.detached = previous

    def bind_transaction(self, tx: Transaction | None, *, shared: bool) -> Transaction | None:
        """Make `tx` the transaction of this thread (of every thread: `shared`); the previous."""
        if shared:
            previous, self._shared_tx = self._shared_tx, tx
        else:
            previous = getattr(self._tx_local, "tx", None)
            self._tx_local.tx = tx
        return previous

    def execute(
        self,
        sql: str,
        *,
        what: str,
        stats: ReadStats,
        result_format: ResultFormat = "JSON",
        transaction: Transaction | None = None,
        budgeted: bool = True,
    ) -> str:
        """Submit a statement; its Id. One ClientToken for all retries: never two statements.

        Inside a transaction (snapshot.py) the statement goes to its session. A `budgeted`
        statement does not start once the budget is spent (BudgetError).
        """
        if budgeted:
            self.spend.check(what)
        tx = transaction or self.current_transaction()
        kwargs: ExecuteStatementInputTypeDef = {"Sql": sql, "ClientToken": str(uuid.uuid4())}
        if tx is not None and tx.session_id is not None:
            kwargs["SessionId"] = tx.session_id
        else:
            target = self._target()
            kwargs["Database"] = target["Database"]
            if "WorkgroupName" in target:
                kwargs["WorkgroupName"] = target["WorkgroupName"]
            if "ClusterIdentifier" in target:
                kwargs["ClusterIdentifier"] = target["ClusterIdentifier"]
            if "DbUser" in target:
                kwargs["DbUser"] = target["DbUser"]
            if "SecretArn" in target:
                kwargs["SecretArn"] = target["SecretArn"]
            if tx is not None:
                kwargs["SessionKeepAliveSeconds"] = tx.keep_alive_seconds
        if result_format == "CSV":
            kwargs["ResultFormat"] = "CSV"
        response = self.call(
            "ExecuteStatement", what, stats, lambda client: client.execute_statement(**kwargs)
        )
        stats.add(statements=1)
        if tx is not None:
            tx.statements += 1
            if tx.session_id is None:
                tx.session_id = str(response["SessionId"])
                if self.listener is not None:
                    self.listener.session_opened(tx.session_id)
        return str(response["Id"])

    def execute_ok(
        self,
        sql: str,
        *,
        what: str,
        stats: ReadStats,
        transaction: Transaction | None = None,
        budgeted: bool = True,
    ) -> StatementStatus:
        """Run a statement to its end; StatementError unless it FINISHED."""
        with self.running(
            sql, what=what, stats=stats, transaction=transaction, budgeted=budgeted
        ) as status:
            return status

    def describe(
        self,
        statement_id: str,
        *,
        what: str,
        stats: ReadStats,
        wait_seconds: int | None = None,
        passthrough: frozenset[str] = frozenset(),
    ) -> StatementStatus:
        kwargs: DescribeStatementRequestTypeDef = {"Id": statement_id}
        if wait_seconds:
            kwargs["WaitTimeSeconds"] = wait_seconds
        answer = self.call(
            "DescribeStatement",
            what,
            stats,
            lambda client: client.describe_statement(**kwargs),
            passthrough=passthrough,
        )
        return StatementStatus(
            id=statement_id,
            status=str(answer.get("Status", "")),
            error=answer.get("Error"),
            result_rows=int(answer.get("ResultRows", -1)),
            result_size=int(answer.get("ResultSize", -1)),
            has_result_set=bool(answer.get("HasResultSet", False)),
            query_id=_int_or_none(answer.get("RedshiftQueryId")),
            duration_ns=int(answer.get("Duration", -1)),
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

    def cancel(self, statement_id: str, *, what: str, stats: ReadStats) -> bool:
        """Best effort: cancel, then wait briefly until the statement has stopped. True once
        it has (False: it may still be running)."""
        try:
            self.call(
                "CancelStatement",
                what,
                stats,
                lambda client: client.cancel_statement(Id=statement_id),
            )
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
            return False
        return True

    def settle(self, statement_ids: Sequence[str], *, what: str, stats: ReadStats) -> list[str]:
        """Cancel those of `statement_ids` still running (another process's, which died) and
        wait until they stop; the ids that may still be running. A statement the Data API no
        longer knows (its 24 hours are over) has ended."""
        unsettled: list[str] = []
        for statement_id in statement_ids:
            try:
                status = self.describe(
                    statement_id,
                    what=what,
                    stats=stats,
                    passthrough=frozenset({"ResourceNotFoundException"}),
                )
            except ClientError:
                continue
            except ShiftsyncError as error:
                log.warning("statement %s of %s: %s", statement_id, what, error)
                unsettled.append(statement_id)
                continue
            if status.status in TERMINAL:
                continue
            if not self.cancel(statement_id, what=what, stats=stats):
                unsettled.append(statement_id)
        return unsettled

    def end_sessions(self, session_ids: Sequence[str], *, what: str, stats: ReadStats) -> int:
        """ROLLBACK the open transaction of each session (a killed run's): its locks would hold
        until the session's keep-alive ran out. Sessions that expired meanwhile are skipped;
        returns how many were ended."""
        from shiftsync.redshift.snapshot import Transaction

        ended = 0
        for session_id in session_ids:
            orphan = Transaction(session_id=session_id)
            try:
                self.execute("ROLLBACK", what=what, stats=stats, transaction=orphan, budgeted=False)
                ended += 1
            except ShiftsyncError as error:  # expired or unknown: nothing holds a lock any more
                log.info("session %s of %s: %s", session_id, what, error)
        return ended

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
        transaction: Transaction | None = None,
        budgeted: bool = True,
    ) -> Iterator[StatementStatus]:
        """Execute and wait; yields the FINISHED status; cancels unless it reached an end.

        FAILED and ABORTED raise StatementError (ResultLimitError for the Data API's limits).
        In a transaction, statements run one at a time (a session runs one statement at once).
        """
        tx = transaction or self.current_transaction()
        with tx.lock if tx is not None else contextlib.nullcontext():
            statement_id = self.execute(
                sql,
                what=what,
                stats=stats,
                result_format=result_format,
                transaction=tx,
                budgeted=budgeted,
            )
            listener = self.listener
            if listener is not None:
                listener.submitted(statement_id)
            with self._running_lock:
                self._running[statement_id] = what
                stopping = self._stopping
            ended = False
            try:
                if stopping:
                    # Ctrl-C came while this statement was being submitted.
                    self._cancel_quietly(statement_id, what, stats)
                status = self.wait(statement_id, what=what, stats=stats, timeout=timeout)
                ended = True
                self.spend.add(status.query_id, status.duration_ns)
            finally:
                with self._running_lock:
                    self._running.pop(statement_id, None)
                if not ended:
                    ended = self.cancel(statement_id, what=what, stats=stats)
                if ended and listener is not None:
                    listener.ended(statement_id)
            if status.status != "FINISHED":
                failure = self.failure(status, what)
                if tx is not None and tx.session_id and isinstance(failure, ResultLimitError):
                    # The caller reads on another way (UNLOAD, key chunks): it needs a live
                    # transaction, and Redshift ended this one with the failed statement.
                    restart(self, tx, what=what, stats=stats)
                raise failure
        yield status

    def cancel_running(self, stats: ReadStats) -> int:
        """Cancel every statement a `running()` block waits on; their waits then end ABORTED.

        For Ctrl-C: the threads that wait would otherwise sit out a long statement before they
        could notice that the run stops. Returns how many were asked to stop.
        """
        with self._running_lock:
            self._stopping = True
            running = dict(self._running)
        for statement_id, what in running.items():
            self._cancel_quietly(statement_id, what, stats)
        return len(running)

    def _cancel_quietly(self, statement_id: str, what: str, stats: ReadStats) -> None:
        try:
            self.call(
                "CancelStatement",
                what,
                stats,
                lambda client: client.cancel_statement(Id=statement_id),
            )
            stats.add(cancelled=1)
        except ShiftsyncError as error:  # it ended meanwhile, or the API is unreachable
            log.info("could not cancel statement %s of %s: %s", statement_id, what, error)

    def failure(self, status: StatementStatus, what: str) -> ShiftsyncError:
        """The error a FAILED or ABORTED statement becomes."""
        missing = missing_database_named(status.error or "")
        if missing == self.connection.database and self._other_databases() is not None:
            return self._unknown_database(what)
        return statement_failure(status, what, self.db_user)

    # -- an unknown database ---------------------------------------------------------------------
    def _other_databases(self) -> list[str] | None:
        """The workgroup's (cluster's) databases when the connection's is not among them, else
        None.

        ListDatabases must connect to some database: `dev`, which every Redshift Serverless
        namespace has, unless that is the connection's own. Any failure means "do not know".
        """
        if self._known_databases is None:
            connect_to = "dev" if self.connection.database != "dev" else "postgres"
            try:
                target = self._target()
                target["Database"] = connect_to
                answer = self.session.call(self._client().list_databases, **target)
            except (ClientError, BotoCoreError):
                return None
            self._known_databases = [str(name) for name in answer.get("Databases") or []]
        found = self._known_databases
        return None if self.connection.database in found else found

    def _database_missing(self, error: Exception) -> bool:
        return (
            isinstance(error, ClientError)
            and error_code(error) == "DatabaseConnectionException"
            and self._other_databases() is not None
        )

    def _unknown_database(self, what: str) -> ConfigError:
        names = self._other_databases() or []
        close = difflib.get_close_matches(self.connection.database, names, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        listed = ", ".join(sorted(names)[:10]) or "none"
        return ConfigError(
            f"{what}: database {self.connection.database} does not exist in "
            f"{self.connection.target_label} (its databases: {listed}){hint}",
            fix="set database: of the connection in shiftsync.yaml to one of them"
            + (f", e.g. database: {close[0]}" if close else ""),
        )

    def pages(
        self, statement_id: str, *, what: str, stats: ReadStats, csv: bool, prefetch: bool = True
    ) -> Iterator[ResultPage]:
        """The result's pages, in order, following NextToken to the end (`result_pages`)."""
        return result_pages(self, statement_id, what=what, stats=stats, csv=csv, prefetch=prefetch)

    # -- catalog ---------------------------------------------------------------------------------
    def list_schemas(self, pattern: str, *, stats: ReadStats) -> list[str]:
        target = self._target()
        found: list[str] = self.paginate(
            "ListSchemas",
            "the catalog",
            stats,
            lambda client: client.get_paginator("list_schemas").paginate(
                **target, SchemaPattern=pattern
            ),
            lambda page: page.get("Schemas") or [],
        )
        return [str(name) for name in found]

    def list_tables(
        self, schema_pattern: str, table_pattern: str, *, stats: ReadStats
    ) -> list[TableMemberTypeDef]:
        target = self._target()
        return self.paginate(
            "ListTables",
            "the catalog",
            stats,
            lambda client: client.get_paginator("list_tables").paginate(
                **target,
                SchemaPattern=schema_pattern,
                TablePattern=table_pattern,
            ),
            lambda page: page.get("Tables") or [],
        )

    def describe_table(
        self, schema: str, table: str, *, what: str, stats: ReadStats
    ) -> list[ColumnMetadataTypeDef] | None:
        """The table's ColumnMetadata, or None when the Data API says it does not exist."""
        target = self._target()
        try:
            return self.paginate(
                "DescribeTable",
                what,
                stats,
                lambda client: client.get_paginator("describe_table").paginate(
                    **target, Schema=schema, Table=table
                ),
                lambda page: page.get("ColumnList") or [],
            )
        except SourceError as error:
            cause = error.__cause__
            if isinstance(cause, ClientError) and error_code(cause) == "ResourceNotFoundException":
                return None
            raise


@dataclass(frozen=True)
class QuotaScope:
    """What one Data API rate limit is shared by: AWS counts per account and region (and a
    custom endpoint has quotas of its own); the rates are the connection's."""

    account: str
    region: str
    rates: Mapping[str, float]
    endpoint: str | None


def quota_scope(connection: RedshiftServerlessConfig) -> QuotaScope:
    rates = {**DATA_API_RATES, **connection.rate_limits.rates()}
    account = connection.role_arn.split(":")[4]
    return QuotaScope(account, connection.region, rates, _endpoint_of_data_api())


def limiter_for(connection: RedshiftServerlessConfig) -> Limiter:
    """The connection's rate limiter: the machine-wide file bucket of its account and region,
    or (with `rate_limits.shared: false`) one of this process only."""
    scope = quota_scope(connection)
    if not connection.rate_limits.shared:
        if scope.rates != DATA_API_RATES:
            return RateLimiter(rates=scope.rates)
        return shared_rate_limiter()
    return shared_file_limiter(scope.account, scope.region, scope.rates, endpoint=scope.endpoint)


def _endpoint_of_data_api() -> str | None:
    """A Data API endpoint set in AWS's configuration variables (a stand-in, a VPC endpoint):
    its quota is its own, not the public endpoint's of the same account and region."""
    return os.environ.get("AWS_ENDPOINT_URL_REDSHIFT_DATA") or os.environ.get("AWS_ENDPOINT_URL")


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _botocore_retries(response: Mapping[str, object]) -> int:
    metadata = response.get("ResponseMetadata")
    attempts = metadata.get("RetryAttempts", 0) if isinstance(metadata, Mapping) else 0
    return attempts if isinstance(attempts, int) else 0


__all__ = [
    "ACCESS_CODES",
    "CANCEL_SETTLE_SECONDS",
    "DEFAULT_STATEMENT_TIMEOUT",
    "LONG_POLL_SECONDS",
    "RESULT_SIZE_MESSAGE",
    "RETRIABLE_CODES",
    "ROW_SIZE_MESSAGE",
    "TERMINAL",
    "THROTTLING_CODES",
    "DataApi",
    "QuotaScope",
    "ReadStats",
    "ResultPage",
    "StatementStatus",
    "execute_statement",
    "field_value",
    "is_retriable",
    "limiter_for",
    "query_rows",
    "quota_scope",
    "read_select",
]
