"""`shiftsync check`: prove, call by call, that a connection's role works before the first sync.

Each check makes the real call a sync would make and reports pass, fail, warn or skip, with the
exact fix. The order follows the path of a sync:

    sts:GetCallerIdentity           who shiftsync runs as                        (identity.py)
    sts:AssumeRole                  the role, with this workspace's external ID
    external ID required            AssumeRole WITHOUT the ID, and with a random wrong one,
                                    must be refused; if either is not, nothing else runs (AWS:
                                    do not use such a role). Skipped when AssumeRole with the
                                    ID failed (a refusal then proves nothing). Warns about a
                                    StringLike/wildcard/Null/IfExists test of sts:ExternalId
                                    when the trust policy is readable (optional iam:GetRole).
    redshift-serverless:GetCredentials   implied by every Data API call on the workgroup
                                    (on a cluster: GetClusterCredentialsWithIAM,
                                    GetClusterCredentials or the secret's GetSecretValue,
                                    the secret read to prove username and password)
    redshift-data:ListDatabases … :CancelStatement   the nine actions, each for real (data_api.py)
    table privileges                SELECT … LIMIT 0 on every table the connection's syncs read
    s3:PutObject … s3:DeleteObject  a probe object under the staging prefix         (staging.py)
    bucket region                   from S3's x-amz-bucket-region header
    UNLOAD                          a real UNLOAD: Redshift assumes the role and writes Parquet
    probe cleanup                   every object under the probe prefix removed
    destination <name>              each destination of the connection's syncs, probed as the
                                    identity that writes it                  (destinations.py)

The last four run only when the connection has `unload:`. With a separate UNLOAD role
(`unload.iam_role_arn`) shiftsync's role may not write (its generated policy has no
s3:PutObject): the bucket region and UNLOAD come first, UNLOAD writes the probe files as the
UNLOAD role, and the S3 checks read, list and delete the manifest it wrote. "skip" means not
reached because an earlier required step failed; its detail says which. No check output holds
a credential: details carry ARNs, error codes and AWS's messages only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import boto3

from shiftsync.aws.session import base_session as default_base_session
from shiftsync.config import ShiftsyncConfig
from shiftsync.errors import ConfigError
from shiftsync.preflight.checks import (
    ASSUME,
    DATA_API_CHECKS,
    EXTERNAL_ID_REQUIRED,
    IDENTITY_CHECKS,
    S3_ACTION_CHECKS,
    STAGING_CHECKS,
    CheckResult,
    Context,
    Status,
    glob_to_like,
    planned_checks,
    preflight_ok,
    schema_patterns,
    selected_tables,
)
from shiftsync.preflight.data_api import DataApiChecks
from shiftsync.preflight.destinations import destination_checks
from shiftsync.preflight.identity import assume_role, caller_identity, external_id_required
from shiftsync.preflight.staging import StagingChecks
from shiftsync.workspace import Workspace


def run_preflight(
    workspace_or_config: Workspace | ShiftsyncConfig,
    connection_name: str | None = None,
    *,
    base_session: boto3.Session | None = None,
    external_id: str | None = None,
    progress: Callable[[CheckResult], None] | None = None,
    destinations: bool = False,
) -> list[CheckResult]:
    """Run every check for one connection (the only one when `connection_name` is None), and
    with `destinations` a probe of each destination its syncs write (`shiftsync check` does).

    Raises ConfigError when the configuration cannot be used (unknown connection, no external
    ID); everything AWS or Redshift answers becomes a CheckResult. `external_id` is required
    with a bare configuration. `progress` gets each result as soon as it is known.
    """
    folder = Path.cwd()
    if isinstance(workspace_or_config, Workspace):
        config = workspace_or_config.config
        external_id = external_id or workspace_or_config.external_id
        folder = workspace_or_config.folder
    else:
        config = workspace_or_config
    if external_id is None:
        raise ConfigError(
            "the preflight needs the workspace's external ID",
            fix="pass the Workspace, or external_id= with a bare configuration",
        )
    name, conn = config.connection(connection_name)
    ctx = Context(
        connection_name=name,
        conn=conn,
        config=config,
        external_id=external_id,
        base=base_session or default_base_session(conn.region),
        progress=progress,
    )
    _run(ctx)
    verdicts = {result.name: result.status for result in ctx.results}
    if (
        destinations
        and verdicts.get(ASSUME) == "pass"
        and verdicts.get(EXTERNAL_ID_REQUIRED) != "fail"
    ):
        destination_checks(ctx, folder)
    return ctx.results


def _run(ctx: Context) -> None:
    if ctx.add(caller_identity(ctx)).status != "pass":
        ctx.skip_rest("sts:GetCallerIdentity failed: shiftsync has no working AWS identity")
        return
    assumed = ctx.add(assume_role(ctx))
    if ctx.add(external_id_required(ctx, assumed)).status == "fail":
        ctx.skip_rest(
            "the role can be assumed without the external ID (or with a wrong one); AWS "
            "advises not to use it until its trust policy requires the external ID"
        )
        return
    if assumed.status != "pass":
        ctx.skip_rest("sts:AssumeRole with the external ID failed")
        return
    DataApiChecks(ctx).run()
    if ctx.conn.unload is not None:
        StagingChecks(ctx).run()


__all__ = [
    "DATA_API_CHECKS",
    "IDENTITY_CHECKS",
    "S3_ACTION_CHECKS",
    "STAGING_CHECKS",
    "CheckResult",
    "Status",
    "glob_to_like",
    "planned_checks",
    "preflight_ok",
    "run_preflight",
    "schema_patterns",
    "selected_tables",
]
