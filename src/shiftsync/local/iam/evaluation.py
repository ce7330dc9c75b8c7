"""IAM as AWS evaluates it, patched into moto (pinned: moto[server]==5.2.5).

Stock moto trusts a role only when it lives in the caller's own account, lets a missing
`sts:ExternalId` pass, knows no account-root principal, skips conditions in identity policies,
and never expires a session. Here the caller's identity policy and the role's trust policy
are both evaluated, across accounts, with conditions that fail closed, and assumed-role
sessions expire at their `Expiration` (or when a fault expires them early).
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Final

from moto.core.exceptions import _RESTError as RESTError
from moto.iam import access_control
from moto.iam.models import iam_backends
from moto.s3 import responses as s3_responses
from moto.sts.exceptions import STSValidationError
from moto.sts.models import AssumedRole, STSBackend, sts_backends

# Extra condition keys for the request being authorised (set by the redshift-data plug-in).
REQUEST_CONTEXT: ContextVar[Mapping[str, str] | None] = ContextVar(
    "shiftsync_request_context", default=None
)

_lock = threading.Lock()
_expired_access_keys: set[str] = set()
_installed = False

_POLICY_VARIABLE: Final = re.compile(r"\$\{([^}]+)\}")


class ExpiredTokenError(RESTError):
    code = 400

    def __init__(self, service: str = "") -> None:
        super().__init__("ExpiredToken", "The security token included in the request is expired")
        if service == "s3":
            # S3 answers with its own <Error> document, not the query protocol's ErrorResponse.
            self.description = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>ExpiredToken</Code><Message>{self.message}</Message></Error>"
            )


def expire_all_sessions() -> int:
    """Expire every assumed-role session issued so far; returns how many."""
    count = 0
    with _lock:
        for key_id in _all_assumed_access_key_ids():
            if key_id not in _expired_access_keys:
                _expired_access_keys.add(key_id)
                count += 1
    return count


def expire_session(access_key_id: str) -> bool:
    """Expire one assumed-role session (by its access key id); False if no such session."""
    if find_assumed_role(access_key_id) is None:
        return False
    with _lock:
        _expired_access_keys.add(access_key_id)
    return True


def _all_assumed_access_key_ids() -> Iterator[str]:
    for account_id in list(sts_backends.keys()):
        for backend in sts_backends[account_id].values():
            for assumed in backend.assumed_roles:
                yield assumed.access_key_id


def find_assumed_role(access_key_id: str) -> Any | None:
    """moto's AssumedRole for an access key, from whichever account issued it."""
    for account_id in list(sts_backends.keys()):
        for backend in sts_backends[account_id].values():
            for assumed in backend.assumed_roles:
                if assumed.access_key_id == access_key_id:
                    return assumed
    return None


def _is_expired(access_key_id: str) -> bool:
    with _lock:
        if access_key_id in _expired_access_keys:
            return True
    assumed = find_assumed_role(access_key_id)
    if assumed is None:
        return False
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    expiration = assumed.expiration
    if expiration.tzinfo is not None:
        expiration = expiration.astimezone(datetime.UTC).replace(tzinfo=None)
    return bool(now >= expiration)


# ---------------------------------------------------------------------------------------------
# Condition evaluation


def _matches_like(actual: str, pattern: str) -> bool:
    # IAM's …Like operators know only * and ?: "[" is a plain character (fnmatch would read a
    # class, so that "shiftsync-[0-9]*" matched IDs that AWS does not).
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, actual, re.DOTALL) is not None


_STRING_OPERATORS: Final[dict[str, Callable[[str, str], bool]]] = {
    "StringEquals": lambda a, e: a == e,
    "StringNotEquals": lambda a, e: a != e,
    "StringEqualsIgnoreCase": lambda a, e: a.lower() == e.lower(),
    "StringNotEqualsIgnoreCase": lambda a, e: a.lower() != e.lower(),
    "StringLike": _matches_like,
    "StringNotLike": lambda a, e: not _matches_like(a, e),
    "ArnEquals": lambda a, e: a == e,
    "ArnLike": _matches_like,
    "ArnNotEquals": lambda a, e: a != e,
    "ArnNotLike": lambda a, e: not _matches_like(a, e),
    "Bool": lambda a, e: a.lower() == e.lower(),
}
_NEGATED: Final = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
}


def _substitute_variables(value: str, context: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        return _lookup(context, match.group(1)) or ""

    return _POLICY_VARIABLE.sub(replace, value)


def _lookup(context: Mapping[str, str], key: str) -> str | None:
    lowered = key.lower()
    for name, value in context.items():
        if name.lower() == lowered:
            return value
    return None


def conditions_hold(block: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    """Evaluate a policy's Condition block as IAM does.

    A key missing from the request fails a positive operator and satisfies a negated one
    (StringNotEquals …), as in AWS; `…IfExists` lets a missing key pass. Operators the stand-in
    does not know (Numeric…, Date…, IpAddress, ForAnyValue:…) fail closed.
    """
    for raw_operator, entries in block.items():
        if_exists = raw_operator.endswith("IfExists")
        operator = raw_operator.removesuffix("IfExists")
        for key, expected_raw in entries.items():
            expected = [expected_raw] if isinstance(expected_raw, str | bool) else expected_raw
            expected_values = [_substitute_variables(str(e), context) for e in expected]
            actual = _lookup(context, key)
            if operator == "Null":
                want_missing = expected_values[0].lower() == "true"
                if (actual is None) != want_missing:
                    return False
                continue
            check = _STRING_OPERATORS.get(operator)
            if check is None:
                return False
            if actual is None:
                if if_exists or operator in _NEGATED:
                    continue
                return False
            if operator in _NEGATED:
                if not all(check(actual, e) for e in expected_values):
                    return False
            elif not any(check(actual, e) for e in expected_values):
                return False
    return True


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _as_list(document.get("Statement", [])) if isinstance(s, dict)]


def _element_matches(patterns: Any, value: str, *, case_insensitive: bool = False) -> bool:
    for pattern in _as_list(patterns):
        if case_insensitive:
            if fnmatch.fnmatchcase(value.lower(), str(pattern).lower()):
                return True
        elif fnmatch.fnmatchcase(value, str(pattern)):
            return True
    return False


def _statement_covers(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        action_ok = _element_matches(statement["Action"], action, case_insensitive=True)
    elif "NotAction" in statement:
        action_ok = not _element_matches(statement["NotAction"], action, case_insensitive=True)
    else:
        action_ok = False
    if "Resource" in statement:
        resource_ok = _element_matches(statement["Resource"], resource)
    elif "NotResource" in statement:
        resource_ok = not _element_matches(statement["NotResource"], resource)
    else:
        resource_ok = True
    return action_ok and resource_ok


def evaluate_identity_policies(
    documents: list[Mapping[str, Any]], action: str, resource: str, context: Mapping[str, str]
) -> str:
    """'deny', 'allow' or 'neutral', with AWS's rule that an explicit Deny wins."""
    allowed = False
    for document in documents:
        for statement in _statements(document):
            if not _statement_covers(statement, action, resource):
                continue
            if not conditions_hold(statement.get("Condition", {}), context):
                continue
            if statement.get("Effect") == "Deny":
                return "deny"
            if statement.get("Effect") == "Allow":
                allowed = True
    return "allow" if allowed else "neutral"


def principal_matches(principal_element: Any, caller_arn: str, caller_account: str) -> bool:
    """Whether a trust policy's Principal names the caller (IAM principals only)."""
    if principal_element == "*":
        return True
    if not isinstance(principal_element, dict):
        return False
    candidates = {caller_arn}
    role = re.match(r"arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/", caller_arn)
    if role:
        candidates.add(f"arn:{role.group(1)}:iam::{role.group(2)}:role/{role.group(3)}")
    for expected in _as_list(principal_element.get("AWS", [])):
        expected = str(expected)
        if expected == "*" or expected in candidates:
            return True
        if expected == caller_account or re.fullmatch(
            rf"arn:[^:]+:iam::{caller_account}:root", expected
        ):
            return True
    return False


def trust_allows(
    trust_document: Mapping[str, Any],
    action: str,
    caller_arn: str,
    caller_account: str,
    context: Mapping[str, str],
) -> bool:
    allowed = False
    for statement in _statements(trust_document):
        if not _element_matches(statement.get("Action", []), action, case_insensitive=True):
            continue
        if not principal_matches(statement.get("Principal"), caller_arn, caller_account):
            continue
        if not conditions_hold(statement.get("Condition", {}), context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def service_trusted(
    trust_document: Mapping[str, Any], service: str, context: Mapping[str, str] | None = None
) -> bool:
    """Whether the trust policy lets an AWS service (e.g. redshift.amazonaws.com) assume it.

    `context` holds the keys the service sends: Redshift passes the database user's ARN as
    sts:ExternalId ("Restricting access to IAM roles"), so a statement conditioned on it holds
    only for that user; conditions are evaluated as for any caller (fail closed).
    """
    for statement in _statements(trust_document):
        if statement.get("Effect") != "Allow":
            continue
        if not _element_matches(
            statement.get("Action", []), "sts:AssumeRole", case_insensitive=True
        ):
            continue
        principal = statement.get("Principal")
        if not isinstance(principal, dict) or service not in _as_list(principal.get("Service", [])):
            continue
        if conditions_hold(statement.get("Condition", {}), context or {}):
            return True
    return False


def find_role(role_arn: str) -> Any | None:
    """moto's Role for an ARN, looked up in the account the ARN names."""
    match = re.fullmatch(r"arn:([^:]+):iam::(\d{12}):role/(?:.*/)?([^/]+)", role_arn)
    if not match:
        return None
    partition, account_id = match.group(1), match.group(2)
    try:
        backend = iam_backends[account_id][partition]
        return backend.get_role(match.group(3))
    except Exception:
        return None


def role_policy_documents(role: Any) -> list[Mapping[str, Any]]:
    """The identity policies (inline and attached) of a moto Role, parsed."""
    documents: list[Mapping[str, Any]] = []
    for document in role.policies.values():
        documents.append(json.loads(document) if isinstance(document, str) else document)
    for policy in role.managed_policies.values():
        documents.append(access_control.IAMPolicy(policy)._policy_json)
    return documents


# ---------------------------------------------------------------------------------------------
# The patch


def _request_context(request: Any) -> dict[str, str]:
    key = request._access_key
    context: dict[str, str] = {"aws:PrincipalArn": key.arn, "aws:PrincipalAccount": key.account_id}
    if isinstance(key, access_control.AssumedRoleAccessKey):
        assumed = find_assumed_role(key._access_key_id)
        if assumed is not None:
            context["aws:userid"] = assumed.user_id
    else:
        context["aws:userid"] = key._access_key_id
    data = request._data or {}
    for data_key, context_key in (("ExternalId", "sts:ExternalId"), ("prefix", "s3:prefix")):
        if data_key in data:
            value = data[data_key]
            context[context_key] = value[0] if isinstance(value, list) else str(value)
    extra = REQUEST_CONTEXT.get()
    if extra:
        context.update(extra)
    return context


def _identity_documents(request: Any) -> list[Mapping[str, Any]]:
    return [
        access_control.IAMPolicy(p)._policy_json for p in request._access_key.collect_policies()
    ]


def _check_action_permitted(self: Any, resource: str) -> None:
    if self._action == "sts:GetCallerIdentity":
        return
    context = _request_context(self)
    verdict = evaluate_identity_policies(_identity_documents(self), self._action, resource, context)
    if verdict != "allow":
        self._raise_access_denied()
    if self._action.lower() == "sts:assumerole":
        role = find_role(resource)
        if role is None:
            self._raise_access_denied()
            return
        trust = json.loads(role.assume_role_policy_document)
        if not trust_allows(
            trust, "sts:AssumeRole", self._access_key.arn, self._access_key.account_id, context
        ):
            self._raise_access_denied()


_original_create_access_key = access_control.create_access_key
_original_create_aws_request = access_control.IAMRequestBase._create_aws_request
_original_assume_role = STSBackend.assume_role

# AssumeRole's DurationSeconds bounds (STS API reference); a role may lower the upper one.
MIN_SESSION_SECONDS: Final = 900
MAX_SESSION_SECONDS: Final = 43200


def check_session_duration(duration: int, role_max_seconds: int | None) -> str | None:
    """AWS's ValidationError message for a DurationSeconds AssumeRole refuses, else None."""
    if duration < MIN_SESSION_SECONDS:
        return (
            f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to "
            f"satisfy constraint: Member must have value greater than or equal to "
            f"{MIN_SESSION_SECONDS}"
        )
    if duration > MAX_SESSION_SECONDS:
        return (
            f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to "
            f"satisfy constraint: Member must have value less than or equal to "
            f"{MAX_SESSION_SECONDS}"
        )
    if role_max_seconds is not None and duration > role_max_seconds:
        return "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    return None


def _assume_role(
    self: STSBackend,
    region_name: str,
    role_session_name: str,
    role_arn: str,
    policy: str,
    duration: int,
    external_id: str,
) -> AssumedRole:
    role = find_role(role_arn)
    role_max = int(role.max_session_duration) if role is not None else None
    problem = check_session_duration(duration, role_max)
    if problem is not None:
        raise STSValidationError(problem)
    return _original_assume_role(
        self, region_name, role_session_name, role_arn, policy, duration, external_id
    )


def _create_access_key(
    account_id: str, partition: str, access_key_id: str, headers: dict[str, str]
) -> Any:
    if "X-Amz-Security-Token" in headers and _is_expired(access_key_id):
        scope = re.search(
            r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("Authorization", "")
        )
        raise ExpiredTokenError(scope.group(1) if scope else "")
    return _original_create_access_key(account_id, partition, access_key_id, headers)


def _create_aws_request(self: Any) -> Any:
    request = _original_create_aws_request(self)
    # moto signs an empty awsJson body as its parsed headers; the client signed zero bytes.
    if not self._body and self._headers.get("X-Amz-Target"):
        request.data = b""
    return request


def install() -> None:
    """Patch moto once per process."""
    global _installed
    if _installed:
        return
    access_control.IAMRequestBase.check_action_permitted = _check_action_permitted  # type: ignore[method-assign]
    access_control.create_access_key = _create_access_key
    access_control.IAMRequestBase._create_aws_request = _create_aws_request  # type: ignore[method-assign]
    STSBackend.assume_role = _assume_role  # type: ignore[method-assign]
    # AWS authorises GetObjectAttributes as its own action; moto maps it to s3:GetObject.
    s3_responses.ACTION_MAP["KEY"]["GET"]["attributes"] = "GetObjectAttributes"
    _installed = True
