"""Who shiftsync is, whether it can assume the role, and whether anyone can without the ID
(or with a wrong one)."""

from __future__ import annotations

import json
from typing import Final
from urllib.parse import unquote

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shiftsync.aws.policy import chained_session_fix, chained_session_problem, trust_policy_for
from shiftsync.aws.session import AssumedRoleSession, caller_arn, error_code
from shiftsync.aws.trust import (
    loose_external_id_conditions,
    open_role_fix,
    open_role_message,
    probe_trust,
)
from shiftsync.errors import AccessError
from shiftsync.preflight.checks import (
    ASSUME,
    CALLER,
    EXTERNAL_ID_REQUIRED,
    SESSION_NAME,
    CheckResult,
    Context,
)

OPTIONAL_CALL_CONFIG: Final = Config(
    connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 1}
)


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
    ctx.caller = arn
    detail = f"shiftsync runs as {arn}"
    if configured and configured != arn:
        detail += f"; the trust policy is to name principal_arn {configured}"
    return CheckResult(CALLER, "pass", detail)


def expected_trust(ctx: Context) -> str:
    """The trust policy `shiftsync policy` generates, as indented JSON."""
    return trust_policy_for(ctx.conn, ctx.principal, ctx.external_id)


def assume_role(ctx: Context) -> CheckResult:
    conn = ctx.conn
    chained = chained_session_problem(conn, ctx.caller) if ctx.caller else None
    if chained is not None:
        return CheckResult(
            ASSUME,
            "fail",
            chained,
            chained_session_fix(ctx.connection_name),
        )
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
                f"{conn.session_duration_seconds} s (aws iam update-role --role-name "
                f"{conn.role_name} --max-session-duration {conn.session_duration_seconds}), or "
                f"lower connections.{ctx.connection_name}.session_duration_seconds",
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


def external_id_required(ctx: Context, assumed: CheckResult) -> CheckResult:
    """AssumeRole without the external ID and with a random one: anything but two refusals is
    a finding. Run only after AssumeRole WITH the ID worked: a role nobody can assume refuses
    every probe, which proves nothing."""
    conn = ctx.conn
    if assumed.status != "pass":
        return CheckResult(
            EXTERNAL_ID_REQUIRED,
            "skip",
            "not proven: sts:AssumeRole with the external ID failed, so refusals without it "
            "would prove nothing",
        )
    proof = probe_trust(ctx.base, conn.role_arn)
    if proof.verdict == "open":
        return CheckResult(
            EXTERNAL_ID_REQUIRED,
            "fail",
            open_role_message(proof),
            open_role_fix(ctx.external_id, ctx.principal, expected_trust(ctx)),
        )
    if proof.verdict == "unknown":
        unclear = "; ".join(
            f"{probe.label}: {probe.detail}" for probe in proof.probes if probe.verdict == "unknown"
        )
        return CheckResult(
            EXTERNAL_ID_REQUIRED,
            "warn",
            f"could not tell whether the role requires the external ID ({unclear})",
            f"make sure its trust policy has Condition StringEquals sts:ExternalId "
            f"{ctx.external_id}, then run `shiftsync check` again",
        )
    loose, readable = _loose_conditions(ctx)
    if loose:
        return CheckResult(
            EXTERNAL_ID_REQUIRED,
            "warn",
            "sts:AssumeRole without the external ID and with a random one were refused, but the "
            "trust policy tests sts:ExternalId loosely: " + "; ".join(loose),
            open_role_fix(ctx.external_id, ctx.principal, expected_trust(ctx)),
        )
    seen = (
        "; the trust policy (read with iam:GetRole) names it with StringEquals"
        if readable
        else "; the trust policy itself was not read (iam:GetRole on the role is optional)"
    )
    return CheckResult(
        EXTERNAL_ID_REQUIRED,
        "pass",
        "sts:AssumeRole without the external ID and with a random one were refused, as they "
        f"must be{seen}",
    )


def _loose_conditions(ctx: Context) -> tuple[list[str], bool]:
    """Loose tests of sts:ExternalId in the role's trust policy, and whether it was readable."""
    if ctx.assumed is None:
        return [], False
    # Optional and global: one quick try, so that a network without a path to IAM costs
    # seconds, not the retries of the calls that matter.
    iam = ctx.session.boto3.client("iam", config=OPTIONAL_CALL_CONFIG)
    outcome = ctx.call(iam.get_role, RoleName=ctx.conn.role_name)
    if not outcome.ok:
        return [], False
    document = outcome.value.get("Role", {}).get("AssumeRolePolicyDocument")
    if isinstance(document, str):
        try:
            document = json.loads(unquote(document))
        except ValueError:
            return [], False
    if not isinstance(document, dict):
        return [], False
    return loose_external_id_conditions(document), True
