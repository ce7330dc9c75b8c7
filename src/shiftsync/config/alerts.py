"""The `alerts:` section of shiftsync.yaml: who is told when a run fails, and how.

Webhook URLs, their signing secrets and apprise URLs all hold credentials (a Slack or Teams
URL is itself the key), so they are `SecretStr`: error lines and the API show them as
<secret>. Write them as ${VAR} and keep the values in the environment.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, SecretStr

from shiftsync.config.models import ConfigModel, config_field
from shiftsync.config.validators import invalid

AlertEvent = Literal["failed", "partial", "recovered"]
ALERT_EVENTS: tuple[AlertEvent, ...] = ("failed", "partial", "recovered")


def _check_http_url(value: SecretStr) -> SecretStr:
    # The value is a secret: the message must not quote it.
    raw = value.get_secret_value().strip()
    if not raw.startswith(("http://", "https://")) or len(raw) < len("http://x"):
        raise invalid("not an http:// or https:// URL", "https://host/path")
    return SecretStr(raw)


def _check_apprise_url(value: SecretStr) -> SecretStr:
    raw = value.get_secret_value().strip()
    if "://" not in raw:
        raise invalid("not an apprise URL", "an apprise URL such as slack://T/B/C or mailtos://...")
    return SecretStr(raw)


def _check_signing_secret(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < 16:
        raise invalid("shorter than 16 characters", "a random string of 16 or more characters")
    return value


class WebhookConfig(ConfigModel):
    """An HTTP endpoint that receives a signed JSON body for each alert."""

    url: Annotated[SecretStr, AfterValidator(_check_http_url)] = config_field(
        expected="an http:// or https:// URL",
        doc="Where the JSON body is POSTed (secret: prefer ${ENV_VAR}).",
    )
    secret: Annotated[SecretStr, AfterValidator(_check_signing_secret)] | None = config_field(
        None,
        expected="16 or more characters",
        doc="Signs each body with HMAC-SHA256 (header X-Shiftsync-Signature); prefer "
        "${ENV_VAR}. Without it bodies are sent unsigned.",
    )
    attempts: int = config_field(
        4, expected="an integer from 1 to 10", doc="Tries before giving up.", ge=1, le=10
    )
    backoff_seconds: float = config_field(
        1.0,
        expected="seconds, 0 to 60",
        doc="The wait before the second try; it doubles after each failed try.",
        ge=0,
        le=60,
    )
    timeout_seconds: float = config_field(
        10.0, expected="seconds, 1 to 120", doc="Per try.", ge=1, le=120
    )


class AlertsConfig(ConfigModel):
    """Alerts after runs: webhooks and apprise URLs (Slack, e-mail, Teams and more)."""

    events: list[AlertEvent] = config_field(
        list(ALERT_EVENTS),
        expected="a list of failed, partial, recovered",
        doc="Which runs alert: failed (every table or the run failed), partial (some "
        "tables failed), recovered (ok after a failed or partial run of the same sync).",
    )
    webhooks: list[WebhookConfig] = config_field(
        [], expected="a list of webhook mappings", doc="Signed JSON webhooks."
    )
    apprise: list[Annotated[SecretStr, AfterValidator(_check_apprise_url)]] = config_field(
        [],
        expected="a list of apprise URLs",
        doc="Notification URLs in apprise's syntax (slack://, mailtos://, msteams://, "
        "json://...); secret: prefer ${ENV_VAR}.",
    )


__all__ = ["ALERT_EVENTS", "AlertEvent", "AlertsConfig", "WebhookConfig"]
