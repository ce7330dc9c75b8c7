from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from shiftsync.engine.load_columns import RUN_ID, SYNCED_AT, add_load_columns, with_load_columns
from shiftsync.errors import ConfigError

SCHEMA = pa.schema([pa.field("id", pa.int32())])


def test_the_load_columns_follow_the_source_columns() -> None:
    schema = with_load_columns("public.t", SCHEMA)
    assert schema.names == ["id", SYNCED_AT, RUN_ID]
    assert schema.field(SYNCED_AT).type == pa.timestamp("us", tz="UTC")
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    batch = pa.RecordBatch.from_arrays([pa.array([1, 2], pa.int32())], schema=SCHEMA)
    stamped = add_load_columns(batch, "20260102T030405Z-abcdef", moment)
    assert stamped.schema == schema
    assert stamped.column(RUN_ID).to_pylist() == ["20260102T030405Z-abcdef"] * 2
    assert stamped.column(SYNCED_AT).to_pylist() == [moment, moment]


def test_a_source_column_with_a_load_columns_name_is_refused() -> None:
    taken = pa.schema([pa.field(RUN_ID, pa.string())])
    with pytest.raises(ConfigError, match=RUN_ID) as caught:
        with_load_columns("public.t", taken)
    assert caught.value.fix is not None
    assert "load_columns: false" in caught.value.fix


def test_a_table_that_carries_a_key_is_created_with_its_primary_key() -> None:
    from psycopg import sql

    from shiftsync.destinations.duckdb_sql import build_create_table_sql as duckdb_create
    from shiftsync.destinations.postgres_sql import build_create_table_sql as postgres_create

    schema = pa.schema([pa.field("a b", pa.int32()), pa.field("c", pa.string())])
    assert duckdb_create("t", schema, key=("a b", "c")) == (
        'CREATE TABLE "t" ("a b" INTEGER, "c" VARCHAR, PRIMARY KEY ("a b", "c"))'
    )
    assert "PRIMARY KEY" not in duckdb_create("t", schema)
    created = postgres_create(sql.Identifier("s", "t"), "t", schema, key=("a b",))
    assert 'PRIMARY KEY ("a b")' in created.as_string(None)
    # A temporary merge stage holds repeated keys (the last one wins): never a key there.
    stage = postgres_create(sql.Identifier("st"), "t", schema, temporary=True, key=("a b",))
    assert "PRIMARY KEY" not in stage.as_string(None)
