"""The Apache Iceberg destination: one table per target, one catalog commit per load.

A load stages its rows locally (lake/stage.py), then the commit is ONE catalog transaction:
- replace: delete every row (a metadata-only DELETE), append the new files;
- append: append the new files;
- merge: delete the rows whose key is incoming (copy-on-write: only files whose key range
  holds an incoming key are rewritten, see deletes.py), append the incoming rows, last per key;
- delete (delete detection's hard deletes): delete the rows of the staged keys the same way,
  and append nothing (an empty append snapshot carries the properties).
A new table is created in the same transaction, and schema changes (Iceberg's rules, see
evolution.py) are applied in it too. Readers of the catalog see the table before or after the
load, never between. The sync state, the run id, the cursor and the written row count ride in
the properties of the transaction's snapshots (lake/properties.py), so the cursor commits
with the data; `read_state` reads them back from the table's newest shiftsync snapshot.

Layout: rows are written sorted by the table's key, in files of about
`target_file_size_bytes` of Arrow data (pyiceberg measures in-memory bytes; files on disk are
several times smaller), so each file covers a narrow key range and a merge of a few keys
rewrites few files (bench/ measures the trade-off); each file is written as it fills, in row
groups of about 1 MB of Arrow (iceberg/files.py), so the commit holds a row group, not a file.

Under Ray, a load that only adds files has them written by the workers (iceberg/sink.py,
executors/ray_files.py); the driver appends them in the same one transaction.

Concurrency: the catalog commit is optimistic; a second writer that committed first makes
this commit fail with a message, never a corrupt table.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

import pyarrow as pa
import pyarrow.fs as pafs
from botocore.credentials import ReadOnlyCredentials
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table, Transaction
from pyiceberg.table.snapshots import Snapshot

from shiftsync.destinations.base import (
    KEYED_MODES,
    LoadMode,
    LoadOutcome,
    LoadSpec,
    ensure_open,
    missing_table,
    validate_spec,
)
from shiftsync.destinations.file_sink import WrittenFile, new_token
from shiftsync.destinations.iceberg.catalog import (
    IcebergSettings,
    catalog_errors,
    close_catalog,
    open_catalog,
)
from shiftsync.destinations.iceberg.evolution import check_evolution
from shiftsync.destinations.iceberg.sink import (
    IcebergSink,
    IcebergWrittenFile,
    data_folder,
    is_load_file,
)
from shiftsync.destinations.lake.adopted import no_writers_offered, not_as_written, not_this_loads
from shiftsync.destinations.lake.load import LakeLoad
from shiftsync.destinations.lake.probe import probe_location, probe_name
from shiftsync.destinations.lake.properties import is_shiftsync_commit
from shiftsync.destinations.lake.s3 import resolve_s3
from shiftsync.destinations.lake.stage import stage_errors
from shiftsync.destinations.lake.tables import CommitProperties, LakeTables
from shiftsync.destinations.lake.types import storage_schema
from shiftsync.destinations.s3fs import CredentialsProvider, s3_filesystem
from shiftsync.destinations.schema_change import SchemaPlan, plan_schema
from shiftsync.errors import DestinationError
from shiftsync.json_types import JsonValue

TARGET_FILE_SIZE: Final = "write.target-file-size-bytes"
# pyiceberg cuts files between batches: small batches let small file targets be met.
_WRITE_BATCH_ROWS: Final = 8 * 1024


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


class IcebergLoad(LakeLoad):
    """One load into one Iceberg table; made by `IcebergDestination.start_load`."""

    def __init__(
        self,
        destination: IcebergDestination,
        spec: LoadSpec,
        plan: SchemaPlan,
        table: Table | None,
        previous: CommitProperties | None,
    ) -> None:
        super().__init__(destination.errors, spec, plan, previous, "iceberg")
        self._destination, self._table = destination, table
        # Data files other processes wrote for this load (`file_sink`, `add_files`).
        self._sink: IcebergSink | None = None
        self._adopted: list[DataFile] = []
        # The catalog may hold the commit (its outcome is not known to be a refusal): the
        # adopted files are then never deleted by `abort`.
        self._committing = False
        # A new table's create transaction, made for `file_sink` and committed by `commit`.
        self._creating: Transaction | None = None

    def file_sink(self) -> IcebergSink | None:
        """Where other processes (Ray workers) may write this load's data files: only for a
        load that only adds files (replace, or append) to a new table or one whose schema
        does not change, in a local (or shared) warehouse or one in S3 written as the source
        connection's role; else None, and every row comes through `write`."""
        spec, destination = self._spec, self._destination
        s3 = destination.settings.is_s3
        if not self._workers_may_write(
            table_exists=self._table is not None,
            in_s3=s3,
            workers_reach_s3=destination.workers_reach_s3,
        ):
            return None
        if self._sink is None:
            with destination.errors("preparing the data files' writers", spec.target):
                transaction = self._transaction()
                metadata = transaction.table_metadata
            if self._table is None:
                # The commit creates the table with this very transaction: a catalog that
                # places a new table itself (REST) cannot place it elsewhere meanwhile.
                self._creating = transaction
            if not metadata.spec().is_unpartitioned():
                return None
            self._sink = IcebergSink(
                metadata,
                new_token(),
                spec,
                self._write_schema,
                self._plan.schema,
                self._stored,
                destination.settings.target_file_size_bytes,
                in_s3=s3,
            )
        return self._sink

    def add_files(self, files: Sequence[WrittenFile]) -> None:
        """Data files written through `file_sink`, appended in this load's commit: each must
        be one of this load's files in the table's data folder, there as written."""
        ensure_open(self._done, self._spec.target)
        target, sink = self._spec.target, self._sink
        if sink is None:
            raise no_writers_offered(target)
        folder = data_folder(sink.metadata)
        for file in files:
            if (
                not isinstance(file, IcebergWrittenFile)
                or file.data_file is None
                or not is_load_file(file.path, folder, sink.token)
            ):
                raise not_this_loads(target, file.path, folder)
            with self._destination.errors(f"checking the written data file {file.path}", target):
                fs, path = self._destination.file_system(file.path)
                found = fs.get_file_info(path)
            if found.type != pafs.FileType.File or found.size != file.size:
                described = self._destination.describe()
                raise not_as_written(described, target, file.path, file.size, place="warehouse")
            self._adopted.append(file.data_file)
            self._adopted_rows += file.rows

    def commit(self, state: Mapping[str, JsonValue] | None) -> LoadOutcome:
        ensure_open(self._done, self._spec.target)
        with self._destination.errors("committing", self._spec.target):
            written = self.written()
            properties = self.properties(state, written)
            transaction = self._creating or self._transaction()
            self._check_sink(transaction)
            self._write(transaction, properties)
            self._committing = True
            try:
                transaction.commit_transaction()
            except (CommitFailedException, ValidationException, TableAlreadyExistsError):
                self._committing = False  # refused: nothing of this load is in the table
                raise
        self.finish()
        return LoadOutcome(written, self._plan.changes)

    def _check_sink(self, transaction: Transaction) -> None:
        """The files the workers wrote fit the table this commit writes (same field ids)."""
        sink = self._sink
        if sink is None or not self._adopted:
            return
        metadata = transaction.table_metadata
        if metadata.schema() != sink.metadata.schema() or data_folder(metadata) != data_folder(
            sink.metadata
        ):
            raise DestinationError(
                f"table {self._spec.target!r}: the table changed while the Ray workers wrote "
                "its data files (another writer?)",
                fix="give each destination table one writer (one sync), then run the sync again",
            )

    def abort(self) -> None:
        if self._done:
            return
        super().abort()
        if self._sink is not None and not self._committing:
            self._delete_written(self._sink)

    def _delete_written(self, sink: IcebergSink) -> None:
        """Every file this load's writers left in the data folder (a killed worker's half
        file too): found by the load's mark in their names."""
        folder = data_folder(sink.metadata)
        with contextlib.suppress(OSError, pa.ArrowException):
            fs, path = self._destination.file_system(folder)
            found = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
            for info in found:
                if info.type == pafs.FileType.File and is_load_file(
                    f"{folder}/{info.base_name}", folder, sink.token
                ):
                    fs.delete_file(info.path)

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

    def _write(self, transaction: Transaction, properties: dict[str, str]) -> None:
        spec = self._spec
        has_rows = self._table is not None and self._table.current_snapshot() is not None
        if spec.mode is LoadMode.REPLACE and has_rows:
            transaction.delete(AlwaysTrue(), snapshot_properties=properties)
        elif spec.mode in KEYED_MODES and has_rows and self._stage.rows:
            from shiftsync.destinations.iceberg.deletes import delete_keys  # see _append

            # Copy-on-write of the files holding a staged key, in this one transaction.
            keys = pa.concat_tables(self.keys())
            delete_keys(transaction, spec.primary_key, keys, properties)
        # Always one append (of no rows for a delete): its snapshot carries the properties.
        rows = (
            None
            if self.deleting
            else self.rows(latest=spec.mode is LoadMode.MERGE, batch_rows=_WRITE_BATCH_ROWS)
        )
        self._append(transaction, properties, rows)

    def _append(
        self,
        transaction: Transaction,
        properties: dict[str, str],
        rows: pa.RecordBatchReader | None,
    ) -> None:
        """One append snapshot of `rows`, written a row group at a time (iceberg/files.py).

        `Transaction.append` hands all the files of one call to pyiceberg's thread pool at
        once, which holds the whole load in memory; this makes the same fast-append snapshot
        with the rows streamed into its data files.
        """
        # Imported here, not with the module: pyiceberg's Arrow writer (and the Parquet and
        # dataset modules it loads) is needed only from the commit on, and its few MB would
        # otherwise be resident through the whole read, where a load peaks.
        from shiftsync.destinations.iceberg.files import write_data_files

        with transaction.update_snapshot(snapshot_properties=properties).fast_append() as append:
            for data_file in self._adopted:  # written by other processes (`file_sink`)
                append.append_data_file(data_file)
            for data_file in write_data_files(
                rows if rows is not None else (),
                transaction._table.io,
                transaction.table_metadata,
                target_bytes=self._destination.settings.target_file_size_bytes,
                write_uuid=append.commit_uuid,
                counter=itertools.count(0),
            ):
                append.append_data_file(data_file)


class IcebergDestination(LakeTables[Table]):
    """Iceberg tables in one namespace of one catalog.

    On S3 the warehouse is written with `credentials_provider`'s credentials (the identity the
    configuration names), asked again for each catalog opened, so refreshed credentials are
    picked up; otherwise boto3's default chain.
    """

    kind = "iceberg"
    format_name = "Iceberg"
    # DELETE loads (hard deletes) and profiles of live rows only (soft deletes).
    supports_deletes = True

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

    def workers_reach_s3(self) -> bool:
        """Whether other processes may write this warehouse's data files (Ray workers, which
        assume the connection's role themselves): an S3 warehouse written as that role,
        reached by botocore's S3 settings (no `s3.*` catalog property the workers lack)."""
        settings = self.settings
        return (
            settings.is_s3
            and settings.as_connection
            and not any(key.startswith("s3.") for key in settings.properties)
        )

    def file_system(self, uri: str) -> tuple[pafs.FileSystem, str]:
        """The file system the warehouse's files are reached through (on S3 as the identity
        that writes the destination) and `uri`'s path in it."""
        if uri.startswith("s3://"):
            provider = self._credentials_provider
            return s3_filesystem(provider() if provider else None), uri.removeprefix("s3://")
        return pafs.LocalFileSystem(), uri.removeprefix("file://")

    def identifier(self, target: str) -> tuple[str, str]:
        if not target or "." in target:
            raise DestinationError(
                f"{self.settings.describe()}: {target!r} cannot be an Iceberg table name",
                fix="name the target without '.' (the namespace is set by `namespace`)",
            )
        return (self.settings.namespace, target)

    def describe(self) -> str:
        return self.settings.describe()

    @contextlib.contextmanager
    def errors(self, action: str, table: str | None = None) -> Iterator[None]:
        with (
            catalog_errors(self.settings, action, table),
            stage_errors(self.settings.describe(), action),
        ):
            yield

    # --- what the shared reads need (lake/tables.py) -------------------------------------

    def open_table(self, target: str) -> Table | None:
        identifier = self.identifier(target)
        with self.errors("loading the table", target):
            try:
                return self.catalog().load_table(identifier)
            except NoSuchTableError:
                return None

    def last_commit(self, table: Table, target: str) -> CommitProperties | None:
        return shiftsync_properties(table)

    def native_schema(self, table: Table) -> pa.Schema:
        return table.schema().as_arrow()

    def scan(self, table: Table, names: Sequence[str]) -> Iterator[pa.RecordBatch]:
        reader = table.scan(selected_fields=tuple(names) or ("*",)).to_arrow_batch_reader()
        yield from reader

    # --- the contract --------------------------------------------------------------------

    def check(self) -> None:
        """Before a sync reads: the catalog answers, the namespace exists (created if
        missing) and the warehouse takes a file (written and deleted).

        Not the probe table of `probe` (`shiftsync check`): a sync would otherwise create,
        commit, read and drop a table in the catalog on every run, and load pyiceberg's
        writer and thread pool before the read, where a load's memory peaks; a catalog action
        refused to a load (creating or updating its table) fails its commit instead, with
        nothing committed.
        """
        self._namespace()
        probe = probe_name()
        with self.errors("writing and deleting a probe file in the warehouse", probe):
            probe_location(
                self.settings.warehouse,
                probe,
                subject=self.describe(),
                identity=self.settings.identity,
                credentials_provider=self._credentials_provider,
            )

    def probe(self) -> None:
        """`shiftsync check`: `check`, then create, write, read and drop a probe table, so
        every catalog action a load needs is proven allowed."""
        self.check()
        probe = probe_name()
        catalog = self.catalog()
        schema = pa.schema([pa.field("probe", pa.int64())])
        with self.errors("writing, reading and dropping a probe table", probe):
            table = catalog.create_table(self.identifier(probe), schema=schema)
            try:
                table.append(pa.table({"probe": pa.array([1], pa.int64())}))
                table.scan().to_arrow()
            finally:
                catalog.purge_table(self.identifier(probe))

    def _namespace(self) -> None:
        with (
            self.errors("creating the namespace"),
            contextlib.suppress(NamespaceAlreadyExistsError),
        ):
            self.catalog().create_namespace_if_not_exists(self.settings.namespace)

    def start_load(self, spec: LoadSpec) -> IcebergLoad:
        validate_spec(spec)
        table = self.open_table(spec.target)
        if table is None and spec.mode is LoadMode.DELETE:
            raise missing_table(spec.target, self.describe())
        previous = shiftsync_properties(table) if table is not None else None
        existing = self.schema_of(table, spec.target) if table is not None else None
        plan = plan_schema(spec.target, existing, spec.schema, spec.schema_changes)
        storage_schema(spec.target, plan.schema, "iceberg")  # refuse what Iceberg cannot hold
        if existing is not None:
            check_evolution(spec.target, existing, plan)
        else:
            self._namespace()
        return IcebergLoad(self, spec, plan, table, previous)

    def close(self) -> None:
        with self._lock:
            if self._cached is not None:
                close_catalog(self._cached[1])
                self._cached = None
