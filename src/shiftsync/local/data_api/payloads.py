"""The answers of the redshift-data operations, shaped as AWS shapes them (pure).

A statement as ExecuteStatement, DescribeStatement and ListStatements describe it, a result
page with its NextToken, and one page of a list (MaxResults, NextToken).
"""

from __future__ import annotations

import json
from typing import Any

from shiftsync.local.data_api.request import validation_error
from shiftsync.local.data_api.results import decode_token, encode_token
from shiftsync.local.data_api.statements import TERMINAL, Statement

Response = tuple[int, dict[str, str], str]


def json_response(payload: dict[str, Any]) -> Response:
    return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(payload)


def submitted_payload(statement: Statement, *, waited: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "Id": statement.id,
        "CreatedAt": statement.created_at,
        "Database": statement.database,
        "DbUser": statement.db_user,
        statement.target_key: statement.workgroup,
        **({"SessionId": statement.session_id} if statement.session_id else {}),
    }
    if waited:
        # With WaitTimeSeconds the answer says where the statement got to (the model's
        # Status, RedshiftPid and HasResultSet members).
        payload["Status"] = statement.status
        payload["RedshiftPid"] = statement.redshift_pid
        payload["HasResultSet"] = statement.has_result_set
    return payload


def described_payload(statement: Statement) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "Id": statement.id,
        "CreatedAt": statement.created_at,
        "UpdatedAt": statement.updated_at,
        "Database": statement.database,
        "DbUser": statement.db_user,
        statement.target_key: statement.workgroup,
        "Duration": statement.duration_ns if statement.status in TERMINAL else -1,
        "HasResultSet": statement.has_result_set,
        "RedshiftPid": statement.redshift_pid,
        "RedshiftQueryId": statement.redshift_query_id,
        "ResultRows": statement.result_rows,
        "ResultSize": statement.result_size,
        "Status": statement.status,
        "ResultFormat": statement.result_format,
        "IsBatchStatement": statement.is_batch,
    }
    if not statement.is_batch:
        # A batch's parent has no QueryString: its texts are on the sub-statements.
        payload["QueryString"] = statement.query_string
    if statement.error:
        payload["Error"] = statement.error
    if statement.session_id:
        payload["SessionId"] = statement.session_id
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


def listed_payload(statement: Statement) -> dict[str, Any]:
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


def result_envelope(statement: Statement, page: int, pages: int, records: str) -> Response:
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


def paged(body: dict[str, Any], items: list[Any], key: str, limit: int = 1000) -> Response:
    max_results = body.get("MaxResults") or limit
    if not isinstance(max_results, int) or not 1 <= max_results <= limit:
        raise validation_error(f"MaxResults must be from 1 to {limit}")
    start = 0
    if body.get("NextToken"):
        decoded = decode_token(str(body["NextToken"]))
        if decoded is None or decoded[0] != key:
            raise validation_error("The NextToken is invalid")
        start = decoded[1]
    page = items[start : start + max_results]
    payload: dict[str, Any] = {key: page}
    if start + max_results < len(items):
        payload["NextToken"] = encode_token(key, start + max_results)
    return json_response(payload)
