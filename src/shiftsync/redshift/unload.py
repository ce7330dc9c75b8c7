"""The UNLOAD reader: Parquet parts staged in S3, streamed back as record batches, then deleted.

Each read stages under its own prefix, `<unload.prefix><run_id>/<schema>.<table>/<read id>_`,
so that UNLOAD never meets an old file and cleanup never touches another read's files. The
manifest (`MANIFEST VERBOSE`) lists the parts with their byte length and row count; every part
is checked against both before its first batch is handed out, and the rows against the
manifest's total and the statement's. A few parts download in parallel while the consumer
works on the current one. Whatever happens (the end, an error, a closed generator, Ctrl-C), the
staged objects are deleted in a `finally` (DeleteObjects, 1,000 keys a call).

`find_staged` and `delete_keys` serve `shiftsync cleanup`, which removes what a crashed run
left behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Final

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from shiftsync.aws.session import AssumedRoleSession, error_code
from shiftsync.config import UnloadConfig
from shiftsync.errors import AccessError, ShiftsyncError, SourceError
from shiftsync.redshift.data_api import ACCESS_CODES, DataApi, ReadStats, is_retriable
from shiftsync.redshift.decode import normalize_parquet_batch
from shiftsync.redshift.retry import RetryPolicy
from shiftsync.redshift.sql import build_unload_sql
from shiftsync.redshift.types import Column

log = logging.getLogger("shiftsync.redshift")

MANIFEST_NAME: Final = "manifest"
DELETE_BATCH: Final = 1000
# Bounds each part, hence the memory a part in flight takes (Parquet rounds to 32 MB steps).
PART_MAX_FILE_SIZE_MB: Final = 64
PART_CONCURRENCY: Final = 3
BATCH_ROWS: Final = 65_536
DOWNLOAD_CHUNK: Final = 1024 * 1024
# A missing part may be S3 catching up; after this many tries it is gone.
MISSING_PART_ATTEMPTS: Final = 3
_SAFE_CHARS: Final = re.compile(r"[^A-Za-z0-9_-]")
_S3_URL: Final = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")
_S3_RETRIABLE: Final = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503", "500"}
)


_VANISHED_FIX: Final = (
    "make sure no lifecycle rule or `shiftsync cleanup` removes staged files younger than a "
    "day, then run again"
)


def _is_missing(error: ClientError) -> bool:
    return error_code(error) in ("NoSuchKey", "404")


class StagedObjectMissing(SourceError):
    """A part listed in the manifest is gone from S3 (the read may run the UNLOAD again)."""


class _BadPart(Exception):
    """A downloaded part does not match its manifest entry (retried, then a SourceError)."""


# ------------------------------------------------------------------ names (pure)


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by time and is unique: `20240131T120000Z-1a2b3c4d`."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def path_component(name: str) -> str:
    """A schema or table name as a safe S3 key part: letters, digits, `_` and `-`.

    Any other character becomes `_`, and then a short hash of the real name keeps two
    different names apart (`Odd Schema` → `Odd_Schema-1f0e…`).
    """
    safe = _SAFE_CHARS.sub("_", name)
    if safe == name and name:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{safe[:60]}-{digest}"


@dataclass(frozen=True)
class StagingLocation:
    """Where one read's UNLOAD writes: `s3://<bucket>/<name_prefix>…`."""

    bucket: str
    name_prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.name_prefix}"

    @property
    def manifest_key(self) -> str:
        # UNLOAD writes the manifest as <name-prefix>manifest.
        return self.name_prefix + MANIFEST_NAME


def staging_location(
    unload: UnloadConfig, run_id: str, schema: str, table: str, read_id: str | None = None
) -> StagingLocation:
    """`<unload.prefix><run_id>/<schema>.<table>/<read id>_` in the staging bucket."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", run_id):
        raise SourceError(
            f"run id {run_id!r} cannot be part of an S3 key",
            fix="use letters, digits, _ and - in a run id",
        )
    read = read_id or uuid.uuid4().hex[:12]
    folder = f"{unload.prefix}{run_id}/{path_component(schema)}.{path_component(table)}/"
    return StagingLocation(unload.bucket, f"{folder}{read}_")


# ------------------------------------------------------------------ manifest (pure)


@dataclass(frozen=True)
class ManifestEntry:
    url: str
    bucket: str
    key: str
    content_length: int | None
    record_count: int | None


@dataclass(frozen=True)
class Manifest:
    entries: tuple[ManifestEntry, ...]
    record_count: int | None
    content_length: int | None
    column_names: tuple[str, ...]


def _bad_manifest(table: str, where: str, problem: str) -> SourceError:
    return SourceError(
        f"table {table}: the UNLOAD manifest {where} is not usable: {problem}",
        fix="run again; if it repeats, the UNLOAD did not write a MANIFEST VERBOSE file",
    )


def _count(value: Any, table: str, where: str, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad_manifest(table, where, f"{what} is {value!r}, not a count")
    return value


def parse_manifest(
    data: bytes | str, *, table: str, location: StagingLocation | None = None
) -> Manifest:
    """The manifest UNLOAD wrote (`MANIFEST VERBOSE`); SourceError if it is malformed.

    With `location`, every part must lie under that read's prefix: shiftsync never reads
    (or deletes) an object it did not stage.
    """
    where = location.uri + MANIFEST_NAME if location else "file"
    try:
        document = json.loads(data)
    except ValueError as error:
        raise _bad_manifest(table, where, f"not JSON ({error})") from error
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise _bad_manifest(table, where, "no entries list")
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for number, item in enumerate(document["entries"]):
        url = item.get("url") if isinstance(item, dict) else None
        match = _S3_URL.match(url) if isinstance(url, str) else None
        if match is None:
            raise _bad_manifest(table, where, f"entry {number} has no s3:// url")
        if url in seen:
            raise _bad_manifest(table, where, f"entry {number} repeats {url}")
        seen.add(str(url))
        bucket, key = match.group("bucket"), match.group("key")
        if location is not None and (
            bucket != location.bucket or not key.startswith(location.name_prefix)
        ):
            raise _bad_manifest(table, where, f"entry {url} lies outside {location.uri}")
        meta = item.get("meta")
        meta = {} if meta is None else meta
        if not isinstance(meta, dict):
            raise _bad_manifest(table, where, f"entry {number} has a meta that is not an object")
        entries.append(
            ManifestEntry(
                url=str(url),
                bucket=bucket,
                key=key,
                content_length=_count(meta.get("content_length"), table, where, "content_length"),
                record_count=_count(meta.get("record_count"), table, where, "record_count"),
            )
        )
    total = document.get("meta")
    total = {} if total is None else total
    if not isinstance(total, dict):
        raise _bad_manifest(table, where, "meta is not an object")
    record_count = _count(total.get("record_count"), table, where, "record_count")
    counts = [entry.record_count for entry in entries]
    if record_count is not None and None not in counts and sum(counts) != record_count:  # type: ignore[arg-type]
        raise _bad_manifest(
            table,
            where,
            f"its parts hold {sum(counts)} rows but its total says {record_count}",  # type: ignore[arg-type]
        )
    elements = (document.get("schema") or {}).get("elements") or []
    names = tuple(
        str(element["name"])
        for element in elements
        if isinstance(element, dict) and "name" in element
    )
    return Manifest(
        entries=tuple(entries),
        record_count=record_count,
        content_length=_count(total.get("content_length"), table, where, "content_length"),
        column_names=names,
    )


def _announced_rows(manifest: Manifest) -> int | None:
    """The manifest's row total, or the sum of its parts' counts, or None if it has neither."""
    if manifest.record_count is not None:
        return manifest.record_count
    counts = [entry.record_count for entry in manifest.entries]
    if any(count is None for count in counts):
        return None
    return sum(count for count in counts if count is not None)


# ------------------------------------------------------------------ S3


def _s3_retriable(error: Exception) -> bool:
    if isinstance(error, _BadPart | IncompleteReadError):
        return True
    if isinstance(error, ClientError) and error_code(error) in _S3_RETRIABLE:
        return True
    return is_retriable(error)


def _s3_error(error: Exception, action: str, target: str, role_arn: str) -> ShiftsyncError:
    if isinstance(error, ClientError):
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        if code in ACCESS_CODES or code in ("AccessDenied", "403"):
            return AccessError(
                f"s3:{action} on {target} was refused: {code}: {message}",
                fix=f"the role {role_arn} needs s3:{action} on the staging bucket; "
                "`shiftsync policy` prints the policy",
            )
        return SourceError(
            f"s3:{action} on {target} failed: {code}: {message}",
            fix="run again; if it repeats, check the staging bucket",
        )
    return SourceError(
        f"s3:{action} on {target} failed: {error}",
        fix="check network access to S3 (or AWS_ENDPOINT_URL_S3) and run again",
    )


class StagingBucket:
    """S3 calls on the staging bucket, through the assumed role's (refreshing) credentials."""

    def __init__(self, session: AssumedRoleSession, retry: RetryPolicy) -> None:
        self.session = session
        self.retry = retry

    def run(self, fn: Callable[[], Any], action: str, target: str, stats: ReadStats) -> Any:
        def count(_retry: int, error: Exception, pause: float) -> None:
            stats.add(retries=1)
            log.info("s3:%s on %s failed (%s); retrying in %.2f s", action, target, error, pause)

        try:
            return self.retry.run(
                lambda: self.session.call(fn), retriable=_s3_retriable, on_retry=count
            )
        except (ClientError, BotoConnectionError, HTTPClientError, IncompleteReadError) as error:
            raise _s3_error(error, action, target, self.session.role_arn) from error

    def get(self, bucket: str, key: str, *, stats: ReadStats, missing_attempts: int = 1) -> bytes:
        """The object's bytes; a missing key is tried `missing_attempts` times in all."""
        s3 = self.session.client("s3")
        missing = 0

        def attempt() -> bytes:
            nonlocal missing
            try:
                response = s3.get_object(Bucket=bucket, Key=key)
            except ClientError as error:
                if _is_missing(error):
                    missing += 1
                    if missing < missing_attempts:
                        raise _BadPart(f"s3://{bucket}/{key} is missing") from error
                raise
            body = response["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        try:
            data: bytes = self.run(attempt, "GetObject", f"s3://{bucket}/{key}", stats)
        except _BadPart as error:
            raise SourceError(str(error), fix="run again") from error
        return data

    def list(self, bucket: str, prefix: str, *, stats: ReadStats) -> list[dict[str, Any]]:
        s3 = self.session.client("s3")

        def collect() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                found.extend(page.get("Contents") or [])
            return found

        listed: list[dict[str, Any]] = self.run(
            collect, "ListBucket", f"s3://{bucket}/{prefix}", stats
        )
        return listed

    def delete(self, bucket: str, keys: Sequence[str], *, stats: ReadStats) -> int:
        """Delete keys, 1,000 a call; the number deleted. Failed keys are logged."""
        s3 = self.session.client("s3")
        deleted = 0
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            request = {"Objects": [{"Key": key} for key in batch], "Quiet": True}

            def attempt(request: dict[str, Any] = request) -> dict[str, Any]:
                answer: dict[str, Any] = s3.delete_objects(Bucket=bucket, Delete=request)
                return answer

            answer = self.run(attempt, "DeleteObject", f"s3://{bucket}/{batch[0]}…", stats)
            errors = answer.get("Errors") or []
            for item in errors:
                log.warning(
                    "could not delete staged object s3://%s/%s: %s",
                    bucket,
                    item.get("Key"),
                    item.get("Message") or item.get("Code"),
                )
            deleted += len(batch) - len(errors)
        stats.add(staged_deleted=deleted)
        return deleted

    def delete_prefix(self, bucket: str, prefix: str, *, stats: ReadStats) -> int:
        keys = [str(item["Key"]) for item in self.list(bucket, prefix, stats=stats)]
        return self.delete(bucket, keys, stats=stats) if keys else 0


# ------------------------------------------------------------------ the reader


class UnloadReader:
    """Runs one UNLOAD and streams its parts; see the module docstring."""

    def __init__(
        self,
        api: DataApi,
        *,
        retry: RetryPolicy | None = None,
        part_concurrency: int = PART_CONCURRENCY,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.api = api
        self.retry = retry or api.retry
        self.bucket = StagingBucket(api.session, self.retry)
        self.part_concurrency = max(1, part_concurrency)
        self.batch_rows = batch_rows

    def unload_sql(self, select_sql: str, location: StagingLocation) -> str:
        connection = self.api.connection
        unload = connection.unload
        if unload is None:
            raise SourceError(
                "UNLOAD needs unload: in the connection",
                fix="add unload: {bucket: <staging bucket>} to the connection",
            )
        region = unload.region if unload.region and unload.region != connection.region else None
        return build_unload_sql(
            select_sql,
            location.uri,
            connection.unload_role_arn or connection.role_arn,
            kms_key_id=unload.kms_key_id,
            region=region,
            max_file_size_mb=PART_MAX_FILE_SIZE_MB,
        )

    def read(
        self,
        select_sql: str,
        columns: Sequence[Column],
        *,
        location: StagingLocation,
        table: str,
        stats: ReadStats,
        progress: Callable[[int, int], None] | None = None,
        timeout: float | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """UNLOAD the select to `location` and yield its rows; the staged files are deleted
        in every case."""
        sql = self.unload_sql(select_sql, location)
        what = f"table {table} (UNLOAD)"
        try:
            with self.api.running(sql, what=what, stats=stats, timeout=timeout) as status:
                unloaded = status.result_rows
            manifest = self._manifest(location, table, unloaded, stats)
            received = 0
            for batch in self._parts(manifest, columns, table, stats):
                received += batch.num_rows
                stats.add(rows=batch.num_rows)
                if progress is not None:
                    progress(batch.num_rows, batch.nbytes)
                yield batch
            announced = _announced_rows(manifest)
            if announced is not None and announced != received:
                raise SourceError(
                    f"table {table}: the UNLOAD manifest lists {announced} rows but {received} "
                    "were read from its parts",
                    fix="run again; shiftsync refuses an incomplete result",
                )
            if unloaded > 0 and unloaded != received:
                # ResultRows of an UNLOAD is not documented; the manifest is the authority.
                log.warning(
                    "table %s: the UNLOAD statement reported %d rows, its parts held %d",
                    table,
                    unloaded,
                    received,
                )
        finally:
            self._clean(location, table, stats)

    def _clean(self, location: StagingLocation, table: str, stats: ReadStats) -> None:
        try:
            self.bucket.delete_prefix(location.bucket, location.name_prefix, stats=stats)
        except SourceError as error:
            log.warning(
                "table %s: staged files under %s could not be deleted (%s); "
                "`shiftsync cleanup` removes them",
                table,
                location.uri,
                error,
            )

    def _manifest(
        self, location: StagingLocation, table: str, unloaded: int, stats: ReadStats
    ) -> Manifest:
        try:
            data = self.bucket.get(
                location.bucket,
                location.manifest_key,
                stats=stats,
                # An empty result may come without files: no point waiting for them.
                missing_attempts=1 if unloaded == 0 else MISSING_PART_ATTEMPTS,
            )
        except SourceError as error:
            cause = error.__cause__
            if not (isinstance(cause, ClientError) and _is_missing(cause)):
                raise
            if unloaded == 0:
                return Manifest((), 0, 0, ())
            raise StagedObjectMissing(
                f"table {table}: the UNLOAD manifest {location.uri}{MANIFEST_NAME} vanished "
                "before it was read",
                fix=_VANISHED_FIX,
            ) from error
        return parse_manifest(data, table=table, location=location)

    def _download(
        self, entry: ManifestEntry, table: str, stats: ReadStats, stop: threading.Event
    ) -> _Part:
        """One part, checked against its manifest entry; retried if it is short or broken.

        The body goes to an anonymous temporary file, not to memory: a part can be large, and
        only the row group being decoded needs to be in memory.
        """
        s3 = self.api.session.client("s3")
        missing = 0

        def attempt() -> _Part:
            nonlocal missing
            if stop.is_set():
                raise _Stopped
            try:
                response = s3.get_object(Bucket=entry.bucket, Key=entry.key)
            except ClientError as error:
                if _is_missing(error):
                    missing += 1
                    if missing < MISSING_PART_ATTEMPTS:
                        raise _BadPart(f"{entry.url} is missing") from error
                raise
            # Closed by _Part.close() once read, or below when the part is refused.
            spool = tempfile.TemporaryFile(prefix="shiftsync-part-")  # noqa: SIM115
            try:
                body = response["Body"]
                try:
                    for chunk in body.iter_chunks(DOWNLOAD_CHUNK):
                        if stop.is_set():
                            raise _Stopped
                        spool.write(chunk)
                finally:
                    body.close()
                size = spool.tell()
                if entry.content_length is not None and size != entry.content_length:
                    raise _BadPart(
                        f"{entry.url} has {size} bytes, the manifest says {entry.content_length}"
                    )
                spool.seek(0)
                try:
                    parquet = pq.ParquetFile(spool)
                except (pa.ArrowInvalid, OSError) as error:
                    raise _BadPart(
                        f"{entry.url} is not a readable Parquet file: {error}"
                    ) from error
                rows = parquet.metadata.num_rows
                if entry.record_count is not None and rows != entry.record_count:
                    raise _BadPart(
                        f"{entry.url} holds {rows} rows, the manifest says {entry.record_count}"
                    )
            except BaseException:
                spool.close()
                raise
            stats.add(parts=1, bytes_received=size)
            return _Part(parquet, spool)

        try:
            part: _Part = self.bucket.run(attempt, "GetObject", entry.url, stats)
            return part
        except _BadPart as error:
            raise SourceError(
                f"table {table}: staged part {error}",
                fix="run again; if it repeats, check that nothing else writes to the staging "
                "prefix",
            ) from error
        except SourceError as error:
            cause = error.__cause__
            if isinstance(cause, ClientError) and _is_missing(cause):
                raise StagedObjectMissing(
                    f"table {table}: staged part {entry.url} vanished before it was read",
                    fix=_VANISHED_FIX,
                ) from error
            raise

    def _parts(
        self, manifest: Manifest, columns: Sequence[Column], table: str, stats: ReadStats
    ) -> Iterator[pa.RecordBatch]:
        stop = threading.Event()
        pool = ThreadPoolExecutor(self.part_concurrency, thread_name_prefix="shiftsync-part")
        pending: deque[Future[_Part]] = deque()
        entries = iter(manifest.entries)
        try:
            for entry in entries:
                pending.append(pool.submit(self._download, entry, table, stats, stop))
                if len(pending) >= self.part_concurrency:
                    break
            while pending:
                part = pending.popleft().result()
                try:
                    following = next(entries, None)
                    if following is not None:
                        pending.append(pool.submit(self._download, following, table, stats, stop))
                    for batch in part.parquet.iter_batches(batch_size=self.batch_rows):
                        if batch.num_rows:
                            yield normalize_parquet_batch(batch, columns, table=table)
                finally:
                    part.close()
        finally:
            stop.set()
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            for future in pending:
                if future.done() and not future.cancelled() and future.exception() is None:
                    future.result().close()


class _Stopped(Exception):
    """The read ended; a download still queued gives up."""


@dataclass
class _Part:
    """A downloaded part: its Parquet reader over the temporary file that holds it."""

    parquet: pq.ParquetFile
    spool: IO[bytes]

    def close(self) -> None:
        self.spool.close()


# ------------------------------------------------------------------ cleanup


@dataclass(frozen=True)
class StagedObject:
    key: str
    size: int
    last_modified: datetime


def find_staged(
    bucket: StagingBucket,
    unload: UnloadConfig,
    *,
    older_than_hours: float,
    stats: ReadStats,
    now: datetime | None = None,
) -> list[StagedObject]:
    """Objects under the unload prefix older than the age (what a crashed run left)."""
    limit = (now or datetime.now(UTC)) - timedelta(hours=older_than_hours)
    found = []
    for item in bucket.list(unload.bucket, unload.prefix, stats=stats):
        modified = item.get("LastModified")
        if not isinstance(modified, datetime):
            continue
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        if modified <= limit:
            found.append(StagedObject(str(item["Key"]), int(item.get("Size", 0)), modified))
    return sorted(found, key=lambda item: item.key)


__all__ = [
    "Manifest",
    "ManifestEntry",
    "StagedObject",
    "StagedObjectMissing",
    "StagingBucket",
    "StagingLocation",
    "UnloadReader",
    "find_staged",
    "new_run_id",
    "parse_manifest",
    "path_component",
    "staging_location",
]
