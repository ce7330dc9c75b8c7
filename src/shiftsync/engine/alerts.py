"""Alerts after a run: signed JSON webhooks and apprise notifications.

A run alerts when it ends `failed` or `partial`, or `ok` right after a failed or partial run
of the same sync (`recovered`), as far as `alerts.events` allows. Each webhook gets this body,
POSTed as application/json:

    {"event": "failed", "sync": "nightly", "run_id": "...", "status": "failed",
     "started_at": "...", "finished_at": "...", "tables": 10, "failed_tables":
     [{"table": "public.sales", "error": "...", "fix": "..."}], "rows": 123, "error": null}

signed (when the webhook has a `secret`) in two headers:

    X-Shiftsync-Timestamp: 1767000000
    X-Shiftsync-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

A receiver recomputes the HMAC over the exact bytes it received and refuses old timestamps
(replays). A try that fails (connection refused, timeout, a status outside 2xx) is retried
after `backoff_seconds`, doubling, up to `attempts` tries. What could not be delivered is
written into the run record's notes; an alert never fails the run. Notes and errors name a
webhook by its position and host only: its URL may hold a credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypedDict
from urllib.parse import urlsplit

from shiftsync.config.alerts import AlertEvent, AlertsConfig, WebhookConfig
from shiftsync.engine.runs import RunRecord, RunStatus

SIGNATURE_HEADER: Final = "X-Shiftsync-Signature"
TIMESTAMP_HEADER: Final = "X-Shiftsync-Timestamp"
EVENT_HEADER: Final = "X-Shiftsync-Event"
USER_AGENT: Final = "shiftsync-alerts"
_BAD: Final = ("failed", "partial")


def alert_event(previous_status: str | None, status: str) -> AlertEvent | None:
    """The alert a run ending in `status` raises, given the status of the sync's run before."""
    if status == "failed":
        return "failed"
    if status == "partial":
        return "partial"
    if status == "ok" and previous_status in (*_BAD, "interrupted"):
        return "recovered"
    return None


class FailedTable(TypedDict):
    table: str
    error: str | None
    fix: str | None


class AlertBody(TypedDict):
    """The JSON body of an alert, as webhooks receive it."""

    event: AlertEvent
    sync: str
    run_id: str
    status: RunStatus
    started_at: str
    finished_at: str | None
    tables: int
    failed_tables: list[FailedTable]
    rows: int
    error: str | None


def alert_body(event: AlertEvent, record: RunRecord) -> AlertBody:
    """The JSON body of an alert (no secret: the run record holds none)."""
    return {
        "event": event,
        "sync": record.sync,
        "run_id": record.run_id,
        "status": record.status,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "tables": len(record.tables),
        "failed_tables": [
            {"table": t.table, "error": t.error, "fix": t.fix} for t in record.failed_tables
        ],
        "rows": sum(t.rows for t in record.tables),
        "error": record.error,
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float = 300
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(given, signature(secret, timestamp, body))


def describe_url(index: int, url: str) -> str:
    """How notes name a webhook: its position and host, never its path or query."""
    return f"webhook {index + 1} ({urlsplit(url).hostname or 'no host'})"


@dataclass(frozen=True)
class Delivery:
    target: str
    ok: bool
    attempts: int
    error: str | None = None


def post_webhook(
    hook: WebhookConfig,
    body: bytes,
    event: str,
    *,
    label: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> Delivery:
    """POST the body with retries and backoff; a Delivery, never an exception."""
    url = hook.url.get_secret_value()
    wait = hook.backoff_seconds
    error = "not tried"
    for attempt in range(1, hook.attempts + 1):
        timestamp = str(int(clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: event,
            TIMESTAMP_HEADER: timestamp,
        }
        if hook.secret is not None:
            headers[SIGNATURE_HEADER] = signature(hook.secret.get_secret_value(), timestamp, body)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=hook.timeout_seconds) as response:  # noqa: S310
                if 200 <= response.status < 300:
                    return Delivery(label, True, attempt)
                error = f"HTTP {response.status}"
        except urllib.error.HTTPError as failure:
            error = f"HTTP {failure.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as failure:
            reason = getattr(failure, "reason", failure)
            error = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
        if attempt < hook.attempts:
            sleep(wait)
            wait *= 2
    # The error text of urllib may quote the URL; keep only what names no credential.
    return Delivery(label, False, hook.attempts, error.replace(url, "<url>"))


def notify_apprise(urls: Sequence[str], title: str, text: str) -> list[Delivery]:
    """Send through apprise, one URL at a time so that each failure is known."""
    try:
        import apprise
    except ImportError:
        return [
            Delivery(
                f"apprise URL {i + 1}",
                False,
                0,
                "apprise is not installed: pip install 'shiftsync[serve]'",
            )
            for i in range(len(urls))
        ]
    results = []
    for index, url in enumerate(urls):
        label = f"apprise URL {index + 1} ({url.split('://', 1)[0]}://)"
        notifier = apprise.Apprise()
        if not notifier.add(url):
            results.append(Delivery(label, False, 0, "apprise does not understand this URL"))
            continue
        ok = bool(notifier.notify(title=title, body=text))
        results.append(Delivery(label, ok, 1, None if ok else "apprise could not deliver it"))
    return results


def alert_text(body: AlertBody) -> tuple[str, str]:
    """A title and a short plain text for chat and e-mail."""
    title = f"shiftsync: sync {body['sync']} {body['event']}"
    lines = [
        f"run {body['run_id']}: {body['status']}, {body['tables']} tables, {body['rows']} rows"
    ]
    lines += [f"{t['table']}: {t['error']}" for t in body["failed_tables"][:10]]
    if body.get("error"):
        lines.append(str(body["error"]))
    return title, "\n".join(lines)


def send_alerts(
    alerts: AlertsConfig,
    event: AlertEvent,
    record: RunRecord,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Deliver one alert to every webhook and apprise URL; every delivery's outcome."""
    body = alert_body(event, record)
    data = json.dumps(body, sort_keys=True).encode()
    deliveries = [
        post_webhook(
            hook,
            data,
            event,
            label=describe_url(i, hook.url.get_secret_value()),
            sleep=sleep,
        )
        for i, hook in enumerate(alerts.webhooks)
    ]
    if alerts.apprise:
        title, text = alert_text(body)
        deliveries += notify_apprise([u.get_secret_value() for u in alerts.apprise], title, text)
    return deliveries


def alert_after_run(
    alerts: AlertsConfig | None, previous_status: str | None, record: RunRecord
) -> list[Delivery]:
    """Alert for a finished run when it calls for one; failures go into the record's notes.

    The caller saves the record afterwards.
    """
    if alerts is None or record.status == "running":
        return []
    event = alert_event(previous_status, record.status)
    if event is None or event not in alerts.events:
        return []
    deliveries = send_alerts(alerts, event, record)
    for delivery in deliveries:
        if not delivery.ok:
            record.notes.append(
                f"alert {event} not delivered to {delivery.target} after "
                f"{delivery.attempts} tries: {delivery.error}"
            )
    return deliveries


__all__ = [
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Delivery",
    "alert_after_run",
    "alert_body",
    "alert_event",
    "post_webhook",
    "send_alerts",
    "signature",
    "verify_signature",
]
