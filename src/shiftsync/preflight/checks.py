"""What every check shares: the result type, the check names, call outcomes, the run's context.

Pure helpers live here too (pattern conversion, table selection, error classification), so that
the modules holding the checks only make calls and judge them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, ParamSpec, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shiftsync.aws.policy import credentials_action, separate_unload_role
from shiftsync.aws.session import AssumedRoleSession, error_code
from shiftsync.config import (
    ConnectionConfig,
    NamePattern,
    ShiftsyncConfig,
    SyncConfig,
    split_table_pattern,
)

Status = Literal["pass", "fail", "warn", "skip"]
T = TypeVar("T")
Answer = TypeVar("Answer", covariant=True)
P = ParamSpec("P")

CALLER: Final = "sts:GetCallerIdentity"
ASSUME: Final = "sts:AssumeRole"
EXTERNAL_ID_REQUIRED: Final = "external ID required"
GET_CREDENTIALS: Final = "redshift-serverless:GetCredentials"
LIST_DATABASES: Final = "redshift-data:ListDatabases"
LIST_SCHEMAS: Final = "redshift-data:ListSchemas"
LIST_TABLES: Final = "redshift-data:ListTables"
DESCRIBE_TABLE: Final = "redshift-data:DescribeTable"
EXECUTE: Final = "redshift-data:ExecuteStatement"
DESCRIBE_STATEMENT: Final = "redshift-data:DescribeStatement"
GET_RESULT: Final = "redshift-data:GetStatementResult"
CANCEL: Final = "redshift-data:CancelStatement"
TABLE_PRIVILEGES: Final = "table privileges"
PUT: Final = "s3:PutObject"
GET: Final = "s3:GetObject"
ATTRIBUTES: Final = "s3:GetObjectAttributes"
LIST_BUCKET: Final = "s3:ListBucket"
DELETE: Final = "s3:DeleteObject"
BUCKET_REGION: Final = "bucket region"
STAGING_VERSIONS: Final = "staging versions"
UNLOAD: Final = "UNLOAD"
CLEANUP: Final = "probe cleanup"

IDENTITY_CHECKS: Final = (CALLER, ASSUME, EXTERNAL_ID_REQUIRED)
DATA_API_CHECKS: Final = (
    GET_CREDENTIALS,
    LIST_DATABASES,
    LIST_SCHEMAS,
    LIST_TABLES,
    DESCRIBE_TABLE,
    EXECUTE,
    DESCRIBE_STATEMENT,
    GET_RESULT,
    CANCEL,
    TABLE_PRIVILEGES,
)
S3_ACTION_CHECKS: Final = (PUT, GET, ATTRIBUTES, LIST_BUCKET, DELETE)
STAGING_CHECKS: Final = (*S3_ACTION_CHECKS, BUCKET_REGION, STAGING_VERSIONS, UNLOAD, CLEANUP)
# With a separate UNLOAD role, shiftsync's role writes nothing: UNLOAD writes the probe files
# with its own role, then shiftsync's role reads, lists and deletes them.
SEPARATE_UNLOAD_ROLE_STAGING_CHECKS: Final = (
    BUCKET_REGION,
    STAGING_VERSIONS,
    UNLOAD,
    *S3_ACTION_CHECKS,
    CLEANUP,
)

SESSION_NAME: Final = "shiftsync-check"
DENIED_CODES: Final = frozenset({"AccessDenied", "AccessDeniedException", "403", "Forbidden"})
# Table kinds a sync reads (ListTables also returns other kinds).
READABLE_KINDS: Final = frozenset({"TABLE", "VIEW"})
SHOWN_ITEMS: Final = 10


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict; `fix` says what to change when it is not a pass."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def preflight_ok(results: Iterable[CheckResult]) -> bool:
    """True when every check passed or only warned."""
    return all(result.status in ("pass", "warn") for result in results)


def planned_checks(conn: ConnectionConfig) -> tuple[str, ...]:
    """The names of the checks run for this connection, in order."""
    staging: tuple[str, ...] = ()
    if separate_unload_role(conn):
        staging = SEPARATE_UNLOAD_ROLE_STAGING_CHECKS
    elif conn.unload is not None:
        staging = STAGING_CHECKS
    return (*IDENTITY_CHECKS, *data_api_checks(conn), *staging)


def data_api_checks(conn: ConnectionConfig) -> tuple[str, ...]:
    """DATA_API_CHECKS with the connection's log-in action in place of GetCredentials (a
    cluster's GetClusterCredentialsWithIAM, GetClusterCredentials or GetSecretValue)."""
    action = credentials_action(conn)
    return tuple(action if name == GET_CREDENTIALS else name for name in DATA_API_CHECKS)


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------


def glob_to_like(pattern: str) -> str:
    """A bare shiftsync glob (* ?) as a Data API LIKE pattern (% _): wider is fine, never
    narrower.

    Listed tables are filtered with the glob afterwards, so a literal % or _ that matches more
    than itself costs nothing; `[` is an ordinary character.
    """
    return NamePattern(pattern, literal=False).like()


def syncs_reading(config: ShiftsyncConfig, connection_name: str) -> dict[str, SyncConfig]:
    """The syncs whose source is this connection, by name."""
    return {name: sync for name, sync in config.syncs.items() if sync.source == connection_name}


def schema_patterns(syncs: Iterable[SyncConfig]) -> list[str]:
    """The LIKE patterns of the schemas the syncs' table entries name."""
    return sorted(
        {split_table_pattern(entry.include)[0].like() for sync in syncs for entry in sync.tables}
    )


def selected_tables(
    listed: Iterable[tuple[str, str]], syncs: Iterable[SyncConfig]
) -> list[tuple[str, str]]:
    """The (schema, table) pairs at least one of the syncs copies."""
    chosen = list(syncs)
    return sorted(
        {
            (schema, table)
            for schema, table in listed
            if any(sync.select(schema, table) is not None for sync in chosen)
        }
    )


def is_denied(code: str) -> bool:
    return code in DENIED_CODES


def mentions_get_credentials(message: str, action: str = GET_CREDENTIALS) -> bool:
    """Whether an error is about the log-in action (`action`), not the call's own."""
    text = message.lower()
    name = action.split(":", 1)[-1].lower()
    if name == "getclustercredentials":
        # Not to be confused with GetClusterCredentialsWithIAM.
        return any(
            text[i + len(name) :][:7] != "withiam"
            for i in range(len(text))
            if text.startswith(name, i)
        )
    return name in text


def is_permission_error(message: str) -> bool:
    return "permission denied" in message.lower()


def short_list(items: Sequence[str], limit: int = SHOWN_ITEMS) -> str:
    """At most `limit` items, comma-separated, with how many more there are."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def grant_fix(action: str, resource: str, condition: str = "") -> str:
    return (
        f"allow {action} on {resource}{condition} in the role's permission policy "
        "(`shiftsync policy` prints the complete policy)"
    )


# ---------------------------------------------------------------------------------------------
# Calls and the run's context
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome(Generic[Answer]):
    """What one AWS call gave: its answer, or its error code and message.

    `Outcome[object]` is any outcome, for code that judges it without reading the answer.
    """

    answer: Answer | None = None
    code: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.code

    @property
    def value(self) -> Answer:
        """The answer of a call that worked (ask `ok` first)."""
        if self.answer is None:
            raise ValueError(f"the call gave no answer: {self.describe() or 'not made'}")
        return self.answer

    @property
    def denied(self) -> bool:
        return is_denied(self.code)

    @property
    def credentials_denied(self) -> bool:
        return self.denied and mentions_get_credentials(self.message)

    def describe(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


def attempt(call: Callable[[], T]) -> Outcome[T]:
    """Run one AWS call and keep its error instead of raising it."""
    try:
        return Outcome(answer=call())
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        return Outcome(code=error_code(error) or "Error", message=message)
    except BotoCoreError as error:
        return Outcome(code=type(error).__name__, message=str(error))


@dataclass
class Context:
    """What the checks of one run share, and the results so far."""

    connection_name: str
    conn: ConnectionConfig
    config: ShiftsyncConfig
    external_id: str
    base: boto3.Session
    progress: Callable[[CheckResult], None] | None = None
    results: list[CheckResult] = field(default_factory=list)
    principal: str | None = None
    caller: str | None = None  # the ARN sts:GetCallerIdentity returned
    assumed: AssumedRoleSession | None = None
    statements_run: bool = False  # `select 1` FINISHED: statements can be submitted and awaited
    tables: list[tuple[str, str]] = field(default_factory=list)
    staging_failed: bool = False
    region_failed: bool = False
    secret_user: str | None = None  # the username of the connection's secret, once read

    def add(self, result: CheckResult) -> CheckResult:
        self.results.append(result)
        if self.progress is not None:
            self.progress(result)
        return result

    def skip_rest(self, reason: str) -> None:
        """Report every planned check not reported yet as skipped, with the reason."""
        done = {result.name for result in self.results}
        for name in planned_checks(self.conn):
            if name not in done:
                self.add(CheckResult(name, "skip", f"not reached: {reason}"))

    @property
    def session(self) -> AssumedRoleSession:
        if self.assumed is None:
            raise RuntimeError("the role has not been assumed")
        return self.assumed

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Outcome[T]:
        """One call with the assumed role's credentials (refreshed once if they expired)."""
        return attempt(lambda: self.session.call(fn, *args, **kwargs))

    @property
    def db_user(self) -> str:
        return self.secret_user or self.conn.login_user
