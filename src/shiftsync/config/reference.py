"""What documents shiftsync.yaml: the `shiftsync init` template, the JSON Schema, and the
markdown reference in docs/configuration.md (a test keeps that file in step with the models).
"""

from __future__ import annotations

import json
from typing import Final

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue

from shiftsync.config.alerts import AlertsConfig, WebhookConfig
from shiftsync.config.document import ShiftsyncConfig
from shiftsync.config.models import (
    DeltaDestinationConfig,
    DuckDBDestinationConfig,
    IcebergDestinationConfig,
    ParquetDestinationConfig,
    PostgresDestinationConfig,
    ProfileCredentials,
    RateLimitsConfig,
    RedshiftServerlessConfig,
    UnloadConfig,
    expected_of,
)
from shiftsync.config.syncs import ColumnSelection, SyncConfig, TableSelection

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
    schema_changes: evolve             # evolve | freeze | fail | recreate
    tables:
      - "public.*"                     # CHANGE: the tables to copy ("schema.table", * and ?)
      # - include: "public.sales"
      #   mode: incremental
      #   tracking_field: saletime
      #   primary_key: [salesid]
    exclude: []                        # e.g. ["public.tmp_*"]
"""


_SERVERLESS_LINES: Final = """\
    type: redshift_serverless
    region: us-east-1                  # CHANGE: your workgroup's AWS region
    workgroup: default-workgroup       # CHANGE: your Redshift Serverless workgroup
"""
_CLUSTER_LINES: Final = """\
    type: redshift_provisioned
    region: us-east-1                  # CHANGE: your cluster's AWS region
    cluster_identifier: my-cluster     # CHANGE: your provisioned cluster's identifier
    # The Data API logs in as the role (IAMR:<role name>) unless one of these is set:
    # db_user: etl                     # a database user (redshift:GetClusterCredentials)
    # secret_arn: arn:aws:secretsmanager:us-east-1:123456789012:secret:redshift/etl-AbCdEf
"""


def config_template(*, cluster: bool = False) -> str:
    """The commented shiftsync.yaml that `shiftsync init` writes; it loads as it is. With
    `cluster`, its connection is a provisioned cluster's instead of a Serverless workgroup's."""
    if not cluster:
        return _TEMPLATE
    text = _TEMPLATE.replace(_SERVERLESS_LINES, _CLUSTER_LINES)
    return text.replace(
        "copy out of Amazon Redshift Serverless,", "copy out of an Amazon Redshift cluster,"
    )


def config_json_schema() -> JsonSchemaValue:
    """The JSON Schema of shiftsync.yaml (keys by their YAML names)."""
    return ShiftsyncConfig.model_json_schema(by_alias=True)


# (section title, key path shown to the user, model); the order of docs/configuration.md.
REFERENCE_SECTIONS: Final[tuple[tuple[str, str, type[BaseModel]], ...]] = (
    ("Top level", "", ShiftsyncConfig),
    (
        "Connection: redshift_serverless, redshift_provisioned",
        "connections.<name>",
        RedshiftServerlessConfig,
    ),
    ("UNLOAD staging", "connections.<name>.unload", UnloadConfig),
    ("Data API rate limits", "connections.<name>.rate_limits", RateLimitsConfig),
    ("Destination: duckdb", "destinations.<name>", DuckDBDestinationConfig),
    ("Destination: postgres", "destinations.<name>", PostgresDestinationConfig),
    ("Destination: parquet", "destinations.<name>", ParquetDestinationConfig),
    ("Destination: iceberg", "destinations.<name>", IcebergDestinationConfig),
    ("Destination: delta", "destinations.<name>", DeltaDestinationConfig),
    ("S3 credentials from a profile", "destinations.<name>.credentials", ProfileCredentials),
    ("Sync", "syncs.<name>", SyncConfig),
    ("Table entry", "syncs.<name>.tables[]", TableSelection),
    ("Column selection", "syncs.<name>.tables[].columns", ColumnSelection),
    ("Alerts", "alerts", AlertsConfig),
    ("Webhook", "alerts.webhooks[]", WebhookConfig),
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
            expected = _markdown_cell(expected_of(info) or "")
            meaning = _markdown_cell(info.description or "")
            lines.append(f"| `{key}` | {expected} | {_default_text(info)} | {meaning} |")
        lines.append("")
    return "\n".join(lines)
