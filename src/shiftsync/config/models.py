"""The connection and destination models of shiftsync.yaml, and the base every model shares.

`config_field` records, next to each field's description, the value it expects: error lines and the
generated reference (docs/configuration.md) both read it back with `expected_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Required, TypeAlias, TypedDict, Unpack

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from shiftsync.config.validators import (
    ROLE_ARN_RE,
    Method,
    bucket_name_problem,
    check_bucket,
    check_cluster_identifier,
    check_db_user,
    check_dsn,
    check_kms_key,
    check_memory,
    check_nonblank,
    check_postgres_identifier,
    check_prefix,
    check_principal_arn,
    check_redshift_identifier,
    check_region,
    check_role_arn,
    check_secret_arn,
    check_workgroup,
    invalid,
)
from shiftsync.errors import ConfigError

_PARTITION_REGION_PREFIX: Final[Mapping[str, str]] = {"aws-cn": "cn-", "aws-us-gov": "us-gov-"}


class FieldOptions(TypedDict, total=False):
    """The options of pydantic's Field that shiftsync's models use (add one when needed)."""

    alias: str
    ge: float
    gt: float
    le: float
    lt: float
    min_length: int
    max_length: int
    # Only True: pydantic's overloads of Field tell the cases apart by this literal.
    validate_default: Literal[True]


def config_field(
    default: object = PydanticUndefined, *, expected: str, doc: str, **kwargs: Unpack[FieldOptions]
) -> Any:
    """A pydantic Field that also records the value it expects (for error lines and docs).

    Typed `Any` as pydantic's own Field is: it stands in the class body for the field's value.
    """
    return Field(default, description=doc, json_schema_extra={"expected": expected}, **kwargs)


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def expected_of(field: FieldInfo | None) -> str | None:
    extra = field.json_schema_extra if field else None
    if isinstance(extra, dict) and isinstance(extra.get("expected"), str):
        return str(extra["expected"])
    return None


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


class UnloadConfig(ConfigModel):
    """Where UNLOAD stages Parquet files in S3. Present = UNLOAD is available."""

    bucket: Annotated[str, AfterValidator(check_bucket)] = config_field(
        expected="an S3 bucket name", doc="The S3 bucket that holds staged files."
    )
    region: Annotated[str, AfterValidator(check_region)] | None = config_field(
        None,
        expected="an AWS region such as us-east-1",
        doc="The bucket's region; defaults to the connection's region.",
    )
    prefix: Annotated[str, AfterValidator(check_prefix)] = config_field(
        "shiftsync/",
        expected="a key prefix such as shiftsync/",
        doc="Key prefix under which each run stages its files; a trailing / is added. "
        "Staged files are deleted after use.",
    )
    kms_key_id: Annotated[str, AfterValidator(check_kms_key)] | None = config_field(
        None,
        expected="a KMS key id, key ARN or alias/<name>",
        doc="Encrypt staged files with this KMS key (SSE-KMS); default: the bucket's encryption.",
    )
    iam_role_arn: Annotated[str, AfterValidator(check_role_arn)] | None = config_field(
        None,
        expected="an IAM role ARN",
        doc="The role Redshift assumes to write to S3 (associated with the namespace); "
        "default: role_arn.",
    )
    range_mb: float = config_field(
        1024,
        expected="a size in MB above 0, or 0 to read every table with one UNLOAD",
        doc="A table whose size estimate is above this many MB is read as several UNLOADs "
        "over key ranges of about this size (at most 64), each checkpointed, so that a "
        "killed or failed run resumes with the ranges that did not finish; 0 turns it off.",
        ge=0,
    )


class RateLimitsConfig(ConfigModel):
    """Data API calls per second for the AWS account and region, shared by every shiftsync
    process of the machine (AWS's quotas are per account and region)."""

    execute_statement: float = config_field(
        30.0,
        expected="a number of calls per second above 0",
        doc="ExecuteStatement calls per second (AWS quota: 30).",
        gt=0,
        le=1000,
    )
    get_statement_result: float = config_field(
        20.0,
        expected="a number of calls per second above 0",
        doc="GetStatementResult and GetStatementResultV2 calls per second (AWS quota: 20).",
        gt=0,
        le=1000,
    )
    describe_statement: float = config_field(
        100.0,
        expected="a number of calls per second above 0",
        doc="DescribeStatement calls per second (AWS quota: 100).",
        gt=0,
        le=1000,
    )
    shared: bool = config_field(
        True,
        expected="true or false",
        doc="Share the limit with every shiftsync process of this machine (a file-locked "
        "token bucket under ~/.cache/shiftsync), and under executor: ray with the driver and "
        "every worker of the cluster (one actor); false: this process only.",
    )

    def rates(self) -> dict[str, float]:
        """Per Data API operation, with the other operations at their defaults."""
        return {
            "ExecuteStatement": self.execute_statement,
            "GetStatementResult": self.get_statement_result,
            "DescribeStatement": self.describe_statement,
        }


# How the Data API logs in to the database: Serverless maps the role itself
# (redshift-serverless:GetCredentials); on a provisioned cluster, the role itself
# (redshift:GetClusterCredentialsWithIAM), a named database user (redshift:GetClusterCredentials)
# or a Secrets Manager secret (secretsmanager:GetSecretValue).
AuthMode: TypeAlias = Literal["serverless", "cluster_iam", "cluster_db_user", "cluster_secret"]
ConnectionType: TypeAlias = Literal["redshift_serverless", "redshift_provisioned"]
SECRET_USER_PLACEHOLDER: Final = "<username in the secret>"  # noqa: S105 (a name, not a secret)


class DataApiTarget(TypedDict, total=False):
    """The Data API parameters that name the database and how to log in to it."""

    WorkgroupName: str
    ClusterIdentifier: str
    DbUser: str
    SecretArn: str
    Database: Required[str]


_CLUSTER_ONLY: Final = "a provisioned cluster's option: remove it, or use cluster_identifier"


class RedshiftServerlessConfig(ConfigModel):
    """A Redshift Serverless workgroup or a provisioned cluster, read through an assumed role."""

    type: ConnectionType = config_field(
        expected="redshift_serverless or redshift_provisioned",
        doc="The kind of connection: a Serverless workgroup or a provisioned cluster.",
    )
    region: Annotated[str, AfterValidator(check_region)] = config_field(
        expected="an AWS region such as us-east-1",
        doc="The AWS region of the workgroup or cluster.",
    )
    workgroup: Annotated[str, AfterValidator(check_workgroup)] | None = config_field(
        None,
        expected="3-64 lowercase letters, digits and -",
        doc="The workgroup name (redshift_serverless).",
        validate_default=True,
    )
    cluster_identifier: Annotated[str, AfterValidator(check_cluster_identifier)] | None = (
        config_field(
            None,
            expected="1-63 lowercase letters, digits and -, starting with a letter",
            doc="The cluster identifier (redshift_provisioned), instead of workgroup. The Data "
            "API logs in as the role (IAMR:<role name>, redshift:GetClusterCredentialsWithIAM) "
            "unless db_user or secret_arn says otherwise.",
            validate_default=True,
        )
    )
    db_user: Annotated[str, AfterValidator(check_db_user)] | None = config_field(
        None,
        expected="a Redshift user name",
        doc="On a cluster: log in as this database user (redshift:GetClusterCredentials) "
        "instead of the role's own user.",
    )
    secret_arn: Annotated[str, AfterValidator(check_secret_arn)] | None = config_field(
        None,
        expected="arn:aws:secretsmanager:<region>:<account>:secret:<name>",
        doc="On a cluster: log in with the username and password of this Secrets Manager "
        "secret (secretsmanager:GetSecretValue); not with db_user.",
    )
    database: Annotated[str, AfterValidator(check_redshift_identifier)] = config_field(
        expected="a Redshift identifier such as dev", doc="The database to read."
    )
    role_arn: Annotated[str, AfterValidator(check_role_arn)] = config_field(
        expected="arn:aws:iam::<account>:role/<name>",
        doc="The IAM role in your account that shiftsync assumes (with the workspace's "
        "external ID).",
    )
    session_duration_seconds: int = config_field(
        3600,
        expected="an integer from 900 to 43200",
        doc="How long each assumed-role session lasts; the role's maximum session duration "
        "must allow it.",
        ge=900,
        le=43200,
    )
    trust_check_interval_seconds: int = config_field(
        86400,
        expected="a number of seconds, 0 or more",
        doc="How often every command that assumes the role proves again that the role refuses "
        "AssumeRole without the external ID and with a wrong one (two refused STS calls); "
        "0 proves it on every run.",
        ge=0,
    )
    principal_arn: Annotated[str, AfterValidator(check_principal_arn)] | None = config_field(
        None,
        expected="an IAM user, role, account root or assumed-role ARN",
        doc="The AWS principal shiftsync runs as, written into the generated trust policy; "
        "default: the caller of sts:GetCallerIdentity.",
    )
    method: Method = config_field(
        "auto",
        expected="auto, data_api or unload",
        doc="How tables are read: the Data API, UNLOAD to S3, or auto (UNLOAD for big tables "
        "when unload is set).",
    )
    result_format: Literal["csv", "json"] = config_field(
        "csv", expected="csv or json", doc="The Data API result format."
    )
    unload: UnloadConfig | None = config_field(
        None,
        expected="a mapping with bucket (and region, prefix, kms_key_id, iam_role_arn)",
        doc="Turns UNLOAD on: where to stage files in S3.",
        validate_default=True,
    )
    rate_limits: RateLimitsConfig = config_field(
        RateLimitsConfig(),
        expected="a mapping of execute_statement, get_statement_result, describe_statement, shared",
        doc="Data API calls per second, shared across processes (see docs/syncs.md).",
    )

    @field_validator("workgroup")
    @classmethod
    def _workgroup_on_serverless(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("type") == "redshift_provisioned":
            raise invalid(
                "a workgroup on a redshift_provisioned connection",
                "cluster_identifier: <your cluster>, or type: redshift_serverless",
            )
        if value is None and info.data.get("type") == "redshift_serverless":
            raise invalid(
                "missing",
                "workgroup: <your workgroup> (or type: redshift_provisioned with "
                "cluster_identifier)",
            )
        return value

    @field_validator("cluster_identifier")
    @classmethod
    def _one_target(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("workgroup") is not None:
            raise invalid(
                "the connection names both a workgroup and a cluster",
                "one of them: workgroup (Redshift Serverless) or cluster_identifier with "
                "type: redshift_provisioned",
            )
        kind = info.data.get("type")
        if value is not None and kind == "redshift_serverless":
            raise invalid(
                "a cluster on a redshift_serverless connection",
                "type: redshift_provisioned (or workgroup: <name> for Serverless)",
            )
        if value is None and kind == "redshift_provisioned":
            raise invalid("missing", "cluster_identifier: <your cluster's identifier>")
        return value

    @field_validator("db_user")
    @classmethod
    def _db_user_on_cluster(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("type") != "redshift_provisioned":
            raise invalid("db_user on a Serverless workgroup connection", _CLUSTER_ONLY)
        return value

    @field_validator("secret_arn")
    @classmethod
    def _secret_on_cluster(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("type") != "redshift_provisioned":
            raise invalid("secret_arn on a Serverless workgroup connection", _CLUSTER_ONLY)
        if value is not None and info.data.get("db_user") is not None:
            raise invalid(
                "db_user and secret_arn together: the Data API takes one way to log in",
                "keep one of them: db_user (redshift:GetClusterCredentials) or secret_arn "
                "(secretsmanager:GetSecretValue)",
            )
        return value

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
            raise invalid(
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
            raise invalid(
                "missing, but method is unload", "an unload: mapping with at least bucket"
            )
        return value

    @property
    def role(self) -> RoleArn:
        return parse_role_arn(self.role_arn)

    @property
    def is_cluster(self) -> bool:
        return self.cluster_identifier is not None

    @property
    def target_name(self) -> str:
        """The workgroup's name or the cluster's identifier."""
        return self.cluster_identifier or self.workgroup or ""

    @property
    def target_label(self) -> str:
        """`workgroup NAME` or `cluster NAME`, for messages."""
        return f"{'cluster' if self.is_cluster else 'workgroup'} {self.target_name}"

    @property
    def auth_mode(self) -> AuthMode:
        if not self.is_cluster:
            return "serverless"
        if self.db_user is not None:
            return "cluster_db_user"
        if self.secret_arn is not None:
            return "cluster_secret"
        return "cluster_iam"

    @property
    def login_user(self) -> str:
        """The database user the Data API logs in as: IAMR:<role name> for the role itself,
        db_user, or a placeholder for the username a secret holds (only AWS reads it)."""
        if self.db_user is not None:
            return self.db_user
        if self.secret_arn is not None:
            return SECRET_USER_PLACEHOLDER
        return f"IAMR:{self.role_name}"

    def data_api_target(self) -> DataApiTarget:
        """The Data API parameters that name the database and how to log in to it."""
        if not self.is_cluster:
            return {"WorkgroupName": self.target_name, "Database": self.database}
        target: DataApiTarget = {"ClusterIdentifier": self.target_name, "Database": self.database}
        if self.db_user is not None:
            target["DbUser"] = self.db_user
        if self.secret_arn is not None:
            target["SecretArn"] = self.secret_arn
        return target

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


# One model for both kinds: a cluster differs from a workgroup only in how the Data API names
# it and logs in.
ConnectionConfig: TypeAlias = RedshiftServerlessConfig


class DuckDBDestinationConfig(ConfigModel):
    """A DuckDB database file."""

    type: Literal["duckdb"] = config_field(expected="duckdb", doc="The kind of destination.")
    path: Annotated[str, AfterValidator(check_nonblank)] = config_field(
        "shiftsync.duckdb",
        expected="a file path",
        doc="The DuckDB file; a relative path is relative to the workspace folder.",
    )
    memory_limit: Annotated[str, AfterValidator(check_memory)] | None = config_field(
        None,
        expected="a size such as 512MB or 4GB",
        doc="A fixed DuckDB memory limit (larger sorts and merges spill to disk beyond it; "
        "at least 256MB is used). Default: it follows the running loads, 16MB plus 512KB per "
        "column of each table being loaded or verified, at least 256MB while a merge, append "
        "or delete commits, so memory does not grow with a table's length.",
    )
    lock_timeout_seconds: float = config_field(
        60.0,
        expected="seconds from 0 to 86400",
        doc="How long a sync waits for another process (a notebook, a reader, another sync) "
        "to close the file before it fails; 0 fails at once.",
        ge=0,
        le=86_400,
    )
    reader_copy: Annotated[str, AfterValidator(check_nonblank)] | None = config_field(
        None,
        expected="a file path",
        doc="A copy of the file, replaced whole after each run, for readers (notebooks, BI "
        "tools) to open while a sync writes `path`; relative to the workspace folder.",
    )

    def resolve_reader_copy(self, folder: Path) -> Path | None:
        return None if self.reader_copy is None else _resolve(folder, self.reader_copy)

    def resolve_path(self, folder: Path) -> Path:
        return _resolve(folder, self.path)


class PostgresDestinationConfig(ConfigModel):
    """A PostgreSQL database."""

    type: Literal["postgres"] = config_field(expected="postgres", doc="The kind of destination.")
    dsn: Annotated[SecretStr, AfterValidator(check_dsn)] = config_field(
        expected="a postgresql:// URL or libpq key=value pairs",
        doc="How to connect (secret: it may hold a password; prefer ${ENV_VAR}).",
    )
    db_schema: Annotated[str, AfterValidator(check_postgres_identifier)] = config_field(
        "public",
        alias="schema",
        expected="a PostgreSQL schema name",
        doc="The schema that receives the tables.",
    )


class ProfileCredentials(ConfigModel):
    """A named profile of the AWS configuration files."""

    profile: Annotated[str, AfterValidator(check_nonblank)] = config_field(
        expected="a profile name of ~/.aws/config", doc="The profile whose credentials write S3."
    )


# Who writes a destination in S3: the sync's source connection's assumed role, boto3's
# default chain, or a named profile.
S3Identity: TypeAlias = Literal["connection", "default"] | ProfileCredentials
_CREDENTIALS_DOC: Final = (
    "Who writes S3: `connection` (the role the sync's source connection assumes), `default` "
    "(boto3's default chain: environment, ~/.aws, instance role) or `{profile: NAME}`. "
    "Unused for local paths."
)
_CREDENTIALS_EXPECTED: Final = "connection, default or {profile: NAME}"


def _check_s3_or_local(value: str) -> str:
    if value.startswith("s3://"):
        bucket = value[len("s3://") :].split("/", 1)[0]
        problem = bucket_name_problem(bucket)
        if problem:
            raise invalid(f"the bucket name {problem}", "s3://<bucket>/<prefix>")
    elif "://" in value:
        raise invalid("not a local path or s3:// URL", "a folder path or s3://bucket/prefix")
    return value


class ParquetDestinationConfig(ConfigModel):
    """A folder of Parquet datasets, local or in S3."""

    type: Literal["parquet"] = config_field(expected="parquet", doc="The kind of destination.")
    path: Annotated[str, AfterValidator(check_nonblank)] = config_field(
        expected="a folder path or s3://bucket/prefix",
        doc="Where datasets are written; a relative local path is relative to the workspace "
        "folder.",
    )
    credentials: S3Identity = config_field(
        "connection", expected=_CREDENTIALS_EXPECTED, doc=_CREDENTIALS_DOC
    )

    @field_validator("path")
    @classmethod
    def _s3_url_shape(cls, value: str) -> str:
        if value.startswith("s3://"):
            bucket = value[len("s3://") :].split("/", 1)[0]
            problem = bucket_name_problem(bucket)
            if problem:
                raise invalid(f"the bucket name {problem}", "s3://<bucket>/<prefix>")
        elif "://" in value:
            raise invalid("not a local path or s3:// URL", "a folder path or s3://bucket/prefix")
        return value

    @property
    def is_s3(self) -> bool:
        return self.path.startswith("s3://")

    def resolve_path(self, folder: Path) -> Path:
        """The local folder (only for a local path)."""
        if self.is_s3:
            raise ConfigError(f"{self.path} is an S3 URL, not a local folder")
        return _resolve(folder, self.path)


class IcebergDestinationConfig(ConfigModel):
    """Apache Iceberg tables in a catalog (SQL, REST or Glue), data on local disk or S3."""

    type: Literal["iceberg"] = config_field(expected="iceberg", doc="The kind of destination.")
    catalog: Literal["sql", "rest", "glue"] = config_field(
        "sql",
        expected="sql, rest or glue",
        doc="The Iceberg catalog: `sql` (SQLite file in the workspace, or PostgreSQL via "
        "catalog_uri), `rest` (an Iceberg REST catalog at catalog_uri) or `glue` (the AWS Glue "
        "Data Catalog of boto3's region, called as `credentials`; the namespace is a Glue "
        "database).",
    )
    catalog_uri: SecretStr | None = config_field(
        None,
        expected="a SQLAlchemy URL (sql) or https:// URL (rest)",
        doc="sql: `sqlite:///path` or `postgresql+psycopg://user:pw@host/db`; default: the "
        "SQLite file iceberg_catalog.db in the workspace folder. rest: the catalog's URL "
        "(secret: it may hold a password; prefer ${ENV_VAR}).",
    )
    warehouse: Annotated[
        str, AfterValidator(check_nonblank), AfterValidator(_check_s3_or_local)
    ] = config_field(
        "iceberg",
        expected="a folder path or s3://bucket/prefix",
        doc="Where data and metadata files go; a relative local path is relative to the "
        "workspace folder.",
    )
    namespace: Annotated[str, AfterValidator(check_nonblank)] = config_field(
        "shiftsync", expected="a namespace name", doc="The Iceberg namespace of the tables."
    )
    catalog_properties: dict[str, str] = config_field(
        {},
        expected="a mapping of pyiceberg catalog properties",
        doc="Extra pyiceberg catalog properties (e.g. `token`, `credential` for REST; use "
        "${ENV_VAR} for secrets).",
    )
    target_file_size_mb: int = config_field(
        4,
        expected="an integer from 1 to 4096",
        doc="Upper bound of a data file, in MB of Arrow data (files on disk are about half): "
        "smaller files make a merge of a few keys rewrite less, at the cost of more files "
        "(bench/lake_merge.py measures both).",
        ge=1,
        le=4096,
    )
    credentials: S3Identity = config_field(
        "connection", expected=_CREDENTIALS_EXPECTED, doc=_CREDENTIALS_DOC
    )

    @property
    def is_s3(self) -> bool:
        return self.warehouse.startswith("s3://")


class DeltaDestinationConfig(ConfigModel):
    """Delta Lake tables in a folder, local or in S3."""

    type: Literal["delta"] = config_field(expected="delta", doc="The kind of destination.")
    path: Annotated[str, AfterValidator(check_nonblank), AfterValidator(_check_s3_or_local)] = (
        config_field(
            expected="a folder path or s3://bucket/prefix",
            doc="Where tables are written, one folder each; a relative local path is relative "
            "to the workspace folder.",
        )
    )
    locking: Literal["conditional_put", "dynamodb"] | None = config_field(
        None,
        expected="conditional_put or dynamodb",
        doc="How commits stay atomic on S3 (required there): `conditional_put` (S3 "
        "conditional writes) or `dynamodb` (a lock table, see dynamodb_table).",
        validate_default=True,
    )
    dynamodb_table: Annotated[str, AfterValidator(check_nonblank)] | None = config_field(
        None, expected="a DynamoDB table name", doc="The lock table for `locking: dynamodb`."
    )
    target_file_size_mb: int = config_field(
        4,
        expected="an integer from 1 to 4096",
        doc="Upper bound of a data file, in MB (as for iceberg).",
        ge=1,
        le=4096,
    )
    credentials: S3Identity = config_field(
        "connection", expected=_CREDENTIALS_EXPECTED, doc=_CREDENTIALS_DOC
    )

    @field_validator("locking")
    @classmethod
    def _locking_on_s3(cls, value: str | None, info: ValidationInfo) -> str | None:
        path = info.data.get("path")
        if value is None and isinstance(path, str) and path.startswith("s3://"):
            # Without it delta-rs renames unsafely: two writers can lose a commit silently.
            raise invalid(
                "missing, but Delta tables on S3 need it so that two writers never overwrite "
                "each other's commit",
                "locking: conditional_put (AWS S3, MinIO, R2), or locking: dynamodb with "
                "dynamodb_table: delta_log",
            )
        return value

    @property
    def is_s3(self) -> bool:
        return self.path.startswith("s3://")


def _resolve(folder: Path, path: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else folder / candidate


DestinationConfig: TypeAlias = Annotated[
    DuckDBDestinationConfig
    | PostgresDestinationConfig
    | ParquetDestinationConfig
    | IcebergDestinationConfig
    | DeltaDestinationConfig,
    Field(discriminator="type"),
]

# Keys whose values are secrets: error lines show them as <secret>. A test checks that every
# SecretStr field of the models is listed.
SECRET_KEYS: Final = frozenset({"dsn", "url", "secret", "apprise", "catalog_uri"})
