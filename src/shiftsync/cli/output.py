"""How commands print: rich tables on a terminal, plain lines otherwise, JSON on request.

Documents meant for a file or a program (a policy, `--json`) go to stdout alone; notes for the
person at the keyboard go to stderr, so `shiftsync policy > role.json` keeps only the document.
Streams are looked up when printing (never captured at import), so tests and redirections work.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Styles for the words commands put in status columns.
STATUS_STYLES: Final[Mapping[str, str]] = {
    "pass": "green",
    "ok": "green",
    "fail": "bold red",
    "failed": "bold red",
    "warn": "yellow",
    "skip": "dim",
    "running": "cyan",
}
COLUMN_GAP: Final = "  "
# Columns whose values are ids to copy and paste: a terminal table never wraps them.
WHOLE_COLUMNS: Final = frozenset({"run", "run id", "statement"})


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether `stream` (default: stdout) is an interactive terminal that takes rich output."""
    stream = stream if stream is not None else sys.stdout
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # a closed stream
        return False


def console(stream: TextIO | None = None) -> Console:
    """A rich console writing to `stream` (default: stdout), without markup surprises."""
    return Console(file=stream if stream is not None else sys.stdout, highlight=False)


def echo(text: str = "", *, err: bool = False) -> None:
    """One line to stdout, or to stderr with err=True."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def note(text: str) -> None:
    """A line for the person at the keyboard: always stderr."""
    echo(text, err=True)


def print_document(text: str) -> None:
    """A whole document on stdout, exactly as given (with one final newline)."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def print_json(document: object) -> None:
    """One JSON document on stdout (indented, UTF-8 kept, dates as strings)."""
    print_document(json.dumps(document, indent=2, ensure_ascii=False, default=str))


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def column_widths(rows: Iterable[Sequence[str]]) -> list[int]:
    """The width of each column: its longest first line (later lines of a cell wrap below)."""
    widths: list[int] = []
    for row in rows:
        for index, cell in enumerate(row):
            first = cell.split("\n", 1)[0]
            if index == len(widths):
                widths.append(len(first))
            else:
                widths[index] = max(widths[index], len(first))
    return widths


def plain_row(row: Sequence[str], widths: Sequence[int]) -> list[str]:
    """One row as plain lines: padded first lines, then each cell's further lines, indented to
    its column."""
    offsets = [sum(widths[:index]) + len(COLUMN_GAP) * index for index in range(len(row))]
    firsts = [cell.split("\n", 1)[0] for cell in row]
    head = COLUMN_GAP.join(
        text if index == len(row) - 1 else text.ljust(widths[index])
        for index, text in enumerate(firsts)
    )
    lines = [head.rstrip()]
    for index, cell in enumerate(row):
        lines += [(" " * offsets[index] + more).rstrip() for more in cell.split("\n")[1:]]
    return lines


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A header line and one (or more) plain lines per row, columns aligned."""
    widths = column_widths([headers, *rows])
    lines = plain_row(headers, widths)
    for row in rows:
        lines += plain_row(row, widths)
    return lines


def rich_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    styles: Mapping[str, str] = STATUS_STYLES,
) -> Table:
    """A rich Table; a cell whose whole text is a key of `styles` gets that style."""
    table = Table(title=title, header_style="bold", show_lines=False)
    for index, header in enumerate(headers):
        if header in WHOLE_COLUMNS:
            # An id to copy: never broken over lines; the other columns give way instead.
            longest = max([len(header), *(len(row[index]) for row in rows if index < len(row))])
            table.add_column(header, no_wrap=True, min_width=longest)
        else:
            table.add_column(header, overflow="fold")
    for row in rows:
        # Text(), not str: AWS messages may hold [brackets] that rich would read as markup.
        table.add_row(*(Text(cell, style=styles.get(cell, "")) for cell in row))
    return table


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    styles: Mapping[str, str] = STATUS_STYLES,
) -> None:
    """A table on stdout: rich on a terminal, plain aligned lines otherwise."""
    if is_terminal():
        console().print(rich_table(headers, rows, title=title, styles=styles))
        return
    if title:
        echo(title)
    for line in plain_table(headers, rows):
        echo(line)


__all__ = [
    "STATUS_STYLES",
    "WHOLE_COLUMNS",
    "column_widths",
    "console",
    "echo",
    "is_terminal",
    "note",
    "plain_row",
    "plain_table",
    "print_document",
    "print_json",
    "print_table",
    "rich_table",
]
