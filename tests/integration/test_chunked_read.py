"""Key-range chunked reads through the Data API: a chunk still too big is cut again, and a
table that changes between chunks is refused (chunks are separate statements)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.errors import SourceError
from shiftsync.local.standin import StandIn, StandInInfo
from shiftsync.redshift.source import RedshiftSource
from shiftsync.workspace import Workspace
from tests.integration.test_extract import CONFIG, assert_same_table, expected_table, make_source
from tests.support import lowered_limits, write_template_workspace

Conn = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory, info: StandInInfo) -> RedshiftSource:
    folder = tmp_path_factory.mktemp("chunked")
    workspace: Workspace = write_template_workspace(folder, CONFIG, info, "shiftsync-chunked/")
    session = AssumedRoleSession(info.role_arn, workspace.external_id, info.region)
    return make_source(workspace, session, "plain")


@pytest.fixture
def tiny_result_cap(standin: StandIn) -> Iterator[None]:
    """A result cap so low that a quarter of `listing` (~1,900 rows) passes it."""
    with lowered_limits(standin, max_result_bytes=8_000):
        yield


@pytest.mark.usefixtures("tiny_result_cap")
def test_a_chunk_still_over_the_cap_is_cut_again(
    plain: RedshiftSource, admin: Conn, copies: Callable[[str, str], str]
) -> None:
    table = copies("listing", "chunks")
    info = plain.describe(f"public.{table}")
    planned = dataclasses.replace(info, estimated_rows=10_000_000)
    plan = plain.plan(planned)
    assert plan.method == "data_api"
    actual = pa.Table.from_batches(list(plain.read(planned)))
    assert_same_table(actual, expected_table(admin, info), ["listid"])
    assert plain.stats.chunks > plan.chunks, "a chunk the cap refused was cut in two"


def test_a_table_changing_between_chunks_is_refused(
    plain: RedshiftSource, admin: Conn, copies: Callable[[str, str], str]
) -> None:
    table = copies("listing", "changing")
    name = sql.Identifier("public", table)
    info = plain.describe(f"public.{table}")
    planned = dataclasses.replace(info, estimated_rows=10_000_000)
    assert plain.plan(planned).chunks > 1
    deleted = False

    def delete_the_last_row_once(_rows: int, _bytes: int) -> None:
        # Runs after the first chunk's batch: the last key's chunk has not been read yet.
        nonlocal deleted
        if not deleted:
            admin.execute(sql.SQL("DELETE FROM {0} WHERE listid = (SELECT max(listid) FROM {0})")
                          .format(name))  # fmt: skip
            deleted = True

    with pytest.raises(SourceError) as refused:
        list(plain.read(planned, progress=delete_the_last_row_once))
    assert deleted
    assert "it changed during the read" in refused.value.message
    assert f"public.{table}" in refused.value.message
