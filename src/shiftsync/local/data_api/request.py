"""A redshift-data request's body: parsed, checked against AWS's own model, errors in AWS's form.

AWS's front end checks every request against the service model before the operation runs: a
value of the wrong JSON type is a SerializationException, a broken constraint (required,
length, range, pattern, enum) a ValidationException naming each member, in AWS's words.
Errors go back as JSON (`JsonRESTError`), as AWS's awsJson1.1 services send them.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import botocore.session
from botocore.model import ListShape, Shape, StringShape, StructureShape
from moto.core.exceptions import JsonRESTError
from moto.core.responses import BaseResponse


def api_error(error_type: str, message: str, status: int = 400) -> JsonRESTError:
    """An error answer: AWS's error type, its message, the HTTP status."""
    error = JsonRESTError(error_type, message)
    error.code = status
    return error


def not_found(message: str, resource_id: str) -> JsonRESTError:
    """ResourceNotFoundException with the `ResourceId` member the model requires."""
    error = api_error("ResourceNotFoundException", message)
    error.description = json.dumps(
        {"__type": "ResourceNotFoundException", "message": message, "ResourceId": resource_id}
    )
    return error


def connection_error(message: str) -> JsonRESTError:
    """DatabaseConnectionException: a fault in the model's terms, so a 5xx (500)."""
    return api_error("DatabaseConnectionException", message, 500)


def validation_error(message: str) -> JsonRESTError:
    return api_error("ValidationException", message)


def request_body(response: BaseResponse) -> dict[str, Any]:
    raw = response.body
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise api_error("SerializationException", "The request body is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise api_error("SerializationException", "The request body must be a JSON object")
    return parsed


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
        return api_error(
            "SerializationException", "Start of structure or map found where not expected."
        )
    if isinstance(value, list):
        return api_error("SerializationException", "Start of list found where not expected")
    found = {bool: "BOOLEAN_VALUE", str: "STRING_VALUE", int: "NUMBER_VALUE", float: "NUMBER_VALUE"}
    wanted = {
        "string": "a String",
        "integer": "an Integer",
        "long": "a Long",
        "boolean": "a Boolean",
        "list": "a List",
        "structure": "a Structure",
    }
    return api_error(
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


def check_input(operation: str, body: dict[str, Any]) -> None:
    shape = _input_shapes().get(operation)
    if shape is None:
        return
    problems: list[str] = []
    _check_value(shape, body, "", problems)
    if problems:
        count = len(problems)
        raise validation_error(
            f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)
        )


def required(body: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    if value is None or value == "":
        raise validation_error(
            f"1 validation error detected: Value null at '{key[0].lower() + key[1:]}' "
            "failed to satisfy constraint: Member must not be null"
        )
    return value
