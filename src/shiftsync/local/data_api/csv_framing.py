"""How GetStatementResultV2 frames a page's CSV in `CSVRecords` entries (pure).

AWS documents no framing, so the stand-in can serve each one a reader must survive: one entry
per page or one per record, with or without a final newline, the header on the first page or
on every page. The default is the stand-in's historical framing (one newline-terminated entry,
header on page one).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CsvFraming:
    per_record: bool = False
    trailing_newline: bool = True
    header_every_page: bool = False


def split_records(text: str) -> list[str]:
    """CSV text cut after each record's newline (quoted newlines stay inside their record)."""
    records: list[str] = []
    start, open_quote = 0, False
    for position, char in enumerate(text):
        if char == '"':
            open_quote = not open_quote
        elif char == "\n" and not open_quote:
            records.append(text[start : position + 1])
            start = position + 1
    if start < len(text):
        records.append(text[start:])
    return records


def frame_page(text: str, header: str, page: int, framing: CsvFraming) -> list[str]:
    """The `CSVRecords` entries of one page under `framing`."""
    if framing.header_every_page and page > 0:
        text = header + text
    entries = split_records(text) if framing.per_record else [text]
    if not framing.trailing_newline:
        entries = [e[:-1] if e.endswith("\n") else e for e in entries]
    return [e for e in entries if e] or [""]
