"""Who may call Glue: each Data Catalog operation authorised on every resource it touches.

AWS checks a Data Catalog call against the catalog, the database and the table it names
(https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html), so a policy
must allow the action on all of them: `arn:aws:glue:REGION:ACCOUNT:catalog`,
`…:database/NAME`, `…:table/DATABASE/NAME`. Stock moto checks every Glue call on `*`, which
a policy that names the database does not match. Listing calls are checked on the wildcard of
what they list (`database/*`, `table/DB/*`), operations not listed here on `*`: both are the
stricter readings where AWS's page gives no example. Denials go back as awsJson
`AccessDeniedException` (moto sends XML).
"""

from __future__ import annotations

import json
from typing import Any, Final

from moto.core.exceptions import JsonRESTError
from moto.core.exceptions import _RESTError as RESTError
from moto.core.responses import BaseResponse

from shiftsync.local.iam import evaluation as iam

# Operation → (where the database name is, where the table name is) in the request body;
# a path is a tuple of keys. None: the operation does not name one.
_Path = tuple[str, ...]
_DATABASE_OPERATIONS: Final[dict[str, _Path]] = {
    "CreateDatabase": ("DatabaseInput", "Name"),
    "GetDatabase": ("Name",),
    "UpdateDatabase": ("Name",),
    "DeleteDatabase": ("Name",),
}
_TABLE_OPERATIONS: Final[dict[str, _Path]] = {
    "CreateTable": ("TableInput", "Name"),
    "UpdateTable": ("TableInput", "Name"),
    "GetTable": ("Name",),
    "DeleteTable": ("Name",),
    "GetTableVersions": ("TableName",),
    "GetTableVersion": ("TableName",),
}
# Operations on every database / every table of a database.
_LIST_DATABASES: Final = frozenset({"GetDatabases"})
_LIST_TABLES: Final = frozenset({"GetTables"})
_AUTH_ERROR_CODES: Final = {
    "InvalidClientTokenId": ("UnrecognizedClientException", 403),
    "SignatureDoesNotMatch": ("InvalidSignatureException", 403),
    "ExpiredToken": ("ExpiredTokenException", 400),
    "InvalidToken": ("UnrecognizedClientException", 403),
}


def _dig(body: dict[str, Any], path: _Path) -> str:
    value: Any = body
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else ""


def catalog_resources(
    operation: str, body: dict[str, Any], partition: str, region: str, account: str
) -> list[str]:
    """The ARNs `operation` is authorised on, catalog first (pure)."""
    account = str(body.get("CatalogId") or account)
    prefix = f"arn:{partition}:glue:{region}:{account}"
    catalog = f"{prefix}:catalog"
    if operation in _DATABASE_OPERATIONS:
        return [catalog, f"{prefix}:database/{_dig(body, _DATABASE_OPERATIONS[operation])}"]
    database = _dig(body, ("DatabaseName",))
    if operation in _TABLE_OPERATIONS:
        table = _dig(body, _TABLE_OPERATIONS[operation])
        return [catalog, f"{prefix}:database/{database}", f"{prefix}:table/{database}/{table}"]
    if operation in _LIST_DATABASES:
        return [catalog, f"{prefix}:database/*"]
    if operation in _LIST_TABLES:
        return [catalog, f"{prefix}:database/{database}", f"{prefix}:table/{database}/*"]
    return ["*"]


def _error(error_type: str, message: str, status: int) -> JsonRESTError:
    error = JsonRESTError(error_type, message)
    error.code = status
    return error


def authorize(self: BaseResponse, resource: str = "*") -> None:
    """moto's hook: the caller must be allowed the action on each resource of the call."""
    operation = self._get_action()
    try:
        body = json.loads(self.body or "{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    partition = "aws-cn" if self.region.startswith("cn-") else "aws"
    resources = catalog_resources(operation, body, partition, self.region, self.current_account)
    original = BaseResponse._authenticate_and_authorize_normal_action
    for arn in resources:
        try:
            original(self, arn)
        except iam.ExpiredTokenError as error:
            raise _error("ExpiredTokenException", error.message, 400) from error
        except RESTError as error:
            if error.error_type != "AccessDenied":
                code, status = _AUTH_ERROR_CODES.get(error.error_type, (error.error_type, 403))
                raise _error(code, error.message, status) from error
            raise _error(
                "AccessDeniedException",
                f"User: {_caller_arn(error)} is not authorized to perform: glue:{operation} "
                f"on resource: {arn} because no identity-based policy allows the "
                f"glue:{operation} action",
                400,
            ) from error


def _caller_arn(error: RESTError) -> str:
    """The caller's ARN from moto's AccessDenied message ("User: ARN is not authorized …")."""
    message = str(error.message)
    if message.startswith("User: "):
        return message[len("User: ") :].split(" ", 1)[0]
    return "the caller"


def install() -> None:
    """Route moto's Glue through these checks (idempotent)."""
    from moto.glue.responses import GlueResponse

    response_class: Any = GlueResponse
    response_class._authenticate_and_authorize_normal_action = authorize
