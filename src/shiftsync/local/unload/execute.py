"""The stand-in's UNLOAD: stream a query's rows out of PostgreSQL into S3 objects, as Redshift does.

Rows leave PostgreSQL through `COPY (…) TO STDOUT (FORMAT csv)` on the statement's own connection
(so the query runs with the IAMR user's privileges), read straight from libpq without per-row
Python objects beyond the row's bytes, and are dealt to slices in blocks of rows. The files are
written by unload/files.py, each to a local temporary file first and then into moto's S3, so
memory stays flat whatever the size.
"""

from __future__ import annotations

import json
import logging
import select
import tempfile
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import psycopg
import pyarrow as pa
from psycopg import pq

from shiftsync.local.data_api.statements import DataApiEngine, Statement, StatementFailure
from shiftsync.local.unload.access import S3Target, assume_role_chain
from shiftsync.local.unload.files import CsvFiles, ParquetFiles, Part, Publish, UnloadFiles
from shiftsync.local.unload.grammar import (
    MIB,
    MIN_MAX_FILE_BYTES,
    UnloadCommand,
    UnloadError,
    parse_unload,
)
from shiftsync.local.unload.output import (
    ColumnPlan,
    WrittenFile,
    build_manifest,
    copy_sql,
    data_key,
    manifest_key,
    plan_columns,
)

log = logging.getLogger("shiftsync.local")

_NOT_EMPTY: Final = (
    "ERROR: Specified unload destination on S3 is not empty. Consider using a different "
    "bucket / prefix, manually removing the target files in S3, or using the ALLOWOVERWRITE "
    "option."
)
_QUERY_CANCELED: Final = b"57014"


@dataclass
class UnloadSettings:
    """How the stand-in's Redshift is shaped; mutable so tests can lower the MAXFILESIZE floor."""

    region: str
    account_id: str
    slices: int = 2
    # Rows go to slices round-robin in blocks of this many rows.
    block_rows: int = 1000
    # Redshift's floor on MAXFILESIZE; lower it only to test file splitting on small tables.
    min_max_file_bytes: int = MIN_MAX_FILE_BYTES
    # A Parquet row group holds at most this much CSV text. The reader keeps one such buffer
    # per slice and the writer at most two more, so memory is bounded by a few times this.
    row_group_bytes: int = 8 * MIB
    temp_dir: str | None = None


class UnloadExecutor:
    """The engine's `unload_handler`: (engine, connection, statement, sql) → rows unloaded."""

    def __init__(self, settings: UnloadSettings) -> None:
        self.settings = settings

    def __call__(
        self, engine: DataApiEngine, conn: psycopg.Connection[Any], statement: Statement, sql: str
    ) -> int:
        try:
            return self._unload(engine, conn, statement, sql)
        except UnloadError as error:
            raise StatementFailure(str(error)) from error

    def _unload(
        self, engine: DataApiEngine, conn: psycopg.Connection[Any], statement: Statement, sql: str
    ) -> int:
        settings = self.settings
        command = parse_unload(sql, min_max_file_bytes=settings.min_max_file_bytes)
        # The query is a string literal of the UNLOAD, so the statement's folding missed it.
        command = replace(command, query=engine.fold_identifiers(command.query))
        if command.default_role:
            raise UnloadError(
                "ERROR: IAM_ROLE default: no default IAM role is associated with the stand-in's "
                "namespace; name the role: IAM_ROLE 'arn:aws:iam::<account>:role/<name>'"
            )
        db_user_arn = (
            f"arn:aws:redshift:{settings.region}:{settings.account_id}:dbuser:"
            f"{statement.workgroup}/{statement.db_user}"
        )
        role = assume_role_chain(command.iam_roles, db_user_arn)
        target = S3Target(command.bucket, role, command.region or settings.region)
        columns = engine._describe(conn, command.query)
        if not columns:
            raise UnloadError("ERROR: UNLOAD's query must be a SELECT that returns columns")
        plans = plan_columns(columns, command.format)
        target.check("s3:PutObject", data_key(command, 0, 0))
        if command.manifest:
            target.check("s3:PutObject", manifest_key(command))
        _prepare_prefix(command, target)
        written: list[WrittenFile] = []

        def publish(part: Part) -> None:
            target.check("s3:PutObject", part.key)
            size = target.put_file(part.key, part.path, command.kms_key_id)
            part.path.unlink()
            written.append(WrittenFile(part.key, size, part.rows))

        try:
            with tempfile.TemporaryDirectory(
                prefix="shiftsync-unload-", dir=settings.temp_dir
            ) as folder:
                rows = self._write(conn, statement, command, plans, Path(folder), publish)
            written.sort(key=lambda f: f.key)
            if command.manifest:
                document = build_manifest(
                    command.bucket, written, columns, verbose=command.manifest_verbose
                )
                body = json.dumps(document, indent=2).encode() + b"\n"
                target.put_bytes(manifest_key(command), body, command.kms_key_id)
        except BaseException:
            for done in list(written):  # leave no half an UNLOAD behind
                try:
                    target.delete(done.key)
                except Exception:  # best effort: the statement's own error matters more
                    log.exception("could not remove %s after a failed UNLOAD", done.key)
            raise
        return rows

    def _write(
        self,
        conn: psycopg.Connection[Any],
        statement: Statement,
        command: UnloadCommand,
        plans: Sequence[ColumnPlan],
        folder: Path,
        publish: Publish,
    ) -> int:
        settings = self.settings
        options = {"slices": settings.slices, "row_group_bytes": settings.row_group_bytes}
        slices = settings.slices if command.parallel else 1
        copy_command = copy_sql(command.query, plans, command).encode()
        files: UnloadFiles
        if command.format == "PARQUET":
            files = ParquetFiles(command, plans, folder, publish, **options)
        else:
            files = CsvFiles(command, plans, folder, publish, **options)
        parquet = isinstance(files, ParquetFiles)
        try:
            blocks = _copy_blocks(
                conn, copy_command, settings.block_rows, statement, row_ends=not parquet
            )
            for index, (text, ends, count) in enumerate(blocks):
                files.add_block(index % slices, text, count, ends)
            files.finish()
        finally:
            files.close()
            # pyarrow keeps freed buffers for reuse; give them back between UNLOADs.
            pa.default_memory_pool().release_unused()
        return files.rows


def _prepare_prefix(command: UnloadCommand, target: S3Target) -> None:
    existing = target.keys_under(command.prefix)
    if not existing or command.allow_overwrite:
        return
    if not command.clean_path:
        raise UnloadError(_NOT_EMPTY)
    for key in existing:
        target.check("s3:DeleteObject", key)
    for key in existing:
        target.delete(key)


def _copy_blocks(
    conn: psycopg.Connection[Any],
    command: bytes,
    block_rows: int,
    statement: Statement,
    *,
    row_ends: bool,
) -> Iterator[tuple[bytearray, array[int], int]]:
    """Run the COPY and yield its rows in blocks: (their text, where each row ends, how many).

    Row ends are kept only when asked (CSV files are cut between rows); they cost little, as
    an array of machine integers.

    libpq hands over one row per call; going to it directly (non-blocking, waiting on the
    socket only when its buffer is empty) avoids psycopg's per-row generator machinery.
    """
    pgconn = conn.pgconn
    started = pgconn.exec_(command)
    if started.status != pq.ExecStatus.COPY_OUT:
        _raise_for(started)
    get, socket_fd = pgconn.get_copy_data, pgconn.socket
    complete = False
    try:
        text, ends, count = bytearray(), array("q"), 0
        while True:
            size, row = get(1)
            if size > 0:
                text += row
                if row_ends:
                    ends.append(len(text))
                count += 1
                if count == block_rows:
                    yield text, ends, count
                    text, ends, count = bytearray(), array("q"), 0
                    if statement.cancel_requested:
                        raise psycopg.errors.QueryCanceled(
                            "canceling statement due to user request"
                        )
            elif size == 0:  # nothing buffered: wait for the server without holding the GIL
                select.select([socket_fd], [], [], 1.0)
                pgconn.consume_input()
            else:
                break
        outcome = pgconn.get_result()
        while pgconn.get_result() is not None:
            pass
        complete = True
        if outcome is None or outcome.status != pq.ExecStatus.COMMAND_OK:
            _raise_for(outcome)
        if count:
            yield text, ends, count
    finally:
        if not complete:
            _abandon(conn)


def _raise_for(result: pq.abc.PGresult | None) -> None:
    if result is None:
        raise StatementFailure("ERROR: the COPY behind UNLOAD ended without a result")
    primary = result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)
    message = primary.decode(errors="replace") if primary else "unknown error"
    if result.error_field(pq.DiagnosticField.SQLSTATE) == _QUERY_CANCELED:
        raise psycopg.errors.QueryCanceled(message)
    raise StatementFailure(f"ERROR: {message}")


def _abandon(conn: psycopg.Connection[Any]) -> None:
    """Stop a COPY that is still sending (the UNLOAD failed) and leave the connection idle."""
    pgconn = conn.pgconn
    try:
        conn.cancel_safe()
        while (size := pgconn.get_copy_data(1)[0]) >= 0:
            if size == 0:
                select.select([pgconn.socket], [], [], 1.0)
                pgconn.consume_input()
        while pgconn.get_result() is not None:
            pass
    except psycopg.Error:
        log.debug("could not drain the abandoned COPY; the connection is closed with the statement")
