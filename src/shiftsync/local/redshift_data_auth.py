"""Who calls the plug-in and whether IAM lets them: moto's IAM engine, AWS's resources.

IAM runs first through moto's engine (patched in iam.py), with the workgroup's ARN as the
resource of the operations that name one, and denials go back as JSON `AccessDeniedException`.
The Data API also calls redshift-serverless:GetCredentials for the caller, so the caller's
role must allow that too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from moto.core.exceptions import JsonRESTError
from moto.core.exceptions import _RESTError as RESTError
from moto.core.responses import BaseResponse

from shiftsync.local import iam
from shiftsync.local.faults import WORKGROUP_OPERATIONS
from shiftsync.local.redshift_data_request import api_error, request_body
from shiftsync.local.redshift_data_sessions import session_of
from shiftsync.local.redshift_data_state import active, find_workgroup

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
        try:
            body = request_body(self)
            session = session_of(body)
            if session is not None:
                # A statement in a session acts on the session's workgroup.
                return find_workgroup({"WorkgroupName": session.workgroup}).arn
            return find_workgroup(body).arn
        except JsonRESTError:
            # The operation itself reports the bad workgroup once IAM has let the call in.
            return (
                f"arn:aws:redshift-serverless:{self.region}:{self.current_account}:"
                "workgroup/unknown"
            )
    return "*"


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
    if operation in WORKGROUP_OPERATIONS and resource != "*":
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
