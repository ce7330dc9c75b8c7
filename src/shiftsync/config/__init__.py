"""The `shiftsync.yaml` models, how the file is loaded, and how its problems are reported.

`load_config()` reads the YAML safely (duplicate keys refused), replaces `${VAR}` and
`${VAR:-default}` in string values, validates every key with the pydantic models and
cross-checks names (a sync's source and destination must exist). Every problem found goes
into ONE `ConfigError`, one line per problem:

    shiftsync.yaml: connections.warehouse.region: not an AWS region (got "us-east"); expected ...

Secret values (`SecretStr` fields such as a PostgreSQL DSN) never appear in those lines.

The modules, each with one job:
- validators.py: regexes and field checks (names, regions, ARNs, buckets, cron);
- models.py: the connection and destination models, and the base every model shares;
- syncs.py: table selection and `SyncConfig`;
- document.py: `ShiftsyncConfig`, the whole file;
- loading.py: YAML reading, `${VAR}` interpolation, validation and cross-checks;
- problems.py: from pydantic's errors to the problem lines users see;
- reference.py: the `shiftsync init` template, the JSON Schema and the markdown reference.
"""

from __future__ import annotations

from shiftsync.config.document import CONFIG_FILE_NAME, DOCS_HINT, ShiftsyncConfig
from shiftsync.config.loading import load_config, validate_config_data
from shiftsync.config.models import (
    SECRET_KEYS,
    SECRET_USER_PLACEHOLDER,
    AuthMode,
    ConnectionConfig,
    DataApiTarget,
    DeltaDestinationConfig,
    DestinationConfig,
    DuckDBDestinationConfig,
    IcebergDestinationConfig,
    ParquetDestinationConfig,
    PostgresDestinationConfig,
    ProfileCredentials,
    RateLimitsConfig,
    RedshiftServerlessConfig,
    RoleArn,
    UnloadConfig,
    parse_role_arn,
)
from shiftsync.config.problems import Problem
from shiftsync.config.reference import (
    REFERENCE_SECTIONS,
    config_json_schema,
    config_reference_markdown,
    config_template,
)
from shiftsync.config.syncs import (
    ColumnSelection,
    SyncConfig,
    TableSelection,
    exact_table_name,
    is_glob,
    match_table,
)
from shiftsync.config.validators import (
    KMS_KEY_RE,
    NAME_RE,
    POSTGRES_IDENTIFIER_RE,
    PREFIX_RE,
    PRINCIPAL_ARN_RE,
    REDSHIFT_IDENTIFIER_RE,
    REGION_RE,
    ROLE_ARN_RE,
    SECRET_ARN_RE,
    WORKGROUP_RE,
    ColumnName,
    Method,
    Name,
    NamePattern,
    NonEmpty,
    TablePattern,
    bucket_name_problem,
    cluster_identifier_problem,
    cron_problem,
    quote_name_part,
    split_table_pattern,
    table_name_for_config,
)

__all__ = [
    "CONFIG_FILE_NAME",
    "DOCS_HINT",
    "KMS_KEY_RE",
    "NAME_RE",
    "POSTGRES_IDENTIFIER_RE",
    "PREFIX_RE",
    "PRINCIPAL_ARN_RE",
    "REDSHIFT_IDENTIFIER_RE",
    "REFERENCE_SECTIONS",
    "REGION_RE",
    "ROLE_ARN_RE",
    "SECRET_ARN_RE",
    "SECRET_KEYS",
    "SECRET_USER_PLACEHOLDER",
    "WORKGROUP_RE",
    "AuthMode",
    "ColumnName",
    "ColumnSelection",
    "ConnectionConfig",
    "DataApiTarget",
    "DeltaDestinationConfig",
    "DestinationConfig",
    "DuckDBDestinationConfig",
    "IcebergDestinationConfig",
    "Method",
    "Name",
    "NamePattern",
    "NonEmpty",
    "ParquetDestinationConfig",
    "PostgresDestinationConfig",
    "Problem",
    "ProfileCredentials",
    "RateLimitsConfig",
    "RedshiftServerlessConfig",
    "RoleArn",
    "ShiftsyncConfig",
    "SyncConfig",
    "TablePattern",
    "TableSelection",
    "UnloadConfig",
    "bucket_name_problem",
    "cluster_identifier_problem",
    "config_json_schema",
    "config_reference_markdown",
    "config_template",
    "cron_problem",
    "exact_table_name",
    "is_glob",
    "load_config",
    "match_table",
    "parse_role_arn",
    "quote_name_part",
    "split_table_pattern",
    "table_name_for_config",
    "validate_config_data",
]
