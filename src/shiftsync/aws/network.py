"""A call that never reached AWS, told apart and put in words: DNS, TLS, or no connection.

botocore raises these as exceptions of its own with a chain of urllib3 and socket errors under
them; a user should get one `error:` naming the endpoint and what failed, and one `fix:`.
"""

from __future__ import annotations

from typing import Final, Literal

from botocore.exceptions import (
    BotoCoreError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)

from shiftsync.errors import AccessError

Kind = Literal["dns", "tls", "unreachable"]

# How getaddrinfo's failures read on Linux, macOS and Windows.
_DNS_WORDS: Final = (
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "getaddrinfo failed",
    "no address associated with hostname",
    "failed to resolve",
)
NETWORK_ERRORS: Final = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    SSLError,
    ProxyConnectionError,
    ConnectionClosedError,
)


def _chain_text(error: BaseException) -> str:
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(str(current))
        inner = getattr(current, "kwargs", {}).get("error") if hasattr(current, "kwargs") else None
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return " ".join(parts).lower()


def network_kind(error: BotoCoreError) -> Kind:
    """What failed (pure, from the error and the errors under it)."""
    if isinstance(error, SSLError):
        return "tls"
    text = _chain_text(error)
    if any(words in text for words in _DNS_WORDS):
        return "dns"
    if "ssl" in text or "certificate" in text:
        return "tls"
    return "unreachable"


def endpoint_of(error: BotoCoreError) -> str:
    kwargs = getattr(error, "kwargs", {}) or {}
    return str(kwargs.get("endpoint_url") or "the endpoint")


def network_error(error: BotoCoreError, service: str, region: str) -> AccessError:
    """One error and its fix for a call to `service` that never reached it."""
    endpoint = endpoint_of(error)
    variable = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
    default = f"{service}.{region}.amazonaws.com"
    kind = network_kind(error)
    if kind == "dns":
        what = f"the name of {endpoint} could not be resolved (DNS)"
        fix = (
            f"check DNS on this machine and the endpoint: {default} by default, or "
            f"{variable} if it is set"
        )
    elif kind == "tls":
        what = f"the TLS handshake with {endpoint} failed ({error})"
        fix = (
            "check the clock, a proxy that intercepts TLS (set AWS_CA_BUNDLE to its CA "
            f"bundle) and that {variable}, if set, is an https URL of AWS"
        )
    else:
        what = f"no connection to {endpoint} ({error})"
        fix = (
            f"check network access to {default} (firewall, proxy: HTTPS_PROXY) or "
            f"{variable} if it is set, then run again"
        )
    return AccessError(f"{service} could not be reached: {what}", fix=fix)
