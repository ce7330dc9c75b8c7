"""Parts of a Parquet load written by another process (a Ray worker) through the load's
`file_sink`, on local disk: the same files as the load's own writer writes, committed only by
the load's pointer, and gone with the load when it aborts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from shiftsync.destinations.base import LoadMode, LoadSpec
from shiftsync.destinations.file_sink import WrittenFile
from shiftsync.destinations.parquet import ParquetDestination, ParquetLoad
from shiftsync.destinations.parquet_files import PartSink
from shiftsync.errors import DestinationError
from tests.integration.file_sinks import carried, written_by_tasks
from tests.integration.test_destination_contract import all_types_batch

INTERVAL = pa.month_day_nano_interval()


def every_type() -> pa.RecordBatch:
    """The contract's every-type batch, and a month_day_nano interval (stored as raw bytes)."""
    sent = all_types_batch()
    spans = pa.array(
        [(1, 2, 3), (-1, 0, -5), (0, 0, 0), None, (12, 31, 86_399_999_999_999), (0, -3, 1)],
        INTERVAL,
    )
    return sent.append_column(pa.field("months", INTERVAL), spans)


def sink_of(load: ParquetLoad) -> PartSink:
    return carried(load.file_sink(), PartSink)


def written_elsewhere(load: ParquetLoad, *parts: list[pa.RecordBatch]) -> list[WrittenFile]:
    return written_by_tasks(sink_of(load), *parts)


def same_rows(one: pa.Table, other: pa.Table) -> bool:
    """Equal tables, NaN equal to NaN (Arrow's equals holds NaN unequal to itself)."""
    one, other = one.sort_by("id").combine_chunks(), other.sort_by("id").combine_chunks()
    if not one.schema.equals(other.schema):
        return False
    for name in one.column_names:
        a, b = one.column(name), other.column(name)
        if pa.types.is_floating(a.type):
            zero = pa.scalar(0, a.type)
            same = pc.is_nan(a).equals(pc.is_nan(b)) and pc.if_else(pc.is_nan(a), zero, a).equals(
                pc.if_else(pc.is_nan(b), zero, b)
            )
        else:
            same = a.equals(b)
        if not same:
            return False
    return True


def files_of(root: Path, target: str) -> list[Path]:
    return sorted((root / target).rglob("*.parquet"))


def test_parts_written_through_the_sink_are_the_files_the_load_writes(tmp_path: Path) -> None:
    sent = every_type()
    spec = LoadSpec("t", sent.schema, LoadMode.REPLACE)
    by_driver, by_workers = tmp_path / "driver", tmp_path / "workers"
    load = ParquetDestination(str(by_driver), rows_per_file=4).start_load(spec)
    load.write(sent.slice(0, 3))
    load.write(sent.slice(3))
    load.commit({"cursor": 1})
    load = ParquetDestination(str(by_workers), rows_per_file=4).start_load(spec)
    files = written_elsewhere(load, [sent.slice(0, 3)], [sent.slice(3)])
    load.add_files(files)
    load.commit({"cursor": 1})

    assert [f.rows for f in files] == [3, 3]
    assert [f.size for f in files] == [p.stat().st_size for p in files_of(by_workers, "t")]
    # The same file schema (storage form, field metadata), the same pointer schema, the rows.
    driver_files, worker_files = files_of(by_driver, "t"), files_of(by_workers, "t")
    for written in worker_files:
        assert pq.read_schema(written).equals(pq.read_schema(driver_files[0]), check_metadata=True)
    one, other = ParquetDestination(str(by_driver)), ParquetDestination(str(by_workers))
    schema = one.table_schema("t")
    assert schema is not None
    assert schema.equals(other.table_schema("t"), check_metadata=True)
    assert same_rows(other.read_table("t"), one.read_table("t"))
    assert other.read_state("", "t") == one.read_state("", "t")
    assert other.read_table("t").column("months").type == INTERVAL


def test_an_append_adds_the_parts_to_the_previous_files(tmp_path: Path) -> None:
    sent = every_type()
    destination = ParquetDestination(str(tmp_path))
    first = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
    first.write(sent.slice(0, 2))
    first.commit(None)
    load = destination.start_load(LoadSpec("t", sent.schema, LoadMode.APPEND))
    load.add_files(written_elsewhere(load, [sent.slice(2)]))
    assert load.commit(None).rows_written == 4
    assert destination.read_table("t").num_rows == 6


def test_an_aborted_load_leaves_the_previous_version_and_none_of_its_parts(
    tmp_path: Path,
) -> None:
    sent = every_type()
    destination = ParquetDestination(str(tmp_path))
    spec = LoadSpec("t", sent.schema, LoadMode.REPLACE)
    first = destination.start_load(spec)
    first.write(sent)
    first.commit(None)
    before = files_of(tmp_path, "t")

    load = destination.start_load(spec)
    load.add_files(written_elsewhere(load, [sent.slice(0, 1)], [sent.slice(1)]))
    assert len(files_of(tmp_path, "t")) == len(before) + 2
    load.abort()

    assert files_of(tmp_path, "t") == before
    assert destination.read_table("t").num_rows == sent.num_rows


def test_a_part_the_driver_cannot_see_as_written_is_refused(tmp_path: Path) -> None:
    """A node writing to a folder of its own disk (not shared): nothing is committed."""
    sent = every_type()
    destination = ParquetDestination(str(tmp_path))
    load = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
    (file,) = written_elsewhere(load, [sent])
    (tmp_path / "t" / file.path).unlink()
    with pytest.raises(DestinationError) as refused:
        load.add_files([file])
    assert "is not there as written, seen from the driver" in refused.value.message
    assert refused.value.fix is not None
    assert "shared mount" in refused.value.fix
    load.abort()
    assert destination.table_schema("t") is None


def test_merges_deletes_and_schema_changing_appends_take_no_parts(tmp_path: Path) -> None:
    sent = every_type()
    destination = ParquetDestination(str(tmp_path))
    first = destination.start_load(LoadSpec("t", sent.schema, LoadMode.REPLACE))
    first.write(sent)
    first.commit(None)
    wider = sent.append_column("added", pa.array([dt.date(2020, 1, 1)] * sent.num_rows))
    for spec in (
        LoadSpec("t", sent.schema, LoadMode.MERGE, ("id",)),
        LoadSpec("t", pa.schema([sent.schema.field("id")]), LoadMode.DELETE, ("id",)),
        LoadSpec("t", wider.schema, LoadMode.APPEND),
    ):
        load = destination.start_load(spec)
        assert load.file_sink() is None, spec.mode
        load.abort()
