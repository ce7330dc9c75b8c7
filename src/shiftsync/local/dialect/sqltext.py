"""Pure helpers that look at SQL text the way the Data API front end does, before PostgreSQL.

They understand just enough of the lexical structure (quoted strings, quoted identifiers,
dollar quotes, comments) to find statement boundaries and `:name` parameters safely.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Literal

TokenKind = Literal["code", "string", "ident", "comment", "dollar"]

_DOLLAR_TAG: Final = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_PARAM: Final = re.compile(r"(?<![:A-Za-z0-9_]):([A-Za-z_][A-Za-z0-9_]*)")
_FIRST_WORD: Final = re.compile(r"[A-Za-z_]+")
_IDENT_CHAR: Final = re.compile(r"[A-Za-z0-9_$]")


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str


def tokenize(sql: str) -> Iterator[Token]:
    """Split SQL into code and non-code runs (strings, quoted identifiers, comments)."""
    i, n, start = 0, len(sql), 0
    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        end = -1
        kind: TokenKind = "code"
        if ch == "'":
            kind, end = "string", _end_of_quoted(sql, i, "'")
        elif ch == '"':
            kind, end = "ident", _end_of_quoted(sql, i, '"')
        elif ch == "-" and nxt == "-":
            newline = sql.find("\n", i)
            kind, end = "comment", n if newline < 0 else newline
        elif ch == "/" and nxt == "*":
            kind, end = "comment", _end_of_block_comment(sql, i)
        elif ch == "$" and not (i > 0 and _IDENT_CHAR.match(sql[i - 1])):
            # `$` inside an identifier (a$b$c) starts no dollar quote.
            tag = _DOLLAR_TAG.match(sql, i)
            if tag:
                close = sql.find(tag.group(0), tag.end())
                kind, end = "dollar", n if close < 0 else close + len(tag.group(0))
        if end < 0:
            i += 1
            continue
        if start < i:
            yield Token("code", sql[start:i])
        yield Token(kind, sql[i:end])
        i = start = end
    if start < n:
        yield Token("code", sql[start:n])


def _end_of_block_comment(sql: str, i: int) -> int:
    """Where the block comment opened at i ends; PostgreSQL's block comments nest."""
    depth, j = 0, i
    while j < len(sql):
        pair = sql[j : j + 2]
        if pair == "/*":
            depth, j = depth + 1, j + 2
        elif pair == "*/":
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return len(sql)


def _end_of_quoted(sql: str, i: int, quote: str) -> int:
    j = i + 1
    while True:
        k = sql.find(quote, j)
        if k < 0:
            return len(sql)
        if k + 1 < len(sql) and sql[k + 1] == quote:
            j = k + 2
            continue
        return k + 1


def statement_count(sql: str) -> int:
    """How many statements the text holds (empty ones between semicolons do not count)."""
    code = "".join(
        t.text if t.kind == "code" else " x " for t in tokenize(sql) if t.kind != "comment"
    )
    return sum(1 for part in code.split(";") if part.strip())


def first_keyword(sql: str) -> str:
    """The statement's first keyword, upper case ('' when there is none)."""
    for token in tokenize(sql):
        if token.kind == "comment":
            continue
        if token.kind != "code":
            return ""
        stripped = token.text.lstrip(" \t\r\n(")
        if not stripped:
            continue
        word = _FIRST_WORD.match(stripped)
        return word.group(0).upper() if word else ""
    return ""


def parameter_names(sql: str) -> list[str]:
    """The `:name` parameters the SQL refers to, in order of first use."""
    names: list[str] = []
    for token in tokenize(sql):
        if token.kind == "code":
            for match in _PARAM.finditer(token.text):
                if match.group(1) not in names:
                    names.append(match.group(1))
    return names


def substitute_parameters(sql: str, values: Mapping[str, str], quote: Callable[[str], str]) -> str:
    """Replace each `:name` outside strings and comments with its quoted literal."""
    out: list[str] = []
    for token in tokenize(sql):
        if token.kind != "code":
            out.append(token.text)
            continue
        out.append(
            _PARAM.sub(
                lambda m: quote(values[m.group(1)]) if m.group(1) in values else m.group(0),
                token.text,
            )
        )
    return "".join(out)


def strip_trailing_semicolon(sql: str) -> str:
    """The SQL without a final `;` (COPY (…) cannot wrap one)."""
    tokens = list(tokenize(sql))
    while tokens and (
        tokens[-1].kind == "comment" or (tokens[-1].kind == "code" and not tokens[-1].text.strip())
    ):
        tokens.pop()
    if tokens and tokens[-1].kind == "code":
        text = tokens[-1].text.rstrip()
        while text.endswith(";"):
            text = text[:-1].rstrip()
        tokens[-1] = Token("code", text)
    return "".join(t.text for t in tokens)


_ASCII_UPPER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold_quoted_identifiers(sql: str) -> str:
    """The SQL with the ASCII letters of every quoted identifier in lower case.

    Redshift folds delimited identifiers too unless `enable_case_sensitive_identifier` is on
    ("ASCII letters in standard and delimited identifiers are case-insensitive and are folded
    to lowercase"); PostgreSQL keeps their case. Strings, comments and dollar quotes are kept.
    """
    return "".join(
        t.text.translate(_ASCII_UPPER) if t.kind == "ident" else t.text for t in tokenize(sql)
    )


_WORD: Final = re.compile(r"[^\W\d][\w$]*")


def identifier_lengths(sql: str) -> Iterator[tuple[str, int]]:
    """Each identifier (quoted ones without quotes, unquoted words) with its UTF-8 length.

    Unquoted words include keywords; none of those is long enough to matter to a length check.
    """
    for token in tokenize(sql):
        if token.kind == "ident" and len(token.text) >= 2:
            name = token.text[1:-1].replace('""', '"')
            yield name, len(name.encode())
        elif token.kind == "code":
            for word in _WORD.finditer(token.text):
                yield word.group(0), len(word.group(0).encode())
