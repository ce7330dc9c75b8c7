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
    ├── BudgetError                exit 1   the sync's max_compute_seconds is spent
    ├── OutsideWindowError         exit 5   the sync may not run now (only_between)
    ├── SyncFailedError            exit 1   a run ended failed or partial (`.record` says how)
    └── StandInError               exit 4   the local stand-in could not start

Transient failures (throttling, 5xx, a dropped connection, a waking workgroup) are retried
where they happen (redshift/retry.py) and reach the caller only once retries are spent.

Every message names the thing (file, key, table, column, action), what was wrong, and the fix.
"""

from __future__ import annotations

import errno
import re
import tempfile

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_ACCESS = 3
EXIT_STANDIN = 4
EXIT_OUTSIDE_WINDOW = 5


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


class WriteConflictError(DestinationError):
    """Another load published the destination table while this one ran; nothing of this one
    was published."""


class StateError(ShiftsyncError):
    """The workspace's state or run history could not be read or written."""


class VerificationError(ShiftsyncError):
    """The destination does not hold what the source holds."""


class BudgetError(ShiftsyncError):
    """A sync's compute budget (max_compute_seconds) is spent: no new statement starts."""


class OutsideWindowError(ShiftsyncError):
    """The sync may run only inside its `only_between` window, and it is outside it now."""

    exit_code = EXIT_OUTSIDE_WINDOW


class SyncFailedError(ShiftsyncError):
    """A run ended with failed tables (`shiftsync.run_sync`); `.record` is its run record."""

    def __init__(self, message: str, *, record: object, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.record = record


class StandInError(ShiftsyncError):
    """The local stand-in of Redshift Serverless could not start."""

    exit_code = EXIT_STANDIN


_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SPACE_TEXT = re.compile(r"no space left on device|disk quota exceeded|disk is full", re.I)
_QUOTED_PATH = re.compile(r"[\"'](/[^\"']+)[\"']")


def out_of_space_in_chain(error: BaseException) -> DestinationError | None:
    """`out_of_space` of the first error in `error`'s chain of causes (the innermost names the
    file that could not be written: a wrapping error may name only its destination)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 16:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for link in reversed(chain):
        found = out_of_space(link)
        if found is not None:
            return found
    return None


def out_of_space(error: BaseException) -> DestinationError | None:
    """The error to report when `error` says a disk is full (an OSError from Python or Arrow,
    or DuckDB's IO error), naming the path and the fix; None for any other error."""
    text = str(error)
    is_oserror = isinstance(error, OSError) and error.errno in _SPACE_ERRNOS
    if not is_oserror and not _SPACE_TEXT.search(text):
        return None
    path = getattr(error, "filename", None)
    if not path:
        found = _QUOTED_PATH.search(text)
        path = found.group(1) if found else None
    where = str(path) if path else f"the temporary folder {tempfile.gettempdir()}"
    folder = str(path).rsplit("/", 1)[0] or "/" if path else tempfile.gettempdir()
    return DestinationError(
        f"out of disk space writing {where}",
        fix=f"free space on the file system of {folder}; for temporary files (merges, staged "
        "parts) set TMPDIR to a folder on a disk with room for the run; then run the sync "
        "again (nothing was committed)",
    )
