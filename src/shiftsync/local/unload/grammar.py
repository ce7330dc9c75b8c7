"""UNLOAD as Redshift reads it: the statement's grammar, pure.

`parse_unload` turns the statement's text into an `UnloadCommand`, or raises `UnloadError`
whose message is what the statement fails with. unload/output.py says which objects an UNLOAD
writes and how each column is written; unload/execute.py runs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from shiftsync.local.dialect import sqltext

MIB: Final = 1024 * 1024
# Redshift's bounds on MAXFILESIZE (5 MB to 6.2 GB) and ROWGROUPSIZE (32 MB to 128 MB).
MIN_MAX_FILE_BYTES: Final = 5 * MIB
MAX_MAX_FILE_BYTES: Final = int(6.2 * 1024 * MIB)
MIN_ROW_GROUP_BYTES: Final = 32 * MIB
MAX_ROW_GROUP_BYTES: Final = 128 * MIB
# Parquet files are cut at row groups, so Redshift rounds MAXFILESIZE down to a multiple of 32 MB.
PARQUET_SIZE_STEP: Final = 32 * MIB
MAX_CHAINED_ROLES: Final = 10

UnloadFormat = Literal["PARQUET", "CSV"]

_ROLE_ARN: Final = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION: Final = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
# Options parsed alike, as tables: one word that sets a flag (word → field); `WORD [AS]
# 'text'` (word → the name a repeat is reported under, field); `WORD [AS] size` (word → field).
_FLAG_OPTIONS: Final = {
    "HEADER": "header",
    "ALLOWOVERWRITE": "allow_overwrite",
    "CLEANPATH": "clean_path",
}
_STRING_OPTIONS: Final = {
    "DELIMITER": ("DELIMITER", "delimiter"),
    "NULL": ("NULL AS", "null_as"),
    "KMS_KEY_ID": ("KMS_KEY_ID", "kms_key_id"),
    "REGION": ("REGION", "region"),
}
_SIZE_OPTIONS: Final = {"MAXFILESIZE": "max_file_bytes", "ROWGROUPSIZE": "row_group_bytes"}
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER: Final = re.compile(r"\d+(?:\.\d+)?")
_LIMIT_SCAN: Final = re.compile(r"[()]|\blimit\b", re.IGNORECASE)
_UNITS: Final = {"MB": MIB, "GB": 1024 * MIB}
# Options whose only effect is on text output, which the stand-in does not write.
_UNSUPPORTED: Final = {
    "JSON": "FORMAT JSON",
    "BZIP2": "BZIP2 compression",
    "GZIP": "GZIP compression",
    "ZSTD": "ZSTD compression",
    "FIXEDWIDTH": "FIXEDWIDTH",
    "ADDQUOTES": "ADDQUOTES",
    "ESCAPE": "ESCAPE",
    "PARTITION": "PARTITION BY",
    "MASTER_SYMMETRIC_KEY": "MASTER_SYMMETRIC_KEY (client-side encryption)",
    "CREDENTIALS": "CREDENTIALS (use IAM_ROLE)",
    "ACCESS_KEY_ID": "ACCESS_KEY_ID (use IAM_ROLE)",
    "SECRET_ACCESS_KEY": "SECRET_ACCESS_KEY (use IAM_ROLE)",
    "SESSION_TOKEN": "SESSION_TOKEN (use IAM_ROLE)",
    "WITH": "WITH CREDENTIALS (use IAM_ROLE)",
}


class UnloadError(Exception):
    """The UNLOAD fails with this message (Redshift's wording where it is known)."""


@dataclass(frozen=True)
class UnloadCommand:
    query: str
    bucket: str
    prefix: str
    iam_roles: tuple[str, ...]
    default_role: bool = False
    format: UnloadFormat = "PARQUET"
    manifest: bool = False
    manifest_verbose: bool = False
    header: bool = False
    delimiter: str = ","
    null_as: str | None = None
    parallel: bool = True
    max_file_bytes: int | None = None
    row_group_bytes: int | None = None
    allow_overwrite: bool = False
    clean_path: bool = False
    region: str | None = None
    encrypted: bool = False
    encrypted_auto: bool = False
    kms_key_id: str | None = None
    extension: str | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


# -- lexing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: Literal["word", "number", "string", "punct"]
    text: str  # words upper-cased; strings unescaped
    raw: str


def _tokens(sql: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = n if close < 0 else close + 2
        elif ch == "'":
            value, end = _string_literal(sql, i)
            tokens.append(_Token("string", value, sql[i:end]))
            i = end
        elif ch in "(),;=":
            tokens.append(_Token("punct", ch, ch))
            i += 1
        elif match := _WORD.match(sql, i):
            tokens.append(_Token("word", match.group(0).upper(), match.group(0)))
            i = match.end()
        elif match := _NUMBER.match(sql, i):
            tokens.append(_Token("number", match.group(0), match.group(0)))
            i = match.end()
        else:
            raise UnloadError(f'ERROR: syntax error at or near "{ch}"')
    return tokens


def _string_literal(sql: str, start: int) -> tuple[str, int]:
    """A quoted literal: '' and \\' stand for a quote, \\\\ for a backslash (Redshift's rules)."""
    out: list[str] = []
    i, n = start + 1, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "'":
            if i + 1 < n and sql[i + 1] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        if ch == "\\" and i + 1 < n and sql[i + 1] in "'\\":
            out.append(sql[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    snippet = sql[start : start + 20]
    raise UnloadError(f'ERROR: unterminated quoted string at or near "{snippet}"')


# -- parsing ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, sql: str) -> None:
        self.tokens = _tokens(sql)
        self.at = 0
        self.seen: set[str] = set()

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def next(self) -> _Token:
        token = self.peek()
        if token is None:
            raise UnloadError("ERROR: syntax error at end of input")
        self.at += 1
        return token

    def fail(self, token: _Token | None) -> UnloadError:
        if token is None:
            return UnloadError("ERROR: syntax error at end of input")
        return UnloadError(f'ERROR: syntax error at or near "{token.raw}"')

    def expect(self, kind: str, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None or token.kind != kind or (text is not None and token.text != text):
            raise self.fail(token)
        self.at += 1
        return token

    def accept(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text in words:
            self.at += 1
            return token.text
        return None

    def once(self, option: str) -> None:
        if option in self.seen:
            raise UnloadError(f"ERROR: conflicting or redundant options: {option} given twice")
        self.seen.add(option)

    def size(self) -> int:
        self.accept("AS")
        number = self.expect("number")
        unit = self.accept("MB", "GB") or "MB"
        return int(float(number.text) * _UNITS[unit])


def parse_unload(sql: str, *, min_max_file_bytes: int = MIN_MAX_FILE_BYTES) -> UnloadCommand:
    """Parse one UNLOAD statement; raises UnloadError with the message the statement fails with.

    `min_max_file_bytes` is Redshift's 5 MB floor on MAXFILESIZE; tests lower it to split
    small results into several files.
    """
    p = _Parser(sql)
    p.expect("word", "UNLOAD")
    p.expect("punct", "(")
    query = p.expect("string").text
    p.expect("punct", ")")
    p.expect("word", "TO")
    bucket, prefix = _s3_target(p.expect("string").text)
    fields: dict[str, Any] = {}
    format_name: UnloadFormat | None = None
    while (token := p.peek()) is not None:
        if token.kind == "punct" and token.text == ";":
            p.next()
            if p.peek() is not None:
                raise p.fail(p.peek())
            break
        if token.kind != "word":
            raise p.fail(token)
        word = p.next().text
        if word in _UNSUPPORTED:
            raise UnloadError(
                f"ERROR: {_UNSUPPORTED[word]} is not supported by the shiftsync stand-in's UNLOAD"
            )
        if word == "IAM_ROLE":
            p.once("IAM_ROLE")
            if p.accept("DEFAULT"):
                fields["default_role"] = True
                fields["iam_roles"] = ()
            else:
                fields["iam_roles"] = _role_chain(p.expect("string").text)
        elif word == "FORMAT":
            p.accept("AS")
            kind = p.next()
            if kind.kind != "word":
                raise p.fail(kind)
            if kind.text in _UNSUPPORTED:
                raise UnloadError(
                    f"ERROR: {_UNSUPPORTED[kind.text]} is not supported by the shiftsync "
                    "stand-in's UNLOAD"
                )
            p.once("FORMAT")
            format_name = _format(kind, p)
        elif word in ("PARQUET", "CSV"):
            p.once("FORMAT")
            format_name = "PARQUET" if word == "PARQUET" else "CSV"
        elif word == "MANIFEST":
            p.once("MANIFEST")
            fields["manifest"] = True
            fields["manifest_verbose"] = p.accept("VERBOSE") is not None
        elif word in _FLAG_OPTIONS:
            p.once(word)
            fields[_FLAG_OPTIONS[word]] = True
        elif word in _STRING_OPTIONS:
            once, field = _STRING_OPTIONS[word]
            p.once(once)
            p.accept("AS")
            fields[field] = p.expect("string").text
        elif word in _SIZE_OPTIONS:
            p.once(word)
            fields[_SIZE_OPTIONS[word]] = p.size()
        elif word == "ENCRYPTED":
            p.once("ENCRYPTED")
            fields["encrypted"] = True
            fields["encrypted_auto"] = p.accept("AUTO") is not None
        elif word == "PARALLEL":
            p.once("PARALLEL")
            switch = p.accept("ON", "TRUE", "OFF", "FALSE")
            fields["parallel"] = switch in (None, "ON", "TRUE")
        elif word == "EXTENSION":
            p.once("EXTENSION")
            fields["extension"] = p.expect("string").text
        else:
            raise UnloadError(f'ERROR: syntax error at or near "{token.raw}"')
    if format_name is None:
        raise UnloadError(
            "ERROR: the shiftsync stand-in's UNLOAD writes FORMAT PARQUET or FORMAT CSV only; "
            "pipe-delimited text (no FORMAT) is not supported"
        )
    if "iam_roles" not in fields:
        raise UnloadError("ERROR: UNLOAD needs IAM_ROLE 'arn:aws:iam::<account>:role/<name>'")
    command = UnloadCommand(
        query=query,
        bucket=bucket,
        prefix=prefix,
        iam_roles=fields.pop("iam_roles"),
        format=format_name,
        **fields,
    )
    _validate(command, min_max_file_bytes)
    return command


def _format(token: _Token, parser: _Parser) -> UnloadFormat:
    if token.text == "PARQUET":
        return "PARQUET"
    if token.text == "CSV":
        return "CSV"
    raise parser.fail(token)


def _s3_target(url: str) -> tuple[str, str]:
    if not url.lower().startswith("s3://"):
        raise UnloadError(f"ERROR: Invalid S3 path '{url}': the TO location must be s3://bucket/…")
    bucket, _, prefix = url[5:].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise UnloadError(f"ERROR: Invalid S3 path '{url}': '{bucket}' is not a bucket name")
    return bucket, prefix


def _role_chain(text: str) -> tuple[str, ...]:
    roles = tuple(text.split(","))
    if len(roles) > MAX_CHAINED_ROLES:
        raise UnloadError(f"ERROR: IAM_ROLE chains at most {MAX_CHAINED_ROLES} roles")
    for role in roles:
        if not _ROLE_ARN.fullmatch(role):
            raise UnloadError(
                f"ERROR: Invalid IAM_ROLE '{text}': each role must be an ARN "
                "arn:aws:iam::<account>:role/<name>, comma-separated without spaces"
            )
    return roles


def _validate(command: UnloadCommand, min_max_file_bytes: int) -> None:
    if not command.query.strip():
        raise UnloadError("ERROR: UNLOAD needs a query: UNLOAD ('select …')")
    if _has_outer_limit(command.query):
        raise UnloadError(
            "ERROR: Limit clause is not supported. "
            "Nest it: select … where id in (select id … limit n)"
        )
    if command.format == "PARQUET":
        for option, present in (
            ("HEADER", command.header),
            ("DELIMITER", command.delimiter != ","),
            ("NULL AS", command.null_as is not None),
        ):
            if present:
                raise UnloadError(f"ERROR: {option} cannot be used with FORMAT PARQUET")
    elif command.row_group_bytes is not None:
        raise UnloadError("ERROR: ROWGROUPSIZE can only be used with FORMAT PARQUET")
    if len(command.delimiter) != 1:
        raise UnloadError("ERROR: DELIMITER must be a single character")
    if command.allow_overwrite and command.clean_path:
        raise UnloadError("ERROR: CLEANPATH and ALLOWOVERWRITE cannot be used together")
    if command.kms_key_id is not None and not command.encrypted:
        raise UnloadError("ERROR: KMS_KEY_ID requires ENCRYPTED")
    if command.region is not None and not _REGION.fullmatch(command.region):
        raise UnloadError(f"ERROR: Invalid REGION '{command.region}'")
    size = command.max_file_bytes
    if size is not None and not min_max_file_bytes <= size <= MAX_MAX_FILE_BYTES:
        floor = f"{min_max_file_bytes / MIB:g} MB"
        raise UnloadError(f"ERROR: MAXFILESIZE must be between {floor} and 6.2 GB")
    group = command.row_group_bytes
    if group is not None and not MIN_ROW_GROUP_BYTES <= group <= MAX_ROW_GROUP_BYTES:
        raise UnloadError("ERROR: ROWGROUPSIZE must be between 32 MB and 128 MB")


def _has_outer_limit(query: str) -> bool:
    """Whether LIMIT appears outside every parenthesis, literal and comment of the query."""
    depth = 0
    for token in sqltext.tokenize(query):
        if token.kind != "code":
            continue
        for match in _LIMIT_SCAN.finditer(token.text):
            text = match.group(0)
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
            elif depth == 0:
                return True
    return False
