"""Loading shiftsync.yaml: safe YAML, ${VAR} interpolation, validation and cross-checks.

Every problem found goes into ONE `ConfigError`, one line per problem (see problems.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from shiftsync.config.document import DOCS_HINT, ShiftsyncConfig
from shiftsync.config.models import SECRET_KEYS
from shiftsync.config.problems import Problem, _problem_from_error, _show
from shiftsync.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_unique_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


def load_config(path: Path, env: Mapping[str, str] | None = None) -> ShiftsyncConfig:
    """Read, interpolate, validate and cross-check a shiftsync.yaml.

    Raises ConfigError listing every problem at once, one per line.
    """
    name = path.name
    fix = f"edit {path} and run the command again; {DOCS_HINT}"
    if not path.is_file():
        raise ConfigError(
            f"{path} {'is not a file' if path.exists() else 'does not exist'}",
            fix="run `shiftsync init` to create it, or run shiftsync from the folder that holds it",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}", fix=fix) from exc
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(
            f"{name}: {where}invalid YAML: {exc.problem or exc.context}", fix=fix
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: invalid YAML: {exc}", fix=fix) from exc
    except RecursionError as exc:
        raise ConfigError(
            f"{name}: invalid YAML: nests too deep to read (more than {_MAX_DEPTH} levels are "
            "never a configuration)",
            fix=fix,
        ) from exc
    except ValueError as exc:
        # PyYAML's constructors raise plain ValueErrors, e.g. for an integer past Python's limit
        # on digits. The message describes the value (never quotes it); its advice is Python's.
        detail = str(exc).split("; use sys.", 1)[0]
        raise ConfigError(
            f"{name}: invalid YAML: a value cannot be read ({detail})", fix=fix
        ) from exc
    if data is None:
        raise ConfigError(
            f"{path} is empty", fix=f"run `shiftsync init` elsewhere and copy it; {DOCS_HINT}"
        )
    shape = _shape_problem(data)
    if shape:
        raise ConfigError(f"{name}: {shape}", fix=fix)
    config, problems = validate_config_data(data, os.environ if env is None else env)
    if problems or config is None:
        raise ConfigError("\n".join(problem.line(name) for problem in problems), fix=fix)
    return config


# Bounds on what a configuration may hold: YAML aliases can make a small file expand to a huge
# (or, with a self-reference, infinite) structure.
_MAX_VALUES: Final = 100_000
_MAX_DEPTH: Final = 64


def _shape_problem(data: Any) -> str | None:
    """Why the parsed document is too big or too deep to be a configuration, if it is."""
    count = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > _MAX_VALUES:
            return f"holds more than {_MAX_VALUES} values (YAML aliases expanding?)"
        if depth > _MAX_DEPTH:
            return f"nests deeper than {_MAX_DEPTH} levels (a YAML alias referring to itself?)"
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return None


def validate_config_data(
    data: Any, env: Mapping[str, str]
) -> tuple[ShiftsyncConfig | None, list[Problem]]:
    """Interpolate and validate parsed YAML; the config, or None and every problem found."""
    if not isinstance(data, dict):
        return None, [
            Problem(
                "",
                "the document is not a mapping",
                _show(data),
                "keys connections, destinations, syncs",
            )
        ]
    interpolated, problems = _interpolate(data, env, ())
    # A value whose ${VAR} could not be resolved is reported once, not again as invalid.
    broken = tuple(problem.path for problem in problems)

    def is_new(problem: Problem) -> bool:
        return not any(problem.path == b or problem.path.startswith(b + ".") for b in broken)

    config: ShiftsyncConfig | None = None
    try:
        config = ShiftsyncConfig.model_validate(interpolated)
    except ValidationError as exc:
        problems += [p for p in map(_problem_from_error, exc.errors()) if is_new(p)]
    problems += [p for p in _cross_check(interpolated) if is_new(p)]
    return (None if problems else config), problems


# ${VAR}, ${VAR:-default}; $${ is a literal ${; a ${ without } is an error, and so is a ${
# inside a reference (nesting is not supported, and the first } would end the outer one).
_REFERENCE_RE: Final = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_REFERENCE_BODY_RE: Final = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.S
)


def _interpolate(
    value: Any, env: Mapping[str, str], path: tuple[str, ...]
) -> tuple[Any, list[Problem]]:
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        problems: list[Problem] = []
        for key, item in value.items():
            out[key], found = _interpolate(item, env, (*path, str(key)))
            problems.extend(found)
        return out, problems
    if isinstance(value, list):
        items: list[Any] = []
        problems = []
        for index, item in enumerate(value):
            new, found = _interpolate(item, env, (*path, str(index)))
            items.append(new)
            problems.extend(found)
        return items, problems
    if isinstance(value, str) and "${" in value:
        return _interpolate_string(value, env, path)
    return value, []


def _interpolate_string(
    text: str, env: Mapping[str, str], path: tuple[str, ...]
) -> tuple[str, list[Problem]]:
    problems: list[Problem] = []
    secret = any(part in SECRET_KEYS for part in path)
    dotted = ".".join(path)

    def replace(match: re.Match[str]) -> str:
        reference = match.group(0)
        if reference == "$${":
            return "${"
        shown = "<secret>" if secret else _show(reference)
        body = match["body"]
        if body is not None and "${" in body:
            problems.append(
                Problem(
                    dotted,
                    "nested ${...} references are not supported",
                    "<secret>" if secret else _show(text),
                    "${VAR} or ${VAR:-default} with a plain default",
                )
            )
            return reference
        parsed = _REFERENCE_BODY_RE.fullmatch(body) if body is not None else None
        if parsed is None:
            problems.append(
                Problem(dotted, "malformed ${...} reference", shown, "${VAR} or ${VAR:-default}")
            )
            return reference
        name, default = parsed["name"], parsed["default"]
        value = env.get(name)
        if default is not None and not value:
            return default
        if value is None:
            problems.append(
                Problem(
                    dotted,
                    f"environment variable {name} is not set",
                    shown,
                    f"{name} to be set, or a default as ${{{name}:-value}}",
                )
            )
            return reference
        return value

    return _REFERENCE_RE.sub(replace, text), problems


def _cross_check(data: Mapping[Any, Any]) -> list[Problem]:
    """Names that must refer to something defined elsewhere in the file."""
    connections = data.get("connections")
    destinations = data.get("destinations")
    syncs = data.get("syncs")
    connections = connections if isinstance(connections, dict) else {}
    destinations = destinations if isinstance(destinations, dict) else {}
    if not isinstance(syncs, dict):
        return []
    problems: list[Problem] = []
    for sync_name, sync in syncs.items():
        if not isinstance(sync, dict):
            continue
        where = f"syncs.{sync_name}"
        for key, defined, kind in (
            ("source", connections, "connection"),
            ("destination", destinations, "destination"),
        ):
            ref = sync.get(key)
            if isinstance(ref, str) and ref not in defined:
                problems.append(
                    Problem(
                        f"{where}.{key}",
                        f"no {kind} named {ref}",
                        _show(ref),
                        f"one of: {', '.join(map(str, defined)) or f'(none: add {kind}s:)'}",
                    )
                )
        source = (
            connections.get(sync.get("source")) if isinstance(sync.get("source"), str) else None
        )
        destination_name = sync.get("destination")
        destination = (
            destinations.get(destination_name) if isinstance(destination_name, str) else None
        )
        if isinstance(source, dict) and isinstance(destination, dict):
            overlaps = _staging_overlap(str(destination_name), destination, source)
            problems.extend(p for p in overlaps if p not in problems)
        if isinstance(source, dict) and source.get("unload") is None:
            methods = [(f"{where}.method", sync.get("method"))]
            tables = sync.get("tables")
            if isinstance(tables, list):
                methods += [
                    (f"{where}.tables.{index}.method", entry.get("method"))
                    for index, entry in enumerate(tables)
                    if isinstance(entry, dict)
                ]
            problems.extend(
                Problem(
                    key,
                    f"unload needs an unload: bucket on connection {sync['source']}",
                    _show(method),
                    f"auto or data_api, or an unload: mapping under connections.{sync['source']}",
                )
                for key, method in methods
                if method == "unload"
            )
    return problems


def _staging_overlap(
    name: str, destination: Mapping[Any, Any], source: Mapping[Any, Any]
) -> list[Problem]:
    """A destination in S3 under the connection's UNLOAD staging prefix: refused, because the
    staging prefix is scratch space (each run deletes what it staged, `shiftsync cleanup`
    deletes everything left under it), so the destination's tables would be deleted too."""
    unload = source.get("unload")
    if not isinstance(unload, dict) or not isinstance(unload.get("bucket"), str):
        return []
    prefix = str(unload.get("prefix") or "shiftsync/")
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    problems = []
    for key in ("path", "warehouse"):
        url = destination.get(key)
        if not isinstance(url, str) or not url.startswith("s3://"):
            continue
        bucket, _, where = url[len("s3://") :].partition("/")
        if bucket == unload["bucket"] and (where.rstrip("/") + "/").startswith(prefix):
            problems.append(
                Problem(
                    f"destinations.{name}.{key}",
                    f"under the UNLOAD staging prefix s3://{bucket}/{prefix}, whose files "
                    "every run and `shiftsync cleanup` delete",
                    _show(url),
                    f"a path outside s3://{bucket}/{prefix}, e.g. s3://{bucket}/lake/",
                )
            )
    return problems
