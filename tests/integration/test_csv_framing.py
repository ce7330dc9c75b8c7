"""The reader under every framing of GetStatementResultV2's `CSVRecords` the stand-in serves.

AWS documents no framing: one entry per page or one per record, with or without a final
newline, the header on the first page or on every page. Each read must equal the JSON read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.local.data_api.csv_framing import CsvFraming
from shiftsync.local.seed.seeding import ODD_SCHEMA, ODD_TABLE
from shiftsync.local.standin import StandIn, StandInInfo
from shiftsync.redshift.retry import PollPolicy, RetryPolicy
from shiftsync.redshift.source import RedshiftSource
from shiftsync.workspace import Workspace
from tests.support import run_statement, write_template_workspace

CONFIG = """\
connections:
  csv:
    type: redshift_serverless
    region: {region}
    workgroup: {workgroup}
    database: {database}
    role_arn: {role_arn}
  json:
    type: redshift_serverless
    region: {region}
    workgroup: {workgroup}
    database: {database}
    role_arn: {role_arn}
    result_format: json
"""
FRAMINGS = [
    CsvFraming(),
    CsvFraming(trailing_newline=False),
    CsvFraming(per_record=True),
    CsvFraming(per_record=True, trailing_newline=False),
    CsvFraming(header_every_page=True),
    CsvFraming(per_record=True, trailing_newline=False, header_every_page=True),
]
TABLES = [("public.category", None), ("public.types", ["id", "c_varchar", "c_char"])]


@pytest.fixture(scope="module")
def sources(
    tmp_path_factory: pytest.TempPathFactory, info: StandInInfo
) -> dict[str, RedshiftSource]:
    workspace: Workspace = write_template_workspace(
        tmp_path_factory.mktemp("framing"), CONFIG, info, "framing/"
    )
    session = AssumedRoleSession(info.role_arn, workspace.external_id, info.region)
    made = {}
    for name in ("csv", "json"):
        _, connection = workspace.config.connection(name)
        made[name] = RedshiftSource(
            connection,
            session,
            retry=RetryPolicy(base_delay=0.02, max_delay=0.2),
            polling=PollPolicy(first=0.01, longest=0.05),
        )
    return made


@pytest.fixture
def framed(standin: StandIn) -> Iterator[Callable[[CsvFraming], None]]:
    """`framed(framing)`: small pages in that framing until the test ends."""
    assert standin.engine is not None
    saved = standin.engine.limits

    def apply(framing: CsvFraming) -> None:
        assert standin.engine is not None
        standin.engine.limits = dataclasses.replace(saved, page_bytes=64)
        standin.set_csv_framing(framing)

    try:
        yield apply
    finally:
        standin.engine.limits = saved
        standin.set_csv_framing(CsvFraming())


def _read(source: RedshiftSource, table: str, columns: list[str] | None) -> pa.Table:
    info = source.describe(table)
    options: dict[str, Any] = {"method": "data_api"}
    if columns:
        options["columns"] = columns
    table_read = pa.Table.from_batches(list(source.read(info, **options)))
    return table_read.sort_by([(table_read.column_names[0], "ascending")])


@pytest.mark.parametrize("framing", FRAMINGS, ids=repr)
@pytest.mark.parametrize(("table", "columns"), TABLES, ids=[t for t, _ in TABLES])
def test_every_framing_reads_what_json_reads(
    framed: Callable[[CsvFraming], None],
    sources: dict[str, RedshiftSource],
    framing: CsvFraming,
    table: str,
    columns: list[str] | None,
) -> None:
    expected = _read(sources["json"], table, columns)
    framed(framing)
    actual = _read(sources["csv"], table, columns)
    assert sources["csv"].stats.pages > 1, "the read spans several pages"
    assert actual.equals(expected)


def test_the_odd_table_survives_records_one_per_entry(
    framed: Callable[[CsvFraming], None], sources: dict[str, RedshiftSource]
) -> None:
    name = f'"{ODD_SCHEMA}"."{ODD_TABLE}"'
    expected = _read(sources["json"], name, None)
    framed(CsvFraming(per_record=True, trailing_newline=False, header_every_page=True))
    assert _read(sources["csv"], name, None).equals(expected)
    assert sources["csv"].stats.pages > 1


@pytest.fixture
def varbyte_as_blob(standin: StandIn) -> Iterator[None]:
    assert standin.engine is not None
    standin.engine.varbyte_as_blob = True
    try:
        yield
    finally:
        standin.engine.varbyte_as_blob = False


def test_varbyte_as_blob_value_reads_as_hex_string_value(
    standin: StandIn,
    sources: dict[str, RedshiftSource],
    varbyte_as_blob: None,
    redshift_data: Any,
    info: StandInInfo,
) -> None:
    """JSON results may carry VARBYTE as blobValue (AWS does not say): same bytes either way."""
    statement_id, _ = run_statement(redshift_data, info, "select c_varbyte from public.types")
    records = redshift_data.get_statement_result(Id=statement_id)["Records"]
    assert {"blobValue"} <= {member for record in records for member in record[0]}
    columns = ["id", "c_varbyte"]
    as_blob = _read(sources["json"], "public.types", columns)
    assert standin.engine is not None
    standin.engine.varbyte_as_blob = False
    as_hex = _read(sources["json"], "public.types", columns)
    assert as_blob.equals(as_hex)
    assert bytes(range(256)) in as_blob.column("c_varbyte").to_pylist()
