"""Who shiftsync is, whether it can assume the role, and whether anyone can without the ID."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from shiftsync.aws.policy import trust_policy
from shiftsync.aws.preflight.checks import (
    ASSUME,
    CALLER,
    EXTERNAL_ID_REQUIRED,
    SESSION_NAME,
    CheckResult,
    Context,
    attempt,
)
from shiftsync.aws.session import CLIENT_CONFIG, AssumedRoleSession, caller_arn, error_code
from shiftsync.errors import AccessError, ConfigError


def caller_identity(ctx: Context) -> CheckResult:
    try:
        arn = caller_arn(ctx.base)
    except AccessError as error:
        return CheckResult(CALLER, "fail", error.message, error.fix)
    except BotoCoreError as error:
        return CheckResult(
            CALLER,
            "fail",
            f"sts:GetCallerIdentity could not be called: {error}",
            "check the network path to AWS STS (and AWS_ENDPOINT_URL_STS, if set)",
        )
    configured = ctx.conn.principal_arn
    ctx.principal = configured or arn
    detail = f"shiftsync runs as {arn}"
    if configured and configured != arn:
        detail += f"; the trust policy is to name principal_arn {configured}"
    return CheckResult(CALLER, "pass", detail)


def expected_trust(ctx: Context) -> str:
    """The trust policy `shiftsync policy` generates, as indented JSON."""
    conn = ctx.conn
    unload_here = conn.unload is not None and conn.unload_role_arn == conn.role_arn
    principal = ctx.principal or "<the ARN shiftsync runs as>"
    try:
        document = trust_policy(principal, ctx.external_id, unload_here)
    except ConfigError as error:
        return f"(cannot be built: {error.message})"
    return json.dumps(document, indent=2)


def assume_role(ctx: Context) -> CheckResult:
    conn = ctx.conn
    try:
        ctx.assumed = AssumedRoleSession(
            conn.role_arn,
            ctx.external_id,
            conn.region,
            duration_seconds=conn.session_duration_seconds,
            session_name=SESSION_NAME,
            base=ctx.base,
        )
    except AccessError as error:
        cause = error.__cause__
        code = error_code(cause) if isinstance(cause, ClientError) else ""
        message = (
            str(cause.response.get("Error", {}).get("Message", ""))
            if isinstance(cause, ClientError)
            else error.message
        )
        if code == "ValidationError" and "duration" in message.lower():
            return CheckResult(
                ASSUME,
                "fail",
                f"sts:AssumeRole on {conn.role_arn} refused a session of "
                f"{conn.session_duration_seconds} s: {message}",
                "raise the role's maximum session duration to at least "
                f"{conn.session_duration_seconds} s, or lower "
                f"connections.{ctx.connection_name}.session_duration_seconds",
            )
        return CheckResult(
            ASSUME,
            "fail",
            f"sts:AssumeRole on {conn.role_arn} with external ID {ctx.external_id} was "
            f"refused ({code or message})",
            f"the role's trust policy must let {ctx.principal} call sts:AssumeRole with "
            f"Condition StringEquals sts:ExternalId {ctx.external_id} (this workspace's "
            ".shiftsync/external_id), and the identity shiftsync runs as must be allowed "
            f"sts:AssumeRole on {conn.role_arn}. The trust policy shiftsync expects "
            f"(`shiftsync policy` prints it with the rest):\n{expected_trust(ctx)}",
        )
    return CheckResult(ASSUME, "pass", f"assumed {conn.role_arn} with the external ID")


def external_id_required(ctx: Context) -> CheckResult:
    """AssumeRole WITHOUT the external ID: anything but a refusal is a finding."""
    conn = ctx.conn
    sts = ctx.base.client("sts", config=CLIENT_CONFIG)
    outcome = attempt(
        lambda: sts.assume_role(
            RoleArn=conn.role_arn,
            RoleSessionName=f"{SESSION_NAME}-no-external-id",
            DurationSeconds=900,
        )
    )
    if outcome.ok:
        return CheckResult(
            EXTERNAL_ID_REQUIRED,
            "fail",
            f"the role {conn.role_arn} can be assumed without the external ID: it is open to "
            "the confused deputy problem",
            f"add Condition StringEquals sts:ExternalId {ctx.external_id} to the trust policy "
            f"statement that names {ctx.principal}; the trust policy shiftsync expects:\n"
            f"{expected_trust(ctx)}",
        )
    if outcome.denied:
        return CheckResult(
            EXTERNAL_ID_REQUIRED,
            "pass",
            "sts:AssumeRole without the external ID was refused, as it must be",
        )
    return CheckResult(
        EXTERNAL_ID_REQUIRED,
        "warn",
        f"could not tell whether the role requires the external ID: {outcome.describe()}",
        f"make sure its trust policy has Condition StringEquals sts:ExternalId {ctx.external_id}",
    )
