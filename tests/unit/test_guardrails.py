"""Run windows and the SQL that reads what a run cost: pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from shiftsync.config.validators import parse_window
from shiftsync.engine.guardrails import check_window, history_sql, inside_window, usage_sql
from shiftsync.errors import EXIT_OUTSIDE_WINDOW, BudgetError, OutsideWindowError
from shiftsync.redshift.spend import Spend
from tests.unit.test_config import S, line_for, load, problems, with_value


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 7, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "hour", "minute", "inside"),
    [
        ("01:00-05:00", 1, 0, True),
        ("01:00-05:00", 4, 59, True),
        ("01:00-05:00", 5, 0, False),
        ("01:00-05:00", 0, 59, False),
        ("22:00-02:00", 23, 30, True),
        ("22:00-02:00", 1, 59, True),
        ("22:00-02:00", 2, 0, False),
        ("22:00-02:00", 12, 0, False),
    ],
)
def test_windows_include_their_start_and_may_span_midnight(
    window: str, hour: int, minute: int, inside: bool
) -> None:
    assert inside_window(window, at(hour, minute)) is inside


def test_a_window_is_in_utc_whatever_the_zone_of_now() -> None:
    from datetime import timedelta, timezone

    paris = datetime(2026, 12, 7, 3, 30, tzinfo=timezone(timedelta(hours=1)))  # 02:30 UTC
    assert inside_window("02:00-03:00", paris)


@pytest.mark.parametrize("text", ["1:00-05:00", "01:00-24:00", "01:00", "05:00-05:00", "ab"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"HH:MM-HH:MM|same minute"):
        parse_window(text)


def test_outside_the_window_the_run_is_refused_with_exit_code_5(tmp_path: Path) -> None:
    sync = load(tmp_path, with_value(f"{S}.only_between", "01:00-05:00")).syncs["nightly"]
    check_window("nightly", sync, at(3))
    with pytest.raises(OutsideWindowError) as refused:
        check_window("nightly", sync, at(9, 15))
    assert refused.value.exit_code == EXIT_OUTSIDE_WINDOW == 5
    assert refused.value.message == (
        "sync nightly may run only between 01:00 and 05:00 UTC (only_between), and it is "
        "09:15 UTC now: nothing was run"
    )
    assert refused.value.fix is not None
    assert "syncs.nightly.only_between" in refused.value.fix


def test_a_bad_window_is_a_config_problem(tmp_path: Path) -> None:
    line = line_for(
        problems(tmp_path, with_value(f"{S}.only_between", "1am-5am")), f"{S}.only_between"
    )
    assert "not a time window" in line
    assert "01:00-05:00" in line


def test_the_budget_must_be_positive(tmp_path: Path) -> None:
    line = line_for(
        problems(tmp_path, with_value(f"{S}.max_compute_seconds", 0)), f"{S}.max_compute_seconds"
    )
    assert "(got 0)" in line


def test_history_sql_lists_the_query_ids() -> None:
    assert history_sql([101, 102]) == (
        "SELECT query_id, execution_time, elapsed_time\n"
        "FROM sys_query_history\nWHERE query_id IN (101, 102)"
    )


def test_usage_sql_covers_the_minutes_of_the_run() -> None:
    sql = usage_sql(at(1, 2).replace(second=30), at(1, 7))
    assert sql.endswith(
        "WHERE end_time > '2026-12-07 01:02:00' AND start_time <= '2026-12-07 01:07:00'"
    )


def test_a_spent_budget_refuses_the_next_statement() -> None:
    spend = Spend(budget_seconds=2.0, budget_owner="sync nightly")
    spend.check("table public.sales")
    spend.add(7, 2_500_000_000)
    with pytest.raises(BudgetError) as refused:
        spend.check("table public.sales")
    assert refused.value.message.startswith(
        "table public.sales: not started: the statements of sync nightly have run 2.5 s, past "
        "its budget (max_compute_seconds: 2)"
    )
    assert (spend.refused, spend.query_ids) == (1, [7])


def test_runs_show_prints_what_the_run_cost() -> None:
    from shiftsync.cli.sync import cost_lines

    lines = cost_lines(
        {
            "statements": 12,
            "compute_seconds": 3.25,
            "source": "sys_query_history",
            "budget_seconds": 60,
            "notes": ["the workgroup's usage (SYS_SERVERLESS_USAGE) is for superusers only"],
        }
    )
    assert lines == [
        "redshift: 12 statements, 3.2 s of execution (from sys_query_history), budget 60 s",
        "note: the workgroup's usage (SYS_SERVERLESS_USAGE) is for superusers only",
    ]
    assert cost_lines(None) == []
