"""The one exception tree of shiftsync, sorted by what the caller should do.

    ShiftsyncError                 exit 1   something failed; the message says what and the fix
    ├── ConfigError                exit 2   the configuration or the command line is wrong: fix it
    ├── AccessError                exit 3   AWS refused (credentials, trust, permissions)
    ├── SourceError                exit 1   Redshift or the Data API failed a statement or a read
    │   ├── StatementError                  a statement FAILED or was ABORTED (carries its id)
    │   └── ResultLimitError                a result passed the Data API's limits (size, row width)
    ├── DestinationError           exit 1   the destination could not be reached or written
    ├── StateError                 exit 1   the workspace's state or run history is unreadable
    ├── VerificationError          exit 1   the destination does not match the source
    └── StandInError               exit 4   the local stand-in could not start

Transient failures (throttling, 5xx, a dropped connection, a waking workgroup) are retried
where they happen (redshift/retry.py) and reach the caller only once retries are spent.

Every message names the thing (file, key, table, column, action), what was wrong, and the fix.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_ACCESS = 3
EXIT_STANDIN = 4


class ShiftsyncError(Exception):
    """Root of every error shiftsync raises on purpose."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message}\n  fix: {self.fix}"
        return self.message


class ConfigError(ShiftsyncError):
    """The configuration, the workspace or the command line is wrong."""

    exit_code = EXIT_CONFIG


class AccessError(ShiftsyncError):
    """AWS refused: missing credentials, a trust policy or a permission policy."""

    exit_code = EXIT_ACCESS


class SourceError(ShiftsyncError):
    """Redshift or the Data API failed."""


class StatementError(SourceError):
    """A statement ended FAILED or ABORTED."""

    def __init__(
        self, message: str, *, statement_id: str | None = None, fix: str | None = None
    ) -> None:
        super().__init__(message, fix=fix)
        self.statement_id = statement_id


class ResultLimitError(SourceError):
    """A result passed one of the Data API's limits (result size, row width)."""


class DestinationError(ShiftsyncError):
    """The destination could not be reached or written."""


class StateError(ShiftsyncError):
    """The workspace's state or run history could not be read or written."""


class VerificationError(ShiftsyncError):
    """The destination does not hold what the source holds."""


class StandInError(ShiftsyncError):
    """The local stand-in of Redshift Serverless could not start."""

    exit_code = EXIT_STANDIN
