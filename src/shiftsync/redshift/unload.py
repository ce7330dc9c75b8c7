"""The UNLOAD reader: Parquet parts staged in S3, streamed back as record batches, then deleted.

Each read stages under its own prefix, `<unload.prefix><run_id>/<schema>.<table>/<read id>_`,
so that UNLOAD never meets an old file and cleanup never touches another read's files. The
manifest (`MANIFEST VERBOSE`) lists the parts with their byte length and row count; every part
is checked against both before its first batch is handed out, and the rows against the
manifest's total and the statement's. A few parts download in parallel while the consumer
works on the current one. Whatever happens (the end, an error, a closed generator, Ctrl-C), the
staged objects are deleted in a `finally` (DeleteObjects, 1,000 keys a call). `read_table`
runs the UNLOAD once more if a staged object vanished before its first batch.

Staging names and the manifest are in unload_manifest.py; the S3 calls, and the cleanup of
what a crashed run left behind (`shiftsync cleanup`), in staging.py.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import IO, Final

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from shiftsync.errors import ConfigError, ShiftsyncError, SourceError
from shiftsync.redshift.catalog import TableInfo
from shiftsync.redshift.data_api import DataApi
from shiftsync.redshift.data_api_results import field_int, query_rows
from shiftsync.redshift.decode import normalize_parquet_batch
from shiftsync.redshift.retry import RetryPolicy
from shiftsync.redshift.sql import build_select_count_sql, build_select_sql, build_unload_sql
from shiftsync.redshift.staging import (
    DELETE_BATCH,
    BadObject,
    StagedObject,
    StagingBucket,
    find_staged,
    is_missing,
)
from shiftsync.redshift.stats import ReadStats
from shiftsync.redshift.types import Column
from shiftsync.redshift.unload_manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestEntry,
    StagingLocation,
    announced_rows,
    new_run_id,
    parse_manifest,
    path_component,
    staging_location,
)
from shiftsync.threads import ContextThreadPool

log = logging.getLogger("shiftsync.redshift")

# Bounds each part, hence the memory a part in flight takes (Parquet rounds to 32 MB steps).
PART_MAX_FILE_SIZE_MB: Final = 64
PART_CONCURRENCY: Final = 3
BATCH_ROWS: Final = 65_536
# And at most about this much data per batch: a batch's Arrow buffers, and the destination's
# room to take it (DuckDB's pool takes twice a batch), are what a read holds besides the part.
# 8 MB keeps BATCH_ROWS for `sales` (117 bytes a row); a wide row gets fewer rows.
BATCH_BYTES: Final = 8 * 1024 * 1024
# A part is read from its spool file through Python: unbuffered, each row group's column
# chunks came back as one Python bytes object each (a whole row group, several MB, on Arrow's
# reading threads), which glibc kept in its heaps: 30 to 60 MB above the rest during a read.
# Read in pieces of this size instead, one column's page stream at a time.
PART_READ_BUFFER: Final = 1024 * 1024
DOWNLOAD_CHUNK: Final = 1024 * 1024
# A missing part may be S3 catching up; after this many tries it is gone.
MISSING_PART_ATTEMPTS: Final = 3
_VANISHED_FIX: Final = (
    "make sure no lifecycle rule or `shiftsync cleanup` removes staged files younger than a "
    "day, then run again"
)


class StagedObjectMissing(SourceError):
    """A part listed in the manifest is gone from S3 (the read may run the UNLOAD again)."""


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
        try:
            manifest, unloaded = self.unload_to(
                select_sql, location, table=table, stats=stats, timeout=timeout
            )
            received = yield from self.stream(manifest, columns, table, stats, progress)
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

    def unload_to(
        self,
        select_sql: str,
        location: StagingLocation,
        *,
        table: str,
        stats: ReadStats,
        timeout: float | None = None,
    ) -> tuple[Manifest, int]:
        """Run the UNLOAD of the select to `location`; its manifest and the statement's row
        count. The staged files are left where they are (the caller deletes them)."""
        sql = self.unload_sql(select_sql, location)
        what = f"table {table} (UNLOAD)"
        self._prepare_s3_client()
        with self.api.running(sql, what=what, stats=stats, timeout=timeout) as status:
            unloaded = status.result_rows
        return self._manifest(select_sql, location, table, unloaded, stats), unloaded

    def staged_manifest(
        self, location: StagingLocation, table: str, stats: ReadStats
    ) -> Manifest | None:
        """The manifest an earlier UNLOAD left at `location`; None when it is gone."""
        try:
            data = self.bucket.get(
                location.bucket, location.manifest_key, stats=stats, missing_attempts=1
            )
        except SourceError as error:
            cause = error.__cause__
            if isinstance(cause, ClientError) and is_missing(cause):
                return None
            raise
        return parse_manifest(data, table=table, location=location)

    def stream(
        self,
        manifest: Manifest,
        columns: Sequence[Column],
        table: str,
        stats: ReadStats,
        progress: Callable[[int, int], None] | None = None,
    ) -> Generator[pa.RecordBatch, None, int]:
        """Yield the rows of a manifest's parts; returns how many (checked against it)."""
        received = 0
        for batch in self._parts(manifest, columns, table, stats):
            received += batch.num_rows
            stats.add(rows=batch.num_rows)
            if progress is not None:
                progress(batch.num_rows, batch.nbytes)
            yield batch
        announced = announced_rows(manifest)
        if announced is not None and announced != received:
            raise SourceError(
                f"table {table}: the UNLOAD manifest lists {announced} rows but {received} "
                "were read from its parts",
                fix="run again; shiftsync refuses an incomplete result",
            )
        return received

    def read_table(
        self,
        info: TableInfo,
        columns: Sequence[Column],
        *,
        where: str | None,
        run_id: str,
        stats: ReadStats,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """`read` the table's rows, staged under a new prefix of the run; if a staged object
        vanishes before the first batch is handed out, the UNLOAD runs once more."""
        unload = self.api.connection.unload
        if unload is None:
            raise ConfigError(
                f"table {info.ref}: UNLOAD needs unload: in the connection",
                fix="add unload: {bucket: <staging bucket>} to the connection in shiftsync.yaml",
            )
        select = build_select_sql(
            info.ref.schema, info.ref.name, columns, method="unload", where=where
        )
        again = False
        while True:
            location = staging_location(unload, run_id, info.ref.schema, info.ref.name)
            produced = False
            try:
                for batch in self.read(
                    select,
                    columns,
                    location=location,
                    table=str(info.ref),
                    stats=stats,
                    progress=progress,
                ):
                    produced = True
                    yield batch
                return
            except StagedObjectMissing as error:
                if produced or again:
                    raise
                again = True
                stats.note(f"{error.message}: UNLOAD ran again")
                log.warning("%s; running the UNLOAD again", error.message)

    def _prepare_s3_client(self) -> None:
        """Build the session's S3 client in the background while the UNLOAD runs: loading its
        service model takes tens of milliseconds, which the manifest's GET would otherwise wait
        for. A failure here is left for that GET to report."""

        def build() -> None:
            with contextlib.suppress(Exception):
                self.api.session.client("s3")

        threading.Thread(target=build, name="shiftsync-s3-client", daemon=True).start()

    def _clean(self, location: StagingLocation, table: str, stats: ReadStats) -> None:
        """Delete the read's staged files. Runs in `read`'s `finally`, so it never raises: a
        failure here must not replace the read's own result or error."""
        try:
            self.bucket.delete_prefix(location.bucket, location.name_prefix, stats=stats)
        except (ShiftsyncError, BotoCoreError, ClientError) as error:
            # AccessError when the role may not list the prefix (a refused DeleteObject comes
            # back per key and is logged by delete()); botocore's own errors when the client
            # cannot be built or reach S3.
            log.warning(
                "table %s: staged files under %s could not be deleted (%s); "
                "`shiftsync cleanup` removes them",
                table,
                location.uri,
                error,
            )

    def _manifest(
        self,
        select_sql: str,
        location: StagingLocation,
        table: str,
        unloaded: int,
        stats: ReadStats,
    ) -> Manifest:
        try:
            data = self.bucket.get(
                location.bucket,
                location.manifest_key,
                stats=stats,
                # A result of no rows may come without files: no point waiting for them.
                missing_attempts=1 if unloaded == 0 else MISSING_PART_ATTEMPTS,
            )
        except SourceError as error:
            cause = error.__cause__
            if not (isinstance(cause, ClientError) and is_missing(cause)):
                raise
            # ResultRows of an UNLOAD is not documented (the Data API reports 0 for COPY), so
            # 0 cannot prove the result empty: only a count of the same select can.
            if unloaded <= 0 and self._count(select_sql, table, stats) == 0:
                return Manifest((), 0, 0, ())
            raise StagedObjectMissing(
                f"table {table}: the UNLOAD manifest {location.uri}{MANIFEST_NAME} vanished "
                "before it was read",
                fix=_VANISHED_FIX,
            ) from error
        return parse_manifest(data, table=table, location=location)

    def _count(self, select_sql: str, table: str, stats: ReadStats) -> int:
        """The rows the UNLOAD's select returns now."""
        what = f"table {table} (UNLOAD row count)"
        rows = query_rows(self.api, build_select_count_sql(select_sql), what=what, stats=stats)
        try:
            return field_int(rows[0][0])
        except (IndexError, TypeError, ValueError) as error:
            raise SourceError(
                f"{what}: the count of the UNLOAD select came back as {rows!r}",
                fix="run again; if it repeats, report it with this message",
            ) from error

    def _download(
        self, entry: ManifestEntry, table: str, stats: ReadStats, stop: threading.Event
    ) -> _Part:
        """One part, checked against its manifest entry; retried if it is short or broken.

        The body goes to an anonymous temporary file, not to memory: a part can be large, and
        only the row group being decoded needs to be in memory.
        """
        s3 = self.bucket.s3()
        missing = 0

        def attempt() -> _Part:
            nonlocal missing
            if stop.is_set():
                raise _Stopped
            try:
                response = s3.get_object(Bucket=entry.bucket, Key=entry.key)
            except ClientError as error:
                if is_missing(error):
                    missing += 1
                    if missing < MISSING_PART_ATTEMPTS:
                        raise BadObject(f"{entry.url} is missing") from error
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
                    raise BadObject(
                        f"{entry.url} has {size} bytes, the manifest says {entry.content_length}"
                    )
                spool.seek(0)
                try:
                    parquet = open_part(spool)
                except (pa.ArrowInvalid, OSError) as error:
                    raise BadObject(
                        f"{entry.url} is not a readable Parquet file: {error}"
                    ) from error
                rows = parquet.metadata.num_rows
                if entry.record_count is not None and rows != entry.record_count:
                    raise BadObject(
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
        except BadObject as error:
            raise SourceError(
                f"table {table}: staged part {error}",
                fix="run again; if it repeats, check that nothing else writes to the staging "
                "prefix",
            ) from error
        except SourceError as error:
            cause = error.__cause__
            if isinstance(cause, ClientError) and is_missing(cause):
                raise StagedObjectMissing(
                    f"table {table}: staged part {entry.url} vanished before it was read",
                    fix=_VANISHED_FIX,
                ) from error
            raise

    def _parts(
        self, manifest: Manifest, columns: Sequence[Column], table: str, stats: ReadStats
    ) -> Iterator[pa.RecordBatch]:
        stop = threading.Event()
        pool = ContextThreadPool(self.part_concurrency, thread_name_prefix="shiftsync-part")
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
                    rows = batch_rows_for(part.parquet.metadata, self.batch_rows, BATCH_BYTES)
                    for batch in part.parquet.iter_batches(batch_size=rows):
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


def batch_rows_for(metadata: pq.FileMetaData, most_rows: int, most_bytes: int) -> int:
    """Rows per batch of a part: `most_rows`, fewer when its rows are wide enough that they
    would pass `most_bytes` (sized by the part's uncompressed column data per row)."""
    if metadata.num_rows <= 0:
        return most_rows
    data = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    per_row = max(1.0, data / metadata.num_rows)
    return max(1024, min(most_rows, int(most_bytes / per_row)))


def open_part(spool: IO[bytes]) -> pq.ParquetFile:
    """A Parquet reader over a downloaded part that reads it PART_READ_BUFFER at a time."""
    return pq.ParquetFile(spool, buffer_size=PART_READ_BUFFER, pre_buffer=False)


class _Stopped(Exception):
    """The read ended; a download still queued gives up."""


@dataclass
class _Part:
    """A downloaded part: its Parquet reader over the temporary file that holds it."""

    parquet: pq.ParquetFile
    spool: IO[bytes]

    def close(self) -> None:
        self.spool.close()


__all__ = [
    "BATCH_BYTES",
    "BATCH_ROWS",
    "DELETE_BATCH",
    "DOWNLOAD_CHUNK",
    "MANIFEST_NAME",
    "MISSING_PART_ATTEMPTS",
    "PART_CONCURRENCY",
    "PART_MAX_FILE_SIZE_MB",
    "PART_READ_BUFFER",
    "Manifest",
    "ManifestEntry",
    "StagedObject",
    "StagedObjectMissing",
    "StagingBucket",
    "StagingLocation",
    "UnloadReader",
    "batch_rows_for",
    "find_staged",
    "new_run_id",
    "open_part",
    "parse_manifest",
    "path_component",
    "staging_location",
]
