"""Which loads the Ray workers write, and the commit record built from the tasks' reports."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from shiftsync.destinations.base import LoadMode, LoadSpec
from shiftsync.destinations.file_sink import WrittenFile
from shiftsync.destinations.parquet import ParquetDestination
from shiftsync.destinations.parquet_files import PartSink
from shiftsync.destinations.parquet_layout import adds_files_only
from shiftsync.errors import ShiftsyncError
from shiftsync.executors.ray_files import FilesReport, files_record, who_writes, writer_name

SCHEMA = pa.schema([pa.field("id", pa.int64())])
WIDER = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
SINK = PartSink(
    "/lake/t", "v000002-0a1b2c3d", LoadSpec("t", SCHEMA, LoadMode.REPLACE), SCHEMA, SCHEMA, 10
)


@pytest.mark.parametrize(
    ("mode", "existing", "schema", "expected"),
    [
        (LoadMode.REPLACE, None, SCHEMA, True),
        (LoadMode.REPLACE, SCHEMA, WIDER, True),  # a full refresh writes every row anew
        (LoadMode.APPEND, None, SCHEMA, True),
        (LoadMode.APPEND, SCHEMA, SCHEMA, True),
        (LoadMode.APPEND, SCHEMA, WIDER, False),  # the old rows are rewritten in the new schema
        (LoadMode.MERGE, None, SCHEMA, False),
        (LoadMode.MERGE, SCHEMA, SCHEMA, False),
        (LoadMode.DELETE, SCHEMA, SCHEMA, False),
    ],
)
def test_only_loads_that_only_add_files_can_take_files_written_elsewhere(
    mode: LoadMode, existing: pa.Schema | None, schema: pa.Schema, expected: bool
) -> None:
    assert adds_files_only(mode, existing, schema) is expected


@pytest.mark.parametrize(
    ("on_cluster", "sink", "hashed", "expected"),
    [
        (True, SINK, False, "workers"),
        (True, SINK, True, "driver"),  # the salt stays on the driver
        (True, None, False, "driver"),  # DuckDB, PostgreSQL, a merge, an S3 root
        (False, SINK, False, "driver"),  # in one process the driver writes anyway
        (False, None, True, "driver"),
    ],
)
def test_who_writes_a_tables_files(
    on_cluster: bool, sink: PartSink | None, hashed: bool, expected: str
) -> None:
    assert who_writes(on_cluster=on_cluster, sink=sink, hashed=hashed) == expected


def report(writer: str, *paths: str, node: str = "n1") -> FilesReport:
    files = [WrittenFile(path, rows=3, size=100) for path in paths]
    return {"writer": writer, "node": node, "pid": 7, "files": files}


def test_the_commit_record_lists_every_tasks_files_in_the_tasks_order() -> None:
    reports = [
        report(writer_name(2), "v1/w0002/part-00000.parquet"),
        report(writer_name(0), "v1/w0000/part-00000.parquet", "v1/w0000/part-00001.parquet"),
        report(writer_name(1)),  # a range without rows writes no file
    ]
    files = files_record(reports)
    assert [f.path for f in files] == [
        "v1/w0000/part-00000.parquet",
        "v1/w0000/part-00001.parquet",
        "v1/w0002/part-00000.parquet",
    ]
    assert sum(f.rows for f in files) == 9


def test_the_commit_record_is_empty_when_no_task_wrote_a_file() -> None:
    assert files_record([report(writer_name(0)), report(writer_name(1))]) == []


def test_a_file_two_tasks_report_is_refused() -> None:
    twice = "v1/w0000/part-00000.parquet"
    with pytest.raises(ShiftsyncError, match="two Ray tasks reported the data file"):
        files_record([report(writer_name(0), twice), report(writer_name(1), twice)])


def test_writer_folders_sort_in_task_order() -> None:
    names = [writer_name(i) for i in (0, 1, 9, 10, 999)]
    assert names == sorted(names)
    assert writer_name(3) == "w0003"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_a_part_folder_must_be_one_plain_name(name: str) -> None:
    with pytest.raises(ValueError, match="is not a writer name"):
        SINK.writer(name)


@pytest.mark.parametrize(
    ("root", "as_connection", "given_filesystem", "expected"),
    [
        ("s3://lake/prefix", True, False, True),  # workers assume the connection's role too
        ("s3://lake/prefix", False, False, False),  # `credentials: default` or a profile
        ("s3://lake/prefix", True, True, False),  # a file system the caller built
        ("/lake", True, False, False),  # local: a sink without S3
    ],
)
def test_workers_reach_s3_only_as_the_connections_role(
    root: str, as_connection: bool, given_filesystem: bool, expected: bool
) -> None:
    filesystem = pafs.LocalFileSystem() if given_filesystem else None
    destination = ParquetDestination(root, filesystem=filesystem, as_connection=as_connection)
    assert destination.workers_reach_s3() is expected


def test_a_sink_in_s3_is_written_only_with_the_writers_own_file_system() -> None:
    in_s3 = PartSink("lake/t", "v000002-0a1b2c3d", SINK.spec, SCHEMA, SCHEMA, 10, in_s3=True)
    with pytest.raises(ValueError, match="needs the writer's S3 file system"):
        in_s3.writer("w0000")
