"""How the fault injector reads a request and words an error, as each AWS protocol does.

Which service and operation a request is (from its SigV4 credential scope, its X-Amz-Target,
its S3 path and query, or STS's Action), and error bodies in S3's XML, STS's XML and the
awsJson shape. Pure, apart from buffering an STS request's body so that moto still reads it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Final
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

_CREDENTIAL: Final = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/")
_QUERY_CREDENTIAL: Final = re.compile(r"[^/]+/\d{8}/[^/]+/([^/]+)/")
# S3 query keys that still mean a plain listing or a plain read.
_LIST_KEYS: Final = frozenset(
    {
        "list-type",
        "prefix",
        "delimiter",
        "max-keys",
        "continuation-token",
        "marker",
        "encoding-type",
        "start-after",
        "fetch-owner",
    }
)
_READ_KEYS: Final = frozenset({"versionId", "partNumber"})
_SIGNATURE_KEYS: Final = frozenset(
    {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"}
) | {"X-Amz-Signature", "X-Amz-Security-Token", "x-id"}

_STATUS_TEXT: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# -- what a request is --------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestInfo:
    service: str | None
    operation: str | None
    bucket: str | None = None
    key: str | None = None


def service_of(authorization: str, query: Mapping[str, list[str]]) -> str | None:
    """The SigV4 credential scope's service (header, or a presigned URL's query)."""
    found = _CREDENTIAL.search(authorization)
    if found:
        return found.group(1)
    credential = query.get("X-Amz-Credential")
    if credential:
        scoped = _QUERY_CREDENTIAL.match(unquote(credential[0]))
        if scoped:
            return scoped.group(1)
    return None


def s3_operation(
    method: str, path: str, query: Mapping[str, list[str]], copy_source: bool = False
) -> RequestInfo:
    """Which S3 operation a path-style request is (None for ones no fault names)."""
    bucket, _, key = path.lstrip("/").partition("/")
    keys = set(query) - _SIGNATURE_KEYS
    operation: str | None = None
    if not bucket:
        operation = "ListBuckets" if method == "GET" else None
        return RequestInfo("s3", operation)
    if not key:
        if method == "GET" and keys <= _LIST_KEYS:
            operation = "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
        elif method == "HEAD":
            operation = "HeadBucket"
        elif method == "PUT" and not keys:
            operation = "CreateBucket"
        elif method == "DELETE" and not keys:
            operation = "DeleteBucket"
        elif method == "POST" and keys == {"delete"}:
            operation = "DeleteObjects"
        return RequestInfo("s3", operation, bucket)
    if method == "GET":
        if "attributes" in keys:
            operation = "GetObjectAttributes"
        elif keys <= _READ_KEYS or all(k.startswith("response-") or k in _READ_KEYS for k in keys):
            operation = "GetObject"
    elif method == "HEAD":
        operation = "HeadObject"
    elif method == "PUT":
        if {"partNumber", "uploadId"} <= keys:
            operation = "UploadPart"
        elif not keys:
            operation = "CopyObject" if copy_source else "PutObject"
    elif method == "DELETE":
        operation = "AbortMultipartUpload" if "uploadId" in keys else "DeleteObject"
    elif method == "POST":
        if "uploads" in keys:
            operation = "CreateMultipartUpload"
        elif "uploadId" in keys:
            operation = "CompleteMultipartUpload"
    return RequestInfo("s3", operation, bucket, key)


def describe_request(environ: dict[str, Any], *, read_sts_body: bool = False) -> RequestInfo:
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    service = service_of(environ.get("HTTP_AUTHORIZATION", ""), query)
    method = environ.get("REQUEST_METHOD", "GET")
    if service == "redshift-data":
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        return RequestInfo(service, target.split(".", 1)[1] if "." in target else None)
    if service == "s3":
        copy_source = bool(environ.get("HTTP_X_AMZ_COPY_SOURCE"))
        return s3_operation(method, environ.get("PATH_INFO", "/"), query, copy_source)
    if service == "sts":
        action = query.get("Action", [None])[0]
        if action is None and read_sts_body:
            action = parse_qs(_buffered_body(environ).decode("utf-8", "replace")).get(
                "Action", [None]
            )[0]
        return RequestInfo(service, action)
    return RequestInfo(service, None)


def _buffered_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back, so that moto still reads it."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = BytesIO(body)
    return body


# -- error bodies -------------------------------------------------------------------------------


def _request_id() -> str:
    return secrets.token_hex(8).upper()


def s3_error_body(code: str, message: str, key: str | None = None) -> bytes:
    key_element = f"<Key>{escape(key)}</Key>" if key is not None else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{key_element}"
        f"<RequestId>{_request_id()}</RequestId><HostId>{secrets.token_urlsafe(32)}</HostId>"
        "</Error>"
    ).encode()


def sts_error_body(code: str, message: str, status: int) -> bytes:
    side = "Sender" if status < 500 else "Receiver"
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>{side}</Type><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"</Error><RequestId>{_request_id()}</RequestId></ErrorResponse>"
    ).encode()


def json_error_body(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message}).encode()


def error_response(
    service: str, code: str, message: str, status: int, key: str | None = None
) -> tuple[list[tuple[str, str]], bytes]:
    if service == "s3":
        body = s3_error_body(code, message, key)
        return [("Content-Type", "application/xml"), ("x-amz-request-id", _request_id())], body
    if service == "sts":
        return [("Content-Type", "text/xml")], sts_error_body(code, message, status)
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-amzn-ErrorType", code),
        ("x-amzn-RequestId", _request_id()),
    ]
    return headers, json_error_body(code, message)


def status_line(status: int) -> str:
    return f"{status} {_STATUS_TEXT.get(status, 'Error')}"
