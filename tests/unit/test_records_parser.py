"""The GetStatementResult Records parser gives what botocore's own parser gives, faster."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from botocore.parsers import create_parser

from shiftsync.redshift.records_parser import (
    BEFORE_PARSE_EVENT,
    decode_blobs,
    install_records_parser,
    take_records,
)

RECORDS: list[list[dict[str, Any]]] = [
    [
        {"longValue": 7},
        {"doubleValue": 1.5},
        {"stringValue": 'caf\u00e9, "quoted"\nline'},
        {"booleanValue": True},
        {"isNull": True},
        {"blobValue": base64.b64encode(b"\x00\xffraw").decode()},
    ],
    [
        {"longValue": -9223372036854775808},
        {"doubleValue": 2},
        {"stringValue": ""},
        {"booleanValue": False},
        {"stringValue": "12345678901234567890.123456"},
        {"isNull": True},
    ],
]
DOCUMENT: dict[str, Any] = {
    "Records": RECORDS,
    "ColumnMetadata": [{"name": "a", "typeName": "int8", "nullable": 1}],
    "TotalNumRows": 2,
    "NextToken": "page-2",
}


def _operation() -> Any:
    client = boto3.client("redshift-data", region_name="us-east-1")
    return client.meta.service_model.operation_model("GetStatementResult")


def _response(document: Any, status: int = 200) -> dict[str, Any]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return {"status_code": status, "headers": {}, "body": body}


def _botocore_parse(response: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = create_parser("json").parse(response, _operation().output_shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def _our_parse(response: dict[str, Any]) -> dict[str, Any]:
    customized: dict[str, Any] = {}
    take_records(response_dict=response, customized_response_dict=customized)
    parsed = _botocore_parse(response)
    parsed.update(customized)
    return parsed


def test_the_answer_equals_botocores_own_parse() -> None:
    expected = _botocore_parse(_response(DOCUMENT))
    assert expected["Records"][0][5]["blobValue"] == b"\x00\xffraw"
    assert _our_parse(_response(DOCUMENT)) == expected


def test_records_leave_the_body_and_the_rest_stays() -> None:
    response = _response(DOCUMENT)
    customized: dict[str, Any] = {}
    take_records(response_dict=response, customized_response_dict=customized)
    assert customized["Records"][1][0] == {"longValue": -9223372036854775808}
    assert json.loads(response["body"]) == {k: v for k, v in DOCUMENT.items() if k != "Records"}


@pytest.mark.parametrize(
    "response",
    [
        _response({"__type": "ValidationException", "message": "no"}, status=400),
        _response(b"{not json"),
        _response([1, 2]),
        _response({"Records": "not a list", "TotalNumRows": 0}),
        _response({"Records": [[{"blobValue": "AAE"}]], "TotalNumRows": 1}),
        _response({"Records": [["a field", {"blobValue": "AAE="}]], "TotalNumRows": 1}),
    ],
    ids=[
        "error-status",
        "not-json",
        "not-an-object",
        "records-not-a-list",
        "bad-base64-padding",
        "field-not-an-object",
    ],
)
def test_an_answer_it_does_not_understand_is_left_to_botocore(response: dict[str, Any]) -> None:
    before = response["body"]
    customized: dict[str, Any] = {}
    take_records(response_dict=response, customized_response_dict=customized)
    assert customized == {}
    assert response["body"] == before


def test_blobs_are_decoded_in_place_and_bytes_are_kept() -> None:
    records: list[Any] = [[{"blobValue": "AAE="}, {"blobValue": b"\x02"}, {"isNull": True}]]
    decode_blobs(records)
    assert records == [[{"blobValue": b"\x00\x01"}, {"blobValue": b"\x02"}, {"isNull": True}]]


def test_installed_once_on_a_client_however_often_installed() -> None:
    client = boto3.client("redshift-data", region_name="us-east-1")
    install_records_parser(client)
    install_records_parser(client)
    customized: dict[str, Any] = {}
    answers = client.meta.events.emit(
        BEFORE_PARSE_EVENT,
        operation_model=_operation(),
        response_dict=_response(DOCUMENT),
        customized_response_dict=customized,
    )
    assert [handler for handler, _ in answers].count(take_records) == 1
    assert customized["Records"][0][0] == {"longValue": 7}
