"""From pydantic's validation errors to the problem lines users see, secrets left out.

A pydantic error location is walked through the models (`_locate`) to find the field it is
about, so that the line can say what the field expects (`config_field(expected=...)`).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Annotated, Final, TypeGuard, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from shiftsync.config.document import DOCS_HINT, ShiftsyncConfig
from shiftsync.config.models import SECRET_KEYS, expected_of


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the file, at a dotted key path."""

    path: str
    what: str
    got: str
    expected: str

    def line(self, file_name: str, lines: Mapping[str, int] | None = None) -> str:
        """The problem as one line; with `lines` (from `key_lines`), where it is in the file."""
        number = line_of(self.path, lines) if lines else None
        at = f"line {number}: " if number else ""
        where = f"{self.path}: " if self.path else ""
        return f"{file_name}: {at}{where}{self.what} (got {self.got}); expected {self.expected}"


def key_lines(text: str) -> dict[str, int]:
    """Each dotted key path of a YAML document (list items by index) → its 1-based line.

    Read from the node tree (no value is constructed, so nothing runs and no alias expands);
    a document that does not compose gives {}.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}
    stack: list[tuple[yaml.Node | None, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{path}.{key_node.value}" if path else str(key_node.value)
                lines.setdefault(key, key_node.start_mark.line + 1)
                stack.append((value_node, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                key = f"{path}.{index}" if path else str(index)
                lines.setdefault(key, item.start_mark.line + 1)
                stack.append((item, key))
    return lines


def line_of(path: str, lines: Mapping[str, int]) -> int | None:
    """The line of `path`, or of its nearest ancestor present in the file (a missing key is
    reported where its mapping is)."""
    parts = path.split(".") if path else []
    while parts:
        found = lines.get(".".join(parts))
        if found is not None:
            return found
        parts.pop()
    return None


def format_problems(problems: Sequence[Problem], file_name: str, text: str | None = None) -> str:
    """Every problem on a line of its own, with its line number when the text is given."""
    lines = key_lines(text) if text else None
    return "\n".join(problem.line(file_name, lines) for problem in problems)


def close_key(key: str, keys: Sequence[str]) -> str | None:
    """The known key `key` was most likely meant to be (a typo, another case)."""
    matches = difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
    if matches:
        return matches[0]
    lowered = [k for k in keys if k.lower() == key.lower()]
    return lowered[0] if lowered else None


# A type as pydantic's fields hold it at run time (a class, `X | None`, `Annotated[...]`, a
# `Literal`), or None past the models' end: typed `object`, only `get_origin`/`get_args` and
# isinstance look inside.
def _unwrap(annotation: object) -> object:
    """Strip Annotated[...] and Optional[...] down to the type that carries the value."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [arg for arg in get_args(annotation) if arg is not NoneType]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _is_model(annotation: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tagged_members(annotation: object) -> dict[str, type[BaseModel]]:
    """The models of a discriminated union by their `type` tag ({} if not such a union)."""
    if get_origin(annotation) not in (Union, UnionType):
        return {}
    members: dict[str, type[BaseModel]] = {}
    for member in get_args(annotation):
        if _is_model(member) and "type" in member.model_fields:
            for tag in get_args(member.model_fields["type"].annotation):
                members[tag] = member
    return members


def _field_by_key(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


@dataclass
class _Located:
    path: str
    field: FieldInfo | None  # the last model field on the way
    annotation: object  # what the value at the location should be
    entry: bool  # the location is an entry of a mapping of names, not a field


def _locate(loc: Sequence[int | str]) -> _Located:
    """Walk a pydantic error location through the models, dropping union tags and [key]."""
    parts: list[str] = []
    annotation: object = ShiftsyncConfig
    field: FieldInfo | None = None
    entry = False
    for item in loc:
        annotation = _unwrap(annotation)
        tagged = _tagged_members(annotation)
        if tagged and item in tagged:
            annotation = tagged[str(item)]
            continue
        if item == "[key]":
            continue
        parts.append(str(item))
        origin = get_origin(annotation)
        entry = origin is dict
        if _is_model(annotation):
            field = _field_by_key(annotation, str(item))
            annotation = field.annotation if field else None
        elif origin is dict:
            annotation = get_args(annotation)[1]
        elif origin in (tuple, list):
            annotation = get_args(annotation)[0]
        else:
            annotation = None
    return _Located(".".join(parts), field, _unwrap(annotation), entry)


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _entry_expected(annotation: object) -> str | None:
    """What a named entry (a connection, a destination, a sync) should look like."""
    tagged = _tagged_members(annotation)
    if tagged:
        return f"a mapping with type: one of {', '.join(tagged)}"
    if _is_model(annotation):
        return f"a mapping with keys among: {', '.join(_keys_of(annotation))}"
    return None


def problem_from_error(error: ErrorDetails) -> Problem:
    kind = error["type"]
    ctx: Mapping[str, object] = error.get("ctx") or {}
    loc = error["loc"]
    located = _locate(loc)
    expected = expected_of(located.field)
    if located.entry:
        expected = _entry_expected(located.annotation) or expected
    secret = any(part in SECRET_KEYS for part in located.path.split("."))
    got = "<secret>" if secret else show_value(error["input"])

    if kind == "shiftsync_invalid":
        # None here is a default checked against another key (tracking_field, unload).
        got = "nothing" if error["input"] is None else got
        return Problem(located.path, str(ctx["what"]), got, str(ctx["expected"]))
    if kind == "extra_forbidden":
        parent = _locate(loc[:-1]).annotation
        known = _keys_of(parent) if _is_model(parent) else []
        keys = ", ".join(known) if known else "known keys"
        meant = close_key(str(loc[-1]), known)
        what = f"unknown key (did you mean {meant}?)" if meant else "unknown key"
        return Problem(located.path, what, show_value(loc[-1]), f"one of: {keys}")
    if kind == "missing":
        return Problem(located.path, "missing", "nothing", expected or "a value")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = ", ".join(_tagged_members(located.annotation)) or str(ctx.get("expected_tags"))
        given = error["input"].get("type") if isinstance(error["input"], dict) else None
        return Problem(
            f"{located.path}.type",
            "missing" if kind == "union_tag_not_found" else "unknown type",
            "nothing" if kind == "union_tag_not_found" else show_value(given),
            f"one of: {tags}",
        )
    if kind == "literal_error":
        return Problem(located.path, "not an allowed value", got, expected or str(ctx["expected"]))
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return Problem(located.path, "out of range", got, expected or error["msg"])
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        what = "too short" if "short" in kind else "too long"
        if isinstance(error["input"], dict | list | tuple) and not error["input"]:
            what = "empty"
        return Problem(located.path, what, got, expected or error["msg"])
    if kind.endswith(("_type", "_parsing")) or kind in ("model_attributes_type",):
        return Problem(located.path, "wrong type", got, expected or error["msg"])
    return Problem(located.path, error["msg"], got, expected or DOCS_HINT)


# libpq's connection parameters that hold secrets: the password, and the passphrase of the
# client's SSL key (libpq's "Parameter Key Words"). File paths (sslkey, passfile) are not.
LIBPQ_SECRET_KEYS: Final = frozenset({"password", "sslpassword"})
# A DSN can sit under any key when it is in the wrong place: its credentials never show.
_URL_CREDENTIALS: Final = re.compile(r"(?<=://)[^/@\s]+@")
# key=value (libpq's form, quoted or not) and ?key=value (a URL's query); the key may be any
# secret key, or the common spellings of a password.
_PASSWORD_SETTING: Final = re.compile(
    r"(?i)(?<![A-Za-z0-9_])(sslpassword|password|passwd|pwd)(\s*=\s*)"
    r"('(?:[^'\\]|\\.)*'|[^\s&]+)"
)


def mask_credentials(text: str) -> str:
    """`text` with URL user:password parts and password=…, sslpassword=… settings replaced by
    <secret> (libpq's key=value form and a URL's query alike)."""
    text = _URL_CREDENTIALS.sub("<secret>@", text)
    return _PASSWORD_SETTING.sub(lambda match: f"{match.group(1)}=<secret>", text)


def _redact(value: object) -> object:
    if isinstance(value, dict):
        return {
            key: "<secret>" if key in SECRET_KEYS else _redact(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    if isinstance(value, str):
        return mask_credentials(value)
    return value


def show_value(value: object, limit: int = 80) -> str:
    """A short, secret-free rendering of a value from the file."""
    value = _redact(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
