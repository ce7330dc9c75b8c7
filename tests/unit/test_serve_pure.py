"""The pure parts of `shiftsync serve` and alerts: binding rules, YAML insertion, charts,
alert events and signatures, the error messages of malformed bodies.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import xml.etree.ElementTree as ET

import pytest
import yaml
from pydantic_core import ErrorDetails

from shiftsync.config import config_template
from shiftsync.config.alerts import AlertsConfig
from shiftsync.engine.alerts import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    alert_body,
    alert_event,
    describe_url,
    signature,
    verify_signature,
)
from shiftsync.engine.runs import RunRecord, TableRun
from shiftsync.errors import ConfigError
from shiftsync.serve.charts import line_chart, nice_max
from shiftsync.serve.problems import validation_message
from shiftsync.serve.security import check_bind, is_loopback
from shiftsync.serve.workspace_edit import insert_entry

# --- binding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.com", "10.0.0.1"])  # noqa: S104
def test_other_hosts_need_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigError) as caught:
        check_bind(host, None)
    assert host in caught.value.message
    assert caught.value.fix is not None
    assert "SHIFTSYNC_API_TOKEN" in caught.value.fix
    check_bind(host, "x" * 32)


def test_short_tokens_are_refused() -> None:
    with pytest.raises(ConfigError, match="shorter than 16"):
        check_bind("127.0.0.1", "short")


# --- inserting into shiftsync.yaml -------------------------------------------------------------


ENTRY = {"type": "redshift_serverless", "region": "us-east-1", "workgroup": "wg"}


def test_insert_keeps_comments_and_the_other_entries() -> None:
    text = config_template()
    new = insert_entry(text, "connections", "second", ENTRY)
    assert new.replace("  second:\n", "", 1) != text  # something was added
    for line in text.splitlines():
        assert line in new.splitlines()
    data = yaml.safe_load(new)
    assert data["connections"]["second"] == ENTRY
    assert list(data["connections"]) == ["second", "warehouse"]


def test_insert_follows_the_file_s_indentation() -> None:
    text = "connections:\n    a:\n        type: x\nsyncs: {}\n"
    new = insert_entry(text, "connections", "b", {"type": "y"})
    assert "    b:\n      type: y\n" in new
    assert yaml.safe_load(new)["connections"] == {"b": {"type": "y"}, "a": {"type": "x"}}


def test_insert_adds_a_missing_section() -> None:
    new = insert_entry("connections:\n  a: {type: x}\n", "syncs", "s", {"source": "a"})
    assert yaml.safe_load(new)["syncs"] == {"s": {"source": "a"}}


def test_insert_refuses_flow_style_sections() -> None:
    with pytest.raises(ValueError, match="one line"):
        insert_entry("connections: {a: {type: x}}\n", "connections", "b", ENTRY)


def test_insert_quotes_what_yaml_would_misread() -> None:
    new = insert_entry("syncs:\n", "syncs", "s", {"schedule": "0 3 * * *", "tables": ["*.x"]})
    assert yaml.safe_load(new)["syncs"]["s"] == {"schedule": "0 3 * * *", "tables": ["*.x"]}


# --- charts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (7, 10), (12, 20), (230, 250), (0.3, 0.5), (51_000, 100_000)]
)
def test_nice_max(value: float, top: float) -> None:
    assert nice_max(value) == pytest.approx(top)


def test_line_chart_plots_each_run() -> None:
    svg = line_chart("rows <per> run", [10, 20, 15], ["a", "b", "c"], failed=[False, True, False])
    root = ET.fromstring(svg)  # noqa: S314 (our own output)
    ns = "{http://www.w3.org/2000/svg}"
    circles = root.findall(f"{ns}circle")
    assert len(circles) == 3
    assert circles[1].get("stroke") == "#d62728"  # the failed run
    polyline = root.find(f"{ns}polyline")
    assert polyline is not None
    ys = [float(p.split(",")[1]) for p in (polyline.get("points") or "").split()]
    assert ys[1] < ys[2] < ys[0]  # higher values are higher up (smaller y)
    assert "rows &lt;per&gt; run" in svg


def test_line_chart_without_runs() -> None:
    svg = line_chart("t", [], [])
    assert "no runs yet" in svg
    ET.fromstring(svg)  # noqa: S314 (our own output)


# --- alerts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "status", "event"),
    [
        (None, "failed", "failed"),
        ("ok", "partial", "partial"),
        ("failed", "ok", "recovered"),
        ("partial", "ok", "recovered"),
        ("interrupted", "ok", "recovered"),
        ("ok", "ok", None),
        (None, "ok", None),
        ("failed", "failed", "failed"),
    ],
)
def test_alert_events(previous: str | None, status: str, event: str | None) -> None:
    assert alert_event(previous, status) == event


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"a": 1}'
    expected = hmac.new(b"s" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("s" * 16, "1700000000", body) == f"sha256={expected}"
    headers = {TIMESTAMP_HEADER: "1700000000", SIGNATURE_HEADER: f"sha256={expected}"}
    assert verify_signature("s" * 16, headers, body, now=1700000100)
    assert not verify_signature("s" * 16, headers, body, now=1700009999)  # too old
    assert not verify_signature("t" * 16, headers, body, now=1700000100)
    assert not verify_signature("s" * 16, {**headers, TIMESTAMP_HEADER: "x"}, body, now=0)


def test_alert_body_names_failed_tables() -> None:
    record = RunRecord(run_id="20240101T000000Z-abcdef", sync="nightly", started_at="t")
    record.tables = [
        TableRun("public.a", "public.a", "full_refresh", status="ok", rows=5),
        TableRun("public.b", "", "", status="failed", error="gone", fix="add it"),
    ]
    record.finish()
    body = alert_body("partial", record)
    assert body["status"] == "partial"
    assert body["rows"] == 5
    assert body["failed_tables"] == [{"table": "public.b", "error": "gone", "fix": "add it"}]


def test_webhook_urls_are_named_by_host_only() -> None:
    assert describe_url(0, "https://hooks.slack.com/services/T/B/SECRET") == (
        "webhook 1 (hooks.slack.com)"
    )


def test_alert_config_secrets_are_hidden() -> None:
    config = AlertsConfig.model_validate(
        {
            "webhooks": [{"url": "https://h.example/p?token=abc", "secret": "s" * 20}],
            "apprise": ["slack://T/B/C"],
        }
    )
    shown = repr(config)
    assert "token=abc" not in shown
    assert "s" * 20 not in shown
    assert "slack://T/B/C" not in shown
    assert config.events == ["failed", "partial", "recovered"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "ftp://x/y", "not an http"),
        ("secret", "short", "shorter than 16"),
        ("attempts", 0, "greater than or equal to 1"),
    ],
)
def test_alert_config_problems(field: str, value: object, message: str) -> None:
    hook = {"url": "https://h.example/", "secret": "s" * 16, field: value}
    with pytest.raises(ValueError, match=message):
        AlertsConfig.model_validate({"webhooks": [hook]})


# --- error messages ---------------------------------------------------------------------------


def test_validation_messages_name_the_field_not_the_value() -> None:
    errors: list[ErrorDetails] = [
        {
            "type": "string_type",
            "loc": ("body", "sync"),
            "msg": "Input should be a valid string",
            "input": "pw=1",
        },
        {
            "type": "json_invalid",
            "loc": ("body", 1),
            "msg": "x",
            "input": "{",
            "ctx": {"error": "bad"},
        },
    ]
    text = validation_message(errors)
    assert "sync: Input should be a valid string" in text
    assert "the body is not valid JSON (bad)" in text
    assert "pw=1" not in text
    assert re.search(r"\btraceback\b", text, re.IGNORECASE) is None


def test_alert_events_read_from_yaml() -> None:
    # `events`, not `on`: YAML 1.1 reads a bare `on:` key as the boolean true.
    data = yaml.safe_load("events: [failed]\napprise: ['json://127.0.0.1:1/x']\n")
    assert AlertsConfig.model_validate(data).events == ["failed"]
