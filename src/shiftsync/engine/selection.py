"""Which tables a sync copies, and how: the sync's entries resolved against the source.

Pure: no I/O. Two steps, because the second needs each table's columns from the catalog:

1. `select_tables(...)` matches the sync's `tables` entries against the source's table list
   and returns one `TableJob` per table (target name, mode, tracking field, method, state key),
   plus one `TableProblem` per table that cannot be copied as configured (an exactly named
   table that does not exist, two tables writing one target). Problems concern their table
   only: the other tables still run.
2. `resolve_table(job, columns, catalog_key, ...)` checks the entry against the table's columns
   and returns the `TablePlan`: columns read, destination names, hashed columns, primary key,
   tracking column. Every mistake is a ConfigError naming the table, the key and the column.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

import pyarrow as pa

from shiftsync.config import ColumnSelection, Method, SyncConfig, is_glob, match_table
from shiftsync.engine.canonical_text import canonical_texts
from shiftsync.engine.names import (
    check_target_length,
    column_names,
    same_table_key,
    target_name,
)
from shiftsync.engine.state import state_key
from shiftsync.errors import ConfigError
from shiftsync.redshift.types import Column, arrow_field

Mode = Literal["full_refresh", "incremental"]

# Types whose values have an order a cursor can follow exactly, and whose text form (the
# stored cursor) is exact. BOOL has two values; SUPER, VARBYTE, GEOMETRY, INTERVAL, TIMETZ and
# HLLSKETCH have no useful order in Redshift; a REAL or DOUBLE cursor's text may round.
ORDERABLE_TYPES: Final = frozenset(
    {"int2", "int4", "int8", "numeric", "bpchar", "varchar", "date", "timestamp", "timestamptz"}
)
HASHED_METADATA: Final = {b"shiftsync.hashed": b"sha256(salt || text)"}


class NamedTable(Protocol):
    """A source table: `shiftsync.redshift.source.TableRef` fits."""

    @property
    def schema(self) -> str: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class TableJob:
    """One table to copy, as the sync's configuration describes it."""

    schema: str
    table: str
    target: str
    mode: Mode
    tracking_field: str | None
    primary_key: tuple[str, ...] | None  # from the configuration; None: the catalog's
    columns: ColumnSelection | None
    filter: str | None
    method: Method
    state_key: str
    full_refresh: bool = False  # --full-refresh: ignore the stored cursor

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class TableProblem:
    """A table the sync names but cannot copy as configured."""

    table: str
    error: ConfigError


@dataclass(frozen=True)
class Selection:
    jobs: tuple[TableJob, ...]
    problems: tuple[TableProblem, ...] = ()


@dataclass(frozen=True)
class TablePlan:
    """A job checked against the table's columns.

    Column names are the source's; `targets` maps each read column to its destination name.
    """

    columns: tuple[Column, ...]
    targets: Mapping[str, str]
    hashed: frozenset[str] = field(default_factory=frozenset)
    primary_key: tuple[str, ...] = ()
    tracking: Column | None = None

    def target_of(self, column: str) -> str:
        return self.targets[column]

    @property
    def target_key(self) -> tuple[str, ...]:
        return tuple(self.targets[c] for c in self.primary_key)


def _close(name: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if not matches:
        lowered = [c for c in candidates if c.lower() == name.lower()]
        matches = lowered[:1]
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def check_table_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    """`--tables` patterns as "schema.table"; a pattern without a dot means any schema."""
    checked: list[str] = []
    for pattern in patterns:
        text = pattern.strip()
        if text.count(".") > 1 or not text or text.startswith(".") or text.endswith("."):
            raise ConfigError(
                f"--tables {pattern!r} is not a table pattern",
                fix='write "schema.table" or "table" (* and ? are wildcards), e.g. "public.sal*"',
            )
        checked.append(text if "." in text else f"*.{text}")
    return tuple(checked)


def select_tables(
    sync_name: str,
    sync: SyncConfig,
    tables: Iterable[NamedTable],
    *,
    connection_method: Method = "auto",
    only: Sequence[str] = (),
    full_refresh: bool = False,
    destination_kind: str = "",
) -> Selection:
    """The jobs of a sync over the source's `tables`.

    `only` (from `--tables`) narrows the run; a pattern there that matches none of the sync's
    tables is a ConfigError, as is a run that selects nothing at all. `destination_kind` says
    how the destination compares and cuts table names, so that two targets it would take for
    one table are refused rather than written over each other.
    """
    patterns = check_table_patterns(only)
    listed = sorted({(t.schema, t.name) for t in tables})
    jobs: list[TableJob] = []
    problems: list[TableProblem] = []
    for schema, table in listed:
        entry = sync.select(schema, table)
        if entry is None:
            continue
        try:
            target = target_name(schema, table, entry.target, normalize=sync.normalize_names)
            check_target_length(destination_kind, f"{schema}.{table}", target)
        except ConfigError as error:
            problems.append(TableProblem(f"{schema}.{table}", error))
            continue
        jobs.append(
            TableJob(
                schema=schema,
                table=table,
                target=target,
                mode=entry.mode,
                tracking_field=entry.tracking_field,
                primary_key=entry.primary_key,
                columns=entry.columns,
                filter=entry.filter,
                method=entry.method or sync.method or connection_method,
                state_key=state_key(sync_name, schema, table),
                full_refresh=full_refresh,
            )
        )
    problems += _missing_exact(sync_name, sync, listed)
    jobs, collisions = _split_collisions(jobs, destination_kind)
    problems += collisions
    return _narrow(sync_name, jobs, problems, patterns)


def _missing_exact(
    sync_name: str, sync: SyncConfig, listed: Sequence[tuple[str, str]]
) -> list[TableProblem]:
    """An entry that names one table exactly, where the source has no such table."""
    present = {f"{s}.{t}" for s, t in listed}
    problems: list[TableProblem] = []
    for entry in sync.tables:
        if is_glob(entry.include) or entry.include in present:
            continue
        schema, _, table = entry.include.partition(".")
        if any(match_table(p, schema, table) for p in sync.exclude):
            continue
        problems.append(
            TableProblem(
                entry.include,
                ConfigError(
                    f"sync {sync_name}: table {entry.include} does not exist in the source, or "
                    f"the role cannot see it{_close(entry.include, present)}",
                    fix="correct the name in shiftsync.yaml (Redshift folds unquoted names to "
                    "lowercase), or grant the role SELECT on the table",
                ),
            )
        )
    return problems


def _split_collisions(
    jobs: list[TableJob], destination_kind: str
) -> tuple[list[TableJob], list[TableProblem]]:
    by_target: dict[str, list[TableJob]] = {}
    for job in jobs:
        by_target.setdefault(same_table_key(destination_kind, job.target), []).append(job)
    kept: list[TableJob] = []
    problems: list[TableProblem] = []
    for group in by_target.values():
        if len(group) == 1:
            kept.append(group[0])
            continue
        names = ", ".join(j.name for j in group)
        targets = " and ".join(sorted({repr(j.target) for j in group}))
        for job in group:
            problems.append(
                TableProblem(
                    job.name,
                    ConfigError(
                        f"tables {names} would all be written to destination table {targets}"
                        + (
                            f" ({destination_kind} does not tell their case apart)"
                            if len({j.target for j in group}) > 1
                            else ""
                        ),
                        fix=f"give {job.name} its own target in shiftsync.yaml",
                    ),
                )
            )
    kept.sort(key=lambda j: (j.schema, j.table))
    return kept, problems


def _narrow(
    sync_name: str,
    jobs: list[TableJob],
    problems: list[TableProblem],
    patterns: Sequence[str],
) -> Selection:
    def wanted(name: str) -> bool:
        schema, _, table = name.partition(".")
        return not patterns or any(match_table(p, schema, table) for p in patterns)

    for pattern in patterns:
        names = [j.name for j in jobs] + [p.table for p in problems]
        if not any(match_table(pattern, *n.split(".", 1)) for n in names):
            raise ConfigError(
                f"--tables {pattern!r} matches none of the tables of sync {sync_name}"
                f"{_close(pattern, names)}",
                fix="run `shiftsync sync --dry-run` to list the sync's tables",
            )
    selected = tuple(j for j in jobs if wanted(j.name))
    kept_problems = tuple(p for p in problems if wanted(p.table))
    if not selected and not kept_problems:
        raise ConfigError(
            f"sync {sync_name} selects no table of the source",
            fix="check the sync's tables patterns against `shiftsync tables`, and that the "
            "role has SELECT on them",
        )
    return Selection(selected, kept_problems)


# --- step 2: one table against its columns ----------------------------------------------


def _unknown_column(job: TableJob, key: str, column: str, names: Sequence[str]) -> ConfigError:
    return ConfigError(
        f"table {job.name}: {key} names column {column!r}, which the table does not have"
        f"{_close(column, names)}",
        fix=f"correct {key} in shiftsync.yaml (column names are case-sensitive)",
    )


def resolve_table(
    job: TableJob,
    columns: Sequence[Column],
    catalog_key: Sequence[str] = (),
    *,
    normalize: bool = False,
) -> TablePlan:
    """Check `job` against the table's columns and say exactly what to read and write."""
    names = [c.name for c in columns]
    selection = job.columns or ColumnSelection()
    for key, listed in (
        ("columns.include", selection.include),
        ("columns.exclude", selection.exclude),
        ("columns.hash", selection.hash),
    ):
        for name in listed:
            if name not in names:
                raise _unknown_column(job, key, name, names)
    read = tuple(c for c in columns if selection.copies(c.name))
    if not read:
        raise ConfigError(
            f"table {job.name}: columns leaves no column to copy",
            fix="include at least one column",
        )
    read_names = [c.name for c in read]
    tracking = None
    if job.mode == "incremental":
        tracking = _tracking_column(job, columns, read_names)
    primary_key = _primary_key(job, names, read_names, catalog_key)
    targets = column_names(job.name, read_names, normalize=normalize)
    return TablePlan(
        columns=read,
        targets=targets,
        hashed=frozenset(selection.hash),
        primary_key=primary_key,
        tracking=tracking,
    )


def _tracking_column(job: TableJob, columns: Sequence[Column], read: Sequence[str]) -> Column:
    names = [c.name for c in columns]
    field_name = job.tracking_field
    found = next((c for c in columns if c.name == field_name), None)
    if field_name is None or found is None:
        raise _unknown_column(job, "tracking_field", str(field_name), names)
    if found.type_name not in ORDERABLE_TYPES:
        raise ConfigError(
            f"table {job.name}: tracking_field {field_name!r} has type {found.type_name}, whose "
            "values have no order a cursor can follow",
            fix="choose a column of an integer, decimal, text, date or timestamp type that "
            "grows with every change (an updated_at timestamp or an increasing id)",
        )
    if field_name not in read:
        raise ConfigError(
            f"table {job.name}: tracking_field {field_name!r} is not copied",
            fix="copy the tracking_field (remove it from columns.exclude or add it to include)",
        )
    return found


def _primary_key(
    job: TableJob, names: Sequence[str], read: Sequence[str], catalog_key: Sequence[str]
) -> tuple[str, ...]:
    if job.primary_key is not None:
        for name in job.primary_key:
            if name not in names:
                raise _unknown_column(job, "primary_key", name, names)
            if name not in read:
                raise ConfigError(
                    f"table {job.name}: primary_key column {name!r} is not copied, so rows "
                    "cannot be matched by key in the destination",
                    fix="copy the key column (remove it from columns.exclude or add it to "
                    "include), or set primary_key to copied columns",
                )
        return tuple(job.primary_key)
    key = tuple(catalog_key)
    dropped = [name for name in key if name not in read]
    if dropped and job.mode == "incremental":
        raise ConfigError(
            f"table {job.name}: the table's primary key column {dropped[0]!r} is not copied, so "
            "incremental rows cannot be merged by key",
            fix="copy the key column, or set primary_key to copied columns",
        )
    return () if dropped else key


# --- what is written: destination names, hashed values ---------------------------------


def load_schema(plan: TablePlan) -> pa.Schema:
    """The Arrow schema written to the destination: destination names, hashes as text."""
    fields = []
    for column in plan.columns:
        source = arrow_field(column)
        if column.name in plan.hashed:
            metadata = {**(source.metadata or {}), **HASHED_METADATA}
            fields.append(pa.field(plan.target_of(column.name), pa.string(), True, metadata))
        else:
            fields.append(source.with_name(plan.target_of(column.name)))
    return pa.schema(fields)


def hash_values(array: pa.Array, salt: str) -> pa.Array:
    """SHA-256 (hex) of salt + each value's canonical text; NULL stays NULL."""
    texts = canonical_texts(array)
    prefix = salt.encode()
    return pa.array(
        [
            None if text is None else hashlib.sha256(prefix + text.encode()).hexdigest()
            for text in texts
        ],
        pa.string(),
    )


def shape_batch(
    plan: TablePlan, batch: pa.RecordBatch, schema: pa.Schema, salt: str | None
) -> pa.RecordBatch:
    """A batch as read (source names) → as written (`schema`: destination names, hashes)."""
    arrays = []
    for column in plan.columns:
        array = batch.column(column.name)
        if column.name in plan.hashed:
            if salt is None:
                raise ConfigError(
                    f"column {column.name!r} is to be hashed, but no salt was given",
                    fix="this is a bug in shiftsync: report it",
                )
            array = hash_values(array, salt)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


__all__ = [
    "HASHED_METADATA",
    "ORDERABLE_TYPES",
    "NamedTable",
    "Selection",
    "TableJob",
    "TablePlan",
    "TableProblem",
    "check_table_patterns",
    "hash_values",
    "load_schema",
    "resolve_table",
    "select_tables",
    "shape_batch",
]
