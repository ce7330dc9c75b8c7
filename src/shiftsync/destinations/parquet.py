"""The Parquet destination: versioned datasets in a local folder or under s3://bucket/prefix.

Layout of one table (a "dataset"):

    <root>/<target>/_shiftsync.json                     the pointer: current files, schema, state
    <root>/<target>/v000003-1a2b3c4d/part-00000.parquet  the files a version wrote

A load writes a new version folder that no reader looks at, then replaces the pointer in one
step (local: a temporary file renamed over it; S3: one PutObject). Readers list the pointer's
`files`, never the folders, so they see the old version or the new one, never a part. The
sync state lives in the same pointer, so data and state switch together. After the switch,
folders that neither the current nor the previous version uses are deleted; a crashed load's
folder is deleted by the next load of the table.

APPEND references the previous files and adds its own (a schema change rewrites the old rows
into the new version, so every file of a version has the pointer's schema). MERGE writes a
new version: the old rows whose key is not incoming, then the incoming rows, last per key.

The type contract's INTERVAL (duration[us]) is a native Parquet column. Parquet has no type
for Arrow's month_day_nano interval, so such a column is stored as its 16 raw bytes
(fixed_size_binary(16), field metadata `shiftsync.arrow_type`) and read back as intervals;
the pointer keeps the exact Arrow schema, field metadata included.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import botocore.session
import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from botocore.credentials import ReadOnlyCredentials

from shiftsync.destinations.base import (
    SEQUENCE_COLUMN,
    LoadMode,
    LoadOutcome,
    LoadSpec,
    TableProfile,
    check_merge_keys,
    conform_batch,
    decode_state,
    encode_state,
    missing_table,
    new_run_token,
    profile_columns,
    state_key_of,
    subschema,
    validate_spec,
    with_sequence,
)
from shiftsync.destinations.duckdb import quote_identifier, run_profile
from shiftsync.destinations.schema_change import SchemaPlan, plan_schema
from shiftsync.errors import DestinationError

CredentialsProvider = Callable[[], ReadOnlyCredentials]

POINTER_FILE: Final = "_shiftsync.json"
POINTER_FORMAT: Final = 1
HISTORY_KEPT: Final = 20
DEFAULT_ROWS_PER_FILE: Final = 1_000_000
STORED_AS: Final = b"shiftsync.arrow_type"
_INTERVAL: Final = pa.month_day_nano_interval()
_INTERVAL_BYTES: Final = pa.binary(16)
_VERSION: Final = re.compile(r"v(\d{6,})-[0-9a-f]{8}")
_AWS_HOSTS: Final = (".amazonaws.com", ".amazonaws.com.cn")


# --- storage form of a schema (pure) ---------------------------------------------------------


def to_storage_schema(schema: pa.Schema) -> pa.Schema:
    """The schema as written to Parquet: intervals become their raw 16 bytes."""
    fields = []
    for f in schema:
        if f.type == _INTERVAL:
            metadata = {**(f.metadata or {}), STORED_AS: b"month_day_nano_interval"}
            fields.append(pa.field(f.name, _INTERVAL_BYTES, f.nullable, metadata))
        else:
            fields.append(f)
    return pa.schema(fields, metadata=schema.metadata)


def to_storage(batch: pa.RecordBatch, storage_schema: pa.Schema) -> pa.RecordBatch:
    arrays = [
        column.view(_INTERVAL_BYTES) if column.type == _INTERVAL else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=storage_schema)


def from_storage(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A batch read from a file, in `schema` (intervals restored, missing columns NULL)."""
    arrays, names = [], []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        wanted = schema.field(name).type if name in schema.names else None
        if wanted == _INTERVAL and column.type == _INTERVAL_BYTES:
            column = column.view(_INTERVAL)
        arrays.append(column)
        names.append(name)
    restored = pa.RecordBatch.from_arrays(arrays, names=names)
    return conform_batch(restored, schema, missing_as_null=True)


def duckdb_form_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of `to_duckdb_form`'s batches."""
    fields = []
    for f in schema:
        if f.type == _INTERVAL:
            f = f.with_type(_INTERVAL_BYTES)
        elif pa.types.is_duration(f.type):
            f = f.with_type(pa.int64())
        fields.append(f)
    return pa.schema(fields)


def to_duckdb_form(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch DuckDB passes through exactly: DuckDB keeps intervals in microseconds and
    exports them in int64 nanoseconds, so month_day_nano travels as its 16 bytes and a
    duration as its int64 microseconds."""
    arrays = []
    for column in batch.columns:
        if column.type == _INTERVAL:
            column = column.view(_INTERVAL_BYTES)
        elif pa.types.is_duration(column.type):
            column = column.cast(pa.int64())
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=duckdb_form_schema(batch.schema))


def from_duckdb_form(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The inverse of `to_duckdb_form`, then cast to `schema`."""
    arrays = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        wanted = schema.field(name).type
        if wanted == _INTERVAL:
            column = column.cast(_INTERVAL_BYTES).view(_INTERVAL)
        elif pa.types.is_duration(wanted):
            column = column.cast(wanted)
        arrays.append(column)
    return conform_batch(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), schema)


def encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def decode_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def describe_schema(schema: pa.Schema) -> list[dict[str, str]]:
    """A readable listing of the columns, for people and tools that do not speak Arrow IPC."""
    described = []
    for f in schema:
        entry = {"name": f.name, "type": str(f.type)}
        redshift = (f.metadata or {}).get(b"shiftsync.redshift_type")
        if redshift is not None:
            entry["redshift_type"] = redshift.decode()
        described.append(entry)
    return described


# --- the pointer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetPointer:
    """The content of `<target>/_shiftsync.json`; file paths are relative to `<target>/`."""

    version: int
    current: str
    files: tuple[str, ...]
    rows: int
    schema: pa.Schema
    state: Mapping[str, Any] = field(default_factory=dict)
    previous_files: tuple[str, ...] = ()
    history: tuple[Mapping[str, Any], ...] = ()

    def to_json(self, target: str) -> str:
        document = {
            "format": POINTER_FORMAT,
            "target": target,
            "version": self.version,
            "current": self.current,
            "files": list(self.files),
            "rows": self.rows,
            "schema": describe_schema(self.schema),
            "arrow_schema": encode_schema(self.schema),
            "state": dict(self.state),
            "previous": {"files": list(self.previous_files)},
            "history": list(self.history),
        }
        return json.dumps(document, indent=1, sort_keys=False)

    @classmethod
    def from_json(cls, text: str, where: str) -> DatasetPointer:
        try:
            document = json.loads(text)
            if document.get("format") != POINTER_FORMAT:
                raise ValueError(f"unknown format {document.get('format')!r}")
            return cls(
                version=int(document["version"]),
                current=str(document["current"]),
                files=tuple(str(f) for f in document["files"]),
                rows=int(document["rows"]),
                schema=decode_schema(document["arrow_schema"]),
                state={
                    key: decode_state(where, json.dumps(value))
                    for key, value in document.get("state", {}).items()
                },
                previous_files=tuple(document.get("previous", {}).get("files", [])),
                history=tuple(document.get("history", [])),
            )
        except (ValueError, KeyError, TypeError, pa.ArrowException) as exc:
            raise DestinationError(
                f"{where} is not a shiftsync dataset pointer: {exc}",
                fix="restore the file from a backup, or delete the dataset folder so the next "
                "run writes it again",
            ) from exc


def version_folder(version: int, token: str) -> str:
    return f"v{version:06d}-{token}"


def folders_in_use(pointer: DatasetPointer | None) -> set[str]:
    if pointer is None:
        return set()
    return {path.split("/", 1)[0] for path in (*pointer.files, *pointer.previous_files)}


# --- S3 -----------------------------------------------------------------------------------


def s3_filesystem(
    credentials: ReadOnlyCredentials | None = None,
    session: botocore.session.Session | None = None,
) -> pafs.S3FileSystem:
    """An S3FileSystem configured as botocore would be.

    pyarrow does not read AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL or the config files' endpoint
    settings, so the endpoint and region come from a botocore client, the credentials from
    `credentials` (an assumed role's) or botocore's default chain.
    """
    session = session or botocore.session.get_session()
    client = session.create_client("s3")
    endpoint = urlsplit(client.meta.endpoint_url)
    options: dict[str, Any] = {"region": client.meta.region_name or "us-east-1"}
    if not (endpoint.hostname or "").endswith(_AWS_HOSTS):
        options.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme)
    if credentials is None:
        found = session.get_credentials()
        credentials = found.get_frozen_credentials() if found is not None else None
    if credentials is not None:
        options.update(
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            session_token=credentials.token,
        )
    return pafs.S3FileSystem(**options)


# --- files -----------------------------------------------------------------------------------


class _PartWriter:
    """Writes batches as `<folder>/part-NNNNN.parquet`, a new file every `rows_per_file`.

    On a remote file system each part is first written to a local temporary file and
    uploaded whole when it is complete: an abandoned load then leaves no half-written
    upload behind, and nothing uploads from a destructor.
    """

    def __init__(
        self, fs: pafs.FileSystem, folder: str, schema: pa.Schema, rows_per_file: int
    ) -> None:
        self._fs, self._folder = fs, folder
        self._local = fs.type_name == "local"
        self._storage_schema = to_storage_schema(schema)
        self._rows_per_file = rows_per_file
        self._spool: tempfile.TemporaryDirectory[str] | None = None
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._rows_in_file = 0
        self.files: list[str] = []
        self.rows = 0
        self.bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        offset = 0
        while offset < batch.num_rows:
            if self._writer is None or self._rows_in_file >= self._rows_per_file:
                self._open()
            take = min(batch.num_rows - offset, self._rows_per_file - self._rows_in_file)
            writer = self._writer
            assert writer is not None  # _open() made it
            writer.write_batch(to_storage(batch.slice(offset, take), self._storage_schema))
            self._rows_in_file += take
            self.rows += take
            offset += take

    def close(self, *, at_least_one: bool = False) -> list[str]:
        """Finish the open file; with `at_least_one`, write an empty file if none exists, so
        the version still carries its schema."""
        if at_least_one and not self.files:
            self._open()
        self._finish_file()
        self.discard()
        return self.files

    def discard(self) -> None:
        """Drop the open file without publishing it (a remote part is never uploaded)."""
        if self._writer is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                self._writer.close()
            self._writer = None
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None

    def _open(self) -> None:
        self._finish_file()
        name = f"part-{len(self.files):05d}.parquet"
        if self._local:
            self._fs.create_dir(self._folder, recursive=True)
            self._path = f"{self._folder}/{name}"
        else:
            if self._spool is None:
                self._spool = tempfile.TemporaryDirectory(prefix="shiftsync-parquet-")
            self._path = str(Path(self._spool.name) / name)
        filesystem = self._fs if self._local else pafs.LocalFileSystem()
        self._writer = pq.ParquetWriter(self._path, self._storage_schema, filesystem=filesystem)
        self._rows_in_file = 0
        self.files.append(name)

    def _finish_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        if self._local:
            self.bytes += self._fs.get_file_info(self._path).size or 0
            return
        self.bytes += Path(self._path).stat().st_size
        pafs.copy_files(
            self._path,
            f"{self._folder}/{Path(self._path).name}",
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=self._fs,
        )
        Path(self._path).unlink()


def scan(
    fs: pafs.FileSystem, folder: str, files: Sequence[str], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Stream the batches of `files` (relative to `folder`) in `schema`, reading only its
    columns."""
    for name in files:
        with fs.open_input_file(f"{folder}/{name}") as source:
            parquet = pq.ParquetFile(source)
            present = [c for c in schema.names if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(columns=present):
                yield from_storage(batch, schema)


# --- the destination -------------------------------------------------------------------------


class ParquetLoad:
    """One load into one dataset; made by `ParquetDestination.start_load`."""

    def __init__(
        self,
        destination: ParquetDestination,
        fs: pafs.FileSystem,
        spec: LoadSpec,
        plan: SchemaPlan,
        pointer: DatasetPointer | None,
    ) -> None:
        self._destination, self._fs, self._spec, self._plan = destination, fs, spec, plan
        self._pointer = pointer
        self._folder = destination.path(spec.target)
        self._version = (pointer.version if pointer else 0) + 1
        self._current = version_folder(self._version, new_run_token())
        self._write_schema = subschema(plan.schema, plan.write_columns)
        self._writer = _PartWriter(
            fs, f"{self._folder}/{self._current}", plan.schema, destination.rows_per_file
        )
        self._stage_dir: tempfile.TemporaryDirectory[str] | None = None
        self._stage: duckdb.DuckDBPyConnection | None = None
        self._staged = 0
        self._done = False

    def write(self, batch: pa.RecordBatch) -> None:
        self._ensure_open()
        if batch.num_rows == 0:
            return
        if self._spec.mode is LoadMode.MERGE:
            check_merge_keys(self._spec.target, batch, self._spec.primary_key)
        batch = conform_batch(batch, self._write_schema)
        batch = conform_batch(batch, self._plan.schema, missing_as_null=True)
        with self._destination.errors(f"writing dataset {self._spec.target!r}"):
            if self._spec.mode is LoadMode.MERGE:
                self._write_stage(with_sequence(batch, self._staged))
            else:
                self._writer.write(batch)
        self._staged += batch.num_rows

    def _write_stage(self, batch: pa.RecordBatch) -> None:
        # Merge needs every incoming row before it can write any: they wait in a local DuckDB
        # file, which spills to disk instead of holding the load in memory.
        if self._stage is None:
            self._stage_dir = tempfile.TemporaryDirectory(prefix="shiftsync-merge-")
            self._stage = duckdb.connect(str(Path(self._stage_dir.name) / "stage.duckdb"))
            self._stage.register("batch", to_duckdb_form(batch))
            self._stage.execute("CREATE TABLE stage AS SELECT * FROM batch")
        else:
            self._stage.register("batch", to_duckdb_form(batch))
            self._stage.execute("INSERT INTO stage SELECT * FROM batch")
        self._stage.unregister("batch")

    def commit(self, state: Mapping[str, Any] | None) -> LoadOutcome:
        self._ensure_open()
        spec, old = self._spec, self._pointer
        encoded_state = dict(old.state) if old else {}
        if state is not None:
            encoded_state[state_key_of(spec)] = json.loads(encode_state(spec.target, state))
        with self._destination.errors(f"committing dataset {spec.target!r}"):
            files, rows, written = self._write_version()
            history = {
                "version": self._version,
                "current": self._current,
                "mode": str(spec.mode),
                "rows_written": written,
                "committed_at": datetime.now(UTC).isoformat(timespec="seconds"),
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
            self._destination.write_pointer(self._fs, spec.target, pointer)
        self._close_stage()
        self._done = True
        with contextlib.suppress(OSError, pa.ArrowException):
            self._destination.collect_garbage(self._fs, spec.target, pointer)
        return LoadOutcome(written, self._plan.changes, self._writer.bytes)

    def _write_version(self) -> tuple[list[str], int, int]:
        """Finish this version's files: (pointer's file list, total rows, rows written)."""
        old, mode = self._pointer, self._spec.mode
        if mode is LoadMode.REPLACE:
            files = self._writer.close(at_least_one=True)
            return [f"{self._current}/{n}" for n in files], self._staged, self._staged
        if mode is LoadMode.APPEND:
            mine = [f"{self._current}/{n}" for n in self._writer.close()]
            if old is None:
                return mine, self._staged, self._staged
            if old.schema.equals(self._plan.schema):
                return [*old.files, *mine], old.rows + self._staged, self._staged
            # The schema changed: rewrite the old rows so every file has the new schema.
            rewriter = _PartWriter(
                self._fs,
                f"{self._folder}/{self._current}/rewritten",
                self._plan.schema,
                self._destination.rows_per_file,
            )
            for batch in scan(self._fs, self._folder, old.files, self._plan.schema):
                rewriter.write(batch)
            rewritten = [f"{self._current}/rewritten/{n}" for n in rewriter.close()]
            self._writer.bytes += rewriter.bytes
            return [*rewritten, *mine], old.rows + self._staged, self._staged
        return self._merge()

    def _merge(self) -> tuple[list[str], int, int]:
        old, keys = self._pointer, self._spec.primary_key
        columns = ", ".join(quote_identifier(c) for c in self._plan.schema.names)
        key_list = ", ".join(quote_identifier(k) for k in keys)
        if self._stage is None:  # nothing incoming: the new version is the old rows
            empty = [pa.nulls(0, f.type) for f in self._plan.schema]
            self._write_stage(
                with_sequence(pa.RecordBatch.from_arrays(empty, schema=self._plan.schema), 0)
            )
        stage = self._stage
        assert stage is not None
        stage.execute(
            f"CREATE TABLE latest AS SELECT {columns} FROM stage QUALIFY row_number() OVER "
            f"(PARTITION BY {key_list} ORDER BY {quote_identifier(SEQUENCE_COLUMN)} DESC) = 1"
        )
        (incoming,) = stage.execute("SELECT count(*) FROM latest").fetchall()[0]
        query = f"SELECT {columns} FROM latest"
        if old is not None and old.files:
            batches = scan(self._fs, self._folder, old.files, self._plan.schema)
            reader = pa.RecordBatchReader.from_batches(
                duckdb_form_schema(self._plan.schema), (to_duckdb_form(b) for b in batches)
            )
            stage.register("old", reader)
            query = (
                f"SELECT {columns} FROM old ANTI JOIN latest USING ({key_list}) UNION ALL " + query
            )
        for result in stage.sql(query).to_arrow_reader(64 * 1024):
            self._writer.write(from_duckdb_form(result, self._plan.schema))
        files = [f"{self._current}/{n}" for n in self._writer.close(at_least_one=True)]
        return files, self._writer.rows, int(incoming)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._writer.discard()
        self._close_stage()
        with contextlib.suppress(OSError, pa.ArrowException):
            self._fs.delete_dir(f"{self._folder}/{self._current}")

    def _close_stage(self) -> None:
        if self._stage is not None:
            self._stage.close()
            self._stage = None
        if self._stage_dir is not None:
            self._stage_dir.cleanup()
            self._stage_dir = None

    def _ensure_open(self) -> None:
        if self._done:
            raise DestinationError(
                f"the load of dataset {self._spec.target!r} is already committed or aborted",
                fix="start a new load",
            )


class ParquetDestination:
    """Parquet datasets under `root`: a local folder, `file://…` or `s3://bucket/prefix`.

    `filesystem` overrides how the root is reached (the engine passes one built from the
    assumed role's session); otherwise S3 is reached with botocore's endpoint and region
    settings and the credentials of `credentials_provider` (called again whenever a load
    starts, so refreshed credentials are picked up) or botocore's default chain.
    """

    kind = "parquet"

    def __init__(
        self,
        root: str,
        *,
        filesystem: pafs.FileSystem | None = None,
        credentials_provider: CredentialsProvider | None = None,
        rows_per_file: int = DEFAULT_ROWS_PER_FILE,
    ) -> None:
        self.root = root
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
            raise DestinationError(
                f"Parquet root {self.root!r}: {action} failed: {exc}",
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

    def write_pointer(self, fs: pafs.FileSystem, target: str, pointer: DatasetPointer) -> None:
        final = self.path(target, POINTER_FILE)
        data = pointer.to_json(target).encode()
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
        keep = folders_in_use(pointer)
        entries = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        for entry in entries:
            if entry.type == pafs.FileType.Directory and _VERSION.fullmatch(entry.base_name):
                if entry.base_name not in keep:
                    fs.delete_dir(entry.path)
            elif entry.base_name.startswith(f"{POINTER_FILE}.tmp-"):
                fs.delete_file(entry.path)

    def table_schema(self, target: str) -> pa.Schema | None:
        pointer = self.read_pointer(self.filesystem(), target)
        return pointer.schema if pointer else None

    def read_state(self, state_key: str) -> dict[str, Any] | None:
        fs = self.filesystem()
        with self.errors("listing the datasets"):
            entries = fs.get_file_info(pafs.FileSelector(self._base, allow_not_found=True))
        for entry in sorted(entries, key=lambda e: e.base_name):
            name = entry.base_name
            if entry.type != pafs.FileType.Directory or name.startswith(".") or "\\" in name:
                continue
            pointer = self.read_pointer(fs, name)
            if pointer is not None and state_key in pointer.state:
                return dict(pointer.state[state_key])
        return None

    def start_load(self, spec: LoadSpec) -> ParquetLoad:
        validate_spec(spec)
        fs = self.filesystem()
        pointer = self.read_pointer(fs, spec.target)
        existing = pointer.schema if pointer else None
        plan = plan_schema(spec.target, existing, spec.schema, spec.schema_changes)
        with self.errors(f"removing old versions of dataset {spec.target!r}"):
            self.collect_garbage(fs, spec.target, pointer)
        return ParquetLoad(self, fs, spec, plan, pointer)

    def _current(self, target: str) -> tuple[pafs.FileSystem, DatasetPointer]:
        fs = self.filesystem()
        pointer = self.read_pointer(fs, target)
        if pointer is None:
            raise missing_table(target, f"Parquet root {self.root!r}")
        return fs, pointer

    def profile(self, target: str, columns: Sequence[str]) -> TableProfile:
        fs, pointer = self._current(target)
        selected = profile_columns(target, pointer.schema, columns)
        schema = subschema(pointer.schema, [name for name, _ in selected])
        reader = pa.RecordBatchReader.from_batches(
            schema, scan(fs, self.path(target), pointer.files, schema)
        )
        with self.errors(f"profiling dataset {target!r}"), duckdb.connect() as connection:
            connection.register("dataset", reader)
            return run_profile(connection, "dataset", selected)

    def read_table(self, target: str) -> pa.Table:
        fs, pointer = self._current(target)
        with self.errors(f"reading dataset {target!r}"):
            batches = list(scan(fs, self.path(target), pointer.files, pointer.schema))
        return pa.Table.from_batches(batches, schema=pointer.schema)

    def close(self) -> None:
        self._s3_cache = None
