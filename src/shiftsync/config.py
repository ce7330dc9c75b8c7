"""The `shiftsync.yaml` models, how the file is loaded, and how its problems are reported.

`load_config()` reads the YAML safely (duplicate keys refused), replaces `${VAR}` and
`${VAR:-default}` in string values, validates every key with the pydantic models below and
cross-checks names (a sync's source and destination must exist). Every problem found goes
into ONE `ConfigError`, one line per problem:

    shiftsync.yaml: connections.warehouse.region: not an AWS region (got "us-east"); expected ...

Secret values (`SecretStr` fields such as a PostgreSQL DSN) never appear in those lines.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Hashable, Mapping, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Final, Literal, TypeAlias, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError, PydanticUndefined

from shiftsync.errors import ConfigError

CONFIG_FILE_NAME: Final = "shiftsync.yaml"
DOCS_HINT: Final = "every key is described in docs/configuration.md"

# ---------------------------------------------------------------------------------------------
# Shapes of values. Each check raises `_invalid(what, expected)` so that the error line can say
# both what is wrong and what would be right.
# ---------------------------------------------------------------------------------------------

NAME_RE: Final = re.compile(r"[a-z][a-z0-9_-]{0,62}")
REGION_RE: Final = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
WORKGROUP_RE: Final = re.compile(r"[a-z0-9-]{3,64}")
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
PREFIX_RE: Final = re.compile(r"[A-Za-z0-9!_.'()/=+-]+")
_GLOB_CHARS: Final = frozenset("*?[")
_TABLE_PATTERN_RE: Final = re.compile(r"[^.\s\"']+\.[^.\s\"']+")
_PARTITION_REGION_PREFIX: Final[Mapping[str, str]] = {"aws-cn": "cn-", "aws-us-gov": "us-gov-"}


def _invalid(what: str, expected: str) -> PydanticCustomError:
    return PydanticCustomError("shiftsync_invalid", "{what}", {"what": what, "expected": expected})


def _check_name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise _invalid(
            "not a valid name", "lowercase letters, digits, _ and -, starting with a letter"
        )
    return value


def _check_region(value: str) -> str:
    if not REGION_RE.fullmatch(value):
        raise _invalid("not an AWS region", "a region code such as us-east-1 or eu-west-2")
    return value


def _check_workgroup(value: str) -> str:
    if not WORKGROUP_RE.fullmatch(value):
        raise _invalid(
            "not a Redshift Serverless workgroup name", "3-64 lowercase letters, digits and -"
        )
    return value


def _check_redshift_identifier(value: str) -> str:
    if not REDSHIFT_IDENTIFIER_RE.fullmatch(value):
        raise _invalid(
            "not a Redshift identifier",
            "1-127 letters, digits, _ or $, starting with a letter or _",
        )
    return value


def _check_postgres_identifier(value: str) -> str:
    if not POSTGRES_IDENTIFIER_RE.fullmatch(value):
        raise _invalid(
            "not a PostgreSQL schema name",
            "1-63 letters, digits, _ or $, starting with a letter or _",
        )
    return value


def _check_role_arn(value: str) -> str:
    if not ROLE_ARN_RE.fullmatch(value):
        raise _invalid(
            "not an IAM role ARN", "arn:aws:iam::<12-digit account>:role/<optional path/><name>"
        )
    return value


def _check_principal_arn(value: str) -> str:
    if not PRINCIPAL_ARN_RE.fullmatch(value):
        raise _invalid(
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


def _check_bucket(value: str) -> str:
    problem = bucket_name_problem(value)
    if problem:
        raise _invalid(f"not an S3 bucket name ({problem})", "an S3 bucket name such as my-bucket")
    return value


def _check_prefix(value: str) -> str:
    expected = "a folder-like key prefix such as shiftsync/ (no leading /, no .., no * ? $)"
    if not value:
        raise _invalid("empty", expected)
    if value.startswith("/"):
        raise _invalid("starts with /", expected)
    if ".." in value or "//" in value:
        raise _invalid("holds .. or //", expected)
    if not PREFIX_RE.fullmatch(value):
        raise _invalid("holds characters that are not allowed", expected)
    return value if value.endswith("/") else value + "/"


def _check_kms_key(value: str) -> str:
    if not KMS_KEY_RE.fullmatch(value):
        raise _invalid("not a KMS key id, key ARN or alias", "a key id, key ARN or alias/<name>")
    return value


def _check_table_pattern(value: str) -> str:
    if not _TABLE_PATTERN_RE.fullmatch(value):
        raise _invalid(
            "not a table pattern",
            'a pattern "schema.table" with one dot, where * and ? are wildcards',
        )
    return value


def _check_column(value: str) -> str:
    if not value or len(value) > 127 or any(ord(c) < 32 for c in value):
        raise _invalid("not a column name", "1-127 printable characters")
    return value


def _check_target(value: str) -> str:
    if not value or len(value) > 63 or any(ord(c) < 32 for c in value) or "." in value:
        raise _invalid("not a table name", "1-63 printable characters without a dot")
    return value


def _check_nonblank(value: str) -> str:
    if not value.strip():
        raise _invalid("empty", "a non-empty value")
    return value


def _check_dsn(value: SecretStr) -> SecretStr:
    # The value is a secret: no message below may quote it.
    raw = value.get_secret_value().strip()
    expected = "a postgresql:// URL or libpq key=value pairs"
    if not raw:
        raise _invalid("empty", expected)
    if "://" in raw:
        scheme = raw.split("://", 1)[0]
        if scheme not in ("postgresql", "postgres"):
            raise _invalid("not a PostgreSQL URL (wrong scheme)", expected)
    elif "=" not in raw:
        raise _invalid("not a PostgreSQL connection string", expected)
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


def _check_cron(value: str) -> str:
    problem = cron_problem(value)
    if problem:
        raise _invalid(
            f"not a cron expression ({problem})", 'five fields "minute hour day month weekday"'
        )
    return value


_Sized = TypeVar("_Sized", bound=Sized)


def _check_not_empty(value: _Sized) -> _Sized:
    # An after-validator, not min_length: pydantic counts only the valid items for min_length,
    # so a list with one bad item would also be reported as too short.
    if not value:
        raise _invalid("empty", "at least one entry")
    return value


NonEmpty = Annotated[_Sized, AfterValidator(_check_not_empty)]
Name = Annotated[str, AfterValidator(_check_name)]
TablePattern = Annotated[str, AfterValidator(_check_table_pattern)]
ColumnName = Annotated[str, AfterValidator(_check_column)]
Method = Literal["auto", "data_api", "unload"]

# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


def _field(default: Any = PydanticUndefined, *, expected: str, doc: str, **kwargs: Any) -> Any:
    """A pydantic Field that also records the value it expects (for error lines and docs)."""
    return Field(default, description=doc, json_schema_extra={"expected": expected}, **kwargs)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class RoleArn:
    """An IAM role ARN taken apart."""

    partition: str
    account: str
    path: str
    name: str

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.path}{self.name}"

    @property
    def iam_path(self) -> str:
        """The role's path as IAM writes it: "/" or "/a/b/"."""
        return "/" + self.path


def parse_role_arn(arn: str) -> RoleArn:
    """Take a role ARN apart; ConfigError when it is not one."""
    match = ROLE_ARN_RE.fullmatch(arn)
    if not match:
        raise ConfigError(
            f"{arn!r} is not an IAM role ARN",
            fix="use arn:aws:iam::<12-digit account>:role/<optional path/><name>",
        )
    return RoleArn(match["partition"], match["account"], match["path"], match["name"])


class UnloadConfig(_Model):
    """Where UNLOAD stages Parquet files in S3. Present = UNLOAD is available."""

    bucket: Annotated[str, AfterValidator(_check_bucket)] = _field(
        expected="an S3 bucket name", doc="The S3 bucket that holds staged files."
    )
    region: Annotated[str, AfterValidator(_check_region)] | None = _field(
        None,
        expected="an AWS region such as us-east-1",
        doc="The bucket's region; defaults to the connection's region.",
    )
    prefix: Annotated[str, AfterValidator(_check_prefix)] = _field(
        "shiftsync/",
        expected="a key prefix such as shiftsync/",
        doc="Key prefix under which each run stages its files; a trailing / is added. "
        "Staged files are deleted after use.",
    )
    kms_key_id: Annotated[str, AfterValidator(_check_kms_key)] | None = _field(
        None,
        expected="a KMS key id, key ARN or alias/<name>",
        doc="Encrypt staged files with this KMS key (SSE-KMS); default: the bucket's encryption.",
    )
    iam_role_arn: Annotated[str, AfterValidator(_check_role_arn)] | None = _field(
        None,
        expected="an IAM role ARN",
        doc="The role Redshift assumes to write to S3 (associated with the namespace); "
        "default: role_arn.",
    )


class RedshiftServerlessConfig(_Model):
    """A Redshift Serverless workgroup reached through an assumed IAM role."""

    type: Literal["redshift_serverless"] = _field(
        expected="redshift_serverless", doc="The kind of connection."
    )
    region: Annotated[str, AfterValidator(_check_region)] = _field(
        expected="an AWS region such as us-east-1", doc="The workgroup's AWS region."
    )
    workgroup: Annotated[str, AfterValidator(_check_workgroup)] = _field(
        expected="3-64 lowercase letters, digits and -", doc="The workgroup name."
    )
    database: Annotated[str, AfterValidator(_check_redshift_identifier)] = _field(
        expected="a Redshift identifier such as dev", doc="The database to read."
    )
    role_arn: Annotated[str, AfterValidator(_check_role_arn)] = _field(
        expected="arn:aws:iam::<account>:role/<name>",
        doc="The IAM role in your account that shiftsync assumes (with the workspace's "
        "external ID).",
    )
    session_duration_seconds: int = _field(
        3600,
        expected="an integer from 900 to 43200",
        doc="How long each assumed-role session lasts; the role's maximum session duration "
        "must allow it.",
        ge=900,
        le=43200,
    )
    principal_arn: Annotated[str, AfterValidator(_check_principal_arn)] | None = _field(
        None,
        expected="an IAM user, role, account root or assumed-role ARN",
        doc="The AWS principal shiftsync runs as, written into the generated trust policy; "
        "default: the caller of sts:GetCallerIdentity.",
    )
    method: Method = _field(
        "auto",
        expected="auto, data_api or unload",
        doc="How tables are read: the Data API, UNLOAD to S3, or auto (UNLOAD for big tables "
        "when unload is set).",
    )
    result_format: Literal["csv", "json"] = _field(
        "csv", expected="csv or json", doc="The Data API result format."
    )
    unload: UnloadConfig | None = _field(
        None,
        expected="a mapping with bucket (and region, prefix, kms_key_id, iam_role_arn)",
        doc="Turns UNLOAD on: where to stage files in S3.",
        validate_default=True,
    )

    @field_validator("role_arn")
    @classmethod
    def _partition_matches_region(cls, value: str, info: ValidationInfo) -> str:
        region = info.data.get("region")
        partition = ROLE_ARN_RE.fullmatch(value)["partition"]  # type: ignore[index]
        prefix = _PARTITION_REGION_PREFIX.get(partition)
        if isinstance(region, str) and (
            (prefix is not None and not region.startswith(prefix))
            or (prefix is None and region.startswith(("cn-", "us-gov-")))
        ):
            raise _invalid(
                f"the ARN's partition {partition} does not serve region {region}",
                "arn:aws-cn:... for cn-* regions, arn:aws-us-gov:... for us-gov-*, "
                "arn:aws:... elsewhere",
            )
        return value

    @field_validator("unload")
    @classmethod
    def _unload_when_method_is_unload(
        cls, value: UnloadConfig | None, info: ValidationInfo
    ) -> UnloadConfig | None:
        if value is None and info.data.get("method") == "unload":
            raise _invalid(
                "missing, but method is unload", "an unload: mapping with at least bucket"
            )
        return value

    @property
    def role(self) -> RoleArn:
        return parse_role_arn(self.role_arn)

    @property
    def account_id(self) -> str:
        return self.role.account

    @property
    def partition(self) -> str:
        return self.role.partition

    @property
    def role_name(self) -> str:
        return self.role.name

    @property
    def unload_region(self) -> str | None:
        """The staging bucket's region, or None when UNLOAD is off."""
        if self.unload is None:
            return None
        return self.unload.region or self.region

    @property
    def unload_role_arn(self) -> str | None:
        """The role Redshift assumes for UNLOAD, or None when UNLOAD is off."""
        if self.unload is None:
            return None
        return self.unload.iam_role_arn or self.role_arn


# One connection type today; it becomes a discriminated union when a second one arrives.
ConnectionConfig: TypeAlias = RedshiftServerlessConfig


class DuckDBDestinationConfig(_Model):
    """A DuckDB database file."""

    type: Literal["duckdb"] = _field(expected="duckdb", doc="The kind of destination.")
    path: Annotated[str, AfterValidator(_check_nonblank)] = _field(
        "shiftsync.duckdb",
        expected="a file path",
        doc="The DuckDB file; a relative path is relative to the workspace folder.",
    )

    def resolve_path(self, folder: Path) -> Path:
        return _resolve(folder, self.path)


class PostgresDestinationConfig(_Model):
    """A PostgreSQL database."""

    type: Literal["postgres"] = _field(expected="postgres", doc="The kind of destination.")
    dsn: Annotated[SecretStr, AfterValidator(_check_dsn)] = _field(
        expected="a postgresql:// URL or libpq key=value pairs",
        doc="How to connect (secret: it may hold a password; prefer ${ENV_VAR}).",
    )
    db_schema: Annotated[str, AfterValidator(_check_postgres_identifier)] = _field(
        "public",
        alias="schema",
        expected="a PostgreSQL schema name",
        doc="The schema that receives the tables.",
    )


class ParquetDestinationConfig(_Model):
    """A folder of Parquet datasets, local or in S3."""

    type: Literal["parquet"] = _field(expected="parquet", doc="The kind of destination.")
    path: Annotated[str, AfterValidator(_check_nonblank)] = _field(
        expected="a folder path or s3://bucket/prefix",
        doc="Where datasets are written; a relative local path is relative to the workspace "
        "folder.",
    )

    @field_validator("path")
    @classmethod
    def _s3_url_shape(cls, value: str) -> str:
        if value.startswith("s3://"):
            bucket = value[len("s3://") :].split("/", 1)[0]
            problem = bucket_name_problem(bucket)
            if problem:
                raise _invalid(f"the bucket name {problem}", "s3://<bucket>/<prefix>")
        elif "://" in value:
            raise _invalid("not a local path or s3:// URL", "a folder path or s3://bucket/prefix")
        return value

    @property
    def is_s3(self) -> bool:
        return self.path.startswith("s3://")

    def resolve_path(self, folder: Path) -> Path:
        """The local folder (only for a local path)."""
        if self.is_s3:
            raise ConfigError(f"{self.path} is an S3 URL, not a local folder")
        return _resolve(folder, self.path)


def _resolve(folder: Path, path: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else folder / candidate


DestinationConfig: TypeAlias = Annotated[
    DuckDBDestinationConfig | PostgresDestinationConfig | ParquetDestinationConfig,
    Field(discriminator="type"),
]


class ColumnSelection(_Model):
    """Which columns of a table are copied, and which are hashed."""

    include: tuple[ColumnName, ...] = _field(
        (), expected="a list of column names", doc="Copy only these columns (empty: all)."
    )
    exclude: tuple[ColumnName, ...] = _field(
        (), expected="a list of column names", doc="Copy all columns but these."
    )
    hash: tuple[ColumnName, ...] = _field(
        (),
        expected="a list of column names",
        doc="Replace these columns' values by a salted SHA-256 hash.",
    )

    @field_validator("exclude")
    @classmethod
    def _not_both(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if value and info.data.get("include"):
            raise _invalid("set together with include", "include or exclude, not both")
        return value

    @field_validator("hash")
    @classmethod
    def _hashed_are_copied(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        excluded = set(info.data.get("exclude") or ()) & set(value)
        if excluded:
            raise _invalid(f"names excluded columns {sorted(excluded)}", "columns that are copied")
        include = info.data.get("include") or ()
        missing = [name for name in value if include and name not in include]
        if missing:
            raise _invalid(f"names columns missing from include {missing}", "included columns")
        return value

    def copies(self, column: str) -> bool:
        if self.include:
            return column in self.include
        return column not in self.exclude


class TableSelection(_Model):
    """One entry of a sync's `tables`: which tables, and how to copy them."""

    include: TablePattern = _field(
        expected='a pattern "schema.table" (* and ? are wildcards)',
        doc="The tables this entry selects.",
    )
    exclude: tuple[TablePattern, ...] = _field(
        (), expected='a list of "schema.table" patterns', doc="Tables removed from include."
    )
    mode: Literal["full_refresh", "incremental"] = _field(
        "full_refresh",
        expected="full_refresh or incremental",
        doc="Copy whole tables, or only rows whose tracking_field grew since the last run.",
    )
    tracking_field: ColumnName | None = _field(
        None,
        expected="a column name",
        doc="The column that grows with each change (required for incremental).",
        validate_default=True,
    )
    primary_key: NonEmpty[tuple[ColumnName, ...]] | None = _field(
        None,
        expected="a non-empty list of column names",
        doc="The key used to merge incremental rows; default: the table's own primary key.",
    )
    columns: ColumnSelection | None = _field(
        None,
        expected="a mapping with include, exclude and hash lists",
        doc="Which columns to copy or hash; default: all, as they are.",
    )
    filter: Annotated[str, AfterValidator(_check_nonblank)] | None = _field(
        None,
        expected="a SQL boolean expression",
        doc="Copy only rows where this Redshift SQL expression is true.",
    )
    target: Annotated[str, AfterValidator(_check_target)] | None = _field(
        None,
        expected="a table name",
        doc="The destination table name (only when include names one table).",
    )
    method: Method | None = _field(
        None,
        expected="auto, data_api or unload",
        doc="Overrides the sync's and the connection's method for these tables.",
    )

    @field_validator("tracking_field")
    @classmethod
    def _tracking_field_with_mode(cls, value: str | None, info: ValidationInfo) -> str | None:
        mode = info.data.get("mode")
        if mode == "incremental" and value is None:
            raise _invalid("missing, but mode is incremental", "the column that grows with changes")
        if mode == "full_refresh" and value is not None:
            raise _invalid(
                "set, but mode is full_refresh", "no tracking_field, or mode: incremental"
            )
        return value

    @field_validator("columns")
    @classmethod
    def _keys_are_copied(
        cls, value: ColumnSelection | None, info: ValidationInfo
    ) -> ColumnSelection | None:
        if value is None:
            return value
        tracking = info.data.get("tracking_field")
        keys = [key for key in (tracking, *(info.data.get("primary_key") or ())) if key]
        dropped = [key for key in keys if isinstance(key, str) and not value.copies(key)]
        if dropped:
            raise _invalid(
                f"leaves out key columns {dropped}",
                "columns that keep the tracking_field and primary_key",
            )
        if isinstance(tracking, str) and tracking in value.hash:
            raise _invalid(f"hashes the tracking_field {tracking}", "a tracking_field copied as is")
        return value

    @field_validator("target")
    @classmethod
    def _target_names_one_table(cls, value: str | None, info: ValidationInfo) -> str | None:
        include = info.data.get("include")
        if value is not None and isinstance(include, str) and is_glob(include):
            raise _invalid(
                f"set, but include {include!r} is a pattern",
                "target only when include names one table",
            )
        return value

    @property
    def is_exact(self) -> bool:
        return not is_glob(self.include)

    def matches(self, schema: str, table: str) -> bool:
        """Whether this entry selects schema.table (include matches, no exclude does)."""
        return match_table(self.include, schema, table) and not any(
            match_table(pattern, schema, table) for pattern in self.exclude
        )


def is_glob(pattern: str) -> bool:
    return any(char in _GLOB_CHARS for char in pattern)


def match_table(pattern: str, schema: str, table: str) -> bool:
    """Match "schema.table" against a pattern part by part, case-sensitively."""
    schema_pattern, _, table_pattern = pattern.partition(".")
    return fnmatch.fnmatchcase(schema, schema_pattern) and fnmatch.fnmatchcase(table, table_pattern)


class SyncConfig(_Model):
    """A named copy job: which tables of a connection go to which destination."""

    source: Name = _field(expected="the name of a connection", doc="The connection to read.")
    destination: Name = _field(
        expected="the name of a destination", doc="The destination to write."
    )
    concurrency: int = _field(
        2, expected="an integer from 1 to 16", doc="Tables copied at once.", ge=1, le=16
    )
    method: Method | None = _field(
        None, expected="auto, data_api or unload", doc="Overrides the connection's method."
    )
    normalize_names: bool = _field(
        False, expected="true or false", doc="Write lower_snake_case table and column names."
    )
    schema_changes: Literal["evolve", "freeze", "fail"] = _field(
        "evolve",
        expected="evolve, freeze or fail",
        doc="When a source table changes shape: add new columns (evolve), ignore them "
        "(freeze), or stop (fail).",
    )
    schedule: Annotated[str, AfterValidator(_check_cron)] | None = _field(
        None,
        expected="a 5-field cron expression",
        doc="When an external scheduler should run the sync (shape checked only).",
    )
    tables: NonEmpty[tuple[TableSelection, ...]] = _field(
        expected='a list of "schema.table" patterns or mappings with include:',
        doc='The tables to copy. A plain string "s.t" means {include: "s.t"}. When several '
        "entries match a table, an entry naming it exactly wins over patterns, then the last "
        "one wins.",
    )
    exclude: tuple[TablePattern, ...] = _field(
        (), expected='a list of "schema.table" patterns', doc="Tables never copied by this sync."
    )

    @field_validator("tables", mode="before")
    @classmethod
    def _strings_are_includes(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [{"include": item} if isinstance(item, str) else item for item in value]
        return value

    def select(self, schema: str, table: str) -> TableSelection | None:
        """The entry that governs schema.table, or None when the sync does not copy it."""
        if any(match_table(pattern, schema, table) for pattern in self.exclude):
            return None
        matching = [entry for entry in self.tables if entry.matches(schema, table)]
        exact = [entry for entry in matching if entry.is_exact]
        chosen = exact or matching
        return chosen[-1] if chosen else None


_T = TypeVar("_T")


class ShiftsyncConfig(_Model):
    """The whole of shiftsync.yaml."""

    connections: NonEmpty[dict[Name, ConnectionConfig]] = _field(
        expected="a mapping of names to connections",
        doc="The Redshift Serverless workgroups to read, by name.",
    )
    destinations: dict[Name, DestinationConfig] = _field(
        {}, expected="a mapping of names to destinations", doc="Where tables go, by name."
    )
    syncs: dict[Name, SyncConfig] = _field(
        {}, expected="a mapping of names to syncs", doc="Copy jobs, by name."
    )

    def connection(self, name: str | None = None) -> tuple[str, ConnectionConfig]:
        """The named connection, or the only one when name is None."""
        return _pick("connection", self.connections, name)

    def destination(self, name: str | None = None) -> tuple[str, DestinationConfig]:
        """The named destination, or the only one when name is None."""
        return _pick("destination", self.destinations, name)

    def sync(self, name: str | None = None) -> tuple[str, SyncConfig]:
        """The named sync, or the only one when name is None."""
        return _pick("sync", self.syncs, name)


def _pick(kind: str, entries: Mapping[str, _T], name: str | None) -> tuple[str, _T]:
    names = ", ".join(entries) or "none"
    if name is None:
        if len(entries) == 1:
            return next(iter(entries.items()))
        if not entries:
            raise ConfigError(
                f"{CONFIG_FILE_NAME} defines no {kind}", fix=f"add one under {kind}s: ({DOCS_HINT})"
            )
        raise ConfigError(
            f"{CONFIG_FILE_NAME} defines {len(entries)} {kind}s ({names}); which one?",
            fix=f"name the {kind} to use: one of {names}",
        )
    if name not in entries:
        raise ConfigError(
            f"{CONFIG_FILE_NAME} has no {kind} named {name!r}", fix=f"use one of: {names}"
        )
    return name, entries[name]


# Keys whose values are secrets: error lines show them as <secret>. A test checks that every
# SecretStr field of the models is listed.
SECRET_KEYS: Final = frozenset({"dsn"})

# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the file, at a dotted key path."""

    path: str
    what: str
    got: str
    expected: str

    def line(self, file_name: str) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{file_name}: {where}{self.what} (got {self.got}); expected {self.expected}"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_unique_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


def load_config(path: Path, env: Mapping[str, str] | None = None) -> ShiftsyncConfig:
    """Read, interpolate, validate and cross-check a shiftsync.yaml.

    Raises ConfigError listing every problem at once, one per line.
    """
    name = path.name
    fix = f"edit {path} and run the command again; {DOCS_HINT}"
    if not path.is_file():
        raise ConfigError(
            f"{path} {'is not a file' if path.exists() else 'does not exist'}",
            fix="run `shiftsync init` to create it, or run shiftsync from the folder that holds it",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}", fix=fix) from exc
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(
            f"{name}: {where}invalid YAML: {exc.problem or exc.context}", fix=fix
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: invalid YAML: {exc}", fix=fix) from exc
    if data is None:
        raise ConfigError(
            f"{path} is empty", fix=f"run `shiftsync init` elsewhere and copy it; {DOCS_HINT}"
        )
    shape = _shape_problem(data)
    if shape:
        raise ConfigError(f"{name}: {shape}", fix=fix)
    config, problems = validate_config_data(data, os.environ if env is None else env)
    if problems or config is None:
        raise ConfigError("\n".join(problem.line(name) for problem in problems), fix=fix)
    return config


# Bounds on what a configuration may hold: YAML aliases can make a small file expand to a huge
# (or, with a self-reference, infinite) structure.
_MAX_VALUES: Final = 100_000
_MAX_DEPTH: Final = 64


def _shape_problem(data: Any) -> str | None:
    """Why the parsed document is too big or too deep to be a configuration, if it is."""
    count = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > _MAX_VALUES:
            return f"holds more than {_MAX_VALUES} values (YAML aliases expanding?)"
        if depth > _MAX_DEPTH:
            return f"nests deeper than {_MAX_DEPTH} levels (a YAML alias referring to itself?)"
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return None


def validate_config_data(
    data: Any, env: Mapping[str, str]
) -> tuple[ShiftsyncConfig | None, list[Problem]]:
    """Interpolate and validate parsed YAML; the config, or None and every problem found."""
    if not isinstance(data, dict):
        return None, [
            Problem(
                "",
                "the document is not a mapping",
                _show(data),
                "keys connections, destinations, syncs",
            )
        ]
    interpolated, problems = _interpolate(data, env, ())
    # A value whose ${VAR} could not be resolved is reported once, not again as invalid.
    broken = tuple(problem.path for problem in problems)

    def is_new(problem: Problem) -> bool:
        return not any(problem.path == b or problem.path.startswith(b + ".") for b in broken)

    config: ShiftsyncConfig | None = None
    try:
        config = ShiftsyncConfig.model_validate(interpolated)
    except ValidationError as exc:
        problems += [p for p in map(_problem_from_error, exc.errors()) if is_new(p)]
    problems += [p for p in _cross_check(interpolated) if is_new(p)]
    return (None if problems else config), problems


# ${VAR}, ${VAR:-default}; $${ is a literal ${; a ${ without } is an error.
_REFERENCE_RE: Final = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_REFERENCE_BODY_RE: Final = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.S
)


def _interpolate(
    value: Any, env: Mapping[str, str], path: tuple[str, ...]
) -> tuple[Any, list[Problem]]:
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        problems: list[Problem] = []
        for key, item in value.items():
            out[key], found = _interpolate(item, env, (*path, str(key)))
            problems.extend(found)
        return out, problems
    if isinstance(value, list):
        items: list[Any] = []
        problems = []
        for index, item in enumerate(value):
            new, found = _interpolate(item, env, (*path, str(index)))
            items.append(new)
            problems.extend(found)
        return items, problems
    if isinstance(value, str) and "${" in value:
        return _interpolate_string(value, env, path)
    return value, []


def _interpolate_string(
    text: str, env: Mapping[str, str], path: tuple[str, ...]
) -> tuple[str, list[Problem]]:
    problems: list[Problem] = []
    secret = bool(path) and path[-1] in SECRET_KEYS
    dotted = ".".join(path)

    def replace(match: re.Match[str]) -> str:
        reference = match.group(0)
        if reference == "$${":
            return "${"
        shown = "<secret>" if secret else _show(reference)
        body = match["body"]
        parsed = _REFERENCE_BODY_RE.fullmatch(body) if body is not None else None
        if parsed is None:
            problems.append(
                Problem(dotted, "malformed ${...} reference", shown, "${VAR} or ${VAR:-default}")
            )
            return reference
        name, default = parsed["name"], parsed["default"]
        value = env.get(name)
        if default is not None and not value:
            return default
        if value is None:
            problems.append(
                Problem(
                    dotted,
                    f"environment variable {name} is not set",
                    shown,
                    f"{name} to be set, or a default as ${{{name}:-value}}",
                )
            )
            return reference
        return value

    return _REFERENCE_RE.sub(replace, text), problems


def _cross_check(data: Mapping[Any, Any]) -> list[Problem]:
    """Names that must refer to something defined elsewhere in the file."""
    connections = data.get("connections")
    destinations = data.get("destinations")
    syncs = data.get("syncs")
    connections = connections if isinstance(connections, dict) else {}
    destinations = destinations if isinstance(destinations, dict) else {}
    if not isinstance(syncs, dict):
        return []
    problems: list[Problem] = []
    for sync_name, sync in syncs.items():
        if not isinstance(sync, dict):
            continue
        where = f"syncs.{sync_name}"
        for key, defined, kind in (
            ("source", connections, "connection"),
            ("destination", destinations, "destination"),
        ):
            ref = sync.get(key)
            if isinstance(ref, str) and ref not in defined:
                problems.append(
                    Problem(
                        f"{where}.{key}",
                        f"no {kind} named {ref}",
                        _show(ref),
                        f"one of: {', '.join(map(str, defined)) or f'(none: add {kind}s:)'}",
                    )
                )
        source = (
            connections.get(sync.get("source")) if isinstance(sync.get("source"), str) else None
        )
        if isinstance(source, dict) and source.get("unload") is None:
            methods = [(f"{where}.method", sync.get("method"))]
            tables = sync.get("tables")
            if isinstance(tables, list):
                methods += [
                    (f"{where}.tables.{index}.method", entry.get("method"))
                    for index, entry in enumerate(tables)
                    if isinstance(entry, dict)
                ]
            problems.extend(
                Problem(
                    key,
                    f"unload needs an unload: bucket on connection {sync['source']}",
                    _show(method),
                    f"auto or data_api, or an unload: mapping under connections.{sync['source']}",
                )
                for key, method in methods
                if method == "unload"
            )
    return problems


# ---------------------------------------------------------------------------------------------
# From pydantic errors to problem lines
# ---------------------------------------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] down to the type that carries the value."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [arg for arg in get_args(annotation) if arg is not NoneType]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tagged_members(annotation: Any) -> dict[str, type[BaseModel]]:
    """The models of a discriminated union by their `type` tag ({} if not such a union)."""
    if get_origin(annotation) not in (Union, UnionType):
        return {}
    members: dict[str, type[BaseModel]] = {}
    for member in get_args(annotation):
        if _is_model(member) and "type" in member.model_fields:
            for tag in get_args(member.model_fields["type"].annotation):
                members[tag] = member
    return members


def _field_by_key(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


@dataclass
class _Located:
    path: str
    field: FieldInfo | None  # the last model field on the way
    annotation: Any  # what the value at the location should be
    entry: bool  # the location is an entry of a mapping of names, not a field


def _locate(loc: Sequence[int | str]) -> _Located:
    """Walk a pydantic error location through the models, dropping union tags and [key]."""
    parts: list[str] = []
    annotation: Any = ShiftsyncConfig
    field: FieldInfo | None = None
    entry = False
    for item in loc:
        annotation = _unwrap(annotation)
        tagged = _tagged_members(annotation)
        if tagged and item in tagged:
            annotation = tagged[str(item)]
            continue
        if item == "[key]":
            continue
        parts.append(str(item))
        origin = get_origin(annotation)
        entry = origin is dict
        if _is_model(annotation):
            field = _field_by_key(annotation, str(item))
            annotation = field.annotation if field else None
        elif origin is dict:
            annotation = get_args(annotation)[1]
        elif origin in (tuple, list):
            annotation = get_args(annotation)[0]
        else:
            annotation = None
    return _Located(".".join(parts), field, _unwrap(annotation), entry)


def _expected_of(field: FieldInfo | None) -> str | None:
    extra = field.json_schema_extra if field else None
    if isinstance(extra, dict) and isinstance(extra.get("expected"), str):
        return str(extra["expected"])
    return None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _entry_expected(annotation: Any) -> str | None:
    """What a named entry (a connection, a destination, a sync) should look like."""
    tagged = _tagged_members(annotation)
    if tagged:
        return f"a mapping with type: one of {', '.join(tagged)}"
    if _is_model(annotation):
        return f"a mapping with keys among: {', '.join(_keys_of(annotation))}"
    return None


def _problem_from_error(error: ErrorDetails) -> Problem:
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    loc = error["loc"]
    located = _locate(loc)
    expected = _expected_of(located.field)
    if located.entry:
        expected = _entry_expected(located.annotation) or expected
    secret = any(part in SECRET_KEYS for part in located.path.split("."))
    got = "<secret>" if secret else _show(error["input"])

    if kind == "shiftsync_invalid":
        # None here is a default checked against another key (tracking_field, unload).
        got = "nothing" if error["input"] is None else got
        return Problem(located.path, str(ctx["what"]), got, str(ctx["expected"]))
    if kind == "extra_forbidden":
        parent = _locate(loc[:-1]).annotation
        keys = ", ".join(_keys_of(parent)) if _is_model(parent) else "known keys"
        return Problem(located.path, "unknown key", _show(loc[-1]), f"one of: {keys}")
    if kind == "missing":
        return Problem(located.path, "missing", "nothing", expected or "a value")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = ", ".join(_tagged_members(located.annotation)) or str(ctx.get("expected_tags"))
        given = error["input"].get("type") if isinstance(error["input"], dict) else None
        return Problem(
            f"{located.path}.type",
            "missing" if kind == "union_tag_not_found" else "unknown type",
            "nothing" if kind == "union_tag_not_found" else _show(given),
            f"one of: {tags}",
        )
    if kind == "literal_error":
        return Problem(located.path, "not an allowed value", got, expected or str(ctx["expected"]))
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return Problem(located.path, "out of range", got, expected or error["msg"])
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        what = "too short" if "short" in kind else "too long"
        if isinstance(error["input"], dict | list | tuple) and not error["input"]:
            what = "empty"
        return Problem(located.path, what, got, expected or error["msg"])
    if kind.endswith(("_type", "_parsing")) or kind in ("model_attributes_type",):
        return Problem(located.path, "wrong type", got, expected or error["msg"])
    return Problem(located.path, error["msg"], got, expected or DOCS_HINT)


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "<secret>" if key in SECRET_KEYS else _redact(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    return value


def _show(value: Any, limit: int = 80) -> str:
    """A short, secret-free rendering of a value from the file."""
    value = _redact(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Template, schema, reference
# ---------------------------------------------------------------------------------------------

_TEMPLATE: Final = """\
# shiftsync.yaml: what to copy out of Amazon Redshift Serverless, and where to.
# Every key is described in docs/configuration.md. Lines marked CHANGE need your values.
# Values may read environment variables: ${VAR} or ${VAR:-default}.
# After editing: `shiftsync policy` prints the IAM role to create, `shiftsync check` tests it.

connections:
  warehouse:
    type: redshift_serverless
    region: us-east-1                  # CHANGE: your workgroup's AWS region
    workgroup: default-workgroup       # CHANGE: your Redshift Serverless workgroup
    database: dev                      # CHANGE: the database to read
    # CHANGE: the IAM role shiftsync assumes in your account (see docs/aws-setup.md).
    role_arn: arn:aws:iam::123456789012:role/shiftsync-reader
    session_duration_seconds: 3600     # 900-43200, within the role's maximum session duration
    method: auto                       # auto | data_api | unload
    result_format: csv                 # csv | json: how the Data API returns rows
    # Uncomment to let big tables go through UNLOAD to S3 (faster; needs a staging bucket):
    # unload:
    #   bucket: my-staging-bucket      # CHANGE
    #   region: us-east-1              # default: the connection's region
    #   prefix: shiftsync/             # staged files are deleted after each table
    #   kms_key_id: null               # encrypt staged files with this KMS key
    #   iam_role_arn: null             # the role Redshift writes with; default: role_arn

destinations:
  local:
    type: duckdb
    path: shiftsync.duckdb             # relative to this folder
  # pg:
  #   type: postgres
  #   dsn: ${SHIFTSYNC_PG_DSN}         # keep passwords out of this file
  #   schema: public
  # lake:
  #   type: parquet
  #   path: ./lake                     # a local folder or s3://bucket/prefix

syncs:
  nightly:
    source: warehouse
    destination: local
    concurrency: 2                     # tables copied at once, 1-16
    schema_changes: evolve             # evolve | freeze | fail
    tables:
      - "public.*"                     # CHANGE: the tables to copy ("schema.table", * and ?)
      # - include: "public.sales"
      #   mode: incremental
      #   tracking_field: saletime
      #   primary_key: [salesid]
    exclude: []                        # e.g. ["public.tmp_*"]
"""


def config_template() -> str:
    """The commented shiftsync.yaml that `shiftsync init` writes; it loads as it is."""
    return _TEMPLATE


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of shiftsync.yaml (keys by their YAML names)."""
    return ShiftsyncConfig.model_json_schema(by_alias=True)


# (section title, key path shown to the user, model); the order of docs/configuration.md.
REFERENCE_SECTIONS: Final[tuple[tuple[str, str, type[BaseModel]], ...]] = (
    ("Top level", "", ShiftsyncConfig),
    ("Connection: redshift_serverless", "connections.<name>", RedshiftServerlessConfig),
    ("UNLOAD staging", "connections.<name>.unload", UnloadConfig),
    ("Destination: duckdb", "destinations.<name>", DuckDBDestinationConfig),
    ("Destination: postgres", "destinations.<name>", PostgresDestinationConfig),
    ("Destination: parquet", "destinations.<name>", ParquetDestinationConfig),
    ("Sync", "syncs.<name>", SyncConfig),
    ("Table entry", "syncs.<name>.tables[]", TableSelection),
    ("Column selection", "syncs.<name>.tables[].columns", ColumnSelection),
)


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "none"
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, tuple | list):
        return "[]" if not default else json.dumps(list(default))
    if isinstance(default, dict):
        return "{}"
    return f"`{default}`"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def config_reference_markdown() -> str:
    """The key-by-key reference of shiftsync.yaml, generated from the models."""
    lines: list[str] = []
    for title, where, model in REFERENCE_SECTIONS:
        lines += [f"### {title}", ""]
        if where:
            lines += [f"Under `{where}`. {model.__doc__ or ''}".rstrip(), ""]
        lines += ["| key | value | default | meaning |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            key = info.alias or name
            expected = _markdown_cell(_expected_of(info) or "")
            meaning = _markdown_cell(info.description or "")
            lines.append(f"| `{key}` | {expected} | {_default_text(info)} | {meaning} |")
        lines.append("")
    return "\n".join(lines)
