"""`shiftsync check` of each S3 action a destination in S3 needs (Parquet, Iceberg, Delta), as
the identity that writes it: one result per action of the statements `shiftsync policy` prints
for it (aws/destination_policy.py), so a refused one is named with its resource and the fix.

The probe is one object under the destination's prefix: put, read, listed, deleted. Each call
is judged on its own (a read of an object a refused put never wrote answers NoSuchKey, which
proves the read allowed), so removing any one action fails exactly that action's check.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Final

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shiftsync.aws.destination_policy import split_s3_url
from shiftsync.aws.session import CLIENT_CONFIG
from shiftsync.destinations.lake.s3 import resolve_s3
from shiftsync.destinations.s3fs import CredentialsProvider
from shiftsync.preflight.checks import (
    DELETE,
    DENIED_CODES,
    GET,
    LIST_BUCKET,
    PUT,
    CheckResult,
    Context,
)

DESTINATION_S3_ACTIONS: Final = (PUT, GET, LIST_BUCKET, DELETE)
PROBE_FOLDER: Final = "_shiftsync_check_"
# Answers that prove the action allowed although the call did not succeed.
_ALLOWED_CODES: Final = frozenset({"NoSuchKey", "404"})


def action_check_name(destination: str, action: str) -> str:
    return f"destination {destination} {action}"


def _partition(ctx: Context) -> str:
    arn = ctx.caller or ctx.conn.role_arn
    parts = arn.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


def s3_action_checks(
    ctx: Context,
    name: str,
    url: str,
    provider: CredentialsProvider | None,
    identity: str,
) -> bool:
    """One result per action for the destination `name` at `url`; whether all passed."""
    bucket, prefix = split_s3_url(url)
    bucket_arn = f"arn:{_partition(ctx)}:s3:::{bucket}"
    key = f"{prefix}{PROBE_FOLDER}{uuid.uuid4().hex}/probe"
    s3 = resolve_s3(provider)
    credentials = s3.credentials
    client = boto3.session.Session(
        aws_access_key_id=credentials.access_key if credentials else None,
        aws_secret_access_key=credentials.secret_key if credentials else None,
        aws_session_token=credentials.token if credentials else None,
        region_name=s3.region,
    ).client("s3", endpoint_url=s3.endpoint, config=CLIENT_CONFIG)
    calls: dict[str, tuple[Callable[[], object], str]] = {
        PUT: (lambda: client.put_object(Bucket=bucket, Key=key, Body=b"shiftsync check\n"), ""),
        GET: (lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read(), ""),
        LIST_BUCKET: (
            lambda: client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1),
            f" with s3:prefix {prefix}*",
        ),
        DELETE: (lambda: client.delete_object(Bucket=bucket, Key=key), ""),
    }
    passed = True
    for action in DESTINATION_S3_ACTIONS:
        call, condition = calls[action]
        resource = bucket_arn if action == LIST_BUCKET else f"{bucket_arn}/{prefix}*"
        check = action_check_name(name, action)
        try:
            call()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _ALLOWED_CODES:
                ctx.add(CheckResult(check, "pass", f"{action} allowed on {resource}"))
                continue
            passed = False
            refused = code in DENIED_CODES
            left = (
                f"; the probe object s3://{bucket}/{key} is left behind" if action == DELETE else ""
            )
            ctx.add(
                CheckResult(
                    check,
                    "fail",
                    f"{identity} was {'refused' if refused else 'answered ' + code + ' for'} "
                    f"{action} on {resource}{condition}{left}",
                    f"allow {action} on {resource}{condition} for {identity} (`shiftsync "
                    "policy` prints the statements this destination needs)",
                )
            )
        except BotoCoreError as exc:
            passed = False
            ctx.add(
                CheckResult(
                    check,
                    "fail",
                    f"{action} on {resource} as {identity} failed: {exc}",
                    "check the S3 endpoint and the credentials of this destination",
                )
            )
        else:
            ctx.add(CheckResult(check, "pass", f"{action} allowed on {resource}"))
    return passed


__all__ = ["DESTINATION_S3_ACTIONS", "action_check_name", "s3_action_checks"]
