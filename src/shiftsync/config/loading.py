"""Loading shiftsync.yaml: safe YAML, ${VAR} interpolation, validation and cross-checks.

Every problem found goes into ONE `ConfigError`, one line per problem (see problems.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Final, TypeAlias

import yaml
from pydantic import ValidationError

from shiftsync.config.document import DOCS_HINT, ShiftsyncConfig
from shiftsync.config.models import SECRET_KEYS
from shiftsync.config.problems import Problem, format_problems, problem_from_error, show_value
from shiftsync.errors import ConfigError

# A mapping as the safe YAML loader builds it: its keys need not be strings (`1: x`, `null: x`)
# and its values are anything YAML can say; each walk below narrows what it reads.
YamlMapping: TypeAlias = Mapping[Hashable, object]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_unique_mapping(
    loader: _StrictLoader, node: yaml.MappingNode
) -> dict[Hashable, object]:
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


def load_config(
    path: Path, env: Mapping[str, str] | None = None, *, environment: str | None = None
) -> ShiftsyncConfig:
    """Read, interpolate, validate and cross-check a shiftsync.yaml.

    With `environment` (say `prod`), the overlay file next to it (`shiftsync.prod.yaml`) is
    merged over it first (see `merge_overlay`). Raises ConfigError listing every problem at
    once, one per line.
    """
    data = _parse_file(path)
    name = path.name
    fix = f"edit {path} and run the command again; {DOCS_HINT}"
    if environment is not None:
        overlay = overlay_path(path, environment)
        data = merge_overlay(data, _parse_file(overlay, empty_ok=True), overlay.name)
        name = f"{path.name} + {overlay.name}"
        fix = f"edit {path} or {overlay} and run the command again; {DOCS_HINT}"
    shape = _shape_problem(data)
    if shape:
        raise ConfigError(f"{name}: {shape}", fix=fix)
    config, problems = validate_config_data(data, os.environ if env is None else env)
    if problems or config is None:
        # Line numbers point into one file: an overlay's merge has none to give.
        text = path.read_text(encoding="utf-8") if environment is None else None
        raise ConfigError(format_problems(problems, name, text), fix=fix)
    return config


# What an environment's name may be: it becomes part of a file name.
ENVIRONMENT_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def overlay_path(path: Path, environment: str) -> Path:
    """The overlay of `environment` next to `path`: shiftsync.yaml -> shiftsync.prod.yaml."""
    if not ENVIRONMENT_RE.fullmatch(environment):
        raise ConfigError(
            f"--env {environment!r} is not an environment name (letters, digits, _ and -, "
            "starting with a letter or digit)",
            fix="pass --env a name such as prod, or unset SHIFTSYNC_ENV",
        )
    overlay = path.with_name(f"{path.stem}.{environment}{path.suffix}")
    if not overlay.is_file():
        raise ConfigError(
            f"environment {environment}: {overlay} "
            f"{'is not a file' if overlay.exists() else 'does not exist'}",
            fix=f"create {overlay} with the keys that differ in {environment}, or run without "
            "--env (and with SHIFTSYNC_ENV unset)",
        )
    return overlay


def merge_overlay(base: object, overlay: object, overlay_name: str = "the overlay") -> object:
    """`overlay` merged over `base`: what an environment changes in shiftsync.yaml.

    Mappings merge key by key, at every depth; any other value of the overlay (a scalar, a
    list) replaces the base's; a key whose overlay value is null is removed. An empty overlay
    changes nothing.
    """
    if overlay is None:
        return base
    if not isinstance(overlay, dict):
        raise ConfigError(
            f"{overlay_name}: the document is not a mapping",
            fix=f"write {overlay_name} as the keys of shiftsync.yaml that differ, e.g. "
            "`connections: {warehouse: {workgroup: prod}}`",
        )
    if not isinstance(base, dict):
        return overlay
    merged = dict(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overlay(merged[key], value, overlay_name)
        else:
            merged[key] = value
    return merged


def _parse_file(path: Path, *, empty_ok: bool = False) -> object:
    """The parsed YAML document of path (None only when empty_ok); ConfigError otherwise."""
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
    if data is None and not empty_ok:
        raise ConfigError(
            f"{path} is empty", fix=f"run `shiftsync init` elsewhere and copy it; {DOCS_HINT}"
        )
    return data


# Bounds on what a configuration may hold: YAML aliases can make a small file expand to a huge
# (or, with a self-reference, infinite) structure.
_MAX_VALUES: Final = 100_000
_MAX_DEPTH: Final = 64


def _shape_problem(data: object) -> str | None:
    """Why the parsed document is too big or too deep to be a configuration, if it is."""
    count = 0
    stack: list[tuple[object, int]] = [(data, 0)]
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
    data: object, env: Mapping[str, str]
) -> tuple[ShiftsyncConfig | None, list[Problem]]:
    """Interpolate and validate parsed YAML; the config, or None and every problem found."""
    if not isinstance(data, dict):
        return None, [
            Problem(
                "",
                "the document is not a mapping",
                show_value(data),
                "keys connections, destinations, syncs",
            )
        ]
    unset: list[tuple[Problem, str]] = []
    interpolated, problems = _interpolate_mapping(data, env, (), unset)
    deferred = _defer_unset(interpolated, unset, problems)
    # A value whose ${VAR} could not be resolved is reported once, not again as invalid; an
    # entry waiting for a variable is checked when a command uses it.
    broken = tuple(problem.path for problem in problems) + tuple(
        f"{section}.{entry}" for section, entry in deferred
    )

    def is_new(problem: Problem) -> bool:
        return not any(problem.path == b or problem.path.startswith(b + ".") for b in broken)

    resolved = {
        key: (
            {k: v for k, v in value.items() if (key, str(k)) not in deferred}
            if isinstance(value, dict)
            else value
        )
        for key, value in interpolated.items()
    }
    config: ShiftsyncConfig | None = None
    try:
        config = ShiftsyncConfig.model_validate(resolved)
    except ValidationError as exc:
        problems += [p for p in map(problem_from_error, exc.errors()) if is_new(p)]
    problems += [p for p in _cross_check(interpolated) if is_new(p)]
    if config is not None:
        config.set_unresolved(deferred)
    return (None if problems else config), problems


# The sections whose entries wait for their variables until a command uses them.
_DEFERRED_SECTIONS: Final = ("connections", "destinations", "syncs")


def _defer_unset(
    data: YamlMapping, unset: list[tuple[Problem, str]], problems: list[Problem]
) -> dict[tuple[str, str], tuple[tuple[Problem, str], ...]]:
    """Sort the unset-variable problems: those inside a named connection, destination or sync
    are deferred (returned by entry); the others go into `problems` at once.

    A command needs only its own entries (a DuckDB sync does not need the DSN of an unrelated
    PostgreSQL destination). When every connection waits for a variable the problems stay
    immediate: no command that reads Redshift could run.
    """
    deferred: dict[tuple[str, str], list[tuple[Problem, str]]] = {}
    for problem, variable in unset:
        section, _, rest = problem.path.partition(".")
        entry = rest.split(".", 1)[0]
        if section in _DEFERRED_SECTIONS and entry and isinstance(data.get(section), dict):
            deferred.setdefault((section, entry), []).append((problem, variable))
        else:
            problems.append(problem)
    connections = data.get("connections")
    if isinstance(connections, dict) and all(
        ("connections", str(name)) in deferred for name in connections
    ):
        for key in [key for key in deferred if key[0] == "connections"]:
            problems.extend(problem for problem, _ in deferred.pop(key))
    return {key: tuple(found) for key, found in deferred.items()}


# ${VAR}, ${VAR:-default}; $${ is a literal ${; a ${ without } is an error, and so is a ${
# inside a reference (nesting is not supported, and the first } would end the outer one).
_REFERENCE_RE: Final = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_REFERENCE_BODY_RE: Final = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.S
)


def _interpolate(
    value: object, env: Mapping[str, str], path: tuple[str, ...], unset: list[tuple[Problem, str]]
) -> tuple[object, list[Problem]]:
    """value with ${VAR} replaced; the malformed references found (unset ones go to unset)."""
    if isinstance(value, dict):
        return _interpolate_mapping(value, env, path, unset)
    if isinstance(value, list):
        items: list[object] = []
        problems: list[Problem] = []
        for index, item in enumerate(value):
            new, found = _interpolate(item, env, (*path, str(index)), unset)
            items.append(new)
            problems.extend(found)
        return items, problems
    if isinstance(value, str) and "${" in value:
        return _interpolate_string(value, env, path, unset)
    return value, []


def _interpolate_mapping(
    value: YamlMapping,
    env: Mapping[str, str],
    path: tuple[str, ...],
    unset: list[tuple[Problem, str]],
) -> tuple[dict[Hashable, object], list[Problem]]:
    out: dict[Hashable, object] = {}
    problems: list[Problem] = []
    for key, item in value.items():
        out[key], found = _interpolate(item, env, (*path, str(key)), unset)
        problems.extend(found)
    return out, problems


def _interpolate_string(
    text: str, env: Mapping[str, str], path: tuple[str, ...], unset: list[tuple[Problem, str]]
) -> tuple[str, list[Problem]]:
    problems: list[Problem] = []
    secret = any(part in SECRET_KEYS for part in path)
    dotted = ".".join(path)

    def replace(match: re.Match[str]) -> str:
        reference = match.group(0)
        if reference == "$${":
            return "${"
        shown = "<secret>" if secret else show_value(reference)
        body = match["body"]
        if body is not None and "${" in body:
            problems.append(
                Problem(
                    dotted,
                    "nested ${...} references are not supported",
                    "<secret>" if secret else show_value(text),
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
            unset.append(
                (
                    Problem(
                        dotted,
                        f"environment variable {name} is not set",
                        shown,
                        f"{name} to be set, or a default as ${{{name}:-value}}",
                    ),
                    name,
                )
            )
            return reference
        return value

    return _REFERENCE_RE.sub(replace, text), problems


def _one_writer(syncs: YamlMapping) -> list[Problem]:
    """Two syncs of one destination whose entries write one table: the same table named
    exactly without a target, or the same explicit target. (Targets that only the source's
    listing or the naming rules reveal are checked when a sync runs: engine/writers.py.)"""
    seen: dict[tuple[str, str], str] = {}
    problems: list[Problem] = []
    for sync_name, sync in syncs.items():
        if not isinstance(sync, dict) or not isinstance(sync.get("tables"), list):
            continue
        # A destination that is not a name (missing, a list) is the model's problem to report.
        destination = sync.get("destination")
        if not isinstance(destination, str):
            continue
        for index, entry in enumerate(sync["tables"]):
            entry = {"include": entry} if isinstance(entry, str) else entry
            if not isinstance(entry, dict) or not isinstance(entry.get("include"), str):
                continue
            include, target = entry["include"], entry.get("target")
            if target is None and any(c in include for c in "*?["):
                continue
            key = (
                (destination, f"target {target}")
                if isinstance(target, str)
                else (destination, f"table {include}")
            )
            where = f"syncs.{sync_name}.tables.{index}"
            other = seen.setdefault(key, where)
            if other.split(".")[1] != str(sync_name):
                problems.append(
                    Problem(
                        f"{where}.{'target' if isinstance(target, str) else 'include'}",
                        f"writes the same destination table as {other} (destination "
                        f"{destination}): two writers undo each other's rows",
                        show_value(target if isinstance(target, str) else include),
                        "one sync per destination table: give this entry a target of its own, "
                        "or copy the table with one sync",
                    )
                )
    return problems


def _cross_check(data: YamlMapping) -> list[Problem]:
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
        problems.extend(_snapshot_problems(where, sync))
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
                        show_value(ref),
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
                    show_value(method),
                    f"auto or data_api, or an unload: mapping under connections.{sync['source']}",
                )
                for key, method in methods
                if method == "unload"
            )
    return problems + _one_writer(syncs)


def _snapshot_problems(where: str, sync: YamlMapping) -> list[Problem]:
    """What a sync asks of `snapshot: consistent` that one Redshift session cannot give."""
    if sync.get("snapshot") != "consistent":
        return []
    problems = []
    concurrency = sync.get("concurrency")
    if isinstance(concurrency, int) and concurrency > 1:
        problems.append(
            Problem(
                f"{where}.concurrency",
                "snapshot: consistent reads every table in one Redshift session, one statement "
                "at a time, so tables cannot be copied at once",
                show_value(concurrency),
                "1 (or leave concurrency out), or snapshot: table",
            )
        )
    if sync.get("executor") == "ray":
        problems.append(
            Problem(
                f"{where}.executor",
                "snapshot: consistent reads every table in the driver's Redshift session; Ray "
                "workers read in sessions of their own",
                show_value("ray"),
                "local (or leave executor out), or snapshot: table",
            )
        )
    return problems


def _staging_overlap(name: str, destination: YamlMapping, source: YamlMapping) -> list[Problem]:
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
                    show_value(url),
                    f"a path outside s3://{bucket}/{prefix}, e.g. s3://{bucket}/lake/",
                )
            )
    return problems
