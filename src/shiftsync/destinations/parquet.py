"""The Parquet destination: versioned datasets in a local folder or under s3://bucket/prefix.

Layout of one table (a "dataset"):

    <root>/<target>/_shiftsync.json                     the pointer: current files, schema, state
    <root>/<target>/v000003-1a2b3c4d/part-00000.parquet  the files a version wrote

A load writes a new version folder that no reader looks at, then replaces the pointer in one
step (local: a temporary file renamed over it; S3: one PutObject). Readers list the pointer's
`files`, never the folders, so they see the old version or the new one, never a part. The
sync state lives in the same pointer, so data and state switch together, and a table's state
is read from its own pointer only. After the switch, folders that neither the current nor the
previous version uses are deleted; a crashed load's folder is deleted by the next load of the
table. Once the pointer write has started, an abort keeps the new folder: the write may have
landed although it raised (a timeout on the response), and then the pointer uses the folder.

APPEND references the previous files and adds its own (a schema change rewrites the old rows
into the new version, so every file of a version has the pointer's schema). MERGE writes a
new version: the old rows whose key is not incoming, then the incoming rows, last per key.

The type contract's INTERVAL (duration[us]) is a native Parquet column. Parquet has no type
for Arrow's month_day_nano interval, so such a column is stored as its 16 raw bytes
(fixed_size_binary(16), field metadata `shiftsync.arrow_type`) and read back as intervals;
the pointer keeps the exact Arrow schema, field metadata included.

The pointer and the file schema are in parquet_layout.py, part writing and scanning in
parquet_files.py, MERGE's stage in parquet_merge.py, reaching S3 in s3fs.py.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ClientError

from shiftsync.destinations.base import (
    KEYED_MODES,
    LoadMode,
    LoadOutcome,
    LoadSpec,
    TableProfile,
    encode_state,
    ensure_open,
    live_only_filter,
    missing_table,
    new_run_token,
    profile_columns,
    profile_columns_names,
    state_key_of,
    subschema,
    validate_spec,
    with_sequence,
)
from shiftsync.destinations.duckdb_sql import quote_identifier, run_profile
from shiftsync.destinations.file_sink import WrittenFile
from shiftsync.destinations.parquet_files import (
    PartSink,
    PartWriter,
    conform_for_load,
    scan,
)
from shiftsync.destinations.parquet_layout import (
    POINTER_FILE,
    POINTER_FORMAT,
    STORED_AS,
    DatasetPointer,
    adds_files_only,
    decode_schema,
    describe_schema,
    duckdb_form_schema,
    encode_schema,
    folders_in_use,
    from_duckdb_form,
    from_storage,
    to_duckdb_form,
    to_storage,
    to_storage_schema,
    version_folder,
)
from shiftsync.destinations.parquet_merge import MergeStage
from shiftsync.destinations.parquet_publish import (
    CONFLICT_CODES,
    PointerBase,
    collectable,
    conflict,
    dataset_lock,
)
from shiftsync.destinations.s3fs import CredentialsProvider, s3_client, s3_filesystem
from shiftsync.destinations.schema_change import SchemaPlan, plan_schema
from shiftsync.errors import DestinationError, WriteConflictError
from shiftsync.json_types import JsonObject, JsonValue

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

HISTORY_KEPT: Final = 20
DEFAULT_ROWS_PER_FILE: Final = 1_000_000


class ParquetLoad:
    """One load into one dataset; made by `ParquetDestination.start_load`."""

    def __init__(
        self,
        destination: ParquetDestination,
        fs: pafs.FileSystem,
        spec: LoadSpec,
        plan: SchemaPlan,
        pointer: DatasetPointer | None,
        etag: str | None = None,
    ) -> None:
        self._destination, self._fs, self._spec, self._plan = destination, fs, spec, plan
        self._pointer = pointer
        self._etag = etag
        self._folder = destination.path(spec.target)
        self._version = (pointer.version if pointer else 0) + 1
        self._current = version_folder(self._version, new_run_token())
        self._write_schema = subschema(plan.schema, plan.write_columns)
        self._writer = PartWriter(
            fs, f"{self._folder}/{self._current}", plan.schema, destination.rows_per_file
        )
        self._stage = MergeStage(plan.schema, spec.primary_key)
        self._staged = 0
        # Parts other processes wrote into this version (`file_sink`), as the pointer lists them.
        self._adopted: list[str] = []
        self._done = False
        self._publishing = False

    def file_sink(self) -> PartSink | None:
        """Where other processes may write this load's parts (Ray workers): only when the
        version is nothing but the rows' files, on a local (or shared) disk or in S3 written
        as the source connection's role; else None, and every row comes through `write`."""
        old = self._pointer.schema if self._pointer else None
        local = self._fs.type_name == "local"
        if not (local or self._destination.workers_reach_s3()) or not adds_files_only(
            self._spec.mode, old, self._plan.schema
        ):
            return None
        return PartSink(
            self._folder,
            self._current,
            self._spec,
            self._write_schema,
            self._plan.schema,
            self._destination.rows_per_file,
            in_s3=not local,
        )

    def add_files(self, files: Sequence[WrittenFile]) -> None:
        """Parts written through `file_sink`, committed with this version: each must be in
        this version's folder and be there, whole, as seen from here."""
        self._ensure_open()
        target = self._spec.target
        for file in files:
            where = f"{self._folder}/{file.path}"
            if not file.path.startswith(f"{self._current}/") or ".." in file.path.split("/"):
                raise DestinationError(
                    f"dataset {target!r}: a written part {file.path!r} is not in the version "
                    f"folder {self._current!r}",
                    fix="this is a bug in shiftsync: report it",
                )
            with self._destination.errors(f"checking the written part {where}"):
                found = self._fs.get_file_info(where)
            if found.type != pafs.FileType.File or found.size != file.size:
                raise DestinationError(
                    f"Parquet root {self._destination.root!r}: the part {where} a Ray worker "
                    f"wrote ({file.size} bytes) is not there as written, seen from the driver",
                    fix="give the sync a root every node of the cluster sees at the same path "
                    "(a shared mount), or an s3:// root",
                )
            self._adopted.append(file.path)
            self._staged += file.rows

    def write(self, batch: pa.RecordBatch) -> None:
        self._ensure_open()
        if batch.num_rows == 0:
            return
        batch = conform_for_load(self._spec, batch, self._write_schema, self._plan.schema)
        with self._destination.errors(f"writing dataset {self._spec.target!r}"):
            if self._spec.mode in KEYED_MODES:
                self._stage.add(with_sequence(batch, self._staged))
            else:
                self._writer.write(batch)
        self._staged += batch.num_rows

    def commit(self, state: Mapping[str, JsonValue] | None) -> LoadOutcome:
        self._ensure_open()
        spec, old = self._spec, self._pointer
        encoded_state = dict(old.state) if old else {}
        if state is not None:
            encoded_state[state_key_of(spec)] = json.loads(encode_state(spec.target, state))
        with self._destination.errors(f"committing dataset {spec.target!r}"):
            files, rows, written = self._write_version()
            history: dict[str, JsonValue] = {
                "version": self._version,
                "current": self._current,
                "mode": str(spec.mode),
                "rows_written": written,
                "committed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "identity": spec.identity or None,
            }
            pointer = DatasetPointer(
                version=self._version,
                current=self._current,
                files=tuple(files),
                rows=rows,
                schema=self._plan.schema,
                state=encoded_state,
                previous_files=old.files if old else (),
                history=((*old.history, history) if old else (history,))[-HISTORY_KEPT:],
            )
            # Closed before publishing, so nothing that can fail runs between the pointer
            # write and the end of the load.
            self._stage.close()
            self._publishing = True
            try:
                self._destination.publish(
                    self._fs, spec.target, pointer, PointerBase(old, self._etag)
                )
            except WriteConflictError:
                self._publishing = False  # refused before anything landed
                raise
        self._done = True
        with contextlib.suppress(OSError, pa.ArrowException):
            self._destination.collect_garbage(self._fs, spec.target, pointer)
        return LoadOutcome(written, self._plan.changes)

    def _write_version(self) -> tuple[list[str], int, int]:
        """Finish this version's files: (pointer's file list, total rows, rows written)."""
        old, mode = self._pointer, self._spec.mode
        adopted = self._adopted
        if mode is LoadMode.REPLACE:
            # At least one file, so that the version still carries its schema.
            files = self._writer.close(at_least_one=not adopted)
            mine = [*adopted, *(f"{self._current}/{n}" for n in files)]
            return mine, self._staged, self._staged
        if mode is LoadMode.APPEND:
            mine = [*adopted, *(f"{self._current}/{n}" for n in self._writer.close())]
            if old is None:
                return mine, self._staged, self._staged
            if old.schema.equals(self._plan.schema):
                return [*old.files, *mine], old.rows + self._staged, self._staged
            # The schema changed: rewrite the old rows so every file has the new schema.
            rewriter = PartWriter(
                self._fs,
                f"{self._folder}/{self._current}/rewritten",
                self._plan.schema,
                self._destination.rows_per_file,
            )
            for batch in scan(self._fs, self._folder, old.files, self._plan.schema):
                rewriter.write(batch)
            rewritten = [f"{self._current}/rewritten/{n}" for n in rewriter.close()]
            return [*rewritten, *mine], old.rows + self._staged, self._staged
        return self._merge()

    def _merge(self) -> tuple[list[str], int, int]:
        old = self._pointer
        batches = None
        if old is not None and old.files:
            batches = scan(self._fs, self._folder, old.files, self._plan.schema)
        incoming = self._stage.merge(
            batches, self._writer.write, keep_incoming=self._spec.mode is LoadMode.MERGE
        )
        files = [f"{self._current}/{n}" for n in self._writer.close(at_least_one=True)]
        return files, self._writer.rows, incoming

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._writer.discard()
        self._stage.close()
        if self._publishing:
            # The pointer may use the folder now, or may yet (an upload whose response timed
            # out can still land): re-reading it cannot rule that out. The next load of the
            # dataset deletes the folder if its pointer does not use it.
            return
        with contextlib.suppress(OSError, pa.ArrowException):
            self._fs.delete_dir(f"{self._folder}/{self._current}")

    def _ensure_open(self) -> None:
        ensure_open(self._done, self._spec.target, "dataset")


class ParquetDestination:
    """Parquet datasets under `root`: a local folder, `file://…` or `s3://bucket/prefix`.

    `filesystem` overrides how the root is reached (the engine passes one built from the
    assumed role's session); otherwise S3 is reached with botocore's endpoint and region
    settings and the credentials of `credentials_provider` (called again whenever a load
    starts, so refreshed credentials are picked up) or botocore's default chain.
    """

    kind = "parquet"
    # LoadMode.DELETE and profile(live_only=...): what deletes: hard/soft need.
    supports_deletes = True

    def __init__(
        self,
        root: str,
        *,
        filesystem: pafs.FileSystem | None = None,
        credentials_provider: CredentialsProvider | None = None,
        rows_per_file: int = DEFAULT_ROWS_PER_FILE,
        identity: str = "",
        as_connection: bool = False,
    ) -> None:
        self.root = root
        self.identity = identity
        # S3 is written as the source connection's role (`credentials: connection`).
        self.as_connection = as_connection
        self.rows_per_file = rows_per_file
        self._filesystem = filesystem
        self._credentials_provider = credentials_provider
        self._s3_cache: tuple[ReadOnlyCredentials | None, pafs.S3FileSystem] | None = None
        scheme = urlsplit(root).scheme
        if scheme == "s3":
            self._base, self._is_s3 = root.removeprefix("s3://").rstrip("/"), True
        elif scheme in ("", "file"):
            local = root.removeprefix("file://")
            self._base, self._is_s3 = str(Path(local).absolute()).rstrip("/"), False
        else:
            raise DestinationError(
                f"Parquet root {root!r}: the scheme {scheme!r} is not supported",
                fix="use a local folder, file://… or s3://bucket/prefix",
            )

    def path(self, target: str, *parts: str) -> str:
        """`<root>/<target>/<parts…>`; the target must be one plain folder name."""
        if target in ("", ".", "..") or "/" in target or "\\" in target:
            raise DestinationError(
                f"Parquet root {self.root!r}: {target!r} cannot be a dataset folder name",
                fix="name the target without '/' or '\\', and not '', '.' or '..'",
            )
        return "/".join([self._base, target, *parts])

    def filesystem(self) -> pafs.FileSystem:
        if self._filesystem is not None:
            return self._filesystem
        if not self._is_s3:
            return pafs.LocalFileSystem()
        credentials = self._credentials_provider() if self._credentials_provider else None
        if self._s3_cache is None or self._s3_cache[0] != credentials:
            self._s3_cache = (credentials, s3_filesystem(credentials))
        return self._s3_cache[1]

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Translate file system and DuckDB errors, naming the root and the action."""
        try:
            yield
        except (OSError, pa.ArrowException, duckdb.Error) as exc:
            writer = f" (written as {self.identity})" if self.identity and self._is_s3 else ""
            raise DestinationError(
                f"Parquet root {self.root!r}{writer}: {action} failed: {exc}",
                fix="check the root exists and is writable with these credentials, and that "
                "the disk or bucket has room",
            ) from exc

    def check(self) -> None:
        fs = self.filesystem()
        probe = f"{self._base}/_shiftsync_probe_{new_run_token()}"
        with self.errors("writing a probe file"):
            if not self._is_s3:
                fs.create_dir(self._base, recursive=True)
            with fs.open_output_stream(probe) as out:
                out.write(b"shiftsync check\n")
            fs.delete_file(probe)

    def read_pointer(self, fs: pafs.FileSystem, target: str) -> DatasetPointer | None:
        where = self.path(target, POINTER_FILE)
        with self.errors(f"reading {where}"):
            if fs.get_file_info(where).type != pafs.FileType.File:
                return None
            with fs.open_input_stream(where) as source:
                text = source.read().decode()
        return DatasetPointer.from_json(text, where)

    def workers_reach_s3(self) -> bool:
        """Whether other processes may write this root's files (Ray workers, which assume the
        connection's role themselves): an S3 root written as that role, reached by the
        destination's own S3 settings."""
        return self._is_s3 and self.as_connection and self._filesystem is None

    def _conditional_s3(self) -> bool:
        """Whether pointers go through S3's API (conditional writes), not a given file system."""
        return self._is_s3 and self._filesystem is None

    def _s3_client(self) -> S3Client:
        credentials = self._credentials_provider() if self._credentials_provider else None
        return s3_client(credentials)

    def _s3_location(self, target: str) -> tuple[str, str]:
        bucket, _, key = self.path(target, POINTER_FILE).partition("/")
        return bucket, key

    def read_pointer_for_load(
        self, fs: pafs.FileSystem, target: str
    ) -> tuple[DatasetPointer | None, str | None]:
        """The pointer a load starts from, and on S3 its ETag (for the conditional write)."""
        if not self._conditional_s3():
            return self.read_pointer(fs, target), None
        bucket, key = self._s3_location(target)
        where = self.path(target, POINTER_FILE)
        client = self._s3_client()
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None, None
            raise self._s3_error(f"reading {where}", exc) from exc
        text = response["Body"].read().decode()
        return DatasetPointer.from_json(text, where), str(response["ETag"])

    def _s3_error(self, action: str, exc: Exception) -> DestinationError:
        return DestinationError(
            f"Parquet root {self.root!r}: {action} failed: {exc}",
            fix="check the bucket exists and is writable with these credentials",
        )

    def publish(
        self, fs: pafs.FileSystem, target: str, pointer: DatasetPointer, base: PointerBase
    ) -> None:
        """Write the pointer only over the version `base` (see parquet_publish.py)."""
        if self._conditional_s3():
            self.write_pointer(fs, target, pointer, base=base)
        elif not self._is_s3 and isinstance(fs, pafs.LocalFileSystem):
            with dataset_lock(self.path(target)):
                if not base.same_version(self.read_pointer(fs, target)):
                    raise conflict(self.root, target)
                self.write_pointer(fs, target, pointer)
        else:
            # A file system given by the caller offers no conditional write.
            self.write_pointer(fs, target, pointer)

    def write_pointer(
        self,
        fs: pafs.FileSystem,
        target: str,
        pointer: DatasetPointer,
        *,
        base: PointerBase | None = None,
    ) -> None:
        final = self.path(target, POINTER_FILE)
        data = pointer.to_json(target).encode()
        if base is not None and self._conditional_s3():
            bucket, key = self._s3_location(target)
            try:
                client = self._s3_client()
                if base.pointer is None:
                    client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
                else:
                    client.put_object(Bucket=bucket, Key=key, Body=data, IfMatch=base.etag or "")
            except ClientError as exc:
                error = exc.response.get("Error", {})
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if error.get("Code") in CONFLICT_CODES or status in (409, 412):
                    raise conflict(self.root, target) from exc
                raise OSError(f"writing {final}: {exc}") from exc
            return
        if self._is_s3 or not isinstance(fs, pafs.LocalFileSystem):
            # One PutObject replaces an object atomically: readers get the old or the new.
            with fs.open_output_stream(final) as out:
                out.write(data)
            return
        temporary = f"{final}.tmp-{new_run_token()}"
        with fs.open_output_stream(temporary) as out:
            out.write(data)
        fs.move(temporary, final)  # rename(2) replaces the old pointer in one step

    def collect_garbage(
        self, fs: pafs.FileSystem, target: str, pointer: DatasetPointer | None
    ) -> None:
        """Delete version folders no pointer uses (crashed loads, versions before the
        previous one) and leftover temporary pointers."""
        folder = self.path(target)
        local = not self._is_s3 and isinstance(fs, pafs.LocalFileSystem)
        if local and fs.get_file_info(folder).type != pafs.FileType.Directory:
            return
        with dataset_lock(folder) if local else contextlib.nullcontext():
            if local:
                pointer = self.read_pointer(fs, target)  # the current one, under the lock
            keep = folders_in_use(pointer)
            entries = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
            for entry in entries:
                if entry.type == pafs.FileType.Directory:
                    if collectable(entry.base_name, pointer, keep):
                        fs.delete_dir(entry.path)
                elif entry.base_name.startswith(f"{POINTER_FILE}.tmp-") and local:
                    fs.delete_file(entry.path)

    def table_schema(self, target: str) -> pa.Schema | None:
        pointer = self.read_pointer(self.filesystem(), target)
        return pointer.schema if pointer else None

    def table_identity(self, target: str) -> str | None:
        """The identity of the last load published into `target` (its pointer's history)."""
        pointer = self.read_pointer(self.filesystem(), target)
        if pointer is None or not pointer.history:
            return None
        identity = pointer.history[-1].get("identity")
        return identity if isinstance(identity, str) else None

    def read_state(self, state_key: str, target: str) -> JsonObject | None:
        # Only the target's own pointer: a state in another dataset's pointer describes that
        # dataset's rows, not this one's.
        pointer = self.read_pointer(self.filesystem(), target)
        if pointer is None or state_key not in pointer.state:
            return None
        return dict(pointer.state[state_key])

    def start_load(self, spec: LoadSpec) -> ParquetLoad:
        validate_spec(spec)
        fs = self.filesystem()
        pointer, etag = self.read_pointer_for_load(fs, spec.target)
        existing = pointer.schema if pointer else None
        plan = plan_schema(spec.target, existing, spec.schema, spec.schema_changes)
        with self.errors(f"removing old versions of dataset {spec.target!r}"):
            self.collect_garbage(fs, spec.target, pointer)
        return ParquetLoad(self, fs, spec, plan, pointer, etag)

    def _current(self, target: str) -> tuple[pafs.FileSystem, DatasetPointer]:
        fs = self.filesystem()
        pointer = self.read_pointer(fs, target)
        if pointer is None:
            raise missing_table(target, f"Parquet root {self.root!r}")
        return fs, pointer

    def profile(
        self, target: str, columns: Sequence[str], *, live_only: bool = False
    ) -> TableProfile:
        fs, pointer = self._current(target)
        selected = profile_columns(target, pointer.schema, columns)
        names = [name for name, _ in selected]
        deleted = live_only_filter(pointer.schema, live_only)
        relation = "dataset"
        if deleted is not None:
            names = [*names, deleted] if deleted not in names else names
            relation = f"(SELECT * FROM dataset WHERE {quote_identifier(deleted)} IS NULL)"
        schema = subschema(pointer.schema, names)
        reader = pa.RecordBatchReader.from_batches(
            schema, scan(fs, self.path(target), pointer.files, schema)
        )
        with self.errors(f"profiling dataset {target!r}"), duckdb.connect() as connection:
            connection.register("dataset", reader)
            return run_profile(connection, relation, selected)

    def read_table(self, target: str, columns: Sequence[str] | None = None) -> pa.Table:
        fs, pointer = self._current(target)
        schema = pointer.schema
        if columns is not None:
            schema = subschema(schema, profile_columns_names(target, schema, columns))
        with self.errors(f"reading dataset {target!r}"):
            batches = list(scan(fs, self.path(target), pointer.files, schema))
        return pa.Table.from_batches(batches, schema=schema)

    def close(self) -> None:
        self._s3_cache = None


__all__ = [
    "DEFAULT_ROWS_PER_FILE",
    "HISTORY_KEPT",
    "POINTER_FILE",
    "POINTER_FORMAT",
    "STORED_AS",
    "CredentialsProvider",
    "DatasetPointer",
    "ParquetDestination",
    "ParquetLoad",
    "decode_schema",
    "describe_schema",
    "duckdb_form_schema",
    "encode_schema",
    "folders_in_use",
    "from_duckdb_form",
    "from_storage",
    "s3_filesystem",
    "scan",
    "to_duckdb_form",
    "to_storage",
    "to_storage_schema",
    "version_folder",
]
