"""The Apache Iceberg destination: one table per target, one catalog commit per load.

A load stages its rows locally (lake/stage.py), then the commit is ONE catalog transaction:
- replace: delete every row (a metadata-only DELETE), append the new files;
- append: append the new files;
- merge: delete the rows whose key is incoming (copy-on-write: only files whose key range
  holds an incoming key are rewritten), append the incoming rows, last per key.
A new table is created in the same transaction, and schema changes (Iceberg's rules, see
evolution.py) are applied in it too. Readers of the catalog see the table before or after the
load, never between. The sync state, the run id, the cursor and the written row count ride in
the properties of the transaction's snapshots (lake/properties.py), so the cursor commits
with the data; `read_state` reads them back from the table's newest shiftsync snapshot.

Layout: rows are written sorted by the table's key, in files of at most
`target_file_size_bytes` of Arrow data (pyiceberg measures in-memory bytes; files on disk are
several times smaller), so each file covers a narrow key range and a merge of a few keys
rewrites few files (bench/ measures the trade-off).

Concurrency: the catalog commit is optimistic; a second writer that committed first makes
this commit fail with a message, never a corrupt table.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from functools import reduce
from typing import Any, Final, cast

import duckdb
import pyarrow as pa
from botocore.credentials import ReadOnlyCredentials
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, In, Or
from pyiceberg.io.pyarrow import _dataframe_to_data_files
from pyiceberg.table import Table, Transaction
from pyiceberg.table.snapshots import Snapshot

from shiftsync.destinations.base import (
    LoadMode,
    LoadOutcome,
    LoadSpec,
    TableProfile,
    conform_batch,
    conform_incoming,
    ensure_open,
    missing_table,
    new_run_token,
    profile_columns,
    state_key_of,
    subschema,
    validate_spec,
)
from shiftsync.destinations.duckdb_sql import run_profile
from shiftsync.destinations.iceberg.catalog import (
    IcebergSettings,
    catalog_errors,
    close_catalog,
    open_catalog,
)
from shiftsync.destinations.iceberg.evolution import check_evolution
from shiftsync.destinations.lake.properties import (
    commit_properties,
    is_shiftsync_commit,
    read_schema,
    read_states,
)
from shiftsync.destinations.lake.s3 import resolve_s3
from shiftsync.destinations.lake.stage import LakeStage
from shiftsync.destinations.lake.types import from_storage, storage_schema, to_storage
from shiftsync.destinations.s3fs import CredentialsProvider
from shiftsync.destinations.schema_change import SchemaPlan, normalize_type, plan_schema
from shiftsync.errors import DestinationError

TARGET_FILE_SIZE: Final = "write.target-file-size-bytes"
_READ_BATCH_ROWS: Final = 64 * 1024
# pyiceberg cuts files between batches: small batches let small file targets be met.
_WRITE_BATCH_ROWS: Final = 8 * 1024
PROBE_PREFIX: Final = "_shiftsync_probe_"


def _snapshots_newest_first(table: Table) -> Iterator[Snapshot]:
    snapshot = table.current_snapshot()
    while snapshot is not None:
        yield snapshot
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None


def shiftsync_properties(table: Table) -> dict[str, str] | None:
    """The properties of the table's newest shiftsync snapshot, or None."""
    for snapshot in _snapshots_newest_first(table):
        properties = snapshot.summary.additional_properties if snapshot.summary else {}
        if is_shiftsync_commit(properties):
            return dict(properties)
    return None


# pyiceberg's predicates take (term, value) positionally at run time; their pydantic fields
# give mypy another signature.
_IN: Any = In
_EQUAL: Any = EqualTo
_AND: Any = And
_OR: Any = Or


def key_filter(primary_key: Sequence[str], keys: pa.Table) -> BooleanExpression:
    """Rows whose key is one of `keys`: IN for one column, OR of ANDs for a composite key."""
    if len(primary_key) == 1:
        values = keys.column(0).to_pylist()
        if len(values) > 1:
            return cast(BooleanExpression, _IN(primary_key[0], values))
        return cast(BooleanExpression, _EQUAL(primary_key[0], values[0]))
    terms: list[BooleanExpression] = []
    for row in keys.to_pylist():
        parts = [_EQUAL(name, row[name]) for name in primary_key]
        terms.append(reduce(_AND, parts))
    return reduce(_OR, terms)


def _chunked(reader: pa.RecordBatchReader, size: int) -> Iterator[pa.RecordBatchReader]:
    """`reader`'s batches as readers of about `size` bytes of Arrow data each (one data file:
    pyiceberg cuts files at its target size in the same measure)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        pending.append(batch)
        count += batch.nbytes
        if count >= size:
            yield pa.RecordBatchReader.from_batches(reader.schema, pending)
            pending, count = [], 0
    if pending:
        yield pa.RecordBatchReader.from_batches(reader.schema, pending)


class IcebergLoad:
    """One load into one Iceberg table; made by `IcebergDestination.start_load`."""

    def __init__(
        self,
        destination: IcebergDestination,
        spec: LoadSpec,
        plan: SchemaPlan,
        table: Table | None,
        previous: Mapping[str, str] | None,
    ) -> None:
        self._destination, self._spec, self._plan = destination, spec, plan
        self._table, self._previous = table, previous
        self._write_schema = subschema(plan.schema, plan.write_columns)
        self._stored = storage_schema(spec.target, plan.schema, "iceberg")
        self._stage = LakeStage(plan.schema)
        self._done = False

    def write(self, batch: pa.RecordBatch) -> None:
        ensure_open(self._done, self._spec.target)
        if batch.num_rows == 0:
            return
        batch = conform_incoming(self._spec, batch, self._write_schema)
        batch = conform_batch(batch, self._plan.schema, missing_as_null=True)
        with self._destination.errors("staging rows", self._spec.target):
            self._stage.add(batch)

    def commit(self, state: Mapping[str, Any] | None) -> LoadOutcome:
        ensure_open(self._done, self._spec.target)
        spec, destination = self._spec, self._destination
        merging = spec.mode is LoadMode.MERGE
        with destination.errors("committing", spec.target):
            written = self._stage.keys(spec.primary_key) if merging else self._stage.rows
            states = read_states(spec.target, self._previous) if self._previous else {}
            properties = commit_properties(
                spec.target,
                self._plan.schema,
                states,
                state_key_of(spec),
                state,
                str(spec.mode),
                written,
            )
            transaction = self._transaction()
            self._write(transaction, properties)
            committed = transaction.commit_transaction()
        self._finish()
        summary = committed.current_snapshot()
        added = summary.summary.additional_properties if summary and summary.summary else {}
        return LoadOutcome(written, self._plan.changes, int(added.get("added-files-size", 0)))

    def _transaction(self) -> Transaction:
        destination, spec = self._destination, self._spec
        if self._table is None:
            catalog = destination.catalog()
            return catalog.create_table_transaction(
                destination.identifier(spec.target),
                schema=self._stored,
                properties={TARGET_FILE_SIZE: str(destination.settings.target_file_size_bytes)},
            )
        transaction = self._table.transaction()
        if self._plan.changes:
            with transaction.update_schema() as update:
                update.union_by_name(self._stored)
        return transaction

    def _rows(self) -> pa.RecordBatchReader:
        spec = self._spec
        merging = spec.mode is LoadMode.MERGE
        order = spec.sort_key or spec.primary_key
        chunks = self._stage.chunks(
            sort_key=order,
            latest_per=spec.primary_key if merging else (),
            rows=_WRITE_BATCH_ROWS,
        )
        batches = (to_storage(b, self._stored) for chunk in chunks for b in chunk.to_batches())
        return pa.RecordBatchReader.from_batches(self._stored, batches)

    def _write(self, transaction: Transaction, properties: dict[str, str]) -> None:
        spec = self._spec
        has_rows = self._table is not None and self._table.current_snapshot() is not None
        if spec.mode is LoadMode.REPLACE and has_rows:
            transaction.delete(AlwaysTrue(), snapshot_properties=properties)
        elif spec.mode is LoadMode.MERGE and has_rows and self._stage.rows:
            keys = self._staged_keys()
            transaction.delete(key_filter(spec.primary_key, keys), snapshot_properties=properties)
        # Always one append, even of no rows: its snapshot carries the properties.
        self._append(transaction, properties)

    def _append(self, transaction: Transaction, properties: dict[str, str]) -> None:
        """One append snapshot of every staged row, written one data file at a time.

        `Transaction.append` hands all the files of one call to pyiceberg's thread pool at
        once, which holds the whole load in memory; this does what it does (one fast-append
        snapshot) with the rows fed one target-sized file at a time.
        """
        rows = self._rows()
        counter = itertools.count(0)
        io = transaction._table.io
        with transaction.update_snapshot(snapshot_properties=properties).fast_append() as append:
            size = self._destination.settings.target_file_size_bytes
            for chunk in _chunked(rows, size):
                for data_file in _dataframe_to_data_files(
                    table_metadata=transaction.table_metadata,
                    df=chunk,
                    io=io,
                    write_uuid=append.commit_uuid,
                    counter=counter,
                ):
                    append.append_data_file(data_file)

    def _staged_keys(self) -> pa.Table:
        keys = pa.schema([self._stored.field(k) for k in self._spec.primary_key])
        chunks = self._stage.chunks(latest_per=self._spec.primary_key, rows=_READ_BATCH_ROWS)
        tables = [
            pa.Table.from_batches([to_storage(b, self._stored).select(keys.names)], schema=keys)
            for chunk in chunks
            for b in chunk.to_batches()
        ]
        return pa.concat_tables(tables)

    def abort(self) -> None:
        if not self._done:
            self._finish()

    def _finish(self) -> None:
        self._done = True
        self._stage.close()


class IcebergDestination:
    """Iceberg tables in one namespace of one catalog.

    On S3 the warehouse is written with `credentials_provider`'s credentials (the identity the
    configuration names), asked again for each catalog opened, so refreshed credentials are
    picked up; otherwise boto3's default chain.
    """

    kind = "iceberg"
    # Rows cannot be deleted or marked by delete detection here yet: `deletes` is refused.
    supports_deletes = False

    def __init__(
        self,
        settings: IcebergSettings,
        *,
        credentials_provider: CredentialsProvider | None = None,
    ) -> None:
        self.settings = settings
        self._credentials_provider = credentials_provider
        self._lock = threading.Lock()
        self._cached: tuple[ReadOnlyCredentials | None, Catalog] | None = None

    # --- the catalog ---------------------------------------------------------------------

    def catalog(self) -> Catalog:
        s3 = resolve_s3(self._credentials_provider) if self.settings.is_s3 else None
        credentials = s3.credentials if s3 else None
        with self._lock:
            if self._cached is None or self._cached[0] != credentials:
                if self._cached is not None:
                    close_catalog(self._cached[1])
                self._cached = (credentials, open_catalog(self.settings, s3))
            return self._cached[1]

    def identifier(self, target: str) -> tuple[str, str]:
        if not target or "." in target:
            raise DestinationError(
                f"{self.settings.describe()}: {target!r} cannot be an Iceberg table name",
                fix="name the target without '.' (the namespace is set by `namespace`)",
            )
        return (self.settings.namespace, target)

    @contextlib.contextmanager
    def errors(self, action: str, table: str | None = None) -> Iterator[None]:
        with catalog_errors(self.settings, action, table):
            try:
                yield
            except duckdb.Error as exc:
                raise DestinationError(
                    f"{self.settings.describe()}: {action} failed in the local stage: {exc}",
                    fix="check the temporary folder (TMPDIR) has room",
                ) from exc

    def _table(self, target: str) -> Table | None:
        identifier = self.identifier(target)
        with self.errors("loading the table", target):
            try:
                return self.catalog().load_table(identifier)
            except NoSuchTableError:
                return None

    # --- the contract --------------------------------------------------------------------

    def check(self) -> None:
        """Open the catalog, create the namespace if missing, and create, write, read and
        drop a probe table (so the warehouse is proven writable and deletable too)."""
        probe = f"{PROBE_PREFIX}{new_run_token()}"
        with self.errors("creating the namespace"):
            catalog = self.catalog()
            with contextlib.suppress(NamespaceAlreadyExistsError):
                catalog.create_namespace_if_not_exists(self.settings.namespace)
        schema = pa.schema([pa.field("probe", pa.int64())])
        with self.errors("writing, reading and dropping a probe table", probe):
            table = catalog.create_table(self.identifier(probe), schema=schema)
            try:
                table.append(pa.table({"probe": pa.array([1], pa.int64())}))
                table.scan().to_arrow()
            finally:
                catalog.purge_table(self.identifier(probe))

    def table_schema(self, target: str) -> pa.Schema | None:
        table = self._table(target)
        if table is None:
            return None
        properties = shiftsync_properties(table)
        if properties is not None:
            return read_schema(f"Iceberg table {target!r}", properties)
        # A table shiftsync did not write: its own schema, read as Arrow.
        return pa.schema(
            [pa.field(f.name, normalize_type(f.type)) for f in table.schema().as_arrow()]
        )

    def read_state(self, state_key: str, target: str) -> dict[str, Any] | None:
        table = self._table(target)
        properties = shiftsync_properties(table) if table is not None else None
        if properties is None:
            return None
        return read_states(f"Iceberg table {target!r}", properties).get(state_key)

    def _refuse_delete_loads(self, spec: LoadSpec) -> None:
        if spec.mode is LoadMode.DELETE:
            raise DestinationError(
                f"table {spec.target!r}: {self.kind} tables take no DELETE load (delete "
                "detection is not supported for lake tables yet)",
                fix="set deletes: ignore for this table",
            )

    def start_load(self, spec: LoadSpec) -> IcebergLoad:
        self._refuse_delete_loads(spec)
        validate_spec(spec)
        table = self._table(spec.target)
        previous = shiftsync_properties(table) if table is not None else None
        existing = self.table_schema(spec.target) if table is not None else None
        plan = plan_schema(spec.target, existing, spec.schema, spec.schema_changes)
        storage_schema(spec.target, plan.schema, "iceberg")  # refuse what Iceberg cannot hold
        if existing is not None:
            check_evolution(spec.target, existing, plan)
        else:
            with (
                self.errors("creating the namespace"),
                contextlib.suppress(NamespaceAlreadyExistsError),
            ):
                self.catalog().create_namespace_if_not_exists(self.settings.namespace)
        return IcebergLoad(self, spec, plan, table, previous)

    def _read(self, target: str, columns: Sequence[str] | None = None) -> tuple[pa.Schema, Any]:
        table = self._table(target)
        schema = self.table_schema(target)
        if table is None or schema is None:
            raise missing_table(target, self.settings.describe())
        if columns is not None:
            schema = subschema(schema, columns)
        scan = table.scan(selected_fields=tuple(schema.names) or ("*",))
        reader = scan.to_arrow_batch_reader()
        return schema, (from_storage(b, schema) for b in reader)

    def profile(
        self, target: str, columns: Sequence[str], *, live_only: bool = False
    ) -> TableProfile:
        if live_only:  # soft deletes are refused for lake tables (supports_deletes is False)
            raise DestinationError(
                f"table {target!r}: lake tables keep no soft-delete mark to profile live rows by",
                fix="set deletes: ignore for this table",
            )
        schema = self.table_schema(target)
        if schema is None:
            raise missing_table(target, self.settings.describe())
        selected = profile_columns(target, schema, columns)
        with self.errors("profiling", target):
            wanted, batches = self._read(target, [name for name, _ in selected])
            reader = pa.RecordBatchReader.from_batches(wanted, batches)
            with duckdb.connect() as connection:
                connection.register("lake_table", reader)
                return run_profile(connection, "lake_table", selected)

    def read_table(self, target: str, columns: Sequence[str] | None = None) -> pa.Table:
        schema = self.table_schema(target)
        missing = [c for c in columns or () if schema is not None and c not in schema.names]
        if missing:
            raise DestinationError(
                f"table {target!r} has no column {missing[0]!r}",
                fix="name columns of the destination table",
            )
        with self.errors("reading", target):
            schema, batches = self._read(target, list(columns) if columns is not None else None)
            return pa.Table.from_batches(list(batches), schema=schema)

    def table_identity(self, target: str) -> str | None:
        """None: a lake table's state lives in its own commit's metadata, which no other
        writer can carry over, so there is no separate stamp to compare."""
        return None

    def close(self) -> None:
        with self._lock:
            if self._cached is not None:
                close_catalog(self._cached[1])
                self._cached = None
