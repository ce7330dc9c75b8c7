"""DuckDB's memory limit: a bound that follows the running loads' width (not the machine's
memory, which let the buffer pool keep a whole table cached), a fixed one from the
configuration, and an out-of-memory error that names the limit instead of blaming a file lock."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from shiftsync.config import DuckDBDestinationConfig
from shiftsync.destinations.base import LoadMode, LoadSpec
from shiftsync.destinations.duckdb import DuckDBDestination
from shiftsync.destinations.duckdb_memory import (
    BATCH_FACTOR,
    COMMIT_MEMORY_LIMIT,
    LOAD_BASE,
    PER_COLUMN,
    MemoryBudget,
    batch_memory,
    columns_memory,
    commit_memory,
    memory_setting,
)
from shiftsync.destinations.registry import DestinationContext, create_destination
from shiftsync.errors import DestinationError

MIB = 2**20


def test_a_load_needs_a_base_and_half_a_megabyte_per_column() -> None:
    assert LOAD_BASE == 16 * MIB
    assert PER_COLUMN == 512 * 1024
    assert columns_memory(0) == 16 * MIB
    assert columns_memory(10) == 21 * MIB  # public.sales
    assert columns_memory(1600) == 816 * MIB  # Redshift's widest table
    assert columns_memory(-1) == LOAD_BASE


def test_a_batch_needs_twice_its_arrow_size() -> None:
    assert BATCH_FACTOR == 2
    assert batch_memory(93 * MIB) == 186 * MIB
    assert batch_memory(-1) == 0


def test_a_commit_that_joins_the_stage_gets_at_least_the_commit_floor() -> None:
    assert commit_memory(10, joins=True) == COMMIT_MEMORY_LIMIT == 256 * MIB
    assert commit_memory(10, joins=False) == columns_memory(10)
    assert commit_memory(1600, joins=True) == columns_memory(1600)


def test_the_setting_is_in_whole_mebibytes() -> None:
    assert memory_setting(37 * MIB + 5) == "SET memory_limit = '37MiB'"
    assert memory_setting(0) == "SET memory_limit = '1MiB'"


def test_the_budget_is_the_sum_of_what_runs_and_the_base_when_idle() -> None:
    applied: list[int] = []

    def apply(limit: int) -> bool:
        applied.append(limit)
        return True

    budget = MemoryBudget(apply)
    budget.start()
    assert budget.limit() == LOAD_BASE
    first = budget.hold(40 * MIB)
    second = budget.hold(50 * MIB)
    assert budget.limit() == 90 * MIB
    with budget.need(256 * MIB):
        assert budget.current == 346 * MIB
    first()
    first()  # a second release changes nothing
    assert budget.current == 50 * MIB
    second()
    assert budget.current == LOAD_BASE
    assert applied == [LOAD_BASE, 40 * MIB, 90 * MIB, 346 * MIB, 90 * MIB, 50 * MIB, LOAD_BASE]


def test_a_limit_duckdb_refuses_to_lower_stays_until_the_next_change() -> None:
    is_open = False
    refused: set[int] = set()

    def apply(limit: int) -> bool:
        return is_open and limit not in refused

    budget = MemoryBudget(apply)
    release = budget.hold(0)
    assert budget.current is None  # nothing open yet: nothing set
    is_open = True
    budget.start()
    assert budget.current == LOAD_BASE
    refused.add(LOAD_BASE)
    with budget.need(100 * MIB):
        assert budget.current == 100 * MIB
    assert budget.current == 100 * MIB  # refused: the higher limit stays
    refused.clear()
    release()  # the next change tries again
    assert budget.current == LOAD_BASE


def test_a_configured_limit_is_fixed() -> None:
    applied: list[int] = []

    def apply(limit: int) -> bool:
        applied.append(limit)
        return True

    budget = MemoryBudget(apply, fixed=512 * MIB)
    budget.start()
    with budget.need(900 * MIB):
        assert budget.limit() == 512 * MIB
    assert applied == [512 * MIB]
    assert DuckDBDestination(Path("x.duckdb"), memory_limit=2**20).memory_limit == (
        COMMIT_MEMORY_LIMIT
    )


def setting(destination: DuckDBDestination) -> str:
    cursor = destination._cursor()
    try:
        (value,) = cursor.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
    finally:
        cursor.close()
    return str(value)


def test_duckdbs_limit_follows_the_width_of_the_load_not_the_machine(tmp_path: Path) -> None:
    """Before: a quarter of the machine's memory (6 GB on 24 GB), so the buffer pool kept the
    whole table cached and a 10^7-row load peaked at 575 MB against 285 MB at 10^6."""
    destination = DuckDBDestination(tmp_path / "o.duckdb")
    schema = pa.schema([pa.field(f"c{i}", pa.int64()) for i in range(100)])
    batch = pa.RecordBatch.from_pylist([{f"c{i}": i for i in range(100)}], schema=schema)
    try:
        destination.check()
        assert setting(destination) == "16.0 MiB"
        load = destination.start_load(LoadSpec("t", schema, LoadMode.REPLACE))
        assert setting(destination) == "66.0 MiB"  # 16 MB + 100 × 512 KB
        assert destination.memory_limit == 66 * MIB
        load.write(batch)
        load.commit(None)
        assert setting(destination) == "16.0 MiB"
        merge = destination.start_load(LoadSpec("t", schema, LoadMode.MERGE, ("c0",)))
        assert destination.memory_limit == columns_memory(101)  # and the sequence column
        assert setting(destination) == "66.0 MiB"  # set in whole MiB
        merge.write(batch)
        merge.commit(None)
        assert setting(destination) == "16.0 MiB"
        assert destination.read_table("t").num_rows == 1
    finally:
        destination.close()


def test_an_action_that_runs_out_of_memory_runs_again_with_more_room() -> None:
    applied: list[int] = []

    def apply(limit: int) -> bool:
        applied.append(limit)
        return True

    budget = MemoryBudget(apply, ceiling=200 * MIB)
    budget.start()
    tries: list[int] = []

    def action() -> str:
        tries.append(budget.limit())
        if len(tries) < 3:
            raise duckdb.OutOfMemoryException("failed to allocate data of size 8.0 MiB")
        return "done"

    assert budget.run(10 * MIB, action, what="profiling") == "done"
    assert tries == [16 * MIB, 64 * MIB, 200 * MIB]  # the base, 4 × the base, the ceiling
    assert budget.current == LOAD_BASE
    tries.clear()

    def never() -> None:
        tries.append(budget.limit())
        raise duckdb.OutOfMemoryException("failed to allocate data of size 8.0 MiB")

    with pytest.raises(duckdb.OutOfMemoryException):
        budget.run(0, never, what="profiling")
    assert tries == [16 * MIB, 64 * MIB, 200 * MIB]  # not beyond the ceiling
    assert budget.current == LOAD_BASE
    assert budget.exhausted == 200 * MIB  # what the error names


def test_out_of_memory_after_the_retries_names_the_limit_it_ran_out_at(tmp_path: Path) -> None:
    destination = DuckDBDestination(tmp_path / "o.duckdb")
    destination.memory.ceiling = 64 * MIB

    def never() -> None:
        raise duckdb.OutOfMemoryException("failed to allocate data of size 8.0 MiB")

    try:
        destination.check()
        with (
            pytest.raises(DestinationError, match=r"memory_limit 64MiB\)") as caught,
            destination.errors("profiling table 't'"),
        ):
            destination.memory.run(0, never, what="profiling table 't'")
        assert destination.memory_limit == LOAD_BASE
        assert "raise memory_limit" in (caught.value.fix or "")
    finally:
        destination.close()


def test_a_fixed_limit_is_not_raised_for_an_action_that_runs_out() -> None:
    budget = MemoryBudget(lambda limit: True, fixed=256 * MIB)

    def action() -> None:
        raise duckdb.OutOfMemoryException("failed to allocate data of size 8.0 MiB")

    with pytest.raises(duckdb.OutOfMemoryException):
        budget.run(10 * MIB, action, what="profiling")


def test_long_texts_are_profiled_and_read_in_the_room_they_need(tmp_path: Path) -> None:
    """A scan of 6,000-character texts takes 12 MB a vector, more than a two-column table's
    bound (17 MB) on two threads: the profile runs again with more room instead of failing."""
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("t", pa.string())])
    rows = [{"id": i, "t": f"{i:06d}" + "x" * 6000} for i in range(4096)]
    destination = DuckDBDestination(tmp_path / "o.duckdb")
    try:
        load = destination.start_load(LoadSpec("s", schema, LoadMode.REPLACE))
        load.write(pa.RecordBatch.from_pylist(rows, schema=schema))
        load.commit(None)
        assert destination.profile("s", ["id", "t"]).rows == 4096
        assert destination.read_table("s").num_rows == 4096
        assert setting(destination) == "16.0 MiB"
    finally:
        destination.close()


def test_the_configured_limit_is_the_databases(tmp_path: Path) -> None:
    config = DuckDBDestinationConfig.model_validate({"type": "duckdb", "memory_limit": "1GiB"})
    destination = create_destination(config, DestinationContext(folder=tmp_path))
    assert isinstance(destination, DuckDBDestination)
    destination.check()
    try:
        cursor = destination._cursor()
        (setting,) = cursor.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
        cursor.close()
    finally:
        destination.close()
    assert setting in ("1.0 GiB", "1024.0 MiB")


def test_out_of_memory_names_the_limit_not_a_file_lock(tmp_path: Path) -> None:
    destination = DuckDBDestination(tmp_path / "o.duckdb", memory_limit=300 * 2**20)
    with (
        pytest.raises(DestinationError) as caught,
        destination.errors("profiling table 'wide'"),
    ):
        raise duckdb.OutOfMemoryException("failed to allocate data of size 32.0 KiB")
    assert "ran out of memory (memory_limit 300MiB)" in str(caught.value)
    assert caught.value.fix is not None
    assert "memory_limit" in caught.value.fix
    assert "opened by another program" not in caught.value.fix


def test_a_merge_that_must_widen_a_key_column_is_refused_with_a_full_refresh_fix(
    tmp_path: Path,
) -> None:
    """DuckDB cannot change a PRIMARY KEY column's type; a replace rebuilds the table."""
    destination = DuckDBDestination(tmp_path / "o.duckdb")
    narrow = pa.schema([pa.field("id", pa.int16()), pa.field("v", pa.string())])
    wide = pa.schema([pa.field("id", pa.int32()), pa.field("v", pa.string())])
    try:
        first = destination.start_load(LoadSpec("t", narrow, LoadMode.REPLACE, table_key=("id",)))
        first.write(pa.RecordBatch.from_pylist([{"id": 1, "v": "a"}], schema=narrow))
        first.commit(None)
        merge = LoadSpec("t", wide, LoadMode.MERGE, ("id",), table_key=("id",))
        with pytest.raises(DestinationError, match="key column 'id' must be widened") as caught:
            destination.start_load(merge)
        assert caught.value.fix is not None
        assert "--full-refresh" in caught.value.fix
        again = destination.start_load(LoadSpec("t", wide, LoadMode.REPLACE, table_key=("id",)))
        again.write(pa.RecordBatch.from_pylist([{"id": 70000, "v": "b"}], schema=wide))
        again.commit(None)
        assert destination.read_table("t").to_pylist() == [{"id": 70000, "v": "b"}]
    finally:
        destination.close()
