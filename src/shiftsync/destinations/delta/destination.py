"""The Delta Lake destination: one table per folder, one Delta commit per load.

A load stages its rows locally (lake/stage.py), sorted by the table's key, then commits once:
- replace: an overwrite (the new files replace the old in one log entry);
- append: an append, adding new columns (`schema_mode=merge`);
- merge: delta-rs MERGE by key (update matched rows, insert the rest), last row per key;
- a widened column type: Delta cannot change a stored type in place, so the load rewrites
  the table in its one commit (the old rows are staged first, then the incoming ones).
The sync state, run id, cursor and row count ride in the commit's custom metadata
(lake/properties.py), written by the same log entry as the data; `read_state` reads the newest
shiftsync commit of the table's history. A kill before the commit leaves the table as it
was; files a killed commit wrote but never logged are invisible, and removed by VACUUM.

On S3 a locking mechanism is required (storage.py).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import (
    CommitFailedError,
    DeltaError,
    DeltaProtocolError,
    SchemaMismatchError,
    TableNotFoundError,
)

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
from shiftsync.destinations.delta.storage import DeltaSettings, storage_options
from shiftsync.destinations.duckdb_sql import run_profile
from shiftsync.destinations.lake.properties import (
    commit_properties,
    is_shiftsync_commit,
    read_schema,
    read_states,
)
from shiftsync.destinations.lake.s3 import resolve_s3
from shiftsync.destinations.lake.stage import LakeStage
from shiftsync.destinations.lake.types import from_storage, storage_schema, to_storage
from shiftsync.destinations.s3fs import CredentialsProvider, s3_filesystem
from shiftsync.destinations.schema_change import SchemaPlan, normalize_type, plan_schema
from shiftsync.errors import DestinationError

_READ_BATCH_ROWS: Final = 64 * 1024
_HISTORY_LIMIT: Final = 1000
PROBE_PREFIX: Final = "_shiftsync_probe_"


def _quote(name: str) -> str:
    """A column name in a delta-rs predicate (backticks, doubled inside)."""
    return "`" + name.replace("`", "``") + "`"


def merge_predicate(primary_key: Sequence[str]) -> str:
    return " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in primary_key)


def shiftsync_commit(table: DeltaTable, fs: pafs.FileSystem, uri: str) -> dict[str, Any] | None:
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
            action = json.loads(line) if line.strip() else {}
            info = action.get("commitInfo")
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


class DeltaLoad:
    """One load into one Delta table; made by `DeltaDestination.start_load`."""

    def __init__(
        self,
        destination: DeltaDestination,
        spec: LoadSpec,
        plan: SchemaPlan,
        table: DeltaTable | None,
        previous: Mapping[str, Any] | None,
        rewrite: bool,
    ) -> None:
        self._destination, self._spec, self._plan = destination, spec, plan
        self._table, self._previous, self._rewrite = table, previous, rewrite
        self._write_schema = subschema(plan.schema, plan.write_columns)
        self._stored = storage_schema(spec.target, plan.schema, "delta")
        self._stage = LakeStage(plan.schema)
        self._incoming = 0
        self._done = False
        if rewrite and table is not None:
            # The old rows go first, so incoming rows (later in the stage) win a merge.
            old = destination.table_schema(spec.target)
            assert old is not None
            for batch in table.to_pyarrow_dataset().to_batches(batch_size=_READ_BATCH_ROWS):
                restored = from_storage(batch, old)
                self._stage.add(conform_batch(restored, plan.schema, missing_as_null=True))
        self._old_rows = self._stage.rows

    def write(self, batch: pa.RecordBatch) -> None:
        ensure_open(self._done, self._spec.target)
        if batch.num_rows == 0:
            return
        batch = conform_incoming(self._spec, batch, self._write_schema)
        batch = conform_batch(batch, self._plan.schema, missing_as_null=True)
        with self._destination.errors("staging rows", self._spec.target):
            before = self._stage.rows
            self._stage.add(batch)
            self._incoming += self._stage.rows - before

    def commit(self, state: Mapping[str, Any] | None) -> LoadOutcome:
        ensure_open(self._done, self._spec.target)
        spec, destination = self._spec, self._destination
        merging = spec.mode is LoadMode.MERGE
        with destination.errors("committing", spec.target):
            written = self._incoming_keys() if merging else self._incoming
            states = read_states(spec.target, self._previous) if self._previous else {}
            properties = CommitProperties(
                custom_metadata=commit_properties(
                    spec.target,
                    self._plan.schema,
                    states,
                    state_key_of(spec),
                    state,
                    str(spec.mode),
                    written,
                )
            )
            self._write(properties)
        self._finish()
        return LoadOutcome(written, self._plan.changes, None)

    def _incoming_keys(self) -> int:
        # With a rewrite the stage holds the old rows first: count the incoming rows' keys.
        return self._stage.keys(self._spec.primary_key, since=self._old_rows)

    def _rows(self, *, latest: bool) -> pa.RecordBatchReader:
        spec = self._spec
        chunks = self._stage.chunks(
            sort_key=spec.sort_key or spec.primary_key,
            latest_per=spec.primary_key if latest else (),
            rows=_READ_BATCH_ROWS,
        )
        batches = (to_storage(b, self._stored) for chunk in chunks for b in chunk.to_batches())
        return pa.RecordBatchReader.from_batches(self._stored, batches)

    def _write(self, properties: CommitProperties) -> None:
        spec, destination = self._spec, self._destination
        uri, options = destination.uri(spec.target), destination.options()
        merging = spec.mode is LoadMode.MERGE
        size = destination.settings.target_file_size_bytes
        if self._table is None or spec.mode is LoadMode.REPLACE or self._rewrite:
            write_deltalake(
                uri,
                self._rows(latest=merging),
                mode="overwrite",
                schema_mode="overwrite" if self._table is not None else None,
                storage_options=options,
                target_file_size=size,
                commit_properties=properties,
            )
        elif not merging or self._stage.rows == 0:
            write_deltalake(
                self._table,
                self._rows(latest=False),
                mode="append",
                schema_mode="merge",
                target_file_size=size,
                commit_properties=properties,
            )
        else:
            (
                self._table.merge(
                    self._rows(latest=True),
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

    def abort(self) -> None:
        if not self._done:
            self._finish()

    def _finish(self) -> None:
        self._done = True
        self._stage.close()


class DeltaDestination:
    """Delta tables under one root (a local folder or s3://bucket/prefix).

    On S3 the tables are written with `credentials_provider`'s credentials (asked again for
    each operation, so refreshed role credentials are picked up), else boto3's default chain.
    """

    kind = "delta"
    # Rows cannot be deleted or marked by delete detection here yet: `deletes` is refused.
    supports_deletes = False

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

    def _filesystem(self) -> pafs.FileSystem:
        if not self.settings.is_s3:
            return pafs.LocalFileSystem()
        credentials = self._credentials_provider() if self._credentials_provider else None
        return s3_filesystem(credentials)

    @contextlib.contextmanager
    def errors(self, action: str, table: str | None = None) -> Iterator[None]:
        subject = self.settings.describe() + (f", table {table!r}" if table else "")
        try:
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
        except duckdb.Error as exc:
            raise DestinationError(
                f"{subject}: {action} failed in the local stage: {exc}",
                fix="check the temporary folder (TMPDIR) has room",
            ) from exc

    def _table(self, target: str) -> DeltaTable | None:
        uri = self.uri(target)
        with self.errors("opening the table", target):
            try:
                return DeltaTable(uri, storage_options=self.options())
            except TableNotFoundError:
                return None

    # --- the contract --------------------------------------------------------------------

    def check(self) -> None:
        """Write, read and delete a probe Delta table under the root."""
        probe = f"{PROBE_PREFIX}{new_run_token()}"
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

    def table_schema(self, target: str) -> pa.Schema | None:
        table = self._table(target)
        if table is None:
            return None
        with self.errors("reading the history", target):
            info = shiftsync_commit(table, self._filesystem(), self.uri(target))
        if info is not None:
            return read_schema(f"Delta table {target!r}", info)
        arrow = table.to_pyarrow_dataset().schema
        return pa.schema([pa.field(f.name, normalize_type(f.type)) for f in arrow])

    def read_state(self, state_key: str, target: str) -> dict[str, Any] | None:
        table = self._table(target)
        if table is None:
            return None
        with self.errors("reading the history", target):
            info = shiftsync_commit(table, self._filesystem(), self.uri(target))
        if info is None:
            return None
        return read_states(f"Delta table {target!r}", info).get(state_key)

    def _refuse_delete_loads(self, spec: LoadSpec) -> None:
        if spec.mode is LoadMode.DELETE:
            raise DestinationError(
                f"table {spec.target!r}: {self.kind} tables take no DELETE load (delete "
                "detection is not supported for lake tables yet)",
                fix="set deletes: ignore for this table",
            )

    def start_load(self, spec: LoadSpec) -> DeltaLoad:
        self._refuse_delete_loads(spec)
        validate_spec(spec)
        table = self._table(spec.target)
        previous = None
        if table is not None:
            with self.errors("reading the history", spec.target):
                previous = shiftsync_commit(table, self._filesystem(), self.uri(spec.target))
        existing = self.table_schema(spec.target) if table is not None else None
        plan = plan_schema(spec.target, existing, spec.schema, spec.schema_changes)
        stored = storage_schema(spec.target, plan.schema, "delta")
        rewrite = False
        if existing is not None and spec.mode is not LoadMode.REPLACE:
            before = storage_schema(spec.target, existing, "delta")
            rewrite = any(
                f.name in before.names and before.field(f.name).type != f.type for f in stored
            )
        with self.errors("staging the old rows", spec.target):
            return DeltaLoad(self, spec, plan, table, previous, rewrite)

    def _read(self, target: str, columns: Sequence[str] | None = None) -> tuple[pa.Schema, Any]:
        table = self._table(target)
        schema = self.table_schema(target)
        if table is None or schema is None:
            raise missing_table(target, self.settings.describe())
        if columns is not None:
            schema = subschema(schema, columns)
        dataset = table.to_pyarrow_dataset()
        batches = dataset.to_batches(columns=list(schema.names), batch_size=_READ_BATCH_ROWS)
        return schema, (from_storage(b, schema) for b in batches)

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
        """Nothing is held open between operations."""
