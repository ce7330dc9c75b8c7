"""Proof that the role still requires this workspace's external ID, wherever the role is used.

AWS's advice on the confused deputy problem is to refuse a role whose trust policy does not
require the external ID. Checking it once at set-up is not enough: a trust policy loosened
later (the condition removed, or turned into `StringLike sts:ExternalId "*"`) would go
unnoticed. So every command that assumes the role first proves, at most once per
`trust_check_interval_seconds`, that STS refuses the role

- without any external ID, and
- with a random external ID that no trust policy can name on purpose,

and refuses to go on when either is accepted. The proof is remembered per role and external
ID in `.shiftsync/trust_checked.json` (owner-only), so the two extra STS calls are made once a
day by default. The probes are refused AssumeRole calls: they never yield credentials that
shiftsync uses (a probe that succeeds is the finding, and its session is dropped).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shiftsync.aws.session import CLIENT_CONFIG, AssumedRoleSession, base_session, error_code
from shiftsync.config import ConnectionConfig
from shiftsync.errors import AccessError, ConfigError
from shiftsync.workspace import Workspace, private_write_text

if TYPE_CHECKING:
    from mypy_boto3_sts.type_defs import AssumeRoleRequestTypeDef

CACHE_FILE_NAME: Final = "trust_checked.json"
PROBE_SESSION_NAME: Final = "shiftsync-trust-probe"
# The shortest session STS grants: a probe that is (wrongly) accepted holds the least.
PROBE_DURATION_SECONDS: Final = 900
DENIED_CODES: Final = frozenset({"AccessDenied", "AccessDeniedException"})

Verdict = Literal["refused", "open", "unknown"]


@dataclass(frozen=True)
class Probe:
    """One AssumeRole attempt that must be refused."""

    label: str  # "without an external ID", "with a random external ID"
    external_id: str | None
    verdict: Verdict
    detail: str = ""  # the error code and message when the verdict is "unknown"


@dataclass(frozen=True)
class TrustProof:
    """What the probes showed about a role's trust policy."""

    role_arn: str
    probes: tuple[Probe, ...]

    @property
    def verdict(self) -> Verdict:
        verdicts = {probe.verdict for probe in self.probes}
        if "open" in verdicts:
            return "open"
        return "unknown" if "unknown" in verdicts else "refused"

    @property
    def accepted(self) -> list[Probe]:
        return [probe for probe in self.probes if probe.verdict == "open"]


def random_external_id() -> str:
    """An external ID no trust policy names on purpose (same shape as a workspace's)."""
    return "shiftsync-probe-" + secrets.token_hex(16)


def probe_trust(base: boto3.Session, role_arn: str) -> TrustProof:
    """AssumeRole without an external ID, then with a random one: both must be refused."""
    sts = base.client("sts", config=CLIENT_CONFIG)
    probes = []
    for label, external_id in (
        ("without an external ID", None),
        ("with a random external ID", random_external_id()),
    ):
        kwargs: AssumeRoleRequestTypeDef = {
            "RoleArn": role_arn,
            "RoleSessionName": PROBE_SESSION_NAME,
            "DurationSeconds": PROBE_DURATION_SECONDS,
        }
        if external_id is not None:
            kwargs["ExternalId"] = external_id
        try:
            sts.assume_role(**kwargs)
        except ClientError as error:
            code = error_code(error)
            message = str(error.response.get("Error", {}).get("Message", ""))
            verdict: Verdict = "refused" if code in DENIED_CODES else "unknown"
            probes.append(Probe(label, external_id, verdict, f"{code}: {message}".strip(": ")))
            continue
        except BotoCoreError as error:
            probes.append(Probe(label, external_id, "unknown", str(error)))
            continue
        probes.append(Probe(label, external_id, "open"))
    return TrustProof(role_arn, tuple(probes))


def open_role_message(proof: TrustProof) -> str:
    """What `check` and every other command say about a role assumable without the ID."""
    how = " and ".join(probe.label for probe in proof.accepted)
    return (
        f"the role {proof.role_arn} can be assumed {how}: it is open to the confused deputy problem"
    )


def open_role_fix(external_id: str, principal: str | None, expected_trust: str) -> str:
    named = f" that names {principal}" if principal else " that names shiftsync's identity"
    return (
        f"make the trust policy statement{named} require Condition StringEquals "
        f"sts:ExternalId {external_id} (no StringLike, no wildcard, no IfExists); the trust "
        f"policy shiftsync expects:\n{expected_trust}"
    )


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def _names_aws_principal(statement: Mapping[str, object]) -> bool:
    principal = statement.get("Principal")
    return principal == "*" or (isinstance(principal, dict) and "AWS" in principal)


def _allows_assume_role(statement: Mapping[str, object]) -> bool:
    actions = [str(action).lower() for action in _as_list(statement.get("Action", []))]
    return statement.get("Effect") == "Allow" and any(
        action in ("sts:assumerole", "sts:*", "*") for action in actions
    )


def loose_external_id_conditions(document: Mapping[str, object]) -> list[str]:
    """How a trust policy tests sts:ExternalId less strictly than StringEquals, statement by
    statement (only statements that let an AWS principal call sts:AssumeRole).

    The probes catch what they can try; these are the tests they cannot prove safe: a
    StringLike pattern (a second workspace's ID may match it), …IfExists or Null (a request
    without the key passes), a negated or case-blind operator, or no test at all.
    """
    findings: list[str] = []
    for index, statement in enumerate(_as_list(document.get("Statement", []))):
        if not isinstance(statement, dict) or not _allows_assume_role(statement):
            continue
        if not _names_aws_principal(statement):
            continue
        name = str(statement.get("Sid") or f"statement {index + 1}")
        tests = [
            (str(operator), values)
            for operator, entries in (statement.get("Condition") or {}).items()
            if isinstance(entries, dict)
            for key, values in entries.items()
            if str(key).lower() == "sts:externalid"
        ]
        if not tests:
            findings.append(f"{name} does not test sts:ExternalId at all")
            continue
        for operator, values in tests:
            plain = operator.split(":")[-1]
            shown = ", ".join(str(value) for value in _as_list(values))
            if plain.endswith("IfExists"):
                findings.append(f"{name} uses {operator}: a request without an external ID passes")
            elif plain == "Null":
                findings.append(f"{name} uses Null on sts:ExternalId: any external ID passes")
            elif plain in ("StringLike", "ArnLike") and any(
                ch in str(value) for value in _as_list(values) for ch in "*?"
            ):
                findings.append(
                    f"{name} uses {operator} with the pattern {shown}: external IDs of other "
                    "workspaces may match it"
                )
            elif plain not in ("StringEquals", "StringLike"):
                findings.append(f"{name} uses {operator} {shown} instead of StringEquals")
    return findings


# ---------------------------------------------------------------------------------------------
# The cache: one proof per role and external ID per interval


def _cache_key(role_arn: str, external_id: str) -> str:
    # A digest, so that the file names neither the external ID nor the pairing in plain text.
    return hashlib.sha256(f"{role_arn}\n{external_id}".encode()).hexdigest()


def _read_cache(workspace: Workspace) -> dict[str, str]:
    path = workspace.dot_dir / CACHE_FILE_NAME
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(k): str(v) for k, v in loaded.items()}


def proven_recently(
    workspace: Workspace,
    role_arn: str,
    external_id: str,
    interval_seconds: int,
    now: datetime.datetime,
) -> bool:
    if interval_seconds <= 0:
        return False
    stamp = _read_cache(workspace).get(_cache_key(role_arn, external_id))
    if stamp is None:
        return False
    try:
        when = datetime.datetime.fromisoformat(stamp)
    except ValueError:
        return False
    # A clock set back must not stretch the interval: a stamp from the future is not trusted.
    return when <= now < when + datetime.timedelta(seconds=interval_seconds)


def remember_proof(
    workspace: Workspace, role_arn: str, external_id: str, now: datetime.datetime
) -> None:
    entries = _read_cache(workspace)
    entries[_cache_key(role_arn, external_id)] = now.isoformat()
    private_write_text(
        workspace.dot_dir / CACHE_FILE_NAME, json.dumps(entries, indent=2, sort_keys=True) + "\n"
    )


def forget_proof(workspace: Workspace, role_arn: str, external_id: str) -> None:
    entries = _read_cache(workspace)
    if entries.pop(_cache_key(role_arn, external_id), None) is not None:
        private_write_text(
            workspace.dot_dir / CACHE_FILE_NAME,
            json.dumps(entries, indent=2, sort_keys=True) + "\n",
        )


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def require_external_id(
    workspace: Workspace,
    role_arn: str,
    external_id: str,
    *,
    base: boto3.Session,
    interval_seconds: int,
    expected_trust: Callable[[], str],
    principal: Callable[[], str | None],
    now: Callable[[], datetime.datetime] = _utc_now,
) -> TrustProof | None:
    """Raise AccessError when the role is assumable without this external ID.

    Returns the fresh proof, or None when a recent one was found in the workspace. Call it
    after AssumeRole WITH the ID succeeded: only then does a refusal prove anything.
    """
    moment = now()
    if proven_recently(workspace, role_arn, external_id, interval_seconds, moment):
        return None
    proof = probe_trust(base, role_arn)
    if proof.verdict == "open":
        forget_proof(workspace, role_arn, external_id)
        raise AccessError(
            open_role_message(proof),
            fix=open_role_fix(external_id, principal(), expected_trust()),
        )
    if proof.verdict == "refused":
        remember_proof(workspace, role_arn, external_id, moment)
    # "unknown" (throttled, a network failure) is not remembered: the next run probes again.
    return proof


# ---------------------------------------------------------------------------------------------
# What commands call


def open_session(
    workspace: Workspace,
    connection: ConnectionConfig,
    *,
    connection_name: str | None = None,
    base: boto3.Session | None = None,
) -> AssumedRoleSession:
    """The connection's role, assumed with the workspace's external ID, trust proven.

    AccessError when the role cannot be assumed
    with the ID, or when it can be assumed without it; ConfigError when the session asked for
    is longer than role chaining allows.
    """
    from shiftsync.aws.policy import (
        CHAINED_SESSION_MAX_SECONDS,
        chained_session_fix,
        chained_session_problem,
        trust_policy_for,
    )
    from shiftsync.aws.session import caller_arn

    base = base or base_session(connection.region)
    external_id = workspace.external_id
    if connection.session_duration_seconds > CHAINED_SESSION_MAX_SECONDS:
        # Only then is the caller asked: a chained session over an hour always fails.
        problem = chained_session_problem(connection, caller_arn(base))
        if problem is not None:
            raise ConfigError(problem, fix=chained_session_fix(connection_name or "<name>"))
    session = AssumedRoleSession(
        connection.role_arn,
        external_id,
        connection.region,
        duration_seconds=connection.session_duration_seconds,
        base=base,
    )
    caller: dict[str, str | None] = {}

    def principal() -> str | None:
        if "arn" not in caller:
            try:
                caller["arn"] = connection.principal_arn or caller_arn(base)
            except AccessError:
                caller["arn"] = connection.principal_arn
        return caller["arn"]

    def expected() -> str:
        return trust_policy_for(connection, principal(), external_id)

    require_external_id(
        workspace,
        connection.role_arn,
        external_id,
        base=base,
        interval_seconds=connection.trust_check_interval_seconds,
        expected_trust=expected,
        principal=principal,
    )
    return session


def cache_entries(workspace: Workspace) -> Mapping[str, str]:
    """The remembered proofs (digest → time), for tests and `check`."""
    return _read_cache(workspace)


__all__ = [
    "CACHE_FILE_NAME",
    "Probe",
    "TrustProof",
    "forget_proof",
    "loose_external_id_conditions",
    "open_role_fix",
    "open_role_message",
    "open_session",
    "probe_trust",
    "random_external_id",
    "remember_proof",
    "require_external_id",
]
