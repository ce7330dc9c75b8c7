"""Shapes of the values in shiftsync.yaml: regexes, field checks, S3 bucket and cron rules.

Each check raises `invalid(what, expected)` so that the error line can say both what is wrong
and what would be right. The `Annotated` aliases at the end attach the checks to model fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sized
from typing import Annotated, Final, Literal, TypeVar

from pydantic import AfterValidator, SecretStr
from pydantic_core import PydanticCustomError

from shiftsync.sql_quote import quote_standard

NAME_RE: Final = re.compile(r"[a-z][a-z0-9_-]{0,62}")
REGION_RE: Final = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
WORKGROUP_RE: Final = re.compile(r"[a-z0-9-]{3,64}")
# A Secrets Manager secret's ARN: the secret's name (letters, digits, /_+=.@-) and the six
# characters Secrets Manager appends.
SECRET_ARN_RE: Final = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):secretsmanager:(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d)"
    r":(?P<account>\d{12}):secret:(?P<name>[A-Za-z0-9/_+=.@-]{1,512})",
    re.ASCII,
)
# Redshift user names: ASCII letters, digits, _ + . @ -; at most 128 (CREATE USER).
DB_USER_RE: Final = re.compile(r"[A-Za-z0-9_+.@-]{1,128}", re.ASCII)
CLUSTER_IDENTIFIER_EXPECTED: Final = (
    "1-63 lowercase letters, digits and -, starting with a letter, without -- or a trailing -"
)
REDSHIFT_IDENTIFIER_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,126}")
POSTGRES_IDENTIFIER_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
# IAM role paths are "/" or "/seg/.../" of printable ASCII; names are [\w+=,.@-]{1,64}.
# `[!-.0-~]` is printable ASCII without "/".
ROLE_ARN_RE: Final = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):iam::(?P<account>\d{12}):role/"
    r"(?P<path>(?:[!-.0-~]+/)*)(?P<name>[\w+=,.@-]{1,64})",
    re.ASCII,
)
PRINCIPAL_ARN_RE: Final = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):(?:"
    r"iam::(?P<account>\d{12}):(?P<kind>root|user/(?:[!-.0-~]+/)*[\w+=,.@-]{1,64}"
    r"|role/(?:[!-.0-~]+/)*[\w+=,.@-]{1,64})"
    r"|sts::(?P<sts_account>\d{12}):assumed-role/(?P<role>[\w+=,.@-]{1,64})/[\w+=,.@-]{2,64}"
    r")",
    re.ASCII,
)
KMS_KEY_RE: Final = re.compile(r"[A-Za-z0-9:/_=+.,@-]{1,2048}")
# Characters kept out of an S3 staging prefix: "*" and "?" would widen the generated IAM
# policy (they are wildcards in ARNs) and "$" could start a policy variable.
# S3's safe key characters, less the quote: the prefix goes into UNLOAD's quoted TO '...'.
PREFIX_RE: Final = re.compile(r"[A-Za-z0-9!_.()/=+-]+")
# One part of "schema.table": a double-quoted name (literal; "" is a quote, dots and spaces
# allowed), or a bare glob without dots, spaces or quotes where * and ? are wildcards.
_QUOTED_PART: Final = r'"(?:[^"\x00]|"")+"'
_BARE_PART: Final = r"[^.\s\"'\x00]+"
_TABLE_PATTERN_RE: Final = re.compile(
    rf"(?P<schema>{_QUOTED_PART}|{_BARE_PART})\.(?P<table>{_QUOTED_PART}|{_BARE_PART})"
)
_BARE_PART_RE: Final = re.compile(_BARE_PART)
GLOB_CHARS: Final = frozenset("*?")


class NamePattern:
    """One part of a table pattern: a literal name (quoted) or a glob (* and ?; [ is itself)."""

    __slots__ = ("_regex", "literal", "text")

    def __init__(self, text: str, *, literal: bool) -> None:
        self.text = text
        self.literal = literal or not any(char in GLOB_CHARS for char in text)
        self._regex: re.Pattern[str] | None = None
        if not self.literal:
            self._regex = re.compile(
                "".join(
                    ".*" if char == "*" else "." if char == "?" else re.escape(char)
                    for char in text
                ),
                re.DOTALL,
            )

    def __repr__(self) -> str:
        return f"NamePattern({self.text!r}, literal={self.literal})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NamePattern) and (self.text, self.literal) == (
            other.text,
            other.literal,
        )

    def __hash__(self) -> int:
        return hash((self.text, self.literal))

    def matches(self, name: str) -> bool:
        """Case-sensitive, as Redshift's catalog reports names."""
        if self._regex is None:
            return name == self.text
        return self._regex.fullmatch(name) is not None

    def like(self) -> str:
        """A LIKE pattern matching at least the same names (_ and % match a little more;
        a backslash, LIKE's escape, makes it match everything)."""
        if "\\" in self.text:
            return "%"
        if self.literal:
            return self.text
        return self.text.replace("*", "%").replace("?", "_")


def _unquote(part: str) -> NamePattern:
    if part.startswith('"'):
        return NamePattern(part[1:-1].replace('""', '"'), literal=True)
    return NamePattern(part, literal=False)


def split_table_pattern(value: str) -> tuple[NamePattern, NamePattern]:
    """ "schema.table" as its two parts; ValueError when it is not a table pattern."""
    match = _TABLE_PATTERN_RE.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a table pattern")
    return _unquote(match["schema"]), _unquote(match["table"])


def quote_name_part(name: str) -> str:
    """A schema or table name as `tables:` takes it: bare when it can be, else double-quoted
    (a name with a dot, a space, a quote or a wildcard character)."""
    if _BARE_PART_RE.fullmatch(name) and not any(char in GLOB_CHARS for char in name):
        return name
    # The same quoting as SQL's (a quote doubled): one function for it in the product.
    return quote_standard(name)


def table_name_for_config(schema: str, table: str) -> str:
    """The exact "schema.table" entry of `tables:` that selects this one table."""
    return f"{quote_name_part(schema)}.{quote_name_part(table)}"


def invalid(what: str, expected: str) -> PydanticCustomError:
    return PydanticCustomError("shiftsync_invalid", "{what}", {"what": what, "expected": expected})


def _check_name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise invalid(
            "not a valid name", "lowercase letters, digits, _ and -, starting with a letter"
        )
    return value


def check_region(value: str) -> str:
    if not REGION_RE.fullmatch(value):
        raise invalid("not an AWS region", "a region code such as us-east-1 or eu-west-2")
    return value


def check_workgroup(value: str) -> str:
    if not WORKGROUP_RE.fullmatch(value):
        raise invalid(
            "not a Redshift Serverless workgroup name", "3-64 lowercase letters, digits and -"
        )
    return value


def cluster_identifier_problem(value: str) -> str | None:
    """What breaks Redshift's rules for a cluster identifier in `value`, or None."""
    if not 1 <= len(value) <= 63:
        return "must be 1-63 characters long"
    if not re.fullmatch(r"[a-z0-9-]+", value, re.ASCII):
        return "may only hold lowercase letters, digits and -"
    if not value[0].isalpha():
        return "must start with a letter"
    if "--" in value:
        return "must not hold two consecutive hyphens"
    if value.endswith("-"):
        return "must not end with a hyphen"
    return None


def check_cluster_identifier(value: str) -> str:
    problem = cluster_identifier_problem(value)
    if problem:
        raise invalid(
            f"not a Redshift cluster identifier: it {problem}", CLUSTER_IDENTIFIER_EXPECTED
        )
    return value


def check_secret_arn(value: str) -> str:
    if not SECRET_ARN_RE.fullmatch(value):
        raise invalid(
            "not a Secrets Manager secret ARN",
            "arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name>",
        )
    return value


def check_db_user(value: str) -> str:
    if not DB_USER_RE.fullmatch(value) or value.lower() == "public":
        raise invalid(
            "not a Redshift user name",
            "1-128 ASCII letters, digits, _ + . @ or - (not PUBLIC)",
        )
    return value


def check_redshift_identifier(value: str) -> str:
    if not REDSHIFT_IDENTIFIER_RE.fullmatch(value):
        raise invalid(
            "not a Redshift identifier",
            "1-127 letters, digits, _ or $, starting with a letter or _",
        )
    return value


def check_postgres_identifier(value: str) -> str:
    if not POSTGRES_IDENTIFIER_RE.fullmatch(value):
        raise invalid(
            "not a PostgreSQL schema name",
            "1-63 letters, digits, _ or $, starting with a letter or _",
        )
    return value


def check_role_arn(value: str) -> str:
    if not ROLE_ARN_RE.fullmatch(value):
        raise invalid(
            "not an IAM role ARN", "arn:aws:iam::<12-digit account>:role/<optional path/><name>"
        )
    return value


def check_principal_arn(value: str) -> str:
    if not PRINCIPAL_ARN_RE.fullmatch(value):
        raise invalid(
            "not an AWS principal ARN",
            "arn:aws:iam::<account>:root, :user/<name>, :role/<name>, "
            "or arn:aws:sts::<account>:assumed-role/<role>/<session>",
        )
    return value


def bucket_name_problem(name: str) -> str | None:
    """What breaks S3's bucket naming rules in `name`, or None when it follows them."""
    if not 3 <= len(name) <= 63:
        return "must be 3-63 characters long"
    if not re.fullmatch(r"[a-z0-9.-]+", name):
        return "may only hold lowercase letters, digits, . and -"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "must begin and end with a letter or digit"
    if ".." in name:
        return "must not hold two adjacent periods"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return "must not look like an IP address"
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            return f"must not start with {prefix}"
    for suffix in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if name.endswith(suffix):
            return f"must not end with {suffix}"
    return None


def check_bucket(value: str) -> str:
    problem = bucket_name_problem(value)
    if problem:
        raise invalid(f"not an S3 bucket name ({problem})", "an S3 bucket name such as my-bucket")
    return value


def check_prefix(value: str) -> str:
    expected = "a folder-like key prefix such as shiftsync/ (no leading /, no .., no * ? $ ')"
    if not value:
        raise invalid("empty", expected)
    if value.startswith("/"):
        raise invalid("starts with /", expected)
    if ".." in value or "//" in value:
        raise invalid("holds .. or //", expected)
    if not PREFIX_RE.fullmatch(value):
        raise invalid("holds characters that are not allowed", expected)
    return value if value.endswith("/") else value + "/"


def check_kms_key(value: str) -> str:
    if not KMS_KEY_RE.fullmatch(value):
        raise invalid("not a KMS key id, key ARN or alias", "a key id, key ARN or alias/<name>")
    return value


def _check_table_pattern(value: str) -> str:
    if not _TABLE_PATTERN_RE.fullmatch(value):
        raise invalid(
            "not a table pattern",
            'a pattern "schema.table" with one dot, where * and ? are wildcards; quote a name '
            'with dots, spaces or capitals as written: \'"Odd Schema"."Mixed Case"\'',
        )
    return value


def _check_column(value: str) -> str:
    if not value or len(value) > 127 or any(ord(c) < 32 for c in value):
        raise invalid("not a column name", "1-127 printable characters")
    return value


def check_target(value: str) -> str:
    if not value or len(value) > 63 or any(ord(c) < 32 for c in value) or "." in value:
        raise invalid("not a table name", "1-63 printable characters without a dot")
    return value


_MEMORY_RE: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.I)
_MEMORY_UNITS: Final[Mapping[str, int]] = {
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
MIN_MEMORY_BYTES: Final = 64 * 2**20


def memory_bytes(value: str) -> int:
    """`512MB`, `4GiB` … as a number of bytes (ValueError when it is not one)."""
    match = _MEMORY_RE.fullmatch(value)
    if match is None:
        raise ValueError(value)
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()])


def check_memory(value: str) -> str:
    try:
        size = memory_bytes(value)
    except ValueError:
        raise invalid("not a memory size", "a size such as 512MB or 4GB") from None
    if size < MIN_MEMORY_BYTES:
        raise invalid("too small", "at least 64MB")
    return value


def check_nonblank(value: str) -> str:
    if not value.strip():
        raise invalid("empty", "a non-empty value")
    return value


def check_dsn(value: SecretStr) -> SecretStr:
    # The value is a secret: no message below may quote it.
    raw = value.get_secret_value().strip()
    expected = "a postgresql:// URL or libpq key=value pairs"
    if not raw:
        raise invalid("empty", expected)
    if "://" in raw:
        scheme = raw.split("://", 1)[0]
        if scheme not in ("postgresql", "postgres"):
            raise invalid("not a PostgreSQL URL (wrong scheme)", expected)
    elif "=" not in raw:
        raise invalid("not a PostgreSQL connection string", expected)
    return value


_MONTHS: Final = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
_DAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (field, lowest, highest, names numbered from `lowest`)
_CRON_FIELDS: Final[tuple[tuple[str, int, int, tuple[str, ...]], ...]] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_CRON_ITEM_RE: Final = re.compile(
    r"(?P<range>\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/(?P<step>\d+))?"
)


def cron_problem(expression: str) -> str | None:
    """What is wrong with a 5-field cron expression, or None when its shape is right."""
    fields = expression.split()
    if len(fields) != 5:
        return f"has {len(fields)} fields, not 5"
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            match = _CRON_ITEM_RE.fullmatch(item)
            if not match or (match["step"] is not None and int(match["step"]) == 0):
                return f"the {name} field {text!r} is malformed"
            if match["range"] == "*":
                continue
            for bound in match["range"].split("-"):
                if bound.upper() in names:
                    continue
                if not bound.isdigit() or not low <= int(bound) <= high:
                    return f"the {name} field {text!r} is out of range {low}-{high}"
    return None


def check_cron(value: str) -> str:
    problem = cron_problem(value)
    if problem:
        raise invalid(
            f"not a cron expression ({problem})", 'five fields "minute hour day month weekday"'
        )
    return value


LOOKBACK_RE: Final = re.compile(r"^(?:[1-9]\d*\s*[smhd]|\d*\.?\d+)$")


def check_lookback(value: str | int) -> str:
    """A positive duration (2h, 30m, 90s, 7d) or a positive number, kept as text."""
    text = str(value).strip()
    if isinstance(value, bool) or not LOOKBACK_RE.match(text) or _is_zero(text):
        raise invalid(
            "not a positive duration or number", "a duration such as 2h, 30m, 7d, or a number"
        )
    return text


def _is_zero(text: str) -> bool:
    try:
        return float(text) == 0
    except ValueError:
        return False


_WINDOW_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_window(value: str) -> tuple[int, int]:
    """A daily "HH:MM-HH:MM" window as (start, end) minutes after midnight; ValueError if not.

    The end may come before the start: the window then spans midnight.
    """
    match = _WINDOW_RE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not HH:MM-HH:MM")
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    if start == end:
        raise ValueError(f"{value!r} starts and ends at the same minute")
    return start, end


def check_window(value: str) -> str:
    try:
        parse_window(value)
    except ValueError as error:
        raise invalid(
            f"not a time window ({error})", 'a UTC time window "HH:MM-HH:MM" such as 01:00-05:00'
        ) from error
    return value


_Sized = TypeVar("_Sized", bound=Sized)


def _check_not_empty(value: _Sized) -> _Sized:
    # An after-validator, not min_length: pydantic counts only the valid items for min_length,
    # so a list with one bad item would also be reported as too short.
    if not value:
        raise invalid("empty", "at least one entry")
    return value


NonEmpty = Annotated[_Sized, AfterValidator(_check_not_empty)]
Name = Annotated[str, AfterValidator(_check_name)]
TablePattern = Annotated[str, AfterValidator(_check_table_pattern)]
ColumnName = Annotated[str, AfterValidator(_check_column)]
Method = Literal["auto", "data_api", "unload"]
