"""Data files of an Iceberg load written by another process (a Ray worker) through the load's
`file_sink`, in a local warehouse: read back as the driver-written table, committed only by
the load's one transaction (with its properties), and gone when the load aborts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from shiftsync.destinations.base import LoadMode, LoadSpec
from shiftsync.destinations.file_sink import WrittenFile
from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings
from shiftsync.destinations.iceberg.destination import IcebergLoad, shiftsync_properties
from shiftsync.destinations.iceberg.sink import IcebergSink
from shiftsync.errors import DestinationError
from tests.integration.file_sinks import carried, written_by_tasks
from tests.integration.test_destination_contract import all_types_batch
from tests.integration.test_parquet_part_sink import same_rows


def iceberg(folder: Path, target_file_size: int = 4 * 1024 * 1024) -> IcebergDestination:
    folder.mkdir(parents=True, exist_ok=True)
    settings = IcebergSettings(
        "sql",
        str(folder / "wh"),
        uri=f"sqlite:///{folder / 'catalog.db'}",
        target_file_size_bytes=target_file_size,
    )
    return IcebergDestination(settings)


def sink_of(load: IcebergLoad) -> IcebergSink:
    return carried(load.file_sink(), IcebergSink)


def written_elsewhere(load: IcebergLoad, *parts: list[pa.RecordBatch]) -> list[WrittenFile]:
    return written_by_tasks(sink_of(load), *parts)


def data_files(folder: Path) -> list[Path]:
    return sorted((folder / "wh").rglob("data/*.parquet"))


def test_files_written_through_the_sink_read_back_as_the_driver_written_table(
    tmp_path: Path,
) -> None:
    sent = all_types_batch()
    spec = LoadSpec("t", sent.schema, LoadMode.REPLACE, identity="arn:aws:iam::1:role/r")
    one = iceberg(tmp_path / "driver")
    load = one.start_load(spec)
    load.write(sent)
    load.commit({"cursor": 1})
    other = iceberg(tmp_path / "workers")
    load = other.start_load(spec)
    files = written_elsewhere(load, [sent.slice(0, 3)], [sent.slice(3)])
    load.add_files(files)
    assert load.commit({"cursor": 1}).rows_written == sent.num_rows
    try:
        assert [f.rows for f in files] == [3, sent.num_rows - 3]
        assert [f.size for f in files] == [
            p.stat().st_size for p in data_files(tmp_path / "workers")
        ]
        driver_table, worker_table = one.open_table("t"), other.open_table("t")
        assert driver_table is not None
        assert worker_table is not None
        assert worker_table.schema() == driver_table.schema()  # field ids and types
        assert same_rows(other.read_table("t"), one.read_table("t"))
        assert other.read_state("t", "t") == one.read_state("t", "t") == {"cursor": 1}
        properties, expected = (
            shiftsync_properties(worker_table),
            shiftsync_properties(driver_table),
        )
        assert properties is not None
        assert expected is not None
        assert properties.keys() == expected.keys()
        # One commit: the create transaction's append snapshot, with the load's properties.
        assert len(worker_table.snapshots()) == len(driver_table.snapshots()) == 1
    finally:
        one.close()
        other.close()


def test_a_replace_deletes_the_old_rows_and_an_append_adds(tmp_path: Path) -> None:
    sent = all_types_batch()
    destination = iceberg(tmp_path)
    try:
        first = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
        first.write(sent)
        first.commit(None)
        append = destination.start_load(LoadSpec("t", sent.schema, LoadMode.APPEND))
        append.add_files(written_elsewhere(append, [sent.slice(0, 2)]))
        assert append.commit(None).rows_written == 2
        assert destination.read_table("t").num_rows == sent.num_rows + 2
        replace = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
        replace.add_files(written_elsewhere(replace, [sent.slice(1, 2)], [sent.slice(4)]))
        replace.commit(None)
        assert same_rows(
            destination.read_table("t"),
            pa.Table.from_batches([sent.slice(1, 2), sent.slice(4)]),
        )
    finally:
        destination.close()


def test_files_are_cut_at_the_destinations_target_size(tmp_path: Path) -> None:
    """Each row group (about 1 MB of Arrow, iceberg/files.py) past a 1-byte target ends a
    file, as in the driver's commit."""
    rows = pa.record_batch({"id": pa.array(range(500_000), pa.int64())})
    destination = iceberg(tmp_path, target_file_size=1)
    try:
        load = destination.start_load(LoadSpec("t", rows.schema, LoadMode.REPLACE))
        files = written_elsewhere(load, [rows.slice(i, 50_000) for i in range(0, 500_000, 50_000)])
        assert len(files) >= 3
        assert sum(f.rows for f in files) == 500_000
        load.add_files(files)
        load.commit(None)
        assert destination.read_table("t").num_rows == 500_000
    finally:
        destination.close()


def test_an_aborted_load_leaves_the_table_and_none_of_its_files(tmp_path: Path) -> None:
    sent = all_types_batch()
    destination = iceberg(tmp_path)
    try:
        spec = LoadSpec("t", sent.schema, LoadMode.REPLACE)
        first = destination.start_load(spec)
        first.write(sent)
        first.commit(None)
        before = data_files(tmp_path)

        load = destination.start_load(spec)
        files = written_elsewhere(load, [sent.slice(0, 1)], [sent.slice(1)])
        load.add_files(files)
        # A killed worker's half-written file, named as the load's writers name theirs.
        half = Path(files[0].path.removeprefix("file://")).with_name(
            Path(files[0].path).name.replace("00000-0-", "00000-9-")
        )
        half.write_bytes(b"PAR1")
        assert len(data_files(tmp_path)) == len(before) + 3
        load.abort()
        assert data_files(tmp_path) == before
        assert destination.read_table("t").num_rows == sent.num_rows
    finally:
        destination.close()


def test_a_file_the_driver_cannot_see_as_written_is_refused(tmp_path: Path) -> None:
    """A node writing to a folder of its own disk (not shared): nothing is committed."""
    sent = all_types_batch()
    destination = iceberg(tmp_path)
    try:
        load = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
        (file,) = written_elsewhere(load, [sent])
        Path(file.path.removeprefix("file://")).unlink()
        with pytest.raises(DestinationError) as refused:
            load.add_files([file])
        assert f"table 't': the data file {file.path}" in refused.value.message
        assert "is not there as written, seen from the driver" in refused.value.message
        assert refused.value.fix is not None
        assert "shared mount" in refused.value.fix
        load.abort()
        assert destination.open_table("t") is None
    finally:
        destination.close()


def test_a_file_that_is_not_the_loads_is_refused(tmp_path: Path) -> None:
    sent = all_types_batch()
    destination = iceberg(tmp_path)
    try:
        first = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
        (file,) = written_elsewhere(first, [sent])
        second = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
        sink_of(second)
        plain = WrittenFile(file.path, file.rows, file.size)
        for wrong in (file, plain):  # another load's file; a file without its entry
            with pytest.raises(DestinationError, match="is not one of this load's files"):
                second.add_files([wrong])
        first.abort()
        second.abort()
    finally:
        destination.close()


def test_merges_deletes_and_schema_changes_take_no_files(tmp_path: Path) -> None:
    sent = all_types_batch()
    destination = iceberg(tmp_path)
    try:
        first = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
        first.write(sent)
        first.commit(None)
        wider = sent.append_column("added", pa.array([dt.date(2020, 1, 1)] * sent.num_rows))
        for spec in (
            LoadSpec("t", sent.schema, LoadMode.MERGE, ("id",)),
            LoadSpec("t", pa.schema([sent.schema.field("id")]), LoadMode.DELETE, ("id",)),
            LoadSpec("t", wider.schema, LoadMode.APPEND),
            LoadSpec("t", wider.schema, LoadMode.REPLACE),
        ):
            load = destination.start_load(spec)
            assert load.file_sink() is None, spec.mode
            load.abort()
    finally:
        destination.close()


@pytest.mark.parametrize("existing", [True, False], ids=["existing table", "new table"])
def test_a_refused_commit_leaves_the_other_writers_table_and_none_of_its_files(
    tmp_path: Path, existing: bool
) -> None:
    """Another writer committed first: this commit is refused, its abort deletes its files."""
    sent = all_types_batch()
    destination = iceberg(tmp_path)
    try:
        spec = LoadSpec("t", sent.schema, LoadMode.REPLACE)
        if existing:
            first = destination.start_load(spec)
            first.write(sent)
            first.commit(None)
        mine, other = destination.start_load(spec), destination.start_load(spec)
        written = written_elsewhere(mine, [sent.slice(0, 2)])
        mine.add_files(written)
        other.add_files(written_elsewhere(other, [sent.slice(2)]))
        other.commit(None)
        with pytest.raises(DestinationError, match="another writer committed the table"):
            mine.commit(None)
        mine.abort()
        (gone,) = [Path(f.path.removeprefix("file://")) for f in written]
        assert not gone.exists()
        assert gone not in data_files(tmp_path)
        assert destination.read_table("t").num_rows == sent.num_rows - 2
    finally:
        destination.close()
