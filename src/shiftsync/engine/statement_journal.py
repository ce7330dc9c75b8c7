"""A run's Data API statements on disk, so that the next run can stop a killed run's statements.

    .shiftsync/runs/<run_id>.statements    `+<id>` when a statement is submitted, `-<id>` when
                                           it has ended (finished, failed or cancelled)

A killed run leaves its UNLOADs running in Redshift: they write their files whenever they end,
possibly after the next run deleted the killed run's staging. The next run reads the ids still
open here, cancels (or waits out) those statements, and only then deletes the staging. Lines
are appended with one `write` each; a line cut short by a kill is skipped when read.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path
from typing import Final

SUFFIX: Final = ".statements"
# Data API statement ids are UUIDs; a batch's sub-statements add `:<n>`.
_LINE_RE: Final = re.compile(
    r"([+\-\[\]])([0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}(?::\d+)?)"
)


def journal_path(folder: Path, run_id: str) -> Path:
    return folder / f"{run_id}{SUFFIX}"


class StatementJournal:
    """Appends a run's statements to its journal (a `StatementListener`, thread-safe)."""

    def __init__(self, folder: Path, run_id: str) -> None:
        self.path = journal_path(folder, run_id)
        self._lock = threading.Lock()
        self._open: set[str] = set()
        self._sessions: set[str] = set()

    def submitted(self, statement_id: str) -> None:
        with self._lock:
            self._open.add(statement_id)
            self._append(f"+{statement_id}\n")

    def ended(self, statement_id: str) -> None:
        with self._lock:
            self._open.discard(statement_id)
            self._append(f"-{statement_id}\n")

    def session_opened(self, session_id: str) -> None:
        with self._lock:
            self._sessions.add(session_id)
            self._append(f"[{session_id}\n")

    def session_ended(self, session_id: str) -> None:
        with self._lock:
            self._sessions.discard(session_id)
            self._append(f"]{session_id}\n")

    def close(self) -> None:
        """Remove the journal when every statement it lists has ended (else the next run
        needs it)."""
        with self._lock:
            if not self._open and not self._sessions:
                forget(self.path.parent, self.path.name.removesuffix(SUFFIX))

    def _append(self, line: str) -> None:
        # Owner-only like everything under .shiftsync/; O_APPEND keeps each line whole.
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line.encode("ascii"))
        finally:
            os.close(descriptor)


def parse_open(text: str, opened: str = "+", ended: str = "-") -> list[str]:
    """The ids submitted and not ended, in submission order (damaged lines skipped); with
    `opened="["` and `ended="]"`, the sessions opened and not ended."""
    open_ids: dict[str, None] = {}
    # The text after the last newline is a line a kill cut short (or nothing).
    for line in text.split("\n")[:-1]:
        match = _LINE_RE.fullmatch(line)
        if match is None:
            continue
        sign, statement_id = match.groups()
        if sign == opened:
            open_ids[statement_id] = None
        elif sign == ended:
            open_ids.pop(statement_id, None)
    return list(open_ids)


def open_statements(folder: Path, run_id: str) -> list[str]:
    """The statements run `run_id` submitted and did not see end ([] without a journal)."""
    try:
        text = journal_path(folder, run_id).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return []
    return parse_open(text)


def open_sessions(folder: Path, run_id: str) -> list[str]:
    """The sessions (open transactions) run `run_id` began and did not end."""
    try:
        text = journal_path(folder, run_id).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return []
    return parse_open(text, "[", "]")


def forget(folder: Path, run_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        journal_path(folder, run_id).unlink()
