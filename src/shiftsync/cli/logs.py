"""How the command logs: `--log-level`, `--log-format text|json`, `--log-file PATH`.

Everything shiftsync logs goes through the `shiftsync` logger tree: progress lines
(`shiftsync.progress`), each retry (`shiftsync.retry`), waits and fallbacks. The command sets
one handler on `shiftsync`: stderr by default, or the file. Text lines start with the time
(UTC); warnings and errors also name their level and logger:

    2026-12-07T09:17:04Z public.sales: reading (data_api, incremental/merge)
    2026-12-07T09:17:06Z WARNING shiftsync.retry: retrying ExecuteStatement (2/7) in 0.4 s: ...

JSON is one object per line: time, level, logger, message, and the record's own fields
(`operation`, `attempt`, `reason`, `table`, ...). Library users configure logging
themselves; nothing here runs on `import shiftsync`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Final, Literal

from shiftsync.errors import ConfigError

LEVELS: Final = ("debug", "info", "warning", "error")
FORMATS: Final = ("text", "json")
LogFormat = Literal["text", "json"]

# The attributes every LogRecord has: anything else on a record came as `extra=`.
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
# Marks the handler this module installed, so a second command in one process replaces it.
_MARK: Final = "_shiftsync_cli_handler"


def utc_stamp(created: float) -> str:
    """`2026-12-07T09:17:04Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))


class TextFormatter(logging.Formatter):
    """`<time> <message>` for information, `<time> <LEVEL> <logger>: <message>` above it."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno > logging.INFO or record.levelno < logging.INFO:
            message = f"{record.levelname} {record.name}: {message}"
        text = f"{utc_stamp(record.created)} {message}"
        if record.exc_info and record.levelno <= logging.DEBUG:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        # Extra fields may hold any value: json.dumps writes the ones it cannot as text.
        document: dict[str, object] = {
            "time": utc_stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        return json.dumps(document, ensure_ascii=False, default=str)


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is when a record comes (tests and redirections swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def parse_level(text: str) -> int:
    name = text.strip().lower()
    if name not in LEVELS:
        raise ConfigError(
            f"--log-level {text!r} is not a level",
            fix=f"use one of: {', '.join(LEVELS)} (e.g. --log-level info)",
        )
    return int(getattr(logging, name.upper()))


def parse_format(text: str) -> LogFormat:
    name = text.strip().lower()
    if name == "json":
        return "json"
    if name == "text":
        return "text"
    raise ConfigError(
        f"--log-format {text!r} is not a format", fix="use --log-format text or --log-format json"
    )


def setup_logging(level: str = "info", fmt: str = "text", file: Path | None = None) -> None:
    """Install the command's one handler on the `shiftsync` logger (replacing an earlier one)."""
    number, kind = parse_level(level), parse_format(fmt)
    handler: logging.Handler
    if file is None:
        handler = _StderrHandler()
    else:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(file, encoding="utf-8")
        except OSError as error:
            raise ConfigError(
                f"--log-file {file} cannot be opened: {error.strerror or error}",
                fix="pass --log-file a path in a folder you can write to",
            ) from error
    handler.setFormatter(JsonFormatter() if kind == "json" else TextFormatter())
    setattr(handler, _MARK, True)
    root = logging.getLogger("shiftsync")
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(number)
    # The library's records stop here: a host application's root handlers do not repeat them.
    # botocore's own DEBUG lines are never attached: they carry request headers, among them
    # the session token of the assumed role.
    root.propagate = False


def reset_logging() -> None:
    """Undo setup_logging when the command ends: an in-process caller (a test, a notebook
    running the CLI) gets its logging back as it was."""
    root = logging.getLogger("shiftsync")
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.setLevel(logging.NOTSET)
    root.propagate = True


__all__ = [
    "FORMATS",
    "LEVELS",
    "JsonFormatter",
    "TextFormatter",
    "parse_format",
    "parse_level",
    "reset_logging",
    "setup_logging",
    "utc_stamp",
]
