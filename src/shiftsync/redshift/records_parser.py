"""A faster parse of GetStatementResult: its `Records` taken out of the body by `json.loads`.

botocore walks every Field of every record through the service's shape model, which the
benchmark's profile showed to be about two thirds of a JSON-format read. `json.loads` already
gives `Records` in the shape botocore returns (lists of Field unions) except `blobValue`,
which is base64 text on the wire and bytes after botocore; that one is decoded here. The rest
of the body (metadata, NextToken, TotalNumRows) still goes through botocore, and any body
this does not understand is left to botocore whole.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

BEFORE_PARSE_EVENT: Final = "before-parse.redshift-data.GetStatementResult"
_HANDLER_ID: Final = "shiftsync-records-parser"
_BLOB_MEMBER: Final = b'"blobValue"'


def install_records_parser(client: RedshiftDataAPIServiceClient) -> None:
    """Parse the Records of `client`'s GetStatementResult answers with `take_records`."""
    client.meta.events.register(BEFORE_PARSE_EVENT, take_records, unique_id=_HANDLER_ID)


def take_records(
    response_dict: dict[str, object], customized_response_dict: dict[str, object], **_: object
) -> None:
    """botocore's `before-parse` hook: move `Records` from the body to the parsed answer."""
    body = response_dict.get("body")
    if response_dict.get("status_code") != 200 or not isinstance(body, bytes | bytearray):
        return
    try:
        document = json.loads(body)
        records = document.get("Records") if isinstance(document, dict) else None
        if not isinstance(records, list):
            return
        if _BLOB_MEMBER in body:
            decode_blobs(records)
    except (ValueError, TypeError, binascii.Error):
        return  # botocore's own parser reports what is wrong with it
    del document["Records"]
    response_dict["body"] = json.dumps(document).encode()
    customized_response_dict["Records"] = records


def decode_blobs(records: Sequence[object]) -> None:
    """Turn each `blobValue` from base64 text into bytes, in place, as botocore does.

    A TypeError for records that are not lists of Field objects (botocore then parses them).
    """
    for record in records:
        if not isinstance(record, list):
            raise TypeError(f"a record is not a list: {type(record).__name__}")
        for field in record:
            if not isinstance(field, dict):
                raise TypeError(f"a field is not an object: {type(field).__name__}")
            value = field.get("blobValue")
            if isinstance(value, str):
                field["blobValue"] = base64.b64decode(value)


__all__ = ["BEFORE_PARSE_EVENT", "decode_blobs", "install_records_parser", "take_records"]
