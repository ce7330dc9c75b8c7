"""The Redshift Data API plug-in: moto's canned redshift-data replaced by the real thing.

moto dispatches each operation to the method of `RedshiftDataAPIServiceResponse` named after it
(ExecuteStatement → execute_statement); we set those methods. IAM runs first through moto's
engine (patched in iam.py), with the workgroup's ARN as the resource, and denials go back as
JSON `AccessDeniedException`, as AWS's awsJson1.1 services send them.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import botocore.session
import psycopg
from botocore.model import ListShape, Shape, StringShape, StructureShape
from moto.core.exceptions import JsonRESTError
from moto.core.exceptions import _RESTError as RESTError
from moto.core.responses import BaseResponse
from moto.redshiftdata.responses import RedshiftDataAPIServiceResponse

from shiftsync.local import catalog, iam, sqltext
from shiftsync.local.engine import TERMINAL, DataApiEngine, Statement, Submission
from shiftsync.local.results import decode_token, encode_token

log = logging.getLogger("shiftsync.local")

Response = tuple[int, dict[str, str], str]

# Operations whose resource is the workgroup (the rest act on statements: resource "*").
_WORKGROUP_OPERATIONS: Final = frozenset(
    {
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ListDatabases",
        "ListSchemas",
        "ListTables",
        "DescribeTable",
    }
)
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
_WORKGROUP_NAME: Final = re.compile(r"^[a-z0-9-]{3,64}$")
_MAX_WAIT_SECONDS: Final = 30


@dataclass
class Workgroup:
    name: str
    account_id: str
    region: str
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def arn(self) -> str:
        return f"arn:aws:redshift-serverless:{self.region}:{self.account_id}:workgroup/{self.uuid}"


@dataclass
class PluginState:
    engine: DataApiEngine
    workgroups: dict[str, Workgroup]
    # Called before every operation with (operation, request body); may raise JsonRESTError.
    before_operation: Callable[[str, dict[str, Any]], None] | None = None


_state: PluginState | None = None


def activate(state: PluginState | None) -> None:
    global _state
    _state = state


def _current() -> PluginState:
    if _state is None:
        raise _error("InternalServerException", "The stand-in is not running", 500)
    return _state


def _error(error_type: str, message: str, status: int = 400) -> JsonRESTError:
    error = JsonRESTError(error_type, message)
    error.code = status
    return error


def _validation(message: str) -> JsonRESTError:
    return _error("ValidationException", message)


@dataclass(frozen=True)
class Caller:
    arn: str
    userid: str
    account_id: str
    role_arn: str | None
    db_user: str


def _caller(response: BaseResponse) -> Caller:
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


def _body(response: BaseResponse) -> dict[str, Any]:
    raw = response.body
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise _error("SerializationException", "The request body is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise _error("SerializationException", "The request body must be a JSON object")
    return parsed


# -- input validation against AWS's own model ------------------------------------------------
# AWS's front end checks every request against the service model before the operation runs:
# a value of the wrong JSON type is a SerializationException, a broken constraint (required,
# length, range, pattern, enum) a ValidationException naming each member, in AWS's words.


@functools.cache
def _input_shapes() -> dict[str, StructureShape]:
    model = botocore.session.get_session().get_service_model("redshift-data")
    shapes = {name: model.operation_model(name).input_shape for name in model.operation_names}
    return {name: shape for name, shape in shapes.items() if shape is not None}


def _member_path(parent: str, name: str) -> str:
    lowered = name[0].lower() + name[1:]
    return f"{parent}.{lowered}" if parent else lowered


def _serialization(value: Any, shape: Shape) -> JsonRESTError:
    if isinstance(value, dict):
        return _error(
            "SerializationException", "Start of structure or map found where not expected."
        )
    if isinstance(value, list):
        return _error("SerializationException", "Start of list found where not expected")
    found = {bool: "BOOLEAN_VALUE", str: "STRING_VALUE", int: "NUMBER_VALUE", float: "NUMBER_VALUE"}
    wanted = {
        "string": "a String",
        "integer": "an Integer",
        "long": "a Long",
        "boolean": "a Boolean",
        "list": "a List",
        "structure": "a Structure",
    }
    return _error(
        "SerializationException",
        f"{found.get(type(value), 'VALUE')} can not be converted to "
        f"{wanted.get(shape.type_name, shape.type_name)}",
    )


def _constraint(value: Any, path: str, rule: str) -> str:
    shown = "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)
    return f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must {rule}"


def _check_value(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind, meta = shape.type_name, shape.metadata
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            raise _serialization(value, shape)
        for name in shape.required_members:
            if value.get(name) is None:
                problems.append(
                    f"Value null at '{_member_path(path, name)}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _check_value(member, value[name], _member_path(path, name), problems)
        return
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            raise _serialization(value, shape)
        size = len(value)
        rule = "have length"
        for index, item in enumerate(value, start=1):
            _check_value(shape.member, item, f"{path}.{index}.member", problems)
    elif isinstance(shape, StringShape):
        if not isinstance(value, str):
            raise _serialization(value, shape)
        size, rule = len(value), "have length"
        enum = shape.enum
        if enum and value not in enum:
            problems.append(
                _constraint(value, path, f"satisfy enum value set: [{', '.join(enum)}]")
            )
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            problems.append(
                _constraint(value, path, f"satisfy regular expression pattern: {pattern}")
            )
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _serialization(value, shape)
        size, rule = value, "have value"
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _serialization(value, shape)
        return
    else:
        return
    if "min" in meta and size < meta["min"]:
        problems.append(_constraint(value, path, f"{rule} greater than or equal to {meta['min']}"))
    if "max" in meta and size > meta["max"]:
        problems.append(_constraint(value, path, f"{rule} less than or equal to {meta['max']}"))


def _check_input(operation: str, body: dict[str, Any]) -> None:
    shape = _input_shapes().get(operation)
    if shape is None:
        return
    problems: list[str] = []
    _check_value(shape, body, "", problems)
    if problems:
        count = len(problems)
        raise _validation(
            f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)
        )


def _required(body: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    if value is None or value == "":
        raise _validation(
            f"1 validation error detected: Value null at '{key[0].lower() + key[1:]}' "
            "failed to satisfy constraint: Member must not be null"
        )
    return value


def _workgroup(body: dict[str, Any]) -> Workgroup:
    if body.get("ClusterIdentifier"):
        raise _validation(
            "ClusterIdentifier is for provisioned clusters; this stand-in serves Redshift "
            "Serverless: pass WorkgroupName"
        )
    if body.get("SecretArn"):
        raise _validation("SecretArn is not supported by the stand-in; use IAM (no SecretArn)")
    name = body.get("WorkgroupName")
    if not name:
        raise _validation("Either ClusterIdentifier or WorkgroupName needs to be specified.")
    workgroups = _current().workgroups
    if isinstance(name, str) and name.startswith("arn:"):
        # AWS accepts the workgroup's ARN wherever it accepts its name.
        by_arn = {w.arn: w for w in workgroups.values()}
        if name in by_arn:
            return by_arn[name]
        raise _error("ResourceNotFoundException", f"Workgroup {name} not found")
    if not isinstance(name, str) or not _WORKGROUP_NAME.match(name):
        raise _validation(f"Invalid workgroup name '{name}'")
    found = workgroups.get(name)
    if found is None:
        raise _error("ResourceNotFoundException", f"Workgroup {name} not found")
    return found


def _json(payload: dict[str, Any]) -> Response:
    return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(payload)


def _statement(body: dict[str, Any], caller: Caller) -> Statement:
    statement_id = _required(body, "Id")
    found = _current().engine.statements.get(str(statement_id))
    if found is None or found.owner_userid.split(":")[0] != caller.userid.split(":")[0]:
        raise _error("ResourceNotFoundException", f"Query {statement_id} does not exist.")
    return found


def _wait(body: dict[str, Any], statement: Statement) -> None:
    seconds = body.get("WaitTimeSeconds")
    if seconds is None:
        return
    if not isinstance(seconds, int) or not 0 <= seconds <= _MAX_WAIT_SECONDS:
        raise _validation("WaitTimeSeconds must be an integer from 0 to 30")
    _current().engine.wait(statement, float(seconds))


# -- authorisation ------------------------------------------------------------------------------


def _determine_resource(self: BaseResponse) -> str:
    operation = self._get_action()
    if operation in _WORKGROUP_OPERATIONS:
        try:
            return _workgroup(_body(self)).arn
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


def _authorize(self: BaseResponse, resource: str = "*") -> None:
    operation = self._get_action()
    context: dict[str, str] = {}
    if operation in _STATEMENT_OPERATIONS and _state is not None:
        try:
            statement_id = str(_body(self).get("Id", ""))
        except JsonRESTError:
            statement_id = ""
        found = _state.engine.statements.get(statement_id)
        if found is not None:
            context["redshift-data:statement-owner-iam-userid"] = found.owner_userid
    token = iam.REQUEST_CONTEXT.set(context)
    try:
        _authenticate(self, _IAM_ACTIONS.get(operation, operation), resource)
    except iam.ExpiredTokenError as error:
        raise _error("ExpiredTokenException", error.message, 403) from error
    except RESTError as error:
        error_type, status = _AUTH_ERROR_CODES.get(error.error_type, (error.error_type, 403))
        raise _error(error_type, error.message, status) from error
    finally:
        iam.REQUEST_CONTEXT.reset(token)
    if operation in _WORKGROUP_OPERATIONS and resource != "*":
        _check_get_credentials(self, resource)


def _check_get_credentials(self: BaseResponse, workgroup_arn: str) -> None:
    """The Data API calls GetCredentials for the caller: the caller must be allowed it."""
    caller = _caller(self)
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
        raise _error(
            "AccessDeniedException",
            f"User: {caller.arn} is not authorized to perform: "
            f"redshift-serverless:GetCredentials on resource: {workgroup_arn} because no "
            "identity-based policy allows the redshift-serverless:GetCredentials action",
            403,
        )


# -- operations ---------------------------------------------------------------------------------


def _guarded(
    operation: str,
) -> Callable[
    [Callable[[BaseResponse, dict[str, Any]], Response]], Callable[[BaseResponse], Response]
]:
    def wrap(
        handler: Callable[[BaseResponse, dict[str, Any]], Response],
    ) -> Callable[[BaseResponse], Response]:
        def method(self: BaseResponse) -> Response:
            try:
                body = _body(self)
                _check_input(operation, body)
                state = _current()
                if state.before_operation is not None:
                    state.before_operation(operation, body)
                return handler(self, body)
            except JsonRESTError:
                raise
            except Exception as error:  # the stand-in never answers with a traceback
                log.exception("redshift-data %s failed", operation)
                raise _error("InternalServerException", f"Internal error: {error}", 500) from error

        method.__name__ = handler.__name__
        return method

    return wrap


def _submit(self: BaseResponse, body: dict[str, Any], sqls: list[str], batch: bool) -> Statement:
    workgroup = _workgroup(body)
    database = _required(body, "Database")
    state = _current()
    for text in sqls:
        if not isinstance(text, str) or not text.strip():
            raise _validation("Sql must be a non-empty string")
        if len(text.encode()) > state.engine.limits.max_sql_bytes:
            raise _validation("Cannot process query string larger than 100kB")
    result_format = body.get("ResultFormat", "JSON")
    if result_format not in ("JSON", "CSV"):
        raise _validation(f"ResultFormat must be JSON or CSV, got {result_format!r}")
    if body.get("SessionKeepAliveSeconds") is not None or body.get("SessionId"):
        raise _validation(
            "Sessions (SessionId, SessionKeepAliveSeconds) are not supported by the stand-in"
        )
    if body.get("ExecutionMode", "TRANSACTION") != "TRANSACTION":
        # Refused rather than ignored: a batch here always runs as one transaction.
        raise _validation("ExecutionMode AUTO_COMMIT is not supported by the stand-in")
    parameters = body.get("Parameters") or []
    for parameter in parameters:
        if (
            not isinstance(parameter, dict)
            or not parameter.get("name")
            or parameter.get("value") in (None, "")
        ):
            raise _validation("Each parameter needs a non-empty name and value")
    if body.get("DbUser"):
        raise _validation(
            "DbUser is for provisioned clusters; Serverless maps the IAM identity "
            "to its database user"
        )
    caller = _caller(self)
    try:
        return state.engine.submit(
            Submission(
                owner_arn=caller.arn,
                owner_userid=caller.userid,
                db_user=caller.db_user,
                database=str(database),
                workgroup=workgroup.name,
                sqls=sqls,
                is_batch=batch,
                parameters=parameters,
                result_format=result_format,
                statement_name=body.get("StatementName"),
                client_token=body.get("ClientToken"),
            )
        )
    except ValueError as error:
        raise _validation(str(error)) from error


@_guarded("ExecuteStatement")
def execute_statement(self: BaseResponse, body: dict[str, Any]) -> Response:
    sql = _required(body, "Sql")
    statement = _submit(self, body, [sql], batch=False)
    _wait(body, statement)
    return _json(_submitted(statement))


@_guarded("BatchExecuteStatement")
def batch_execute_statement(self: BaseResponse, body: dict[str, Any]) -> Response:
    sqls = _required(body, "Sqls")
    if not isinstance(sqls, list) or not 1 <= len(sqls) <= 40:
        raise _validation("Sqls must hold from 1 to 40 statements")
    statement = _submit(self, body, sqls, batch=True)
    _wait(body, statement)
    return _json(_submitted(statement))


def _submitted(statement: Statement) -> dict[str, Any]:
    return {
        "Id": statement.id,
        "CreatedAt": statement.created_at,
        "Database": statement.database,
        "DbUser": statement.db_user,
        "WorkgroupName": statement.workgroup,
    }


def _describe(statement: Statement) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "Id": statement.id,
        "CreatedAt": statement.created_at,
        "UpdatedAt": statement.updated_at,
        "Database": statement.database,
        "DbUser": statement.db_user,
        "WorkgroupName": statement.workgroup,
        "Duration": statement.duration_ns if statement.status in TERMINAL else -1,
        "HasResultSet": statement.has_result_set,
        "QueryString": statement.query_string,
        "RedshiftPid": statement.redshift_pid,
        "RedshiftQueryId": statement.redshift_query_id,
        "ResultRows": statement.result_rows,
        "ResultSize": statement.result_size,
        "Status": statement.status,
        "ResultFormat": statement.result_format,
        "IsBatchStatement": statement.is_batch,
    }
    if statement.error:
        payload["Error"] = statement.error
    if statement.parameters:
        payload["QueryParameters"] = statement.parameters
    if statement.sub_statements:
        payload["SubStatements"] = [
            {
                "Id": sub.id,
                "CreatedAt": sub.created_at,
                "UpdatedAt": sub.updated_at,
                "Duration": sub.duration_ns if sub.status in TERMINAL else -1,
                "HasResultSet": sub.has_result_set,
                "QueryString": sub.query_string,
                "RedshiftQueryId": sub.redshift_query_id,
                "ResultRows": sub.result_rows,
                "ResultSize": sub.result_size,
                "Status": sub.status,
                **({"Error": sub.error} if sub.error else {}),
            }
            for sub in statement.sub_statements
        ]
    return payload


@_guarded("DescribeStatement")
def describe_statement(self: BaseResponse, body: dict[str, Any]) -> Response:
    statement = _statement(body, _caller(self))
    _wait(body, statement)
    return _json(_describe(statement))


@_guarded("CancelStatement")
def cancel_statement(self: BaseResponse, body: dict[str, Any]) -> Response:
    statement = _statement(body, _caller(self))
    if not _current().engine.cancel(statement):
        raise _validation(
            f"Could not cancel a query that is already in {statement.status} state with ID: "
            f"{statement.id}"
        )
    statement.done.wait(5)
    return _json({"Status": True})


def _result_page(
    body: dict[str, Any], statement: Statement, expected_format: str
) -> tuple[int, int]:
    _wait(body, statement)
    if statement.status != "FINISHED" or not statement.has_result_set or statement.result is None:
        raise _error(
            "ResourceNotFoundException",
            "Query does not have result. Please check query status with DescribeStatement.",
        )
    if statement.result_format != expected_format:
        wanted = (
            "GetStatementResult" if statement.result_format == "JSON" else "GetStatementResultV2"
        )
        raise _validation(
            f"The statement's ResultFormat is {statement.result_format}; read it with {wanted}"
        )
    page = 0
    token = body.get("NextToken")
    if token:
        decoded = decode_token(str(token))
        if (
            decoded is None
            or decoded[0] != statement.id
            or not 0 <= decoded[1] < statement.result.page_count()
        ):
            raise _validation("The NextToken is invalid")
        page = decoded[1]
    return page, statement.result.page_count()


def _result_envelope(statement: Statement, page: int, pages: int, records: str) -> Response:
    assert statement.result is not None
    parts = [
        f'{{"Records":{records}',
        f'"ColumnMetadata":{json.dumps(statement.result.columns)}',
        f'"TotalNumRows":{statement.result.total_rows}',
    ]
    if statement.result_format == "CSV":
        parts.append('"ResultFormat":"CSV"')
    if page + 1 < pages:
        parts.append(f'"NextToken":"{encode_token(statement.id, page + 1)}"')
    return 200, {"Content-Type": "application/x-amz-json-1.1"}, ",".join(parts) + "}"


@_guarded("GetStatementResult")
def get_statement_result(self: BaseResponse, body: dict[str, Any]) -> Response:
    statement = _statement(body, _caller(self))
    page, pages = _result_page(body, statement, "JSON")
    assert statement.result is not None
    return _result_envelope(statement, page, pages, statement.result.page(page).decode())


@_guarded("GetStatementResultV2")
def get_statement_result_v2(self: BaseResponse, body: dict[str, Any]) -> Response:
    statement = _statement(body, _caller(self))
    page, pages = _result_page(body, statement, "CSV")
    assert statement.result is not None
    text = statement.result.page(page).decode()
    return _result_envelope(statement, page, pages, json.dumps([{"CSVRecords": text}]))


def _paged(body: dict[str, Any], items: list[Any], key: str, limit: int = 1000) -> Response:
    max_results = body.get("MaxResults") or limit
    if not isinstance(max_results, int) or not 1 <= max_results <= limit:
        raise _validation(f"MaxResults must be from 1 to {limit}")
    start = 0
    if body.get("NextToken"):
        decoded = decode_token(str(body["NextToken"]))
        if decoded is None or decoded[0] != key:
            raise _validation("The NextToken is invalid")
        start = decoded[1]
    page = items[start : start + max_results]
    payload: dict[str, Any] = {key: page}
    if start + max_results < len(items):
        payload["NextToken"] = encode_token(key, start + max_results)
    return _json(payload)


def _catalog_connection(self: BaseResponse, body: dict[str, Any]) -> psycopg.Connection[Any]:
    _workgroup(body)
    database = _required(body, "Database")
    connected = body.get("ConnectedDatabase") or database
    caller = _caller(self)
    engine = _current().engine
    try:
        engine.ensure_db_user(str(connected), caller.db_user)
        return psycopg.connect(engine.pg.dsn(str(connected), user=caller.db_user), autocommit=True)
    except psycopg.OperationalError as error:
        raise _error(
            "DatabaseConnectionException",
            f"Database {connected} does not exist or cannot be reached",
        ) from error


@_guarded("ListDatabases")
def list_databases(self: BaseResponse, body: dict[str, Any]) -> Response:
    with _catalog_connection(self, body) as conn:
        return _paged(body, catalog.list_databases(conn), "Databases")


@_guarded("ListSchemas")
def list_schemas(self: BaseResponse, body: dict[str, Any]) -> Response:
    with _catalog_connection(self, body) as conn:
        return _paged(body, catalog.list_schemas(conn, body.get("SchemaPattern")), "Schemas")


@_guarded("ListTables")
def list_tables(self: BaseResponse, body: dict[str, Any]) -> Response:
    with _catalog_connection(self, body) as conn:
        tables = catalog.list_tables(conn, body.get("SchemaPattern"), body.get("TablePattern"))
        return _paged(body, tables, "Tables")


@_guarded("DescribeTable")
def describe_table(self: BaseResponse, body: dict[str, Any]) -> Response:
    schema = body.get("Schema") or "public"
    table = body.get("Table")
    with _catalog_connection(self, body) as conn:
        if not table:
            return _paged(body, [], "ColumnList")
        columns = catalog.describe_table(conn, str(schema), str(table))
    if columns is None:
        raise _error("ResourceNotFoundException", f'Table "{schema}"."{table}" does not exist')
    status, headers, text = _paged(body, columns, "ColumnList")
    payload = json.loads(text)
    payload["TableName"] = f"{schema}.{table}"
    return status, headers, json.dumps(payload)


def _listed(statement: Statement) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Id": statement.id,
        "CreatedAt": statement.created_at,
        "UpdatedAt": statement.updated_at,
        "Status": statement.status,
        "IsBatchStatement": statement.is_batch,
        "ResultFormat": statement.result_format,
    }
    if statement.is_batch:
        row["QueryStrings"] = [sub.query_string for sub in statement.sub_statements]
    else:
        row["QueryString"] = statement.query_string
    if statement.statement_name:
        row["StatementName"] = statement.statement_name
    if statement.parameters:
        row["QueryParameters"] = statement.parameters
    return row


@_guarded("ListStatements")
def list_statements(self: BaseResponse, body: dict[str, Any]) -> Response:
    caller = _caller(self)
    # RoleLevel (default true): every session of the caller's role; false: this session only.
    role_level = body.get("RoleLevel", True)
    owner = caller.userid.split(":")[0] if role_level else caller.userid
    status = body.get("Status", "ALL")
    name_prefix = body.get("StatementName")
    database = body.get("Database")
    workgroup = _workgroup(body).name if body.get("WorkgroupName") else None

    def wanted(s: Statement) -> bool:
        return (
            ":" not in s.id
            and (s.owner_userid.split(":")[0] if role_level else s.owner_userid) == owner
            and status in ("ALL", s.status)
            and (not name_prefix or (s.statement_name or "").startswith(name_prefix))
            and database in (None, s.database)
            and workgroup in (None, s.workgroup)
        )

    statements = sorted(_current().engine.statements.values(), key=lambda s: -s.created_at)
    return _paged(body, [_listed(s) for s in statements if wanted(s)], "Statements", limit=100)


@_guarded("ListSessions")
def list_sessions(self: BaseResponse, body: dict[str, Any]) -> Response:
    # The stand-in keeps no sessions (SessionId/SessionKeepAliveSeconds are refused).
    return _paged(body, [], "Sessions", limit=100)


_OPERATIONS: Final = (
    execute_statement,
    batch_execute_statement,
    describe_statement,
    cancel_statement,
    get_statement_result,
    get_statement_result_v2,
    list_databases,
    list_schemas,
    list_tables,
    describe_table,
    list_statements,
    list_sessions,
)


def install() -> None:
    """Replace moto's canned redshift-data with these operations (idempotent)."""
    for operation in _OPERATIONS:
        setattr(RedshiftDataAPIServiceResponse, operation.__name__, operation)
    response_class: Any = RedshiftDataAPIServiceResponse
    response_class._determine_resource = _determine_resource
    response_class._authenticate_and_authorize_normal_action = _authorize


__all__ = ["PluginState", "Workgroup", "activate", "install", "sqltext"]
