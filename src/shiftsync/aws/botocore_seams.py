"""The few botocore internals shiftsync relies on, in one place, each checked by a test.

botocore has no public way to (1) hand a Session ready-made refreshable credentials or (2)
replace a RefreshableCredentials' keys at once when AWS says they expired before their time.
Both are done here with private attributes that botocore has kept for years; the range of
botocore in pyproject.toml is the one tests/unit/test_botocore_seams.py ran against, and that
test fails loudly, naming the attribute, on a botocore that changed them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final, Protocol, cast

import botocore.session
from botocore.credentials import RefreshableCredentials

# What each seam touches: checked by `missing_seams()`.
SESSION_ATTRIBUTES: Final = ("_credentials",)
CREDENTIAL_ATTRIBUTES: Final = (
    "_refresh_lock",
    "_access_key",
    "_set_from_data",
    "_publish_refresh",
)


class _RefreshInternals(Protocol):
    """The private side of RefreshableCredentials used here (CREDENTIAL_ATTRIBUTES)."""

    _refresh_lock: threading.Lock
    _access_key: str

    def _set_from_data(self, data: dict[str, str]) -> None: ...

    def _publish_refresh(self) -> None: ...


def _internals(credentials: RefreshableCredentials) -> _RefreshInternals:
    # botocore's stubs declare no private attribute: this names the ones missing_seams() checks.
    return cast(_RefreshInternals, credentials)


def session_with_credentials(
    credentials: RefreshableCredentials, region: str
) -> botocore.session.Session:
    """A botocore session that signs with `credentials` (refreshing as they do)."""
    session = botocore.session.get_session()
    setattr(session, "_credentials", credentials)  # noqa: B010 - a private attribute, on purpose
    session.set_config_variable("region", region)
    return session


def current_access_key(credentials: RefreshableCredentials) -> str:
    """The access key now in use, without triggering a refresh."""
    return _internals(credentials)._access_key


def replace_keys(
    credentials: RefreshableCredentials, stale_access_key: str, fetch: Callable[[], dict[str, str]]
) -> bool:
    """Replace the keys with `fetch()`'s unless another thread already replaced `stale` ones.

    botocore's own refresh sets and publishes the keys under `_refresh_lock`: holding any other
    lock would let the two interleave and publish one refresh's access key with the other's
    secret. Returns whether this call fetched new keys.
    """
    internal = _internals(credentials)
    with internal._refresh_lock:
        if internal._access_key != stale_access_key:
            return False
        internal._set_from_data(fetch())
        # botocore signs with the frozen copy: publish the new keys to it.
        internal._publish_refresh()
        return True


def missing_seams() -> list[str]:
    """The internals above that this botocore lacks (empty when all are there)."""
    session = botocore.session.get_session()
    credentials = RefreshableCredentials.create_from_metadata(
        metadata={
            "access_key": "AKIDEXAMPLE",
            "secret_key": "secret",
            "token": "token",
            "expiry_time": "2999-01-01T00:00:00Z",
        },
        refresh_using=dict,
        method="probe",
    )
    missing = [
        f"botocore.session.Session.{a}" for a in SESSION_ATTRIBUTES if not hasattr(session, a)
    ]
    missing += [
        f"botocore.credentials.RefreshableCredentials.{a}"
        for a in CREDENTIAL_ATTRIBUTES
        if not hasattr(credentials, a)
    ]
    return missing


__all__ = ["current_access_key", "missing_seams", "replace_keys", "session_with_credentials"]
