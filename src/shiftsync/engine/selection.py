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

from shiftsync.config import (
    ColumnSelection,
    Method,
    SyncConfig,
    exact_table_name,
    match_table,
    split_table_pattern,
    table_name_for_config,
)
from shiftsync.engine.canonical_text import canonical_texts
from shiftsync.engine.names import (
    check_column_lengths,
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
    deletes: Literal["ignore", "hard", "soft"] = "ignore"
    lookback: str | None = None  # incremental: read again this far below the cursor
    null_tracking: Literal["warn", "carry"] = "warn"
    on_mismatch: Literal["fail", "full_refresh"] = "fail"
    exact: bool = False  # chosen by an entry that names the table exactly

    @property
    def name(self) -> str:
        """ "schema.table" as `tables:` takes it (parts with dots or spaces double-quoted)."""
        return table_name_for_config(self.schema, self.table)


@dataclass(frozen=True)
class TableProblem:
    """A table the sync names but cannot copy as configured."""

    table: str
    error: ConfigError
    key: tuple[str, str] | None = None  # (schema, table) when known


@dataclass(frozen=True)
class Selection:
    jobs: tuple[TableJob, ...]
    problems: tuple[TableProblem, ...] = ()
    # "warning: ..." lines for the run's notes: patterns of the sync that match no table.
    warnings: tuple[str, ...] = ()


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
    """`--tables` patterns as "schema.table"; a pattern without a schema means any schema.

    Parts are as in `tables:`: * and ? are wildcards, a double-quoted part is a name as
    written ('"Odd Schema"."Mixed Case"').
    """
    checked: list[str] = []
    for pattern in patterns:
        text = pattern.strip()
        for candidate in (text, f"*.{text}"):
            try:
                split_table_pattern(candidate)
            except ValueError:
                continue
            checked.append(candidate)
            break
        else:
            raise ConfigError(
                f"--tables {pattern!r} is not a table pattern",
                fix='write "schema.table" or "table" (* and ? are wildcards), e.g. '
                '"public.sal*"; double-quote a name with dots or spaces: '
                '\'"Odd Schema"."Mixed Case"\'',
            )
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
    claimed: Mapping[str, str] | None = None,
) -> Selection:
    """The jobs of a sync over the source's `tables`.

    `only` (from `--tables`) narrows the run; a pattern there that matches none of the sync's
    tables is a ConfigError, as is a run that selects nothing at all. `destination_kind` says
    how the destination compares and cuts table names, so that two targets it would take for
    one table are refused rather than written over each other. `claimed` maps destination
    tables (by `same_table_key`) that other syncs' entries name exactly to who claims them:
    a table matched here by a pattern never takes one of them (see engine/writers.py).
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
            problems.append(
                TableProblem(table_name_for_config(schema, table), error, (schema, table))
            )
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
                deletes=entry.deletes or sync.deletes,
                lookback=None if entry.lookback is None else str(entry.lookback),
                null_tracking=entry.null_tracking,
                on_mismatch=entry.on_mismatch or sync.on_mismatch,
                exact=entry.is_exact,
            )
        )
    problems += _missing_exact(sync_name, sync, listed)
    jobs, collisions = _split_collisions(jobs, destination_kind, claimed or {})
    problems += collisions
    unmatched = unmatched_patterns(sync, listed)
    return _narrow(sync_name, jobs, problems, patterns, unmatched)


def unmatched_patterns(sync: SyncConfig, listed: Sequence[tuple[str, str]]) -> list[str]:
    """The sync's wildcard `tables` patterns that match none of the `listed` tables: a typo
    there copies nothing, without any error. An entry naming one table exactly is left out
    (its absence already fails as that table's own problem), and so are `exclude` patterns: one
    may guard against tables that do not exist yet."""
    return [
        entry.include
        for entry in sync.tables
        if not entry.is_exact
        and not any(match_table(entry.include, schema, table) for schema, table in listed)
    ]


def _unmatched_warning(sync_name: str, pattern: str) -> str:
    return (
        f"warning: sync {sync_name}: tables pattern {pattern!r} matches no table of the "
        "source; fix: correct it in shiftsync.yaml (`shiftsync discover` lists the tables the "
        "role can see)"
    )


def _missing_exact(
    sync_name: str, sync: SyncConfig, listed: Sequence[tuple[str, str]]
) -> list[TableProblem]:
    """An entry that names one table exactly, where the source has no such table."""
    present = set(listed)
    names = [table_name_for_config(s, t) for s, t in listed]
    problems: list[TableProblem] = []
    for entry in sync.tables:
        exact = exact_table_name(entry.include)
        if exact is None or exact in present:
            continue
        schema, table = exact
        if any(match_table(p, schema, table) for p in sync.exclude):
            continue
        shown = table_name_for_config(schema, table)
        problems.append(
            TableProblem(
                shown,
                ConfigError(
                    f"sync {sync_name}: table {shown} does not exist in the source, or "
                    f"the role cannot see it{_close(shown, names)}",
                    fix="correct the name in shiftsync.yaml (Redshift folds unquoted names to "
                    "lowercase; `shiftsync discover` lists the names as tables: takes them), "
                    "or grant the role SELECT on the table",
                ),
                exact,
            )
        )
    return problems


def _split_collisions(
    jobs: list[TableJob], destination_kind: str, claimed: Mapping[str, str]
) -> tuple[list[TableJob], list[TableProblem]]:
    """Keep one job per destination table. A table named exactly wins over tables that
    patterns matched (theirs fail alone); two of a kind all fail. A pattern-matched table
    whose target another sync's exact entry claims fails too."""
    by_target: dict[str, list[TableJob]] = {}
    for job in jobs:
        by_target.setdefault(same_table_key(destination_kind, job.target), []).append(job)
    kept: list[TableJob] = []
    problems: list[TableProblem] = []
    for key, group in by_target.items():
        exact = [j for j in group if j.exact]
        owner = claimed.get(key)
        if owner is not None and not exact:
            problems += [_taken(job, owner) for job in group]
            continue
        if len(exact) == 1:
            kept.append(exact[0])
            winner = f"table {exact[0].name}, which names it exactly"
            problems += [_taken(job, winner) for job in group if not job.exact]
            continue
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
                    (job.schema, job.table),
                )
            )
    kept.sort(key=lambda j: (j.schema, j.table))
    return kept, problems


def _taken(job: TableJob, owner: str) -> TableProblem:
    """A pattern-matched table whose destination table an exact entry writes."""
    return TableProblem(
        job.name,
        ConfigError(
            f"table {job.name} (matched by a pattern) would write destination table "
            f"{job.target!r}, which {owner} writes; it is not copied, so that it cannot "
            "replace the other table's rows",
            fix=f"add {job.name} to the sync's exclude, or give it an entry of its own with a "
            "target (include: " + job.name + ", target: <another name>)",
        ),
    )


def _narrow(
    sync_name: str,
    jobs: list[TableJob],
    problems: list[TableProblem],
    patterns: Sequence[str],
    unmatched: Sequence[str] = (),
) -> Selection:
    def wanted(key: tuple[str, str] | None) -> bool:
        if not patterns:
            return True
        return key is not None and any(match_table(p, *key) for p in patterns)

    keys = [(j.schema, j.table) for j in jobs] + [p.key for p in problems if p.key]
    names = [j.name for j in jobs] + [p.table for p in problems]
    for pattern in patterns:
        if not any(match_table(pattern, *key) for key in keys):
            raise ConfigError(
                f"--tables {pattern!r} matches none of the tables of sync {sync_name}"
                f"{_close(pattern, names)}",
                fix=f"run `shiftsync sync {sync_name} --dry-run` to list the sync's tables",
            )
    selected = tuple(j for j in jobs if wanted((j.schema, j.table)))
    kept_problems = tuple(p for p in problems if wanted(p.key))
    if not selected and not kept_problems:
        named = f": no table matches {', '.join(map(repr, unmatched))}" if unmatched else ""
        raise ConfigError(
            f"sync {sync_name} selects no table of the source{named}",
            fix="compare the sync's tables patterns with the names `shiftsync discover` "
            "lists, and check that the role has SELECT on them",
        )
    warnings = tuple(_unmatched_warning(sync_name, pattern) for pattern in unmatched)
    return Selection(selected, kept_problems, warnings)


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
    destination_kind: str = "",
) -> TablePlan:
    """Check `job` against the table's columns and say exactly what to read and write
    (`destination_kind` says which name lengths the destination keeps)."""
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
    if job.mode == "incremental" and job.null_tracking == "carry" and not primary_key:
        raise ConfigError(
            f"table {job.name}: null_tracking: carry merges the rows whose tracking_field is "
            "NULL by key on every run, and the table has no primary key",
            fix="set primary_key for this table to columns that are unique together, or "
            "remove null_tracking (the rows are then counted as a warning on every run)",
        )
    targets = column_names(job.name, read_names, normalize=normalize)
    check_column_lengths(destination_kind, job.name, targets.values())
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
