"""Logging pieces without I/O: retry reports and tallies, formatters, the context pool, and
the live progress display."""

from __future__ import annotations

import contextvars
import io
import json
import logging

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from rich.console import Console

from shiftsync.aws.retry_log import counting_retries, reason_of, report_retry
from shiftsync.cli.logs import JsonFormatter, TextFormatter, parse_format, parse_level
from shiftsync.cli.progress import LiveProgress, count_text
from shiftsync.engine.runs import RunRecord, TableRun
from shiftsync.errors import ConfigError
from shiftsync.redshift.retry import RetryPolicy
from shiftsync.threads import ContextThreadPool


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "X")


def test_report_retry_logs_the_line_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "shiftsync.retry")
    with counting_retries() as tally:
        report_retry("ExecuteStatement", 3, 8, 4.0, "ThrottlingException")
        report_retry("ExecuteStatement", 4, 8, 8.0, "ThrottlingException")
    report_retry("ExecuteStatement", 5, 8, 8.0, "ThrottlingException")  # outside: not counted
    assert tally.count == 2
    assert caplog.messages[0] == "retrying ExecuteStatement (3/8) in 4.0 s: ThrottlingException"
    assert caplog.records[0].levelno == logging.WARNING


def test_retry_policy_with_a_label_reports_each_retry(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "shiftsync.retry")
    failures = [throttled(), throttled()]

    def call() -> str:
        if failures:
            raise failures.pop()
        return "done"

    policy = RetryPolicy(max_attempts=8, base_delay=1.0, sleep=lambda _s: None, random=lambda: 1)
    with counting_retries() as tally:
        assert policy.run(call, retriable=lambda _e: True, label="DescribeTable") == "done"
    assert tally.count == 2
    assert caplog.messages == [
        "retrying DescribeTable (2/8) in 1.0 s: ThrottlingException",
        "retrying DescribeTable (3/8) in 2.0 s: ThrottlingException",
    ]


def test_reason_of() -> None:
    assert reason_of(throttled()) == "ThrottlingException"
    assert reason_of(None, {"Error": {"Code": "InternalServerException"}}) == (
        "InternalServerException"
    )
    refused = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    assert reason_of(refused).startswith("EndpointConnectionError: Could not connect")
    assert len(reason_of(ValueError("x" * 500))) == 120
    assert reason_of(None, None, 503) == "HTTP 503"


def test_context_thread_pool_carries_the_tally() -> None:
    with counting_retries() as tally, ContextThreadPool(2) as pool:
        futures = [pool.submit(report_retry, "GetObject", 2, 7, 0.1, "SlowDown") for _ in "ab"]
        for future in futures:
            future.result()
    assert tally.count == 2
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
    marker.set("set by the submitter")
    with ContextThreadPool(1) as pool:
        assert pool.submit(marker.get).result() == "set by the submitter"


def record(name: str, level: int, message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, message, None, None)
    made.created = 1_765_098_000.0  # 2025-12-07T09:00:00Z
    made.__dict__.update(extra)
    return made


def test_text_format_starts_with_the_utc_time() -> None:
    text = TextFormatter()
    assert text.format(record("shiftsync.progress", logging.INFO, "t: ok")) == (
        "2025-12-07T09:00:00Z t: ok"
    )
    assert text.format(record("shiftsync.retry", logging.WARNING, "retrying X")) == (
        "2025-12-07T09:00:00Z WARNING shiftsync.retry: retrying X"
    )


def test_json_format_carries_the_extra_fields() -> None:
    line = JsonFormatter().format(
        record("shiftsync.retry", logging.WARNING, "retrying X", operation="X", attempt=2)
    )
    assert json.loads(line) == {
        "time": "2025-12-07T09:00:00Z",
        "level": "warning",
        "logger": "shiftsync.retry",
        "message": "retrying X",
        "operation": "X",
        "attempt": 2,
    }


def test_levels_and_formats() -> None:
    assert parse_level("INFO") == logging.INFO
    assert parse_format("json") == "json"
    with pytest.raises(ConfigError, match="is not a level"):
        parse_level("verbose")
    with pytest.raises(ConfigError, match="is not a format"):
        parse_format("yaml")


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0 rows"), (1, "1 row"), (2, "2 rows"), (1234, "1,234 rows")]
)
def test_count_text(count: int, text: str) -> None:
    assert count_text(count, "row") == text


def test_live_progress_shows_share_rate_and_tables_done() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    run = RunRecord(run_id="20260101T000000Z-abcdef", sync="s", started_at="x")
    first = TableRun("public.sales", "sales", "full_refresh", method="data_api")
    first.estimated_rows = 200
    second = TableRun("public.users", "users", "full_refresh", method="unload")
    run.tables = [first, second]
    with LiveProgress(console) as live:
        live.run_planned(run)
        live.table_started(first)
        live.table_progress(first, 100, 1000)
        live.progress.refresh()
        middle = screen.getvalue()
        first.status, first.rows = "ok", 200
        live.table_finished(first)
    assert "50%" in middle
    assert "100/200" in middle
    assert "rows/s" in middle
    assert "0/2" in middle
    assert "1/2" in screen.getvalue()
