"""Who calls the plug-in and whether IAM lets them: moto's IAM engine, AWS's resources.

A provisioned cluster's database user comes from the caller's authentication mode, each with
its own action (`cluster_db_user`).

IAM runs first through moto's engine (patched in iam/evaluation.py), with the workgroup's ARN as the
resource of the operations that name one, and denials go back as JSON `AccessDeniedException`.
The Data API also calls redshift-serverless:GetCredentials for the caller, so the caller's
role must allow that too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from moto.core.exceptions import JsonRESTError
from moto.core.exceptions import _RESTError as RESTError
from moto.core.responses import BaseResponse

from shiftsync.local.data_api.request import api_error, request_body, validation_error
from shiftsync.local.data_api.sessions import session_of
from shiftsync.local.data_api.state import Cluster, active, find_target
from shiftsync.local.faults.kinds import WORKGROUP_OPERATIONS
from shiftsync.local.iam import evaluation as iam

_STATEMENT_OPERATIONS: Final = frozenset(
    {"DescribeStatement", "GetStatementResult", "GetStatementResultV2", "CancelStatement"}
)
# API operations whose IAM action has another name (AWS's Service Authorization Reference).
_IAM_ACTIONS: Final = {"GetStatementResultV2": "GetStatementResult"}
_AUTH_ERROR_CODES: Final = {
    "AccessDenied": ("AccessDeniedException", 403),
    "InvalidClientTokenId": ("UnrecognizedClientException", 403),
    "SignatureDoesNotMatch": ("InvalidSignatureException", 403),
    "ExpiredToken": ("ExpiredTokenException", 403),
    "InvalidToken": ("UnrecognizedClientException", 403),
}


@dataclass(frozen=True)
class Caller:
    arn: str
    userid: str
    account_id: str
    role_arn: str | None
    db_user: str


def find_caller(response: BaseResponse) -> Caller:
    """Who signed the request: an assumed role (found by its access key) or an IAM user."""
    authorization = response.headers.get("Authorization", "")
    match = re.search(r"Credential=([^/]+)/", authorization)
    key_id = match.group(1) if match else ""
    assumed = iam.find_assumed_role(key_id) if key_id else None
    if assumed is not None:
        role_name = assumed.role_arn.split("/")[-1]
        return Caller(
            assumed.arn, assumed.user_id, assumed.account_id, assumed.role_arn, f"IAMR:{role_name}"
        )
    user = f"{key_id or 'anonymous'}"
    return Caller(
        f"arn:aws:iam::{response.current_account}:user/{user}",
        key_id,
        response.current_account,
        None,
        f"IAM:{user}",
    )


def determine_resource(self: BaseResponse) -> str:
    """moto's hook: the IAM resource of the request (the workgroup's ARN, or "*")."""
    operation = self._get_action()
    if operation in WORKGROUP_OPERATIONS:
        body: dict[str, Any] | None = None
        try:
            body = request_body(self)
            if body.get("ClusterIdentifier") and body.get("WorkgroupName"):
                return "*"  # a malformed request: the operation refuses it as invalid
            session = session_of(body)
            if session is not None:
                # A statement in a session acts on the session's workgroup or cluster.
                return find_target({session.target_key: session.workgroup}).arn
            return find_target(body).arn
        except JsonRESTError:
            # The operation itself reports the bad workgroup once IAM has let the call in.
            cluster = body.get("ClusterIdentifier") if isinstance(body, dict) else None
            if cluster:
                return f"arn:aws:redshift:{self.region}:{self.current_account}:cluster:{cluster}"
            return (
                f"arn:aws:redshift-serverless:{self.region}:{self.current_account}:"
                "workgroup/unknown"
            )
    return "*"


def secret_resource(self: BaseResponse) -> str:
    """moto's hook for Secrets Manager: a secret's operations act on the secret's ARN (moto
    checks "*", which a policy that names the secret does not match)."""
    import json

    from moto.secretsmanager.models import secretsmanager_backends

    try:
        secret_id = str(json.loads(self.body or "{}").get("SecretId") or "")
    except ValueError:
        return "*"
    if secret_id.startswith("arn:"):
        return secret_id
    backend = secretsmanager_backends[self.current_account][self.region]
    secret = backend.secrets.get(secret_id) if secret_id else None
    return str(secret.arn) if secret is not None else "*"


def _authenticate(self: BaseResponse, action: str, resource: str) -> None:
    """moto's authentication with the IAM action the operation maps to (not always its name)."""
    from urllib.parse import urlparse

    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMRequest

    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return
    path = self.raw_path
    query = urlparse(self.uri).query
    if query:
        path += "?" + query
    request = IAMRequest(
        account_id=self.current_account,
        method=self.method,
        path=path,
        data=self.data,
        body=self.raw_body,
        headers=self.headers,
        action=action,
    )
    request.check_signature()
    request.check_action_permitted(resource)


def authorize(self: BaseResponse, resource: str = "*") -> None:
    """moto's hook: the caller must be allowed the operation's IAM action on `resource`."""
    operation = self._get_action()
    context: dict[str, str] = {}
    state = active()
    if operation in _STATEMENT_OPERATIONS and state is not None:
        try:
            statement_id = str(request_body(self).get("Id", ""))
        except JsonRESTError:
            statement_id = ""
        found = state.engine.statements.get(statement_id)
        if found is not None:
            context["redshift-data:statement-owner-iam-userid"] = found.owner_userid
    token = iam.REQUEST_CONTEXT.set(context)
    try:
        _authenticate(self, _IAM_ACTIONS.get(operation, operation), resource)
    except iam.ExpiredTokenError as error:
        raise api_error("ExpiredTokenException", error.message, 403) from error
    except RESTError as error:
        error_type, status = _AUTH_ERROR_CODES.get(error.error_type, (error.error_type, 403))
        raise api_error(error_type, error.message, status) from error
    finally:
        iam.REQUEST_CONTEXT.reset(token)
    if operation in WORKGROUP_OPERATIONS and ":workgroup/" in resource:
        _check_get_credentials(self, resource)


def _check_get_credentials(self: BaseResponse, workgroup_arn: str) -> None:
    """The Data API calls GetCredentials for the caller: the caller must be allowed it."""
    caller = find_caller(self)
    if caller.role_arn is None:
        return
    role = iam.find_role(caller.role_arn)
    documents = iam.role_policy_documents(role) if role is not None else []
    verdict = iam.evaluate_identity_policies(
        documents,
        "redshift-serverless:GetCredentials",
        workgroup_arn,
        {"aws:userid": caller.userid, "aws:PrincipalArn": caller.arn},
    )
    if verdict != "allow":
        raise api_error(
            "AccessDeniedException",
            f"User: {caller.arn} is not authorized to perform: "
            f"redshift-serverless:GetCredentials on resource: {workgroup_arn} because no "
            "identity-based policy allows the redshift-serverless:GetCredentials action",
            403,
        )


def _allowed(caller: Caller, action: str, resource: str) -> bool:
    role = iam.find_role(caller.role_arn) if caller.role_arn else None
    documents = iam.role_policy_documents(role) if role is not None else []
    verdict = iam.evaluate_identity_policies(
        documents, action, resource, {"aws:userid": caller.userid, "aws:PrincipalArn": caller.arn}
    )
    return verdict == "allow"


def _denied(caller: Caller, action: str, resource: str) -> JsonRESTError:
    return api_error(
        "AccessDeniedException",
        f"User: {caller.arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action",
        403,
    )


def cluster_db_user(body: dict[str, Any], cluster: Cluster, caller: Caller) -> str:
    """The database user of a request to a provisioned cluster, by its authentication mode.

    The Data API gets the user's credentials for the caller, so the caller needs the action
    that gets them: a Secrets Manager secret (`SecretArn`: secretsmanager:GetSecretValue, the
    secret's `username`), a named user (`DbUser`: redshift:GetClusterCredentials on the
    dbuser and the dbname), or the IAM identity itself (redshift:GetClusterCredentialsWithIAM
    on the dbname; the user is `IAMR:<role>`).
    """
    prefix = f"arn:aws:redshift:{cluster.region}:{cluster.account_id}"
    database = str(body.get("Database") or "")
    secret_arn = body.get("SecretArn")
    if secret_arn:
        if body.get("DbUser"):
            raise validation_error("Specify either SecretArn or DbUser, not both.")
        if not _allowed(caller, "secretsmanager:GetSecretValue", str(secret_arn)):
            raise _denied(caller, "secretsmanager:GetSecretValue", str(secret_arn))
        return _secret_user(str(secret_arn), cluster)
    db_user = body.get("DbUser")
    if db_user:
        # AWS checks the user and, as a database is named, the database too.
        for resource in (
            f"{prefix}:dbuser:{cluster.name}/{db_user}",
            f"{prefix}:dbname:{cluster.name}/{database}",
        ):
            if not _allowed(caller, "redshift:GetClusterCredentials", resource):
                raise _denied(caller, "redshift:GetClusterCredentials", resource)
        return str(db_user)
    resource = f"{prefix}:dbname:{cluster.name}/{database}"
    if caller.role_arn is None or not _allowed(
        caller, "redshift:GetClusterCredentialsWithIAM", resource
    ):
        raise _denied(caller, "redshift:GetClusterCredentialsWithIAM", resource)
    return caller.db_user


def _secret_user(secret_arn: str, cluster: Cluster) -> str:
    """The `username` of a Redshift secret in moto's Secrets Manager."""
    from moto.secretsmanager.models import secretsmanager_backends

    parts = secret_arn.split(":")
    if len(parts) < 7 or parts[2] != "secretsmanager":
        raise validation_error(f"SecretArn {secret_arn} is not a Secrets Manager secret ARN")
    region, account = parts[3], parts[4]
    try:
        value = secretsmanager_backends[account][region].get_secret_value(
            secret_arn, "", "AWSCURRENT"
        )
        document = json.loads(value.get("SecretString") or "{}")
    except Exception as error:  # moto's own not-found error types vary by version
        raise validation_error(f"Secret {secret_arn} could not be read") from error
    username = document.get("username") if isinstance(document, dict) else None
    named = document.get("dbClusterIdentifier") if isinstance(document, dict) else None
    if not username or (named and named != cluster.name):
        raise validation_error(
            f"Secret {secret_arn} is not a secret of cluster {cluster.name}: it needs "
            "username (and dbClusterIdentifier, if given, naming the cluster)"
        )
    return str(username)
