"""The DuckDB destination: one database file, Arrow in through `register`, no row loops.

Atomicity: incoming batches go to a stage table (`_shiftsync_stage_<target>_<token>`, each
insert its own transaction, so a crash leaves only a stale stage). The commit is ONE
transaction that swaps or merges the stage into the target and writes the sync state to
`_shiftsync_state`, with the target it was committed with (`read_state` returns only the state
of the target asked for; a row from before that column existed has NULL there and matches
any). A later load of the same target drops stale stages first.

Threads: the engine may load several tables at once. Each load has its own cursor (DuckDB's
per-thread connection to the same database), so stage inserts run in parallel; the short
catalog-changing steps (create stage, commit, abort) take one lock, so two commits never
race on the catalog or on the state table.

The type map and the SQL builders are in duckdb_sql.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from shiftsync.destinations.base import (
    KEYED_MODES,
    SEQUENCE_COLUMN,
    LoadMode,
    LoadOutcome,
    LoadSpec,
    TableProfile,
    columns_to_relax,
    conform_incoming,
    conform_table,
    decode_state,
    encode_state,
    ensure_open,
    identity_comment,
    identity_of_comment,
    is_stage_of,
    live_only_filter,
    missing_table,
    new_run_token,
    profile_columns,
    profile_columns_names,
    stage_table_name,
    state_key_of,
    subschema,
    validate_spec,
    with_sequence,
)
from shiftsync.destinations.duckdb_memory import (
    COMMIT_MEMORY_LIMIT,
    MemoryBudget,
    batch_memory,
    columns_memory,
    commit_memory,
    memory_setting,
)
from shiftsync.destinations.duckdb_sql import (
    ARROW_TO_DUCKDB,
    DUCKDB_TO_ARROW,
    arrow_type,
    build_create_table_sql,
    build_evolve_sql,
    build_insert_sql,
    build_merge_sql,
    build_profile_sql,
    build_read_sql,
    build_read_state_sql,
    build_relax_sql,
    build_state_sql,
    build_state_upgrade_sql,
    decode_total,
    duckdb_type,
    quote_identifier,
    quote_literal,
    run_profile,
)
from shiftsync.destinations.schema_change import SchemaPlan, plan_schema
from shiftsync.errors import ConfigError, DestinationError, out_of_space
from shiftsync.json_types import JsonObject, JsonValue

_BATCH_VIEW: Final = "_shiftsync_batch"
# How long a run waits, by default, for another process to let go of the file.
DEFAULT_LOCK_TIMEOUT: Final = 60.0
_LOCK_POLL: Final = 0.5
_LOCK_CONFLICT: Final = "Could not set lock on file"
_LOCK_PID_RE: Final = re.compile(r"\(PID (\d+)\)")

log = logging.getLogger("shiftsync.destinations")


def lock_holder(error: BaseException) -> str | None:
    """For DuckDB's "Conflicting lock" error: " (PID n)" or "" (holder unknown); else None."""
    if not isinstance(error, duckdb.IOException):
        return None
    if _LOCK_CONFLICT not in str(error):
        return None
    pid = _LOCK_PID_RE.search(str(error))
    return f" (PID {pid.group(1)})" if pid else ""


# --- the destination -------------------------------------------------------------------------


class DuckDBLoad:
    """One load into one table; made by `DuckDBDestination.start_load`."""

    def __init__(
        self,
        destination: DuckDBDestination,
        cursor: duckdb.DuckDBPyConnection,
        spec: LoadSpec,
        plan: SchemaPlan,
        stage: str,
        target_exists: bool,
        relax: tuple[str, ...] = (),
        memory_need: int = 0,
        release_memory: Callable[[], None] = lambda: None,
    ) -> None:
        self._destination = destination
        self._memory_need = memory_need  # what start_load holds for this load
        self._release_memory = release_memory
        self._cursor = cursor
        self._spec = spec
        self._plan = plan
        self._stage = stage
        self._target_exists = target_exists
        self._relax = relax  # NOT NULL columns that may now receive NULL
        self._write_schema = subschema(plan.schema, plan.write_columns)
        self._rows = 0
        self._done = False

    def write(self, batch: pa.RecordBatch) -> None:
        self._ensure_open()
        if batch.num_rows == 0:
            return
        columns = list(self._plan.write_columns)
        batch = conform_incoming(self._spec, batch, self._write_schema)
        if self._spec.mode in KEYED_MODES:
            batch = with_sequence(batch, self._rows)
            columns.append(SEQUENCE_COLUMN)
        # A batch bigger than the load's bound (long texts) gets room for itself while it is
        # inserted and, in the insert's commit, checkpointed.
        extra = max(0, batch_memory(batch.nbytes) - self._memory_need)
        insert = build_insert_sql(self._stage, _BATCH_VIEW, columns)

        def run() -> None:
            self._cursor.register(_BATCH_VIEW, batch)
            try:
                self._cursor.execute(insert)
            finally:
                self._cursor.unregister(_BATCH_VIEW)

        action = f"writing table {self._spec.target!r}"
        with self._destination.errors(action):
            self._destination.memory.run(extra, run, what=action)
        self._rows += batch.num_rows

    def commit(self, state: Mapping[str, JsonValue] | None) -> LoadOutcome:
        self._ensure_open()
        target = self._spec.target
        statements, insert = self._commit_statements()
        _, upsert = build_state_sql()
        encoded = None if state is None else encode_state(target, state)
        written = self._rows
        joins = self._spec.mode is not LoadMode.REPLACE
        with (
            self._destination.memory.need(commit_memory(len(self._plan.schema), joins=joins)),
            self._destination.lock,
            self._destination.errors(f"committing table {target!r}"),
        ):
            self._cursor.execute("BEGIN TRANSACTION")
            try:
                for sql in statements:
                    self._cursor.execute(sql)
                if insert is not None:
                    (inserted,) = self._cursor.execute(insert).fetchall()[0]
                    self._cursor.execute(f"DROP TABLE {quote_identifier(self._stage)}")
                    written = int(inserted)
                elif self._spec.mode is LoadMode.DELETE:
                    self._cursor.execute(f"DROP TABLE {quote_identifier(self._stage)}")
                if self._spec.identity:
                    self._cursor.execute(
                        f"COMMENT ON TABLE {quote_identifier(target)} IS "
                        f"{quote_literal(identity_comment(self._spec.identity))}"
                    )
                if encoded is not None:
                    self._cursor.execute(upsert, [state_key_of(self._spec), encoded, target])
                self._cursor.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    self._cursor.execute("ROLLBACK")
                raise
        self._finish()
        return LoadOutcome(written, self._plan.changes)

    def abort(self) -> None:
        if self._done:
            return
        with self._destination.lock, contextlib.suppress(duckdb.Error):
            self._cursor.execute(f"DROP TABLE IF EXISTS {quote_identifier(self._stage)}")
        self._finish()

    def _commit_statements(self) -> tuple[list[str], str | None]:
        """The commit's statements, and for merge/append the INSERT of the stage (then dropped)."""
        target, stage, plan = self._spec.target, self._stage, self._plan
        if self._spec.mode is LoadMode.DELETE:
            delete, _ = build_merge_sql(target, stage, plan.schema.names, self._spec.primary_key)
            return [delete], None
        if self._spec.mode is LoadMode.REPLACE:
            swap = [
                f"DROP TABLE IF EXISTS {quote_identifier(target)}",
                f"ALTER TABLE {quote_identifier(stage)} RENAME TO {quote_identifier(target)}",
            ]
            return swap, None
        spec = self._spec
        statements = (
            [*build_evolve_sql(target, plan), *build_relax_sql(target, self._relax)]
            if self._target_exists
            else [
                build_create_table_sql(
                    target, plan.schema, key=spec.table_key, not_null=spec.not_null
                )
            ]
        )
        columns = plan.schema.names
        if self._spec.mode is LoadMode.MERGE:
            delete, insert = build_merge_sql(target, stage, columns, self._spec.primary_key)
            statements.append(delete)
        else:
            insert = build_insert_sql(target, quote_identifier(stage), columns)
        return statements, insert

    def _ensure_open(self) -> None:
        ensure_open(self._done, self._spec.target)

    def _finish(self) -> None:
        self._done = True
        with contextlib.suppress(duckdb.Error):
            self._cursor.close()
        self._release_memory()


class DuckDBDestination:
    """A DuckDB database file; created on first use."""

    kind = "duckdb"
    # LoadMode.DELETE and profile(live_only=...): what deletes: hard/soft need.
    supports_deletes = True

    def __init__(
        self,
        path: Path,
        *,
        memory_limit: int | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        reader_copy: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(path)
        # DuckDB's limit follows what runs (duckdb_memory.py); a configured one is fixed.
        fixed = None if memory_limit is None else max(COMMIT_MEMORY_LIMIT, memory_limit)
        self.memory = MemoryBudget(self._set_memory_limit, fixed=fixed)
        self.lock = threading.RLock()
        self.lock_timeout = lock_timeout
        self.reader_copy = reader_copy
        self._clock = clock
        self._sleep = sleep
        self._connection: duckdb.DuckDBPyConnection | None = None
        # Only for SET memory_limit, under the budget's lock: never waits on `lock`, which a
        # commit holds while it needs the budget.
        self._settings: duckdb.DuckDBPyConnection | None = None

    @property
    def memory_limit(self) -> int:
        """DuckDB's memory limit as set now (or as it will be set on opening)."""
        return self.memory.current or self.memory.limit()

    def _set_memory_limit(self, limit: int) -> bool:
        settings = self._settings
        if settings is None:
            return False
        try:
            settings.execute(memory_setting(limit))
        except duckdb.Error as exc:
            # Lowering below what is pinned now: the higher limit stays until the next change.
            log.debug("DuckDB file %s: memory_limit stays: %s", self.path, exc)
            return False
        return True

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting up to lock_timeout for another process to release it.

        DuckDB lets one process write a file (and then no other process may even read it): a
        notebook or another sync holding the file makes this run wait, saying so, rather than
        fail every table.
        """
        deadline = self._clock() + self.lock_timeout
        announced = False
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.Error as exc:
                holder = lock_holder(exc)
                if holder is None:
                    raise
                left = deadline - self._clock()
                if left <= 0:
                    raise DestinationError(
                        f"DuckDB file {str(self.path)!r} is locked by another process{holder}; "
                        f"waited {self.lock_timeout:g} s for it",
                        fix="close the program that holds the file (a notebook, a reader, another "
                        "sync) and run the sync again, or set a longer lock_timeout_seconds on "
                        "this destination in shiftsync.yaml (see docs/destinations.md, "
                        '"DuckDB: readers during a sync")',
                    ) from exc
                if not announced:
                    announced = True
                    log.warning(
                        "DuckDB file %s is locked by another process%s: waiting up to %g s "
                        "for it (lock_timeout_seconds)",
                        self.path,
                        holder,
                        self.lock_timeout,
                    )
                self._sleep(min(_LOCK_POLL, left))

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Translate DuckDB's errors, naming the file and the action."""
        try:
            yield
        except duckdb.OutOfMemoryException as exc:
            # Not a file problem: the fix is the limit, which the message names.
            limit = f"{(self.memory.exhausted or self.memory_limit) // 2**20}MiB"
            self.memory.exhausted = None
            raise DestinationError(
                f"DuckDB file {str(self.path)!r}: {action} ran out of memory (memory_limit "
                f"{limit}): {exc}",
                fix=f"raise memory_limit of this DuckDB destination in shiftsync.yaml above "
                f"{limit} (for example memory_limit: 4GB), or lower the sync's concurrency",
            ) from exc
        except duckdb.Error as exc:
            full = out_of_space(exc)
            if full is not None:
                raise full from exc
            raise DestinationError(
                f"DuckDB file {str(self.path)!r}: {action} failed: {exc}",
                fix="check the file is not opened by another program and the disk has room",
            ) from exc

    @contextlib.contextmanager
    def _reading(self, action: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for one read, closed after it; DuckDB's errors name `action`."""
        cursor = self._cursor()
        try:
            with self.errors(action):
                yield cursor
        finally:
            cursor.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self.lock:
            if self._connection is None:
                with self.errors("opening the database"):
                    # SET, not a connect option: other connections to the same file in this
                    # process must be able to open it with default options.
                    self._connection = self._connect()
                    self._settings = self._connection.cursor()
                    self.memory.start()
                    self._connection.execute(build_state_sql()[0])
                    self._connection.execute(build_state_upgrade_sql())
            return self._connection.cursor()

    def check(self) -> None:
        refuse_unusable_path(self.path)
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".shiftsync-probe-"):
                pass
        except OSError as exc:
            raise DestinationError(
                f"DuckDB file {str(self.path)!r}: the folder {str(folder)!r} is not writable: "
                f"{exc.strerror or exc}",
                fix="choose a path in a folder you can write, or fix the folder's permissions",
            ) from exc
        cursor = self._cursor()
        cursor.close()

    def table_identity(self, target: str) -> str | None:
        """The identity of the last load committed into `target` (its comment), or None."""
        with self._reading(f"reading the comment of table {target!r}") as cursor:
            row = cursor.execute(
                "SELECT comment FROM duckdb_tables() "
                "WHERE schema_name = current_schema() AND table_name = ?",
                [target],
            ).fetchone()
        return identity_of_comment(None if row is None else row[0])

    def table_schema(self, target: str) -> pa.Schema | None:
        with self._reading(f"reading the columns of table {target!r}") as cursor:
            rows = cursor.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ? "
                "ORDER BY ordinal_position",
                [target],
            ).fetchall()
        if not rows:
            return None
        return pa.schema([pa.field(name, arrow_type(target, name, kind)) for name, kind in rows])

    def read_state(self, state_key: str, target: str) -> JsonObject | None:
        with self._reading(f"reading the sync state {state_key!r} of table {target!r}") as cursor:
            row = cursor.execute(build_read_state_sql(), [state_key, target]).fetchone()
        if row is None or row[0] is None:
            return None
        return decode_state(f"DuckDB file {str(self.path)!r}, state {state_key!r}", str(row[0]))

    def start_load(self, spec: LoadSpec) -> DuckDBLoad:
        validate_spec(spec)
        existing = self.table_schema(spec.target)
        plan = plan_schema(spec.target, existing, spec.schema, spec.schema_changes)
        replace = spec.mode is LoadMode.REPLACE
        relax: tuple[str, ...] = ()
        if not replace:
            self._check_key_widening(spec.target, plan)
            if existing is not None:
                relax = columns_to_relax(self._not_null_columns(spec.target), spec)
        stage = stage_table_name(spec.target, new_run_token())
        create = build_create_table_sql(
            stage,
            plan.schema,
            sequence=spec.mode in KEYED_MODES,
            key=spec.table_key if replace else (),  # the stage becomes the table
            not_null=spec.not_null if replace else (),
        )
        cursor = self._cursor()
        columns = len(plan.schema) + (1 if spec.mode in KEYED_MODES else 0)
        need = columns_memory(columns)
        release = self.memory.hold(need)
        try:
            with self.lock, self.errors(f"preparing the load of table {spec.target!r}"):
                self._drop_stale_stages(cursor, spec.target)
                cursor.execute(create)
        except BaseException:
            cursor.close()
            release()
            raise
        return DuckDBLoad(
            self,
            cursor,
            spec,
            plan,
            stage,
            existing is not None,
            relax,
            memory_need=need,
            release_memory=release,
        )

    def _not_null_columns(self, target: str) -> list[str]:
        with self._reading(f"reading the columns of table {target!r}") as cursor:
            rows = cursor.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = "
                "current_schema() AND table_name = ? AND NOT is_nullable",
                [target],
            ).fetchall()
        return [str(name) for (name,) in rows]

    def _check_key_widening(self, target: str, plan: SchemaPlan) -> None:
        """DuckDB cannot change the type of a PRIMARY KEY column in place: a merge or append
        that must widen one is refused before anything is staged (a replace rebuilds it)."""
        widened = {c.column for c in plan.changes if c.kind == "widen"}
        if not widened:
            return
        with self._reading(f"reading the key of table {target!r}") as cursor:
            rows = cursor.execute(
                "SELECT constraint_column_names FROM duckdb_constraints() WHERE "
                "schema_name = current_schema() AND table_name = ? AND "
                "constraint_type = 'PRIMARY KEY'",
                [target],
            ).fetchall()
        keyed = sorted(widened & {name for (names,) in rows for name in names})
        if keyed:
            raise DestinationError(
                f"table {target!r}: key column {keyed[0]!r} must be widened, and DuckDB cannot "
                "change the type of a PRIMARY KEY column in place",
                fix=f"run `shiftsync sync --full-refresh` for this table: the replace rebuilds "
                f"{target!r} with the wider type",
            )

    def _drop_stale_stages(self, cursor: duckdb.DuckDBPyConnection, target: str) -> None:
        names = cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND starts_with(table_name, '_shiftsync_stage_')"
        ).fetchall()
        for (name,) in names:
            if is_stage_of(name, target):
                cursor.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")

    def profile(
        self, target: str, columns: Sequence[str], *, live_only: bool = False
    ) -> TableProfile:
        schema = self.table_schema(target)
        if schema is None:
            raise missing_table(target, f"DuckDB file {str(self.path)!r}")
        selected = profile_columns(target, schema, columns)
        relation = quote_identifier(target)
        deleted = live_only_filter(schema, live_only)
        if deleted is not None:
            relation = f"(SELECT * FROM {relation} WHERE {quote_identifier(deleted)} IS NULL)"
        action = f"profiling table {target!r}"
        with self._reading(action) as cursor:
            return self.memory.run(
                columns_memory(len(selected)),
                lambda: run_profile(cursor, relation, selected),
                what=action,
            )

    def read_table(self, target: str, columns: Sequence[str] | None = None) -> pa.Table:
        schema = self.table_schema(target)
        if schema is None:
            raise missing_table(target, f"DuckDB file {str(self.path)!r}")
        if columns is not None:
            schema = subschema(schema, profile_columns_names(target, schema, columns))
        action = f"reading table {target!r}"
        sql = build_read_sql(target, schema)
        with self._reading(action) as cursor:
            table = self.memory.run(
                columns_memory(len(schema)),
                lambda: cursor.sql(sql).to_arrow_table(),
                what=action,
            )
        return conform_table(table, schema)

    def close(self) -> None:
        with self.lock:
            if self._connection is not None:
                wrote = self.reader_copy is not None
                if wrote:
                    # Fold the write-ahead log into the file, so the copy is whole alone.
                    with contextlib.suppress(duckdb.Error):
                        self._connection.execute("CHECKPOINT")
                with self.memory.closing():
                    if self._settings is not None:
                        self._settings.close()
                        self._settings = None
                self._connection.close()
                self._connection = None
                if wrote:
                    self._publish_reader_copy()

    def _publish_reader_copy(self) -> None:
        """Replace the reader copy whole (temp file + rename): its readers see old or new.

        A reader that has the old copy open keeps reading it (the rename does not touch an
        open file); the next one opens the new copy. A failed copy is logged, not raised: the
        run itself is done and recorded.
        """
        assert self.reader_copy is not None
        target = self.reader_copy
        temp = target.with_name(f".{target.name}.{new_run_token()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.path, temp)
            with temp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except OSError as exc:
            log.warning(
                "DuckDB file %s: the reader copy %s was not updated: %s",
                self.path,
                target,
                exc.strerror or exc,
            )
        finally:
            temp.unlink(missing_ok=True)


__all__ = [
    "ARROW_TO_DUCKDB",
    "COMMIT_MEMORY_LIMIT",
    "DEFAULT_LOCK_TIMEOUT",
    "DUCKDB_TO_ARROW",
    "DuckDBDestination",
    "DuckDBLoad",
    "arrow_type",
    "build_create_table_sql",
    "build_evolve_sql",
    "build_insert_sql",
    "build_merge_sql",
    "build_profile_sql",
    "build_read_sql",
    "build_state_sql",
    "decode_total",
    "duckdb_type",
    "lock_holder",
    "memory_setting",
    "quote_identifier",
    "run_profile",
]


def refuse_unusable_path(path: Path) -> None:
    """ConfigError when `path` cannot be a DuckDB file: a folder, or under a file."""
    if path.is_dir():
        raise ConfigError(
            f"the DuckDB path {str(path)!r} is a folder, not a database file",
            fix=f"set the destination's path in shiftsync.yaml to a file in it, e.g. "
            f"{path / 'shiftsync.duckdb'}",
        )
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(
                f"the DuckDB path {str(path)!r} cannot be created: {str(parent)!r} is a file, "
                "not a folder",
                fix=f"set the destination's path in shiftsync.yaml to a file in an existing "
                f"folder, e.g. {parent.parent / path.name}",
            )
