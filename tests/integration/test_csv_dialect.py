"""The CSV dialect probe: CSV when the Data API's CSV reads as its JSON, JSON when it does not.

The stand-in serves PostgreSQL's dialect by default and, with `engine.csv_null_text`, one
that writes NULL as a text (as some CSV writers do), which a PostgreSQL-dialect reader would
take for the string.
"""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pyarrow as pa
import pytest

from shiftsync.local.standin import StandIn, StandInInfo
from shiftsync.redshift.csv_probe import CACHE_FILE_NAME, PROBE_VALUES, cache_key
from shiftsync.redshift.source import RedshiftSource
from shiftsync.workspace import Workspace
from tests.support import connection_template, write_template_workspace

CONFIG = "connections:\n" + connection_template("csv")
COLUMNS = ["id", "c_varchar", "c_char"]


@pytest.fixture
def workspace(tmp_path: Path, info: StandInInfo) -> Workspace:
    return write_template_workspace(tmp_path, CONFIG, info, "dialect/")


def _read(source: RedshiftSource) -> pa.Table:
    info = source.describe("public.types")
    table = pa.Table.from_batches(list(source.read(info, method="data_api", columns=COLUMNS)))
    return table.sort_by([("id", "ascending")])


def _json_read(workspace: Workspace) -> pa.Table:
    _, connection = workspace.config.connection("csv")
    source = RedshiftSource.from_workspace(workspace, "csv")
    source.connection = connection.model_copy(update={"result_format": "json"})
    source.csv_dialect = None
    return _read(source)


def test_a_matching_dialect_keeps_csv_and_is_cached_owner_only(workspace: Workspace) -> None:
    source = RedshiftSource.from_workspace(workspace, "csv")
    assert _read(source).equals(_json_read(workspace))
    assert source.result_format() == "csv"
    cache = workspace.dot_dir / CACHE_FILE_NAME
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    entry = json.loads(cache.read_text())[cache_key(source.connection)]
    assert entry["result_format"] == "csv"


def test_a_different_dialect_switches_to_json_and_says_so(
    workspace: Workspace, caplog: pytest.LogCaptureFixture, null_as_text: None
) -> None:
    source = RedshiftSource.from_workspace(workspace, "csv")
    with caplog.at_level(logging.WARNING, logger="shiftsync.redshift"):
        table = _read(source)
    assert source.result_format() == "json"
    assert any("reading JSON results" in r.getMessage() for r in caplog.records)
    assert "null" in caplog.text
    assert table.equals(_json_read(workspace))
    assert table.column("c_varchar").to_pylist()[0] is None


def test_without_the_probe_the_different_dialect_would_read_wrong(
    workspace: Workspace, null_as_text: None
) -> None:
    """The probe is needed: the same read without it takes NULL for the text 'NULL'."""
    source = RedshiftSource.from_workspace(workspace, "csv")
    source.csv_dialect = None
    assert _read(source).column("c_varchar").to_pylist()[0] == "NULL"


def test_the_cached_verdict_is_used_without_a_new_probe(
    workspace: Workspace, standin: StandIn
) -> None:
    RedshiftSource.from_workspace(workspace, "csv").result_format()
    assert standin.engine is not None
    before = len(standin.engine.statements)
    again = RedshiftSource.from_workspace(workspace, "csv")
    assert again.result_format() == "csv"
    assert len(standin.engine.statements) == before


def test_the_probe_holds_the_values_that_tell_dialects_apart() -> None:
    assert None in PROBE_VALUES.values()
    assert {"", "NULL", 'say "hi"', "a,b", "two\nlines"} <= set(PROBE_VALUES.values())
    assert max(len(v or "") for v in PROBE_VALUES.values()) >= 10_000
