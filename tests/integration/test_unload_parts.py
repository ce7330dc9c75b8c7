"""Each staged UNLOAD part is checked against its manifest entry before a row is used.

The parts are real objects in the stand-in's bucket, read with the assumed role; only the
manifest entry is written by the test, as a part that changed after the UNLOAD would look.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.errors import SourceError
from shiftsync.local.standin import StandInInfo
from shiftsync.redshift.data_api import ReadStats
from shiftsync.redshift.unload import UnloadReader
from shiftsync.redshift.unload_manifest import ManifestEntry
from shiftsync.workspace import Workspace
from tests.integration.test_extract import CONFIG, FAST_RETRY, make_source
from tests.support import write_template_workspace

PREFIX = "shiftsync-parts/"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, info: StandInInfo) -> Workspace:
    return write_template_workspace(tmp_path_factory.mktemp("parts"), CONFIG, info, PREFIX)


@pytest.fixture(scope="module")
def reader(workspace: Workspace, info: StandInInfo) -> UnloadReader:
    session = AssumedRoleSession(info.role_arn, workspace.external_id, info.region)
    return UnloadReader(make_source(workspace, session).api, retry=FAST_RETRY)


@pytest.fixture
def part(info: StandInInfo, s3: Any) -> Iterator[tuple[str, int]]:
    """A real 3-row Parquet part in the staging prefix: its key and size."""
    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": [1, 2, 3]}), buffer)
    key = f"{PREFIX}{uuid.uuid4().hex}/0000_part_00.parquet"
    s3.put_object(Bucket=info.bucket, Key=key, Body=buffer.getvalue())
    yield key, len(buffer.getvalue())
    s3.delete_object(Bucket=info.bucket, Key=key)


def entry(info: StandInInfo, key: str, size: int | None, rows: int | None) -> ManifestEntry:
    return ManifestEntry(f"s3://{info.bucket}/{key}", info.bucket, key, size, rows)


def download(reader: UnloadReader, manifest_entry: ManifestEntry) -> int:
    part = reader._download(manifest_entry, "public.t", ReadStats(), threading.Event())
    try:
        return int(part.parquet.metadata.num_rows)
    finally:
        part.close()


def test_a_part_that_matches_its_entry_is_read(
    reader: UnloadReader, info: StandInInfo, part: tuple[str, int]
) -> None:
    key, size = part
    assert download(reader, entry(info, key, size, 3)) == 3


def test_a_part_of_another_size_than_its_entry_is_refused(
    reader: UnloadReader, info: StandInInfo, part: tuple[str, int]
) -> None:
    key, size = part
    with pytest.raises(SourceError) as refused:
        download(reader, entry(info, key, size + 10, 3))
    assert f"has {size} bytes, the manifest says {size + 10}" in refused.value.message
    assert "public.t" in refused.value.message


def test_a_part_with_other_rows_than_its_entry_is_refused(
    reader: UnloadReader, info: StandInInfo, part: tuple[str, int]
) -> None:
    key, size = part
    with pytest.raises(SourceError) as refused:
        download(reader, entry(info, key, size, 4))
    assert "holds 3 rows, the manifest says 4" in refused.value.message


def test_a_part_that_is_not_parquet_is_refused(
    reader: UnloadReader, info: StandInInfo, s3: Any
) -> None:
    key = f"{PREFIX}{uuid.uuid4().hex}/0000_part_00.parquet"
    s3.put_object(Bucket=info.bucket, Key=key, Body=b"not parquet at all")
    try:
        with pytest.raises(SourceError) as refused:
            download(reader, entry(info, key, 18, 1))
        assert "is not a readable Parquet file" in refused.value.message
    finally:
        s3.delete_object(Bucket=info.bucket, Key=key)
