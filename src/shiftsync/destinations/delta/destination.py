"""The Delta Lake destination: one table per folder, one Delta commit per load.

A load stages its rows locally (lake/stage.py), sorted by the table's key, then commits once:
- replace: an overwrite (the new files replace the old in one log entry);
- append: an append, adding new columns (`schema_mode=merge`);
- merge: delta-rs MERGE by key (update matched rows, insert the rest), last row per key;
- delete (delete detection's hard deletes): delta-rs MERGE from the staged keys, deleting the
  matched rows;
- a widened column type: Delta cannot change a stored type in place, so the load rewrites
  the table in its one commit (the old rows are staged first, then the incoming ones).
The sync state, run id, cursor and row count ride in the commit's custom metadata
(lake/properties.py), written by the same log entry as the data; `read_state` reads the newest
shiftsync commit of the table's history. A kill before the commit leaves the table as it
was; files a killed commit wrote but never logged are invisible, and removed by VACUUM.

Under Ray, a load that only adds files has them written by the workers (delta/sink.py,
executors/ray_files.py); the driver commits them in the same one log entry.

On S3 a locking mechanism is required (storage.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import CommitProperties, DeltaTable, Schema, write_deltalake
from deltalake.exceptions import (
    CommitFailedError,
    DeltaError,
    DeltaProtocolError,
    SchemaMismatchError,
    TableNotFoundError,
)
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from shiftsync.destinations.base import (
    LoadMode,
    LoadOutcome,
    LoadSpec,
    conform_batch,
    ensure_open,
    missing_table,
    validate_spec,
)
from shiftsync.destinations.delta.sink import DeltaSink, DeltaWrittenFile, is_load_file
from shiftsync.destinations.delta.storage import DeltaSettings, storage_options
from shiftsync.destinations.file_sink import WrittenFile, new_token
from shiftsync.destinations.lake.adopted import no_writers_offered, not_as_written, not_this_loads
from shiftsync.destinations.lake.load import LakeLoad
from shiftsync.destinations.lake.probe import probe_location, probe_name
from shiftsync.destinations.lake.properties import is_shiftsync_commit
from shiftsync.destinations.lake.s3 import resolve_s3
from shiftsync.destinations.lake.stage import stage_errors
from shiftsync.destinations.lake.tables import CommitProperties as LakeCommit
from shiftsync.destinations.lake.tables import LakeTables
from shiftsync.destinations.lake.types import from_storage, storage_schema
from shiftsync.destinations.s3fs import CredentialsProvider, s3_filesystem
from shiftsync.destinations.schema_change import SchemaPlan, plan_schema
from shiftsync.errors import DestinationError
from shiftsync.json_types import JsonObject, JsonValue

_READ_BATCH_ROWS: Final = 64 * 1024
_HISTORY_LIMIT: Final = 1000


def _quote(name: str) -> str:
    """A column name in a delta-rs predicate (backticks, doubled inside)."""
    return "`" + name.replace("`", "``") + "`"


def merge_predicate(primary_key: Sequence[str]) -> str:
    return " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in primary_key)


def shiftsync_commit(table: DeltaTable, fs: pafs.FileSystem, uri: str) -> JsonObject | None:
    """The commit info of the table's newest shiftsync commit, or None.

    Read from the log files (`_delta_log/<version>.json`, newest first) with pyarrow rather
    than `DeltaTable.history()`, which keeps the GIL while it lists the log: every other
    Python thread stalls meanwhile, and an S3 served from the same process (the stand-in in
    tests) never answers.
    """
    log = f"{uri.removeprefix('s3://')}/_delta_log"
    newest = table.version()
    for version in range(newest, max(-1, newest - _HISTORY_LIMIT), -1):
        try:
            with fs.open_input_stream(f"{log}/{version:020d}.json") as source:
                text = source.read().decode()
        except FileNotFoundError:
            return None  # older commits were cleaned up by log retention
        for line in text.splitlines():
            action: JsonValue = json.loads(line) if line.strip() else {}
            info = action.get("commitInfo") if isinstance(action, dict) else None
            if isinstance(info, dict) and is_shiftsync_commit(info):
                return info
    return None


def _delete_tree(fs: pafs.FileSystem, folder: str) -> None:
    """Delete every file under `folder`, one DeleteObject each on S3: the identity needs only
    s3:DeleteObject on the prefix (a batch delete is authorized the same way on AWS, but not
    by every S3-compatible store)."""
    found = fs.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
    for info in found:
        if info.type == pafs.FileType.File:
            fs.delete_file(info.path)
    if isinstance(fs, pafs.LocalFileSystem):
        with contextlib.suppress(FileNotFoundError):
            fs.delete_dir(folder)


class DeltaLoad(LakeLoad):
    """One load into one Delta table; made by `DeltaDestination.start_load`."""

    def __init__(
        self,
        destination: DeltaDestination,
        spec: LoadSpec,
        plan: SchemaPlan,
        table: DeltaTable | None,
        previous: LakeCommit | None,
        rewrite: bool,
    ) -> None:
        super().__init__(destination.errors, spec, plan, previous, "delta")
        self._destination, self._table, self._rewrite = destination, table, rewrite
        if rewrite and table is not None:
            # The old rows go first, so incoming rows (later in the stage) win a merge.
            old = destination.table_schema(spec.target)
            assert old is not None
            for batch in table.to_pyarrow_dataset().to_batches(batch_size=_READ_BATCH_ROWS):
                restored = from_storage(batch, old)
                self._stage.add(conform_batch(restored, plan.schema, missing_as_null=True))
        self._old_rows = self._stage.rows
        # Data files other processes wrote for this load (`file_sink`, `add_files`).
        self._sink: DeltaSink | None = None
        self._adopted: list[AddAction] = []
        # The log may hold the commit (its outcome is not known to be a refusal): the
        # adopted files are then never deleted by `abort`.
        self._committing = False

    def file_sink(self) -> DeltaSink | None:
        """Where other processes (Ray workers) may write this load's data files: only for a
        load that only adds files (replace, or append) to a new table or one whose schema
        does not change, under a local (or shared) root or one in S3 written as the source
        connection's role; else None, and every row comes through `write`."""
        spec, destination = self._spec, self._destination
        s3 = destination.settings.is_s3
        if self._rewrite or not self._workers_may_write(
            table_exists=self._table is not None,
            in_s3=s3,
            workers_reach_s3=destination.workers_reach_s3,
        ):
            return None
        if self._sink is None:
            self._sink = DeltaSink(
                destination.uri(spec.target).removeprefix("s3://"),
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
        """Data files written through `file_sink`, committed in this load's log entry: each
        must be one of this load's files in the table's folder, there as written."""
        ensure_open(self._done, self._spec.target)
        target, sink = self._spec.target, self._sink
        if sink is None:
            raise no_writers_offered(target)
        fs = self._destination.filesystem()
        for file in files:
            if not isinstance(file, DeltaWrittenFile) or not is_load_file(file.path, sink.token):
                raise not_this_loads(target, file.path, sink.folder)
            where = f"{sink.folder}/{file.path}"
            with self._destination.errors(f"checking the written data file {where}", target):
                found = fs.get_file_info(where)
            if found.type != pafs.FileType.File or found.size != file.size:
                described = self._destination.describe()
                raise not_as_written(described, target, where, file.size, place="root")
            modified = found.mtime_ns // 1_000_000 if found.mtime_ns else time.time_ns() // 10**6
            self._adopted.append(AddAction(file.path, file.size, {}, modified, True, file.stats))
            self._adopted_rows += file.rows

    def abort(self) -> None:
        if self._done:
            return
        super().abort()
        if self._sink is not None and not self._committing:
            self._delete_written(self._sink)

    def _delete_written(self, sink: DeltaSink) -> None:
        """Every file this load's writers left in the table's folder (a killed worker's half
        file too): found by the load's mark in their names."""
        with contextlib.suppress(OSError, pa.ArrowException):
            fs = self._destination.filesystem()
            found = fs.get_file_info(pafs.FileSelector(sink.folder, allow_not_found=True))
            for info in found:
                if info.type == pafs.FileType.File and is_load_file(info.base_name, sink.token):
                    fs.delete_file(info.path)

    def commit(self, state: Mapping[str, JsonValue] | None) -> LoadOutcome:
        ensure_open(self._done, self._spec.target)
        with self._destination.errors("committing", self._spec.target):
            written = self.written()
            properties = CommitProperties(custom_metadata=self.properties(state, written))
            self._committing = True
            try:
                if self._sink is not None and self._adopted:
                    self._commit_adopted(properties)
                else:
                    self._write(properties)
            except CommitFailedError:
                self._committing = False  # refused: nothing of this load is in the table
                raise
        self.finish()
        return LoadOutcome(written, self._plan.changes)

    def _commit_adopted(self, properties: CommitProperties) -> None:
        """The files the workers wrote (and nothing else: the driver staged no rows), in one
        log entry: a new table's first, else an overwrite (replace) or an append."""
        spec, destination = self._spec, self._destination
        if self._table is None:
            try:
                create_table_with_add_actions(
                    destination.uri(spec.target),
                    Schema.from_arrow(self._stored),
                    self._adopted,
                    mode="error",
                    storage_options=destination.options(),
                    commit_properties=properties,
                )
            except DeltaError as exc:
                if "already exists" not in str(exc):
                    raise
                # Another writer created the table since this load started: refused, as a
                # conflicting commit to an existing table is.
                raise CommitFailedError(str(exc)) from exc
            return
        actions: list[AddAction | RemoveAction] = [*self._adopted]
        self._table.create_write_transaction(
            actions,
            mode="overwrite" if spec.mode is LoadMode.REPLACE else "append",
            schema=self._stored,
            commit_properties=properties,
        )

    def _write(self, properties: CommitProperties) -> None:
        spec, destination = self._spec, self._destination
        uri, options = destination.uri(spec.target), destination.options()
        merging = spec.mode is LoadMode.MERGE
        size = destination.settings.target_file_size_bytes
        if self.deleting:
            self._delete(properties)
        elif self._table is None or spec.mode is LoadMode.REPLACE or self._rewrite:
            write_deltalake(
                uri,
                self.rows(latest=merging, batch_rows=_READ_BATCH_ROWS),
                mode="overwrite",
                schema_mode="overwrite" if self._table is not None else None,
                storage_options=options,
                target_file_size=size,
                commit_properties=properties,
            )
        elif not merging or self._stage.rows == 0:
            write_deltalake(
                self._table,
                self.rows(latest=False, batch_rows=_READ_BATCH_ROWS),
                mode="append",
                schema_mode="merge",
                target_file_size=size,
                commit_properties=properties,
            )
        else:
            (
                self._table.merge(
                    self.rows(latest=True, batch_rows=_READ_BATCH_ROWS),
                    predicate=merge_predicate(spec.primary_key),
                    source_alias="s",
                    target_alias="t",
                    merge_schema=True,
                    commit_properties=properties,
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )

    def _delete(self, properties: CommitProperties) -> None:
        """Delete the rows whose key is staged: a MERGE from the table of keys (no literal in
        any predicate), one log entry with the state. A delete that matched nothing writes no
        log entry in delta-rs, so the state then rides on an empty append of its own (the
        table's rows are the same either way)."""
        assert self._table is not None
        keys = self.keys()
        key_schema = pa.schema([self._stored.field(k) for k in self._spec.primary_key])
        before = self._table.version()
        (
            self._table.merge(
                pa.RecordBatchReader.from_batches(
                    key_schema, (b for t in keys for b in t.to_batches())
                ),
                predicate=merge_predicate(self._spec.primary_key),
                source_alias="s",
                target_alias="t",
                commit_properties=properties,
            )
            .when_matched_delete()
            .execute()
        )
        self._table.update_incremental()
        if self._table.version() == before:
            write_deltalake(
                self._table,
                self._stored.empty_table(),
                mode="append",
                commit_properties=properties,
            )


class DeltaDestination(LakeTables[DeltaTable]):
    """Delta tables under one root (a local folder or s3://bucket/prefix).

    On S3 the tables are written with `credentials_provider`'s credentials (asked again for
    each operation, so refreshed role credentials are picked up), else boto3's default chain.
    """

    kind = "delta"
    format_name = "Delta"
    # DELETE loads (hard deletes) and profiles of live rows only (soft deletes).
    supports_deletes = True

    def __init__(
        self,
        settings: DeltaSettings,
        *,
        credentials_provider: CredentialsProvider | None = None,
    ) -> None:
        self.settings = settings
        self._credentials_provider = credentials_provider
        settings.check_locking()

    def uri(self, target: str) -> str:
        return self.settings.table_uri(target)

    def options(self) -> dict[str, str]:
        s3 = resolve_s3(self._credentials_provider) if self.settings.is_s3 else None
        return storage_options(self.settings, s3)

    def workers_reach_s3(self) -> bool:
        """Whether other processes may write this root's data files (Ray workers, which
        assume the connection's role themselves): an S3 root written as that role."""
        return self.settings.is_s3 and self.settings.as_connection

    def filesystem(self) -> pafs.FileSystem:
        """The root's file system (on S3 as the identity that writes the destination)."""
        return self._filesystem()

    def _filesystem(self) -> pafs.FileSystem:
        if not self.settings.is_s3:
            return pafs.LocalFileSystem()
        credentials = self._credentials_provider() if self._credentials_provider else None
        return s3_filesystem(credentials)

    def describe(self) -> str:
        return self.settings.describe()

    @contextlib.contextmanager
    def errors(self, action: str, table: str | None = None) -> Iterator[None]:
        subject = self.settings.describe() + (f", table {table!r}" if table else "")
        try:
            with stage_errors(subject, action):
                yield
        except CommitFailedError as exc:
            raise DestinationError(
                f"{subject}: {action} failed: another writer committed the table since this "
                f"load started ({exc})",
                fix="give each destination table one writer (one sync), then run the sync again",
            ) from exc
        except SchemaMismatchError as exc:
            raise DestinationError(
                f"{subject}: {action} failed: Delta refused the schema: {exc}",
                fix="run this table once with `shiftsync sync --full-refresh` to rewrite it",
            ) from exc
        except (DeltaError, DeltaProtocolError, OSError, pa.ArrowException) as exc:
            raise DestinationError(
                f"{subject}: {action} failed: {type(exc).__name__}: {exc}",
                fix="check the root is writable by the identity that writes this destination "
                "(`shiftsync check` tells which) and that the disk or bucket has room",
            ) from exc

    # --- what the shared reads need (lake/tables.py) -------------------------------------

    def open_table(self, target: str) -> DeltaTable | None:
        uri = self.uri(target)
        with self.errors("opening the table", target):
            try:
                return DeltaTable(uri, storage_options=self.options())
            except TableNotFoundError:
                return None

    def last_commit(self, table: DeltaTable, target: str) -> LakeCommit | None:
        with self.errors("reading the history", target):
            return shiftsync_commit(table, self._filesystem(), self.uri(target))

    def native_schema(self, table: DeltaTable) -> pa.Schema:
        return table.to_pyarrow_dataset().schema

    def scan(self, table: DeltaTable, names: Sequence[str]) -> Iterator[pa.RecordBatch]:
        dataset = table.to_pyarrow_dataset()
        yield from dataset.to_batches(columns=list(names), batch_size=_READ_BATCH_ROWS)

    # --- the contract --------------------------------------------------------------------

    def check(self) -> None:
        """Before a sync reads: the root takes a file (written and deleted, as the identity
        that writes the tables).

        Not the probe table of `probe` (`shiftsync check`): a sync would otherwise write a
        Delta table (its data file and log) and read and delete it on every run; an action
        refused to a load (reading or listing the log) fails that load with nothing committed.
        """
        probe = probe_name()
        with self.errors("writing and deleting a probe file in the root", probe):
            probe_location(
                self.settings.root,
                probe,
                subject=self.describe(),
                identity=self.settings.identity,
                credentials_provider=self._credentials_provider,
            )

    def probe(self) -> None:
        """`shiftsync check`: `check`, then write, read and delete a probe Delta table under
        the root, so every S3 action a load needs is proven allowed."""
        self.check()
        probe = probe_name()
        uri = self.uri(probe)
        fs = self._filesystem()
        with self.errors("writing, reading and deleting a probe table", probe):
            if not self.settings.is_s3:
                Path(self.settings.root).mkdir(parents=True, exist_ok=True)
            try:
                data = pa.table({"probe": pa.array([1], pa.int64())})
                write_deltalake(uri, data, mode="overwrite", storage_options=self.options())
                DeltaTable(uri, storage_options=self.options()).to_pyarrow_table()
            finally:
                _delete_tree(fs, uri.removeprefix("s3://"))

    def start_load(self, spec: LoadSpec) -> DeltaLoad:
        validate_spec(spec)
        table = self.open_table(spec.target)
        if table is None and spec.mode is LoadMode.DELETE:
            raise missing_table(spec.target, self.describe())
        previous = self.last_commit(table, spec.target) if table is not None else None
        existing = self.schema_of(table, spec.target) if table is not None else None
        plan = plan_schema(spec.target, existing, spec.schema, spec.schema_changes)
        stored = storage_schema(spec.target, plan.schema, "delta")
        rewrite = False
        if existing is not None and spec.mode not in (LoadMode.REPLACE, LoadMode.DELETE):
            before = storage_schema(spec.target, existing, "delta")
            rewrite = any(
                f.name in before.names and before.field(f.name).type != f.type for f in stored
            )
        with self.errors("staging the old rows", spec.target):
            return DeltaLoad(self, spec, plan, table, previous, rewrite)

    def close(self) -> None:
        """Nothing is held open between operations."""
