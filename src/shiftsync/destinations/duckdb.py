"""The DuckDB destination: one database file, Arrow in through `register`, no row loops.

Atomicity: incoming batches go to a stage table (`_shiftsync_stage_<target>_<token>`, each
insert its own transaction, so a crash leaves only a stale stage). The commit is ONE
transaction that swaps or merges the stage into the target and writes the sync state to
`_shiftsync_state`. A later load of the same target drops stale stages first.

Threads: the engine may load several tables at once. Each load has its own cursor (DuckDB's
per-thread connection to the same database), so stage inserts run in parallel; the short
catalog-changing steps (create stage, commit, abort) take one lock, so two commits never
race on the catalog or on the state table.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Context, Decimal
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa

from shiftsync.destinations.base import (
    SEQUENCE_COLUMN,
    STATE_TABLE,
    LoadMode,
    LoadOutcome,
    LoadSpec,
    TableProfile,
    assemble_profile,
    check_merge_keys,
    conform_batch,
    conform_table,
    decode_state,
    encode_state,
    is_stage_of,
    missing_table,
    new_run_token,
    profile_columns,
    profile_kind,
    stage_table_name,
    state_key_of,
    subschema,
    validate_spec,
    with_sequence,
)
from shiftsync.destinations.schema_change import SchemaPlan, normalize_type, plan_schema
from shiftsync.errors import DestinationError

_JSON: Final = pa.json_(pa.string())

ARROW_TO_DUCKDB: Final[Mapping[pa.DataType, str]] = {
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float32(): "REAL",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.string(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.date32(): "DATE",
    pa.timestamp("us"): "TIMESTAMP",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
    pa.time64("us"): "TIME",
    # DuckDB's JSON keeps the text exactly as given (it validates, it does not reformat).
    _JSON: "JSON",
    # The type contract's INTERVAL (DAY TO SECOND). DuckDB's INTERVAL also has months, but a
    # month_day_nano column would read back as a duration: it is refused instead.
    pa.duration("us"): "INTERVAL",
}

# As information_schema.columns.data_type spells them.
DUCKDB_TO_ARROW: Final[Mapping[str, pa.DataType]] = {
    "SMALLINT": pa.int16(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "FLOAT": pa.float32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR": pa.string(),
    "BLOB": pa.binary(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    "TIME": pa.time64("us"),
    "JSON": _JSON,
    "INTERVAL": pa.duration("us"),
}

_DECIMAL: Final = re.compile(r"DECIMAL\((\d+),(\d+)\)")
# DuckDB sums DECIMAL(>18) in a 128-bit integer that extremes overflow; the profile sums the
# unscaled value in two halves split at 10^18 and joins them in Python, exactly.
_SPLIT: Final = 10**18
_WIDE_DECIMAL: Final = 18
_BATCH_VIEW: Final = "_shiftsync_batch"
# Decimal arithmetic rounds to 28 digits by default; sums of DECIMAL(38) need more.
_EXACT: Final = Context(prec=200)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_type(table: str, field: pa.Field) -> str:
    data_type = normalize_type(field.type)
    if pa.types.is_decimal128(data_type):
        return f"DECIMAL({data_type.precision},{data_type.scale})"
    try:
        return ARROW_TO_DUCKDB[data_type]
    except KeyError:
        raise DestinationError(
            f"table {table!r}: column {field.name!r} has the Arrow type {field.type}, which the "
            "DuckDB destination does not store",
            fix="cast the column in the source to a type of the type contract (docs/types.md)",
        ) from None


def arrow_type(table: str, column: str, duckdb_type_name: str) -> pa.DataType:
    match = _DECIMAL.fullmatch(duckdb_type_name)
    if match:
        return pa.decimal128(int(match[1]), int(match[2]))
    try:
        return DUCKDB_TO_ARROW[duckdb_type_name]
    except KeyError:
        raise DestinationError(
            f"table {table!r} in DuckDB: column {column!r} has the type {duckdb_type_name}, "
            "which shiftsync did not create and cannot load into",
            fix=f"drop or rename the table {table!r} so shiftsync recreates it",
        ) from None


# --- SQL builders (pure) -------------------------------------------------------------------


def build_create_table_sql(table: str, schema: pa.Schema, *, sequence: bool = False) -> str:
    columns = [f"{quote_identifier(f.name)} {duckdb_type(table, f)}" for f in schema]
    if sequence:
        columns.append(f"{quote_identifier(SEQUENCE_COLUMN)} BIGINT")
    return f"CREATE TABLE {quote_identifier(table)} ({', '.join(columns)})"


def build_evolve_sql(table: str, plan: SchemaPlan) -> list[str]:
    statements: list[str] = []
    table_sql = quote_identifier(table)
    for change in plan.changes:
        if change.kind not in ("add_column", "widen"):
            continue
        field = plan.schema.field(change.column)
        column, sql_type = quote_identifier(field.name), duckdb_type(table, field)
        if change.kind == "add_column":
            statements.append(f"ALTER TABLE {table_sql} ADD COLUMN {column} {sql_type}")
        else:
            statements.append(
                f"ALTER TABLE {table_sql} ALTER COLUMN {column} SET DATA TYPE {sql_type}"
            )
    return statements


def build_merge_sql(
    target: str, stage: str, columns: Sequence[str], primary_key: Sequence[str]
) -> tuple[str, str]:
    """DELETE the target rows whose key is staged; INSERT the stage, last row per key."""
    t, s = quote_identifier(target), quote_identifier(stage)
    keys = [quote_identifier(k) for k in primary_key]
    matches = " AND ".join(f"{t}.{k} = {s}.{k}" for k in keys)
    names = ", ".join(quote_identifier(c) for c in columns)
    delete = f"DELETE FROM {t} USING {s} WHERE {matches}"
    insert = (
        f"INSERT INTO {t} ({names}) SELECT {names} FROM {s} QUALIFY row_number() OVER "
        f"(PARTITION BY {', '.join(keys)} ORDER BY {quote_identifier(SEQUENCE_COLUMN)} DESC) = 1"
    )
    return delete, insert


def build_insert_sql(target: str, source: str, columns: Sequence[str]) -> str:
    names = ", ".join(quote_identifier(c) for c in columns)
    return f"INSERT INTO {quote_identifier(target)} ({names}) SELECT {names} FROM {source}"


def build_read_sql(table: str, schema: pa.Schema) -> str:
    """SELECT every column; an INTERVAL as its microseconds, because DuckDB hands INTERVAL
    to Arrow in int64 nanoseconds, which overflow past 292 years."""
    parts = [
        f"epoch_us({quote_identifier(f.name)}) AS {quote_identifier(f.name)}"
        if pa.types.is_duration(f.type)
        else quote_identifier(f.name)
        for f in schema
    ]
    return f"SELECT {', '.join(parts)} FROM {quote_identifier(table)}"


def build_state_sql() -> tuple[str, str]:
    table = quote_identifier(STATE_TABLE)
    create = (
        f"CREATE TABLE IF NOT EXISTS {table} "
        "(state_key VARCHAR PRIMARY KEY, state JSON, updated_at TIMESTAMP)"
    )
    upsert = (
        f"INSERT INTO {table} VALUES (?, ?, now()::TIMESTAMP) ON CONFLICT (state_key) "
        "DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
    )
    return create, upsert


def _profile_expressions(column: str, data_type: pa.DataType) -> tuple[str, str, str]:
    c = quote_identifier(column)
    data_type = normalize_type(data_type)
    kind = profile_kind(data_type)
    if kind == "sum":
        if pa.types.is_decimal(data_type) and data_type.precision > _WIDE_DECIMAL:
            unscaled = f"CAST(replace(CAST({c} AS VARCHAR), '.', '') AS HUGEINT)"
            low = f"({unscaled} % {_SPLIT})"
            high = f"(({unscaled} - {low}) // {_SPLIT})"
            return f"{{'high': sum({high}), 'low': sum({low})}}", "NULL", "NULL"
        return f"sum({c})", "NULL", "NULL"
    if kind == "octets":
        if pa.types.is_binary(data_type):
            return f"sum(octet_length({c}))", "NULL", "NULL"
        return f"sum(strlen(CAST({c} AS VARCHAR)))", "NULL", "NULL"
    if kind == "true_count":
        return f"count(CASE WHEN {c} THEN 1 END)", "NULL", "NULL"
    if kind == "range":
        if pa.types.is_timestamp(data_type) and data_type.tz is not None:
            return (
                "NULL",
                f"CAST(timezone('UTC', min({c})) AS VARCHAR)",
                f"CAST(timezone('UTC', max({c})) AS VARCHAR)",
            )
        return "NULL", f"CAST(min({c}) AS VARCHAR)", f"CAST(max({c}) AS VARCHAR)"
    return "NULL", "NULL", "NULL"


def build_profile_sql(relation: str, columns: Sequence[tuple[str, pa.DataType]]) -> str:
    """One scan: count(*), then count, total, min, max per column. `relation` is SQL."""
    parts = ["count(*)"]
    for name, data_type in columns:
        total, low, high = _profile_expressions(name, data_type)
        parts += [f"count({quote_identifier(name)})", total, low, high]
    return f"SELECT {', '.join(parts)} FROM {relation}"


def decode_total(value: Any, data_type: pa.DataType) -> Any:
    """A DuckDB profile total as a number; the split decimal sum comes back as a struct."""
    if isinstance(value, dict):
        unscaled = int(value["high"] or 0) * _SPLIT + int(value["low"] or 0)
        return Decimal(unscaled).scaleb(-data_type.scale, _EXACT)
    return value


def run_profile(
    cursor: duckdb.DuckDBPyConnection, relation: str, columns: Sequence[tuple[str, pa.DataType]]
) -> TableProfile:
    """Profile `relation` (a table or a registered Arrow source) with DuckDB SQL."""
    row = cursor.execute(build_profile_sql(relation, columns)).fetchone()
    if row is None:  # an aggregate without GROUP BY returns one row; keep mypy honest
        raise DestinationError(f"profiling {relation} returned no row", fix="report this bug")
    values = []
    for index, (_, data_type) in enumerate(columns):
        non_null, total, low, high = row[1 + 4 * index : 5 + 4 * index]
        values.append((non_null, decode_total(total, data_type), low, high))
    return assemble_profile(row[0], columns, values)


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
    ) -> None:
        self._destination = destination
        self._cursor = cursor
        self._spec = spec
        self._plan = plan
        self._stage = stage
        self._target_exists = target_exists
        self._write_schema = subschema(plan.schema, plan.write_columns)
        self._rows = 0
        self._done = False

    def write(self, batch: pa.RecordBatch) -> None:
        self._ensure_open()
        if batch.num_rows == 0:
            return
        columns = list(self._plan.write_columns)
        if self._spec.mode is LoadMode.MERGE:
            check_merge_keys(self._spec.target, batch, self._spec.primary_key)
        batch = conform_batch(batch, self._write_schema)
        if self._spec.mode is LoadMode.MERGE:
            batch = with_sequence(batch, self._rows)
            columns.append(SEQUENCE_COLUMN)
        with self._destination.errors(f"writing table {self._spec.target!r}"):
            self._cursor.register(_BATCH_VIEW, batch)
            try:
                self._cursor.execute(build_insert_sql(self._stage, _BATCH_VIEW, columns))
            finally:
                self._cursor.unregister(_BATCH_VIEW)
        self._rows += batch.num_rows

    def commit(self, state: Mapping[str, Any] | None) -> LoadOutcome:
        self._ensure_open()
        target = self._spec.target
        statements, insert = self._commit_statements()
        _, upsert = build_state_sql()
        encoded = None if state is None else encode_state(target, state)
        written = self._rows
        with self._destination.lock, self._destination.errors(f"committing table {target!r}"):
            self._cursor.execute("BEGIN TRANSACTION")
            try:
                for sql in statements:
                    self._cursor.execute(sql)
                if insert is not None:
                    (inserted,) = self._cursor.execute(insert).fetchall()[0]
                    self._cursor.execute(f"DROP TABLE {quote_identifier(self._stage)}")
                    written = int(inserted)
                if encoded is not None:
                    self._cursor.execute(upsert, [state_key_of(self._spec), encoded])
                self._cursor.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    self._cursor.execute("ROLLBACK")
                raise
        self._finish()
        return LoadOutcome(written, self._plan.changes, None)

    def abort(self) -> None:
        if self._done:
            return
        with self._destination.lock, contextlib.suppress(duckdb.Error):
            self._cursor.execute(f"DROP TABLE IF EXISTS {quote_identifier(self._stage)}")
        self._finish()

    def _commit_statements(self) -> tuple[list[str], str | None]:
        """The commit's statements, and for merge/append the INSERT of the stage (then dropped)."""
        target, stage, plan = self._spec.target, self._stage, self._plan
        if self._spec.mode is LoadMode.REPLACE:
            swap = [
                f"DROP TABLE IF EXISTS {quote_identifier(target)}",
                f"ALTER TABLE {quote_identifier(stage)} RENAME TO {quote_identifier(target)}",
            ]
            return swap, None
        statements = (
            build_evolve_sql(target, plan)
            if self._target_exists
            else [build_create_table_sql(target, plan.schema)]
        )
        columns = plan.schema.names
        if self._spec.mode is LoadMode.MERGE:
            delete, insert = build_merge_sql(target, stage, columns, self._spec.primary_key)
            statements.append(delete)
        else:
            insert = build_insert_sql(target, quote_identifier(stage), columns)
        return statements, insert

    def _ensure_open(self) -> None:
        if self._done:
            raise DestinationError(
                f"the load of table {self._spec.target!r} is already committed or aborted",
                fix="start a new load",
            )

    def _finish(self) -> None:
        self._done = True
        with contextlib.suppress(duckdb.Error):
            self._cursor.close()


class DuckDBDestination:
    """A DuckDB database file; created on first use."""

    kind = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        self._connection: duckdb.DuckDBPyConnection | None = None

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Translate DuckDB's errors, naming the file and the action."""
        try:
            yield
        except duckdb.Error as exc:
            raise DestinationError(
                f"DuckDB file {str(self.path)!r}: {action} failed: {exc}",
                fix="check the file is not opened by another program and the disk has room",
            ) from exc

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self.lock:
            if self._connection is None:
                with self.errors("opening the database"):
                    self._connection = duckdb.connect(str(self.path))
                    self._connection.execute(build_state_sql()[0])
            return self._connection.cursor()

    def check(self) -> None:
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

    def table_schema(self, target: str) -> pa.Schema | None:
        cursor = self._cursor()
        try:
            with self.errors(f"reading the columns of table {target!r}"):
                rows = cursor.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = ? "
                    "ORDER BY ordinal_position",
                    [target],
                ).fetchall()
        finally:
            cursor.close()
        if not rows:
            return None
        return pa.schema([pa.field(name, arrow_type(target, name, kind)) for name, kind in rows])

    def read_state(self, state_key: str) -> dict[str, Any] | None:
        cursor = self._cursor()
        try:
            with self.errors(f"reading the sync state {state_key!r}"):
                row = cursor.execute(
                    f"SELECT state FROM {quote_identifier(STATE_TABLE)} WHERE state_key = ?",
                    [state_key],
                ).fetchone()
        finally:
            cursor.close()
        if row is None or row[0] is None:
            return None
        return decode_state(f"DuckDB file {str(self.path)!r}, state {state_key!r}", str(row[0]))

    def start_load(self, spec: LoadSpec) -> DuckDBLoad:
        validate_spec(spec)
        existing = self.table_schema(spec.target)
        plan = plan_schema(spec.target, existing, spec.schema, spec.schema_changes)
        stage = stage_table_name(spec.target, new_run_token())
        create = build_create_table_sql(stage, plan.schema, sequence=spec.mode is LoadMode.MERGE)
        cursor = self._cursor()
        try:
            with self.lock, self.errors(f"preparing the load of table {spec.target!r}"):
                self._drop_stale_stages(cursor, spec.target)
                cursor.execute(create)
        except BaseException:
            cursor.close()
            raise
        return DuckDBLoad(self, cursor, spec, plan, stage, existing is not None)

    def _drop_stale_stages(self, cursor: duckdb.DuckDBPyConnection, target: str) -> None:
        names = cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND starts_with(table_name, '_shiftsync_stage_')"
        ).fetchall()
        for (name,) in names:
            if is_stage_of(name, target):
                cursor.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")

    def profile(self, target: str, columns: Sequence[str]) -> TableProfile:
        schema = self.table_schema(target)
        if schema is None:
            raise missing_table(target, f"DuckDB file {str(self.path)!r}")
        selected = profile_columns(target, schema, columns)
        cursor = self._cursor()
        try:
            with self.errors(f"profiling table {target!r}"):
                return run_profile(cursor, quote_identifier(target), selected)
        finally:
            cursor.close()

    def read_table(self, target: str) -> pa.Table:
        schema = self.table_schema(target)
        if schema is None:
            raise missing_table(target, f"DuckDB file {str(self.path)!r}")
        cursor = self._cursor()
        try:
            with self.errors(f"reading table {target!r}"):
                table = cursor.sql(build_read_sql(target, schema)).to_arrow_table()
        finally:
            cursor.close()
        return conform_table(table, schema)

    def close(self) -> None:
        with self.lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
