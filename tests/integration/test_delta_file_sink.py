"""Data files of a Delta load written by another process (a Ray worker) through the load's
`file_sink`, under a local root: read back as the driver-written table, committed only by the
load's one log entry (with its commit properties), and gone when the load aborts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from shiftsync.destinations.base import LoadMode, LoadSpec
from shiftsync.destinations.delta import DeltaDestination
from shiftsync.destinations.delta.destination import DeltaLoad
from shiftsync.destinations.delta.sink import DeltaSink
from shiftsync.destinations.delta.storage import DeltaSettings
from shiftsync.destinations.file_sink import WrittenFile
from shiftsync.errors import DestinationError
from tests.integration.file_sinks import carried, written_by_tasks
from tests.integration.test_destination_contract import all_types_batch
from tests.integration.test_parquet_part_sink import same_rows


def delta(folder: Path, target_file_size: int = 4 * 1024 * 1024) -> DeltaDestination:
    return DeltaDestination(DeltaSettings(str(folder), target_file_size_bytes=target_file_size))


def sink_of(load: DeltaLoad) -> DeltaSink:
    return carried(load.file_sink(), DeltaSink)


def written_elsewhere(load: DeltaLoad, *parts: list[pa.RecordBatch]) -> list[WrittenFile]:
    return written_by_tasks(sink_of(load), *parts)


def data_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet"))


def log_entries(table: Path) -> list[Path]:
    return sorted((table / "_delta_log").glob("*.json"))


def test_files_written_through_the_sink_read_back_as_the_driver_written_table(
    tmp_path: Path,
) -> None:
    sent = all_types_batch()
    spec = LoadSpec("t", sent.schema, LoadMode.REPLACE, identity="arn:aws:iam::1:role/r")
    one = delta(tmp_path / "driver")
    load = one.start_load(spec)
    load.write(sent)
    load.commit({"cursor": 1})
    other = delta(tmp_path / "workers")
    load = other.start_load(spec)
    files = written_elsewhere(load, [sent.slice(0, 3)], [sent.slice(3)])
    load.add_files(files)
    assert load.commit({"cursor": 1}).rows_written == sent.num_rows

    assert [f.rows for f in files] == [3, sent.num_rows - 3]
    assert [f.size for f in files] == [p.stat().st_size for p in data_files(tmp_path / "workers")]
    by_driver, by_workers = DeltaTable(one.uri("t")), DeltaTable(other.uri("t"))
    assert by_workers.schema() == by_driver.schema()
    assert by_workers.protocol() == by_driver.protocol()
    assert same_rows(other.read_table("t"), one.read_table("t"))
    assert other.read_state("t", "t") == one.read_state("t", "t") == {"cursor": 1}
    assert len(log_entries(tmp_path / "workers" / "t")) == 1  # one commit


def test_a_replace_overwrites_and_an_append_adds_in_one_log_entry_each(tmp_path: Path) -> None:
    sent = all_types_batch()
    destination = delta(tmp_path)
    first = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
    first.write(sent)
    first.commit(None)
    append = destination.start_load(LoadSpec("t", sent.schema, LoadMode.APPEND))
    append.add_files(written_elsewhere(append, [sent.slice(0, 2)]))
    assert append.commit({"cursor": 2}).rows_written == 2
    assert destination.read_table("t").num_rows == sent.num_rows + 2
    assert destination.read_state("t", "t") == {"cursor": 2}
    replace = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
    replace.add_files(written_elsewhere(replace, [sent.slice(1, 2)], [sent.slice(4)]))
    replace.commit(None)
    assert same_rows(
        destination.read_table("t"), pa.Table.from_batches([sent.slice(1, 2), sent.slice(4)])
    )
    assert len(log_entries(tmp_path / "t")) == 3


def test_each_file_carries_exact_statistics(tmp_path: Path) -> None:
    rows = pa.record_batch(
        {
            "id": pa.array(range(50_000), pa.int64()),
            "day": pa.array(
                [dt.date(2020, 1, 1) + dt.timedelta(days=i % 9) for i in range(50_000)]
            ),
            "name": pa.array([None if i % 7 == 0 else f"n{i % 13}" for i in range(50_000)]),
            "long": pa.array(["x" * 40] * 50_000),
            "price": pa.array([i / 3 for i in range(50_000)]),
        }
    )
    destination = delta(tmp_path, target_file_size=150_000)
    load = destination.start_load(LoadSpec("t", rows.schema, LoadMode.REPLACE))
    files = written_elsewhere(load, [rows.slice(i, 5_000) for i in range(0, 50_000, 5_000)])
    assert len(files) >= 3
    load.add_files(files)
    load.commit(None)
    table = DeltaTable(destination.uri("t"))
    (entry,) = log_entries(tmp_path / "t")
    actions = [json.loads(line) for line in entry.read_text().splitlines()]
    logged = {a["add"]["path"]: json.loads(a["add"]["stats"]) for a in actions if "add" in a}
    assert logged.keys() == {f.path for f in files}
    offset = 0
    for file in files:
        sent = rows.slice(offset, file.rows)
        offset += file.rows
        got = logged[file.path]
        assert got["numRecords"] == file.rows
        assert got["minValues"]["id"] == sent.column("id")[0].as_py()
        assert got["maxValues"]["id"] == sent.column("id")[-1].as_py()
        assert got["minValues"]["day"] == "2020-01-01"
        assert got["nullCount"]["name"] == sent.column("name").null_count
        # Long strings and floats: no bound rather than an inexact one.
        assert "long" not in got["minValues"]
        assert "price" not in got["maxValues"]
    # A reader prunes with them and still finds every row.
    assert destination.read_table("t").num_rows == 50_000
    assert table.to_pyarrow_dataset().to_table(filter=pc.field("id") == 49_999).num_rows == 1


def test_an_aborted_load_leaves_the_table_and_none_of_its_files(tmp_path: Path) -> None:
    sent = all_types_batch()
    destination = delta(tmp_path)
    spec = LoadSpec("t", sent.schema, LoadMode.REPLACE)
    first = destination.start_load(spec)
    first.write(sent)
    first.commit(None)
    before = data_files(tmp_path)

    load = destination.start_load(spec)
    files = written_elsewhere(load, [sent.slice(0, 1)], [sent.slice(1)])
    load.add_files(files)
    # A killed worker's half-written file, named as the load's writers name theirs.
    half = tmp_path / "t" / files[0].path.replace("part-00000-", "part-00009-")
    half.write_bytes(b"PAR1")
    assert len(data_files(tmp_path)) == len(before) + 3
    load.abort()
    assert data_files(tmp_path) == before
    assert destination.read_table("t").num_rows == sent.num_rows


def test_a_file_the_driver_cannot_see_as_written_is_refused(tmp_path: Path) -> None:
    """A node writing to a folder of its own disk (not shared): nothing is committed."""
    sent = all_types_batch()
    destination = delta(tmp_path)
    load = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
    (file,) = written_elsewhere(load, [sent])
    where = tmp_path / "t" / file.path
    where.unlink()
    with pytest.raises(DestinationError) as refused:
        load.add_files([file])
    assert f"table 't': the data file {where}" in refused.value.message
    assert "is not there as written, seen from the driver" in refused.value.message
    assert refused.value.fix is not None
    assert "shared mount" in refused.value.fix
    load.abort()
    assert destination.open_table("t") is None


def test_a_file_that_is_not_the_loads_is_refused(tmp_path: Path) -> None:
    sent = all_types_batch()
    destination = delta(tmp_path)
    first = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
    (file,) = written_elsewhere(first, [sent])
    second = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
    sink_of(second)
    plain = WrittenFile(file.path, file.rows, file.size)
    for wrong in (file, plain):  # another load's file; a file without its statistics
        with pytest.raises(DestinationError, match="is not one of this load's files"):
            second.add_files([wrong])
    first.abort()
    second.abort()


def test_merges_deletes_and_schema_changes_take_no_files(tmp_path: Path) -> None:
    sent = all_types_batch()
    destination = delta(tmp_path)
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


@pytest.mark.parametrize("existing", [True, False], ids=["existing table", "new table"])
def test_a_refused_commit_leaves_the_other_writers_table_and_none_of_its_files(
    tmp_path: Path, existing: bool
) -> None:
    """Another writer committed first: this commit is refused, its abort deletes its files."""
    sent = all_types_batch()
    destination = delta(tmp_path)
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
    (gone,) = [tmp_path / "t" / f.path for f in written]
    assert not gone.exists()
    assert destination.read_table("t").num_rows == sent.num_rows - 2
