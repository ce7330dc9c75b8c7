"""The PostgreSQL destination: bulk COPY of CSV written by Arrow, one transaction per load.

Each load runs in one transaction on its own connection, from the first staged row to the
state write, so a failure, an abort or a killed process leaves the table as it was and no
stage behind (the transaction rolls back):
- REPLACE COPYs into `<schema>._shiftsync_stage_<target>_<token>`, then drops the target and
  renames the stage in its place; readers wait on the lock and then see the new table whole.
- MERGE and APPEND COPY into a temporary stage (session-local, dropped at commit), then
  evolve the target, delete the staged keys (merge), insert the stage, last row per key.
The sync state is upserted into `<schema>._shiftsync_state` in the same transaction.

Values travel as CSV text that PostgreSQL parses exactly: decimals as written by Arrow (never
through a float), timestamps with microseconds and `Z` for instants, bytea as `\\x` hex, and
intervals as microseconds.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shiftsync.destinations.base import (
    SEQUENCE_COLUMN,
    STAGE_PREFIX,
    STATE_TABLE,
    LoadMode,
    LoadOutcome,
    LoadSpec,
    TableProfile,
    assemble_profile,
    check_merge_keys,
    conform_batch,
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

Connection = psycopg.Connection[tuple[Any, ...]]

_JSON: Final = pa.json_(pa.string())
_DURATION: Final = pa.duration("us")

ARROW_TO_POSTGRES: Final[Mapping[pa.DataType, str]] = {
    pa.int16(): "smallint",
    pa.int32(): "integer",
    pa.int64(): "bigint",
    pa.float32(): "real",
    pa.float64(): "double precision",
    pa.bool_(): "boolean",
    pa.string(): "text",
    pa.binary(): "bytea",
    pa.date32(): "date",
    pa.timestamp("us"): "timestamp",
    pa.timestamp("us", tz="UTC"): "timestamptz",
    pa.time64("us"): "time",
    # `json` keeps the text exactly (jsonb would reorder keys and drop whitespace).
    _JSON: "json",
    # The type contract's INTERVAL (DAY TO SECOND), kept as microseconds in the time part.
    _DURATION: "interval",
}

# As format_type() spells them.
POSTGRES_TO_ARROW: Final[Mapping[str, pa.DataType]] = {
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "bytea": pa.binary(),
    "date": pa.date32(),
    "timestamp without time zone": pa.timestamp("us"),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "time without time zone": pa.time64("us"),
    "json": _JSON,
    "interval": _DURATION,
}

CONNECT_TIMEOUT: Final = 15
_NUMERIC: Final = re.compile(r"numeric\((\d+),(\d+)\)")
# The session settings every value's text form depends on.
_SESSION: Final = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET client_encoding = 'UTF8'",
)
_HEX_PAIRS: Final = pa.array([f"{byte:02x}" for byte in range(256)], pa.string())
_CSV_OPTIONS: Final = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, safe to print."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<a DSN that does not parse>"
    params.pop("password", None)
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def postgres_type(table: str, field: pa.Field) -> str:
    data_type = normalize_type(field.type)
    if pa.types.is_decimal128(data_type):
        return f"numeric({data_type.precision},{data_type.scale})"
    try:
        return ARROW_TO_POSTGRES[data_type]
    except KeyError:
        raise DestinationError(
            f"table {table!r}: column {field.name!r} has the Arrow type {field.type}, which the "
            "PostgreSQL destination does not store",
            fix="cast the column in the source to a type of the type contract (docs/types.md)",
        ) from None


def arrow_type(table: str, column: str, postgres_type_name: str) -> pa.DataType:
    match = _NUMERIC.fullmatch(postgres_type_name)
    if match:
        return pa.decimal128(int(match[1]), int(match[2]))
    try:
        return POSTGRES_TO_ARROW[postgres_type_name]
    except KeyError:
        raise DestinationError(
            f"table {table!r} in PostgreSQL: column {column!r} has the type "
            f"{postgres_type_name}, which shiftsync did not create and cannot load into",
            fix=f"drop or rename the table {table!r} so shiftsync recreates it",
        ) from None


# --- Arrow → CSV that PostgreSQL parses exactly (pure) --------------------------------------


def bytea_hex(array: pa.Array) -> pa.Array:
    """Binary values as PostgreSQL's bytea hex text (`\\x00ff`), without a Python loop."""
    array = array.cast(pa.binary())
    _, offsets_buffer, data = array.buffers()
    offsets = pa.Array.from_buffers(
        pa.int32(), len(array) + 1, [None, offsets_buffer], offset=array.offset
    )
    data_bytes = (
        pa.Array.from_buffers(pa.uint8(), data.size, [None, data])
        if data is not None
        else pa.array([], pa.uint8())
    )
    per_byte = pc.take(_HEX_PAIRS, data_bytes)
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, per_byte), "")
    text = pc.binary_join_element_wise(pa.scalar("\\x"), joined, "")
    return pc.if_else(array.is_null(), pa.scalar(None, pa.string()), text)


def interval_text(array: pa.Array) -> pa.Array:
    """duration[us] values as `<n> microseconds`, which PostgreSQL keeps exactly in the
    interval's time part (it does not fold hours into days)."""
    text = pc.binary_join_element_wise(
        array.cast(pa.int64()).cast(pa.string()), pa.scalar(" microseconds"), ""
    )
    return pc.if_else(array.is_null(), pa.scalar(None, pa.string()), text)


def to_copy_csv(batch: pa.RecordBatch) -> bytes:
    """The batch as CSV for `COPY … (FORMAT CSV)`.

    Every non-NULL value is quoted, so an empty string is `""` and NULL is an empty field.
    """
    arrays: list[pa.Array] = []
    for column in batch.columns:
        data_type = column.type
        if isinstance(data_type, pa.BaseExtensionType):
            column = column.storage
            data_type = column.type
        if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
            column = bytea_hex(column)
        elif data_type == _DURATION:
            column = interval_text(column)
        arrays.append(column)
    sink = io.BytesIO()
    pacsv.write_csv(
        pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), sink, _CSV_OPTIONS
    )
    return sink.getvalue()


# --- SQL builders (pure) -------------------------------------------------------------------


def _columns(names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def build_create_table_sql(
    name: sql.Identifier, table: str, schema: pa.Schema, *, temporary: bool = False
) -> sql.Composed:
    """CREATE TABLE for `schema`; a temporary stage also gets the sequence column."""
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(postgres_type(table, f)))
        for f in schema
    ]
    if temporary:
        columns.append(sql.SQL("{} bigint").format(sql.Identifier(SEQUENCE_COLUMN)))
        return sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(
            name, sql.SQL(", ").join(columns)
        )
    return sql.SQL("CREATE TABLE {} ({})").format(name, sql.SQL(", ").join(columns))


def build_evolve_sql(name: sql.Identifier, table: str, plan: SchemaPlan) -> list[sql.Composed]:
    statements: list[sql.Composed] = []
    for change in plan.changes:
        if change.kind not in ("add_column", "widen"):
            continue
        field = plan.schema.field(change.column)
        column, sql_type = sql.Identifier(field.name), sql.SQL(postgres_type(table, field))
        template = (
            "ALTER TABLE {} ADD COLUMN {} {}"
            if change.kind == "add_column"
            else "ALTER TABLE {} ALTER COLUMN {} TYPE {}"
        )
        statements.append(sql.SQL(template).format(name, column, sql_type))
    return statements


def build_copy_sql(stage: sql.Identifier, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT CSV)").format(stage, _columns(columns))


def build_merge_sql(
    target: sql.Identifier, stage: sql.Identifier, columns: Sequence[str], key: Sequence[str]
) -> tuple[sql.Composed, sql.Composed]:
    """DELETE the target rows whose key is staged; INSERT the stage, last row per key."""
    matches = sql.SQL(" AND ").join(
        sql.SQL("t.{k} = s.{k}").format(k=sql.Identifier(k)) for k in key
    )
    delete = sql.SQL("DELETE FROM {} AS t USING {} AS s WHERE {}").format(target, stage, matches)
    insert = sql.SQL(
        "INSERT INTO {target} ({columns}) SELECT {columns} FROM "
        "(SELECT DISTINCT ON ({key}) * FROM {stage} ORDER BY {key}, {seq} DESC) AS latest"
    ).format(
        target=target,
        columns=_columns(columns),
        key=_columns(key),
        stage=stage,
        seq=sql.Identifier(SEQUENCE_COLUMN),
    )
    return delete, insert


def build_insert_sql(
    target: sql.Identifier, stage: sql.Identifier, columns: Sequence[str]
) -> sql.Composed:
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        target, _columns(columns), _columns(columns), stage
    )


def build_state_sql(schema: str) -> tuple[sql.Composed, sql.Composed]:
    table = sql.Identifier(schema, STATE_TABLE)
    create = sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (state_key text PRIMARY KEY, state jsonb NOT NULL, "
        "updated_at timestamptz NOT NULL)"
    ).format(table)
    upsert = sql.SQL(
        "INSERT INTO {} (state_key, state, updated_at) VALUES (%s, %s::jsonb, now()) "
        "ON CONFLICT (state_key) DO UPDATE SET state = EXCLUDED.state, "
        "updated_at = EXCLUDED.updated_at"
    ).format(table)
    return create, upsert


def _profile_expressions(column: str, data_type: pa.DataType) -> list[sql.Composable]:
    c = sql.Identifier(column)
    data_type = normalize_type(data_type)
    kind = profile_kind(data_type)
    null = sql.SQL("NULL")
    if kind == "sum":
        return [sql.SQL("sum({})::text").format(c), null, null]
    if kind == "octets":
        as_text = "::text" if isinstance(data_type, pa.BaseExtensionType) else ""
        return [sql.SQL("sum(octet_length({}" + as_text + "))").format(c), null, null]
    if kind == "true_count":
        return [sql.SQL("count(CASE WHEN {} THEN 1 END)").format(c), null, null]
    if kind == "range":
        utc = " AT TIME ZONE 'UTC'" if pa.types.is_timestamp(data_type) and data_type.tz else ""
        return [
            null,
            sql.SQL("(min({})" + utc + ")::text").format(c),
            sql.SQL("(max({})" + utc + ")::text").format(c),
        ]
    return [null, null, null]


def build_profile_sql(
    table: sql.Identifier, columns: Sequence[tuple[str, pa.DataType]]
) -> sql.Composed:
    """One scan: count(*), then count, total, min, max per column."""
    parts: list[sql.Composable] = [sql.SQL("count(*)")]
    for name, data_type in columns:
        parts.append(sql.SQL("count({})").format(sql.Identifier(name)))
        parts += _profile_expressions(name, data_type)
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(parts), table)


def build_read_sql(table: sql.Identifier, schema: pa.Schema) -> sql.Composed:
    """SELECT every column in a form that converts to Arrow exactly (json as text,
    intervals as microseconds)."""
    parts: list[sql.Composable] = []
    for f in schema:
        c = sql.Identifier(f.name)
        if f.type == _JSON:
            parts.append(sql.SQL("{}::text").format(c))
        elif f.type == _DURATION:
            parts.append(sql.SQL("(extract(epoch from {}) * 1000000)::bigint").format(c))
        else:
            parts.append(c)
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(parts), table)


def _rows_to_table(schema: pa.Schema, rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    arrays: list[pa.Array] = []
    for position, f in enumerate(schema):
        column = [row[position] for row in rows]
        if f.type == _JSON:
            arrays.append(pa.ExtensionArray.from_storage(_JSON, pa.array(column, pa.string())))
        else:
            arrays.append(pa.array(column, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


# --- the destination -------------------------------------------------------------------------


class PostgresLoad:
    """One load into one table, in one transaction; made by `PostgresDestination.start_load`."""

    def __init__(
        self,
        destination: PostgresDestination,
        connection: Connection,
        spec: LoadSpec,
        plan: SchemaPlan,
        target_exists: bool,
    ) -> None:
        self._destination = destination
        self._connection = connection
        self._spec = spec
        self._plan = plan
        self._target_exists = target_exists
        self._write_schema = subschema(plan.schema, plan.write_columns)
        self._target = sql.Identifier(destination.schema, spec.target)
        name = stage_table_name(spec.target, new_run_token())
        # REPLACE's stage becomes the table, so it lives in the schema; the others are
        # temporary tables, in the session's own schema.
        replace = spec.mode is LoadMode.REPLACE
        self._stage = sql.Identifier(destination.schema, name) if replace else sql.Identifier(name)
        self._rows = 0
        self._bytes = 0
        self._done = False
        with destination.errors(f"preparing the load of table {spec.target!r}"):
            create = build_create_table_sql(
                self._stage, spec.target, plan.schema, temporary=spec.mode is not LoadMode.REPLACE
            )
            connection.execute(create)

    def write(self, batch: pa.RecordBatch) -> None:
        self._ensure_open()
        if batch.num_rows == 0:
            return
        columns = list(self._plan.write_columns)
        if self._spec.mode is LoadMode.MERGE:
            check_merge_keys(self._spec.target, batch, self._spec.primary_key)
        batch = conform_batch(batch, self._write_schema)
        if self._spec.mode is not LoadMode.REPLACE:
            batch = with_sequence(batch, self._rows)
            columns.append(SEQUENCE_COLUMN)
        data = to_copy_csv(batch)
        with self._destination.errors(f"writing table {self._spec.target!r}"):
            cursor = self._connection.cursor()
            with cursor.copy(build_copy_sql(self._stage, columns)) as copy:
                copy.write(data)
        self._rows += batch.num_rows
        self._bytes += len(data)

    def commit(self, state: Mapping[str, Any] | None) -> LoadOutcome:
        self._ensure_open()
        spec, destination = self._spec, self._destination
        encoded = None if state is None else encode_state(spec.target, state)
        written = self._rows
        with destination.errors(f"committing table {spec.target!r}"):
            for statement in self._commit_statements():
                self._connection.execute(statement)
            insert = self._insert_statement()
            if insert is not None:
                written = self._connection.execute(insert).rowcount
            if encoded is not None:
                _, upsert = build_state_sql(destination.schema)
                self._connection.execute(upsert, (state_key_of(spec), encoded))
            self._connection.commit()
        self._finish()
        return LoadOutcome(written, self._plan.changes, self._bytes)

    def abort(self) -> None:
        if self._done:
            return
        with contextlib.suppress(psycopg.Error):
            self._connection.rollback()
        self._finish()

    def _commit_statements(self) -> list[sql.Composed]:
        if self._spec.mode is LoadMode.REPLACE:
            return [
                sql.SQL("DROP TABLE IF EXISTS {}").format(self._target),
                sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    self._stage, sql.Identifier(self._spec.target)
                ),
            ]
        if not self._target_exists:
            return [build_create_table_sql(self._target, self._spec.target, self._plan.schema)]
        statements = build_evolve_sql(self._target, self._spec.target, self._plan)
        if self._spec.mode is LoadMode.MERGE:
            delete, _ = build_merge_sql(
                self._target, self._stage, self._plan.schema.names, self._spec.primary_key
            )
            statements.append(delete)
        return statements

    def _insert_statement(self) -> sql.Composed | None:
        columns = self._plan.schema.names
        if self._spec.mode is LoadMode.MERGE:
            _, insert = build_merge_sql(self._target, self._stage, columns, self._spec.primary_key)
            return insert
        if self._spec.mode is LoadMode.APPEND:
            return build_insert_sql(self._target, self._stage, columns)
        return None

    def _ensure_open(self) -> None:
        if self._done:
            raise DestinationError(
                f"the load of table {self._spec.target!r} is already committed or aborted",
                fix="start a new load",
            )

    def _finish(self) -> None:
        self._done = True
        self._destination.forget(self._connection)
        with contextlib.suppress(psycopg.Error):
            self._connection.close()


class PostgresDestination:
    """Tables in one schema of a PostgreSQL database."""

    kind = "postgres"

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self._lock = threading.Lock()
        self._control: Connection | None = None
        self._prepared = False
        self._loads: set[Connection] = set()

    def __repr__(self) -> str:
        return f"PostgresDestination({redact_dsn(self.dsn)!r}, schema={self.schema!r})"

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Translate psycopg's errors, naming the database, the schema and the action."""
        try:
            yield
        except psycopg.Error as exc:
            raise DestinationError(
                f"PostgreSQL ({redact_dsn(self.dsn)}), schema {self.schema!r}: {action} failed: "
                f"{self._scrub(str(exc).strip())}",
                fix=_fix_for(exc),
            ) from exc

    def _scrub(self, text: str) -> str:
        with contextlib.suppress(psycopg.Error):
            password = conninfo_to_dict(self.dsn).get("password")
            if password:
                return text.replace(str(password), "***")
        return text

    def _connect(self, *, autocommit: bool) -> Connection:
        try:
            params = conninfo_to_dict(self.dsn)
        except psycopg.Error:
            # psycopg's message quotes the DSN, which may hold the password: not repeated.
            raise DestinationError(
                "the PostgreSQL DSN does not parse",
                fix="write it as 'host=… port=… dbname=… user=…' or as a postgresql:// URL",
            ) from None
        # Without a timeout a dropped packet hangs the sync for minutes; the DSN may override.
        if "connect_timeout" not in params:
            params["connect_timeout"] = CONNECT_TIMEOUT
        try:
            connection: Connection = psycopg.connect(
                make_conninfo("", **params), autocommit=autocommit
            )
        except psycopg.Error as exc:
            raise DestinationError(
                f"cannot connect to PostgreSQL ({redact_dsn(self.dsn)}): "
                f"{self._scrub(str(exc).strip())}",
                fix="check host, port, database, user and password in the DSN, and that the "
                "server accepts connections from this machine",
            ) from exc
        with self.errors("setting up the session"):
            for statement in _SESSION:
                connection.execute(statement)
            if not autocommit:
                connection.commit()
        return connection

    @contextlib.contextmanager
    def _controlled(self) -> Iterator[Connection]:
        """The shared autocommit connection for reads and setup, one user at a time."""
        with self._lock:
            if self._control is None or self._control.closed:
                self._control = self._connect(autocommit=True)
            if not self._prepared:
                with self.errors("creating the schema and the state table"):
                    self._prepare(self._control)
                self._prepared = True
            yield self._control

    def _prepare(self, connection: Connection) -> None:
        exists = connection.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
        ).fetchone()
        if exists is None:  # a user without CREATE on the database may still own the schema
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
        connection.execute(build_state_sql(self.schema)[0])

    def forget(self, connection: Connection) -> None:
        with self._lock:
            self._loads.discard(connection)

    def check(self) -> None:
        probe = sql.Identifier(self.schema, f"_shiftsync_check_{new_run_token()}")
        # Creating a table in the schema proves the loads' privileges; the rollback leaves
        # nothing behind.
        with (
            self._controlled() as connection,
            self.errors(f"creating a table in schema {self.schema!r}"),
            connection.transaction(force_rollback=True),
        ):
            connection.execute(sql.SQL("CREATE TABLE {} (x int)").format(probe))

    def table_schema(self, target: str) -> pa.Schema | None:
        with self._controlled() as connection, self.errors(f"reading the columns of {target!r}"):
            rows = connection.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p') "
                "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (self.schema, target),
            ).fetchall()
        if not rows:
            return None
        return pa.schema([pa.field(name, arrow_type(target, name, kind)) for name, kind in rows])

    def read_state(self, state_key: str) -> dict[str, Any] | None:
        table = sql.Identifier(self.schema, STATE_TABLE)
        with self._controlled() as connection, self.errors(f"reading the state {state_key!r}"):
            row = connection.execute(
                sql.SQL("SELECT state::text FROM {} WHERE state_key = %s").format(table),
                (state_key,),
            ).fetchone()
        if row is None:
            return None
        return decode_state(f"PostgreSQL schema {self.schema!r}, state {state_key!r}", row[0])

    def start_load(self, spec: LoadSpec) -> PostgresLoad:
        validate_spec(spec)
        existing = self.table_schema(spec.target)
        plan = plan_schema(spec.target, existing, spec.schema, spec.schema_changes)
        self._drop_stale_stages(spec.target)
        connection = self._connect(autocommit=False)
        with self._lock:
            self._loads.add(connection)
        try:
            return PostgresLoad(self, connection, spec, plan, existing is not None)
        except BaseException:
            self.forget(connection)
            connection.close()
            raise

    def _drop_stale_stages(self, target: str) -> None:
        with self._controlled() as connection, self.errors(f"dropping old stages of {target!r}"):
            names = connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s "
                "AND starts_with(tablename, %s)",
                (self.schema, STAGE_PREFIX),
            ).fetchall()
            for (name,) in names:
                if is_stage_of(name, target):
                    connection.execute(
                        sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.schema, name))
                    )

    def profile(self, target: str, columns: Sequence[str]) -> TableProfile:
        schema = self.table_schema(target)
        if schema is None:
            raise missing_table(target, f"PostgreSQL schema {self.schema!r}")
        selected = profile_columns(target, schema, columns)
        query = build_profile_sql(sql.Identifier(self.schema, target), selected)
        with self._controlled() as connection, self.errors(f"profiling table {target!r}"):
            row = connection.execute(query).fetchone()
        if row is None:
            raise DestinationError(f"profiling {target!r} returned no row", fix="report this bug")
        values = [
            (row[1 + 4 * i], _number(row[2 + 4 * i]), row[3 + 4 * i], row[4 + 4 * i])
            for i in range(len(selected))
        ]
        return assemble_profile(row[0], selected, values)

    def read_table(self, target: str) -> pa.Table:
        schema = self.table_schema(target)
        if schema is None:
            raise missing_table(target, f"PostgreSQL schema {self.schema!r}")
        query = build_read_sql(sql.Identifier(self.schema, target), schema)
        with self._controlled() as connection, self.errors(f"reading table {target!r}"):
            rows = connection.execute(query).fetchall()
        return _rows_to_table(schema, rows)

    def close(self) -> None:
        with self._lock:
            connections = [*self._loads, *([self._control] if self._control else [])]
            self._loads.clear()
            self._control = None
        for connection in connections:
            with contextlib.suppress(psycopg.Error):
                connection.close()


def _number(value: Any) -> Any:
    return Decimal(value) if isinstance(value, str) else value


def _fix_for(exc: psycopg.Error) -> str:
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return "grant the user CREATE on the database and the schema (or use the schema's owner)"
    if isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected):
        return "another session holds a lock on the table: let it finish, then run again"
    if isinstance(exc, psycopg.OperationalError):
        return "check that the server is up and reachable, then run again"
    return "read PostgreSQL's message above; fix the table or the data it names and run again"
