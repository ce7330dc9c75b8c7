"""Adding a connection or a sync to shiftsync.yaml from the console or the API.

The file is the source of truth that `shiftsync sync` reads too, and people comment it: an
entry is inserted as text under its section (`connections:`, `syncs:`), so every comment and
the order of the rest stay as they were. The whole new file is validated before it replaces the
old one (atomically); nothing is written when it would not load.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Final

import yaml

from shiftsync.config import validate_config_data
from shiftsync.json_types import JsonValue
from shiftsync.serve.problems import ApiError
from shiftsync.workspace import Workspace, atomic_write_text

_KEY_RE: Final = re.compile(r"^(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")


def _block(name: str, entry: Mapping[str, JsonValue], indent: int) -> list[str]:
    dumped = yaml.safe_dump({name: dict(entry)}, sort_keys=False, default_flow_style=False)
    return [" " * indent + line for line in dumped.splitlines()]


def insert_entry(text: str, section: str, name: str, entry: Mapping[str, JsonValue]) -> str:
    """`text` with `name: entry` added as the first entry of the top-level `section:`.

    A missing section is appended at the end. A section written in flow style
    (`connections: {...}`) cannot take a block entry: ValueError.
    """
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _KEY_RE.match(line)
        if not match or match["key"] != section:
            continue
        rest = match["rest"].split("#", 1)[0].strip()
        if rest:
            raise ValueError(f"{section}: is written on one line ({rest[:20]}...)")
        indent = 2
        for following in lines[index + 1 :]:
            stripped = following.lstrip(" ")
            if not stripped or stripped.startswith("#"):
                continue
            width = len(following) - len(stripped)
            if width > 0:
                indent = width
            break
        new = [*lines[: index + 1], *_block(name, entry, indent), *lines[index + 1 :]]
        return "\n".join(new) + "\n"
    tail = [] if not lines or lines[-1].strip() else lines[-1:]
    body = lines if not tail else lines[:-1]
    return "\n".join([*body, f"{section}:", *_block(name, entry, 2), *tail]) + "\n"


def add_entry(
    workspace: Workspace, section: str, name: str, entry: Mapping[str, JsonValue]
) -> None:
    """Add `name` under `section` of the workspace's shiftsync.yaml, validated first."""
    path = workspace.config_path
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    existing = data.get(section) if isinstance(data, dict) else None
    if isinstance(existing, dict) and name in existing:
        raise ApiError(
            "conflict",
            f"{path.name} already has a {section[:-1]} named {name!r}",
            f"choose another name, or edit {path} to change it",
        )
    try:
        new_text = insert_entry(text, section, name, entry)
    except ValueError as error:
        raise ApiError(
            "config_error",
            f"{path}: {error}",
            f"write {section}: as a block (one entry per indented line), then try again",
        ) from error
    _, problems = validate_config_data(yaml.safe_load(new_text), os.environ)
    if problems:
        raise ApiError(
            "invalid_request",
            "; ".join(problem.line(path.name) for problem in problems),
            "correct the fields named above and send the form again",
        )
    atomic_write_text(path, new_text)


__all__ = ["add_entry", "insert_entry"]
