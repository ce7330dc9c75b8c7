"""The Data API's failures as shiftsync's errors, mapped once, here (pure).

A failed call (a ClientError, a connection that kept failing, a listing that loops) and a
statement that ended FAILED or ABORTED each become one error of shiftsync's tree whose `fix`
says what to do; `is_retriable` decides which failures are worth another try first.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError, HTTPClientError, PaginationError
from botocore.exceptions import ConnectionError as BotoConnectionError

from shiftsync.aws.network import NETWORK_ERRORS, network_error, network_kind
from shiftsync.aws.policy import credentials_action
from shiftsync.aws.session import EXPIRED_CODES, error_code
from shiftsync.config import RedshiftServerlessConfig
from shiftsync.errors import (
    AccessError,
    ConfigError,
    ResultLimitError,
    ShiftsyncError,
    SourceError,
    StatementError,
)

if TYPE_CHECKING:
    from shiftsync.redshift.data_api import StatementStatus

# Throttling and busy quotas: retried, and when they persist the fix is less concurrency.
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
# Worth another try later: throttling, busy quotas, server faults, a paused or waking workgroup.
RETRIABLE_CODES: Final = THROTTLING_CODES | frozenset(
    {
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


class RepeatedToken(Exception):
    """A listing returned a NextToken it had already returned: following it would loop."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def is_retriable(error: Exception) -> bool:
    """Transient: throttled, busy, a 5xx, a paused workgroup or a dropped connection.

    A name that does not resolve or a TLS handshake that fails will not cure by waiting."""
    if isinstance(error, NETWORK_ERRORS) and network_kind(error) != "unreachable":
        return False
    if isinstance(error, ClientError):
        if _missing_database(error):
            return False  # a wrong name does not heal with time
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(error) in RETRIABLE_CODES or (isinstance(status, int) and status >= 500)
    return isinstance(error, BotoConnectionError | HTTPClientError)


def _cli_target(connection: RedshiftServerlessConfig) -> str:
    """The AWS CLI options that name the connection's workgroup or cluster (and login)."""
    if not connection.is_cluster:
        return f"--workgroup-name {connection.target_name}"
    login = ""
    if connection.db_user is not None:
        login = f" --db-user {connection.db_user}"
    elif connection.secret_arn is not None:
        login = f" --secret-arn {connection.secret_arn}"
    return f"--cluster-identifier {connection.target_name}{login}"


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", "")) or str(error)


def _missing_database(error: ClientError) -> bool:
    """The database named in the connection does not exist (a configuration mistake, like a
    wrong workgroup), as opposed to a database that cannot be reached right now."""
    message = _message(error).lower()
    return (
        error_code(error) == "DatabaseConnectionException"
        and "database" in message
        and "does not exist" in message
    )


def mapped_client_error(
    error: ClientError,
    operation: str,
    what: str,
    connection: RedshiftServerlessConfig,
    attempts: int,
) -> ShiftsyncError:
    """A ClientError that retries did not cure, as the error to raise."""
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
            fix=f"the role {connection.role_arn} needs redshift-data:{action}"
            f" and {credentials_action(connection)} on {connection.target_label}; "
            "`shiftsync policy` prints the policy it needs",
        )
    if code == "ResourceNotFoundException" and ("orkgroup" in message or "luster" in message):
        key = "cluster_identifier" if connection.is_cluster else "workgroup name"
        return ConfigError(
            where,
            fix=f"check the {key} ({connection.target_name}) and region "
            f"({connection.region}) of the connection in shiftsync.yaml",
        )
    if _missing_database(error):
        # The same class of mistake as a wrong workgroup: the same exit code (2).
        return ConfigError(
            where,
            fix=f"check the database name ({connection.database}) of the connection in "
            f"shiftsync.yaml; `aws redshift-data list-databases {_cli_target(connection)} "
            f"--database dev --region {connection.region}` lists them",
        )
    if code == "DatabaseConnectionException":
        return SourceError(
            where,
            fix=f"{connection.target_label} may be paused, resuming or at its "
            f"capacity, or database {connection.database} does not exist: check it in "
            "the Redshift console and run again",
        )
    if code in THROTTLING_CODES:
        return SourceError(
            where + f" (still after {attempts} attempts)",
            fix="lower the sync's concurrency or run fewer shiftsync processes at once: "
            "the Data API's quotas are per AWS account and region",
        )
    if is_retriable(error):
        return SourceError(
            where + f" (still after {attempts} attempts)",
            fix="the Data API is failing on its side: run again later",
        )
    if code == "ValidationException":
        return SourceError(
            where, fix="the request was refused as invalid: see the message for which part"
        )
    return SourceError(where, fix="see the message; run again once it is fixed")


def mapped_call_error(
    error: BotoConnectionError | HTTPClientError | PaginationError | RepeatedToken,
    operation: str,
    what: str,
    connection: RedshiftServerlessConfig,
) -> ShiftsyncError:
    """A call that failed without an answer from AWS, or a listing that loops."""
    if isinstance(error, NETWORK_ERRORS):
        return network_error(error, "redshift-data", connection.region)
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return SourceError(
            f"{what}: redshift-data {operation} failed: the connection to the Data API "
            f"kept failing ({error})",
            fix="check network access to the Data API endpoint (redshift-data."
            f"{connection.region}.amazonaws.com, or AWS_ENDPOINT_URL_REDSHIFT_DATA) "
            "and run again",
        )
    if isinstance(error, PaginationError):
        return SourceError(
            f"{what}: redshift-data {operation} returned the same NextToken twice ({error})",
            fix="run again; shiftsync stops rather than return an incomplete list",
        )
    return SourceError(
        f"{what}: redshift-data {operation} returned NextToken {error.token[:16]}… "
        "a second time; the listing would loop",
        fix="run again; shiftsync stops rather than return an incomplete list",
    )


_MISSING_DATABASE: Final = re.compile(r'database "([^"]+)" does not exist')


def missing_database_named(message: str) -> str | None:
    """The database a `database "x" does not exist` error names (pure)."""
    found = _MISSING_DATABASE.search(message)
    return found.group(1) if found else None


def statement_failure(status: StatementStatus, what: str, db_user: str) -> SourceError:
    """The error a FAILED or ABORTED statement becomes (`db_user` is named in grant fixes)."""
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
        fix=_failure_fix(message, db_user),
    )


def _failure_fix(message: str, db_user: str) -> str:
    lowered = message.lower()
    if "column" in lowered and "does not exist" in lowered:
        return (
            "the table changed after shiftsync described it (a column was dropped or "
            "renamed): describe it again (`shiftsync discover`) and run again"
        )
    if "does not exist" in lowered and ("relation" in lowered or "table" in lowered):
        return "the table or view is gone or was renamed: check the name with `shiftsync discover`"
    if "permission denied" in lowered:
        return (
            f'grant the database user "{db_user}" USAGE on the schema and SELECT on '
            "the table (see docs/aws-setup.md)"
        )
    return "Redshift's message above says what failed: fix the statement or the data"
