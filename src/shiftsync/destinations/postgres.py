"""The PostgreSQL destination: bulk COPY of CSV written by Arrow, one transaction per load.

Each load runs in one transaction on its own connection, from the first staged row to the
state write, so a failure, an abort or a killed process leaves the table as it was and no
stage behind (the transaction rolls back):
- REPLACE COPYs into `<schema>._shiftsync_stage_<target>_<token>`, then drops the target and
  renames the stage in its place; readers wait on the lock and then see the new table whole.
- MERGE and APPEND COPY into a temporary stage (session-local, dropped at commit), then
  evolve the target, delete the staged keys (merge), insert the stage, last row per key.
The sync state is upserted into `<schema>._shiftsync_state` in the same transaction, with the
target it was committed with (`read_state` returns only the state of the target asked for; a
row from before that column existed has NULL there and matches any).

Values travel as CSV text that PostgreSQL parses exactly: decimals as written by Arrow (never
through a float), timestamps with microseconds and `Z` for instants, bytea as `\\x` hex, and
intervals as microseconds.

The CSV conversion is in postgres_copy.py, the type map and SQL builders in postgres_sql.py,
connecting and error translation in postgres_session.py.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal

import psycopg
import pyarrow as pa
from psycopg import sql

from shiftsync.destinations.base import (
    KEYED_MODES,
    SEQUENCE_COLUMN,
    STAGE_PREFIX,
    STATE_TABLE,
    LoadMode,
    LoadOutcome,
    LoadSpec,
    ProfileTotal,
    TableProfile,
    assemble_profile,
    columns_to_relax,
    conform_incoming,
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
from shiftsync.destinations.postgres_copy import bytea_hex, interval_text, to_copy_csv
from shiftsync.destinations.postgres_session import (
    CONNECT_TIMEOUT,
    Connection,
    connect,
    redact_dsn,
    translated_errors,
)
from shiftsync.destinations.postgres_sql import (
    ARROW_TO_POSTGRES,
    POSTGRES_TO_ARROW,
    arrow_type,
    build_copy_sql,
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
    postgres_type,
    rows_to_table,
)
from shiftsync.destinations.schema_change import SchemaPlan, plan_schema
from shiftsync.errors import DestinationError
from shiftsync.json_types import JsonObject, JsonValue


class PostgresLoad:
    """One load into one table, in one transaction; made by `PostgresDestination.start_load`."""

    def __init__(
        self,
        destination: PostgresDestination,
        connection: Connection,
        spec: LoadSpec,
        plan: SchemaPlan,
        target_exists: bool,
        relax: tuple[str, ...] = (),
    ) -> None:
        self._destination = destination
        self._connection = connection
        self._spec = spec
        self._plan = plan
        self._target_exists = target_exists
        self._relax = relax  # NOT NULL columns that may now receive NULL
        self._write_schema = subschema(plan.schema, plan.write_columns)
        self._target = sql.Identifier(destination.schema, spec.target)
        name = stage_table_name(spec.target, new_run_token())
        # REPLACE's stage becomes the table, so it lives in the schema; the others are
        # temporary tables, in the session's own schema.
        replace = spec.mode is LoadMode.REPLACE
        self._stage = sql.Identifier(destination.schema, name) if replace else sql.Identifier(name)
        self._rows = 0
        self._done = False
        with destination.errors(f"preparing the load of table {spec.target!r}"):
            create = build_create_table_sql(
                self._stage,
                spec.target,
                plan.schema,
                temporary=spec.mode is not LoadMode.REPLACE,
                key=spec.table_key,  # a replace's stage becomes the table
                not_null=spec.not_null,
            )
            connection.execute(create)

    def write(self, batch: pa.RecordBatch) -> None:
        self._ensure_open()
        if batch.num_rows == 0:
            return
        columns = list(self._plan.write_columns)
        batch = conform_incoming(self._spec, batch, self._write_schema)
        if self._spec.mode is not LoadMode.REPLACE:
            batch = with_sequence(batch, self._rows)
            columns.append(SEQUENCE_COLUMN)
        data = to_copy_csv(batch)
        with self._destination.errors(f"writing table {self._spec.target!r}"):
            cursor = self._connection.cursor()
            with cursor.copy(build_copy_sql(self._stage, columns)) as copy:
                copy.write(data)
        self._rows += batch.num_rows

    def commit(self, state: Mapping[str, JsonValue] | None) -> LoadOutcome:
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
            if spec.identity:
                self._connection.execute(
                    sql.SQL("COMMENT ON TABLE {} IS {}").format(
                        self._target, sql.Literal(identity_comment(spec.identity))
                    )
                )
            if encoded is not None:
                _, upsert = build_state_sql(destination.schema)
                self._connection.execute(upsert, (state_key_of(spec), encoded, spec.target))
            self._connection.commit()
        self._finish()
        return LoadOutcome(written, self._plan.changes)

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
            return [
                build_create_table_sql(
                    self._target,
                    self._spec.target,
                    self._plan.schema,
                    key=self._spec.table_key,
                    not_null=self._spec.not_null,
                )
            ]
        statements = build_evolve_sql(self._target, self._spec.target, self._plan)
        statements += build_relax_sql(self._target, self._relax)
        if self._spec.mode in KEYED_MODES:
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
        ensure_open(self._done, self._spec.target)

    def _finish(self) -> None:
        self._done = True
        self._destination.forget(self._connection)
        with contextlib.suppress(psycopg.Error):
            self._connection.close()


class PostgresDestination:
    """Tables in one schema of a PostgreSQL database."""

    kind = "postgres"
    # LoadMode.DELETE and profile(live_only=...): what deletes: hard/soft need.
    supports_deletes = True

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self._lock = threading.Lock()
        self._control: Connection | None = None
        self._prepared = False
        self._loads: set[Connection] = set()

    def __repr__(self) -> str:
        return f"PostgresDestination({redact_dsn(self.dsn)!r}, schema={self.schema!r})"

    def errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        """Translate psycopg's errors, naming the database, the schema and the action."""
        return translated_errors(self.dsn, self.schema, action)

    def _connect(self, *, autocommit: bool) -> Connection:
        return connect(self.dsn, self.schema, autocommit=autocommit)

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
        has_target = connection.execute(
            "SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s AND NOT a.attisdropped",
            (self.schema, STATE_TABLE, "target"),
        ).fetchone()
        # Looked up first: ALTER TABLE takes an exclusive lock even when the column exists,
        # and would wait for every load in flight that has written its state.
        if has_target is None:
            connection.execute(build_state_upgrade_sql(self.schema))

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

    def table_identity(self, target: str) -> str | None:
        """The identity of the last load committed into `target` (its comment), or None."""
        with self._controlled() as connection, self.errors(f"reading the comment of {target!r}"):
            row = connection.execute(
                "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
                (self.schema, target),
            ).fetchone()
        return identity_of_comment(None if row is None else row[0])

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

    def read_state(self, state_key: str, target: str) -> JsonObject | None:
        with (
            self._controlled() as connection,
            self.errors(f"reading the state {state_key!r} of table {target!r}"),
        ):
            row = connection.execute(
                build_read_state_sql(self.schema), (state_key, target)
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
        relax: tuple[str, ...] = ()
        if existing is not None and spec.mode is not LoadMode.REPLACE:
            relax = columns_to_relax(self._not_null_columns(spec.target), spec)
        try:
            return PostgresLoad(self, connection, spec, plan, existing is not None, relax)
        except BaseException:
            self.forget(connection)
            connection.close()
            raise

    def _not_null_columns(self, target: str) -> list[str]:
        with self._controlled() as connection, self.errors(f"reading the columns of {target!r}"):
            rows = connection.execute(
                "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND "
                "c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull",
                (self.schema, target),
            ).fetchall()
        return [str(name) for (name,) in rows]

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

    def profile(
        self, target: str, columns: Sequence[str], *, live_only: bool = False
    ) -> TableProfile:
        schema = self.table_schema(target)
        if schema is None:
            raise missing_table(target, f"PostgreSQL schema {self.schema!r}")
        selected = profile_columns(target, schema, columns)
        relation: sql.Composable = sql.Identifier(self.schema, target)
        deleted = live_only_filter(schema, live_only)
        if deleted is not None:
            relation = sql.SQL("(SELECT * FROM {} WHERE {} IS NULL) AS live").format(
                relation, sql.Identifier(deleted)
            )
        query = build_profile_sql(relation, selected)
        with self._controlled() as connection, self.errors(f"profiling table {target!r}"):
            row = connection.execute(query).fetchone()
        if row is None:
            raise DestinationError(f"profiling {target!r} returned no row", fix="report this bug")
        values = [
            (row[1 + 4 * i], _number(row[2 + 4 * i]), row[3 + 4 * i], row[4 + 4 * i])
            for i in range(len(selected))
        ]
        return assemble_profile(row[0], selected, values)

    def read_table(self, target: str, columns: Sequence[str] | None = None) -> pa.Table:
        schema = self.table_schema(target)
        if schema is None:
            raise missing_table(target, f"PostgreSQL schema {self.schema!r}")
        if columns is not None:
            schema = subschema(schema, profile_columns_names(target, schema, columns))
        query = build_read_sql(sql.Identifier(self.schema, target), schema)
        with self._controlled() as connection, self.errors(f"reading table {target!r}"):
            rows = connection.execute(query).fetchall()
        return rows_to_table(schema, rows)

    def close(self) -> None:
        with self._lock:
            connections = [*self._loads, *([self._control] if self._control else [])]
            self._loads.clear()
            self._control = None
        for connection in connections:
            with contextlib.suppress(psycopg.Error):
                connection.close()


def _number(value: ProfileTotal) -> ProfileTotal:
    return Decimal(value) if isinstance(value, str) else value


__all__ = [
    "ARROW_TO_POSTGRES",
    "CONNECT_TIMEOUT",
    "POSTGRES_TO_ARROW",
    "Connection",
    "PostgresDestination",
    "PostgresLoad",
    "arrow_type",
    "build_copy_sql",
    "build_create_table_sql",
    "build_evolve_sql",
    "build_insert_sql",
    "build_merge_sql",
    "build_profile_sql",
    "build_read_sql",
    "build_state_sql",
    "bytea_hex",
    "interval_text",
    "postgres_type",
    "redact_dsn",
    "to_copy_csv",
]
