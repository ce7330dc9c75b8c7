"""Bad input to the lake destinations: one message naming the thing and the fix, nothing
committed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from shiftsync.destinations.base import LoadMode, LoadSpec
from shiftsync.destinations.delta import DeltaDestination, DeltaSettings
from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings
from shiftsync.errors import DestinationError
from shiftsync.local.postgres import free_port

SCHEMA = pa.schema([("id", pa.int64()), ("price", pa.decimal128(10, 2))])


def test_an_unreachable_catalog_is_named_without_its_password(tmp_path: Path) -> None:
    uri = f"postgresql+psycopg://loader:hunter2-secret@127.0.0.1:{free_port()}/catalog"
    destination = IcebergDestination(IcebergSettings("sql", str(tmp_path / "wh"), uri=uri))
    with pytest.raises(DestinationError) as caught:
        destination.check()
    shown = f"{caught.value} {caught.value.fix}"
    assert "127.0.0.1" in shown
    assert "loader:***@" in shown
    assert "hunter2-secret" not in shown
    assert caught.value.fix
    destination.close()


@pytest.mark.parametrize("kind", ["iceberg", "delta"])
def test_a_warehouse_that_cannot_be_written_is_named(tmp_path: Path, kind: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    destination = (
        IcebergDestination(
            IcebergSettings("sql", str(blocker / "wh"), uri=f"sqlite:///{tmp_path / 'c.db'}")
        )
        if kind == "iceberg"
        else DeltaDestination(DeltaSettings(str(blocker / "delta")))
    )
    with pytest.raises(DestinationError, match="a-file") as caught:
        destination.check()
    assert caught.value.fix
    destination.close()


def test_a_schema_iceberg_cannot_evolve_to_commits_nothing(tmp_path: Path) -> None:
    destination = IcebergDestination(
        IcebergSettings("sql", str(tmp_path / "wh"), uri=f"sqlite:///{tmp_path / 'c.db'}")
    )
    first = destination.start_load(LoadSpec("sales", SCHEMA, LoadMode.REPLACE))
    first.write(pa.RecordBatch.from_pydict({"id": [1], "price": [1]}, schema=SCHEMA))
    first.commit({"run": 1})
    rescaled = pa.schema([("id", pa.int64()), ("price", pa.decimal128(12, 4))])
    with pytest.raises(DestinationError, match=r"'price'.*cannot promote") as caught:
        destination.start_load(LoadSpec("sales", rescaled, LoadMode.APPEND))
    assert caught.value.fix
    assert destination.table_schema("sales") == SCHEMA
    assert destination.read_state("sales", "sales") == {"run": 1}
    destination.close()
