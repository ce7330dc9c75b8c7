"""The look-back window on the stand-in: a row committed late (its tracking value below the
stored cursor) is picked up by the next run with `lookback`, and missed without it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shiftsync.engine.sync import SyncOptions, run_sync
from shiftsync.local.postgres import TempPostgres
from shiftsync.local.standin import StandInInfo
from tests.integration.test_sync import (
    assert_same_table,
    destination_config,
    make_workspace,
    open_destination,
)


def _late_row(admin: psycopg.Connection[Any], table: str, before: str) -> None:
    """A row stamped `before` the current maximum, as a long transaction commits it late."""
    admin.execute(
        sql.SQL(
            "INSERT INTO {t} SELECT 9999999, listid, sellerid, buyerid, eventid, dateid, qtysold,"
            " pricepaid, commission, (SELECT max(saletime) FROM {t}) - interval {gap} "
            "FROM {t} WHERE salesid = 1"
        ).format(t=sql.Identifier("public", table), gap=sql.Literal(before))
    )


@pytest.mark.parametrize(("lookback", "caught"), [("2h", True), (None, False)])
def test_a_row_committed_late_is_caught_only_with_lookback(
    lookback: str | None,
    caught: bool,
    tmp_path: Path,
    info: StandInInfo,
    postgres: TempPostgres,
    admin: psycopg.Connection[Any],
    copies: Callable[[str, str], str],
) -> None:
    sales = copies("sales", "late")
    entry: dict[str, Any] = {
        "include": f"public.{sales}",
        "mode": "incremental",
        "tracking_field": "saletime",
    }
    if lookback is not None:
        entry["lookback"] = lookback
    workspace = make_workspace(
        tmp_path / "ws", info, destination_config("duckdb", tmp_path, postgres), [entry]
    )
    assert run_sync(workspace, "main").status == "ok"
    _late_row(admin, sales, "30 minutes")

    again = run_sync(workspace, "main")
    (table,) = again.tables
    destination = open_destination(workspace)
    try:
        keys = destination.read_table(sales).column("salesid").to_pylist()
        assert (9999999 in keys) is caught
        if caught:
            assert again.status == "ok", table.error
            assert any(n.startswith("lookback 2h: rows from ") for n in table.notes)
            assert_same_table(admin, destination, sales, sales)
        else:
            assert table.error_type == "VerificationError"
    finally:
        destination.close()


def test_lookback_without_a_key_is_refused_before_anything_is_written(
    tmp_path: Path,
    info: StandInInfo,
    postgres: TempPostgres,
    copies: Callable[[str, str], str],
) -> None:
    log = copies("events_log", "late")  # no primary key
    entry = {"include": f"public.{log}", "mode": "incremental", "tracking_field": "created_at",
             "lookback": "1h"}  # fmt: skip
    workspace = make_workspace(
        tmp_path / "ws", info, destination_config("duckdb", tmp_path, postgres), [entry]
    )
    (planned,) = run_sync(workspace, "main", SyncOptions(dry_run=True)).tables
    assert planned.error_type == "ConfigError"
    (table,) = run_sync(workspace, "main").tables
    assert table.status == "failed"
    assert table.error_type == "ConfigError", table.error
    assert "without a primary key" in (table.error or "")
    assert "primary_key:" in (table.fix or "")
    destination = open_destination(workspace)
    try:
        assert destination.table_schema(log) is None
    finally:
        destination.close()
