"""Under Ray, the workers write a file destination's data files; the driver commits once.

A table whose load only adds files offers a sink (a `FileSink`, destinations/file_sink.py):
Parquet for a full refresh or an append that keeps the schema (`ParquetLoad.file_sink`),
Iceberg and Delta for a replace or an append without a schema change (`IcebergLoad.file_sink`,
iceberg/sink.py; `DeltaLoad.file_sink`, delta/sink.py). The table is read and written by its
tasks: each task (the table, or one key range of a big table) shapes its batches as the driver
would (engine/batch_shape.py) and writes them through a writer of its own (named after the
task), with the destination's own conform rules and file writer, and sends back only what the
commit needs (paths, rows, sizes; Iceberg: pyiceberg's data file entries; Delta: each file's
statistics). The driver checks every file is there as written, then commits once (Parquet: the
pointer with the cursor; Iceberg: one transaction, Delta: one log entry, with the same
properties as a driver-written load's). Nothing is visible before that commit: a failed task
fails the table, its writer deletes its files, and the load's abort deletes what every writer
left (Parquet: the version folder; Iceberg and Delta: the data files named with the load's
token). A killed driver's Parquet folder is deleted by the next load of the dataset; a killed
driver's Iceberg or Delta files stay as unreferenced files (orphans, which no reader sees).

In S3 the workers write only where the destination writes as the source connection's role
(`credentials: connection`, the default): each worker has its own session of that role, and
no credential travels with a task. Merge and delete loads, an append that changes the schema,
S3 written as another identity, tables with hashed columns (the salt stays on the driver) and
the single-writer destinations (DuckDB, PostgreSQL) keep the driver-fed path: batches stream
to the driver, which writes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict, runtime_checkable

import pyarrow as pa
from botocore.credentials import ReadOnlyCredentials

from shiftsync.destinations.file_sink import FileSink, WrittenFile
from shiftsync.destinations.s3fs import s3_filesystem
from shiftsync.errors import ShiftsyncError

if TYPE_CHECKING:
    from shiftsync.config import Method
    from shiftsync.redshift.catalog import TableInfo
    from shiftsync.redshift.ranged import RangeCheckpoint

Shape = Callable[[pa.RecordBatch], pa.RecordBatch]


class FilesReport(TypedDict):
    """What a task hands back once its files are written: the files, and who wrote them."""

    writer: str
    node: str
    pid: int
    files: list[WrittenFile]


@runtime_checkable
class TakesFiles(Protocol):
    """A load whose data files other processes may write (ParquetLoad, IcebergLoad, DeltaLoad)."""

    def file_sink(self) -> FileSink | None: ...

    def add_files(self, files: Sequence[WrittenFile]) -> None: ...


def who_writes(
    *, on_cluster: bool, sink: FileSink | None, hashed: bool
) -> Literal["workers", "driver"]:
    """Whether a table's files are written by the cluster's workers or fed to the driver:
    workers only on a cluster, for a load that offers a sink, and without hashed columns."""
    return "workers" if on_cluster and sink is not None and not hashed else "driver"


def writer_name(index: int) -> str:
    """The folder of a table's `index`th task inside the version folder."""
    return f"w{index:04d}"


def files_record(reports: Sequence[FilesReport]) -> list[WrittenFile]:
    """The files of one commit, in the tasks' order; a path reported twice is refused (two
    tasks wrote one file: the version would not be what the tasks read)."""
    files: list[WrittenFile] = []
    seen: set[str] = set()
    for report in sorted(reports, key=lambda r: r["writer"]):
        for file in report["files"]:
            if file.path in seen:
                raise ShiftsyncError(
                    f"two Ray tasks reported the data file {file.path!r}",
                    fix="this is a bug in shiftsync: report it",
                )
            seen.add(file.path)
            files.append(file)
    return files


def write_parts(
    batches: Iterator[pa.RecordBatch],
    sink: FileSink,
    shape: Shape,
    name: str,
    node: str,
    credentials: Callable[[], ReadOnlyCredentials],
) -> Iterator[tuple[Literal["written"], tuple[int, int]] | tuple[Literal["files"], FilesReport]]:
    """Runs in the worker: each batch shaped and written, ("written", (rows, bytes read)) for
    the driver's progress; then ("files", report). A failure (or a cancel) drops the files.
    A sink in S3 is written with `credentials` (the worker's own session of the connection's
    role, which the destination writes as)."""
    fs = s3_filesystem(credentials()) if sink.in_s3 else None
    writer = sink.writer(name, fs)
    try:
        for batch in batches:
            writer.write(shape(batch))
            yield "written", (batch.num_rows, batch.nbytes)
        files = writer.close()
    except BaseException:
        writer.discard()
        raise
    report: FilesReport = {"writer": name, "node": node, "pid": os.getpid(), "files": files}
    yield "files", report


def write_on_cluster(
    source: object,
    load: object,
    shape: Shape,
    info: TableInfo,
    *,
    hashed: bool,
    columns: Sequence[str],
    where: str | None,
    method: Method,
    progress: Callable[[int, int], None] | None,
    checkpoint: RangeCheckpoint | None,
) -> list[WrittenFile] | None:
    """The table read and written by the cluster's tasks and its files added to `load`; None
    (nothing done) when the driver is to be fed instead (`who_writes`)."""
    from shiftsync.executors.ray_source import RaySource

    if not isinstance(source, RaySource) or not isinstance(load, TakesFiles):
        return None
    sink = load.file_sink()
    if sink is None or who_writes(on_cluster=True, sink=sink, hashed=hashed) == "driver":
        return None
    reports = source.write_files(
        info,
        sink,
        shape,
        columns=columns,
        where=where,
        method=method,
        progress=progress,
        checkpoint=checkpoint,
    )
    files = files_record(reports)
    load.add_files(files)
    return files


__all__ = [
    "FilesReport",
    "Shape",
    "TakesFiles",
    "files_record",
    "who_writes",
    "write_on_cluster",
    "write_parts",
    "writer_name",
]
