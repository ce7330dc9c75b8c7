"""The botocore internals shiftsync relies on (aws/botocore_seams.py) are there, and work."""

from __future__ import annotations

import threading

import botocore
from botocore.credentials import RefreshableCredentials

from shiftsync.aws import botocore_seams


def credentials(key: str) -> RefreshableCredentials:
    return RefreshableCredentials.create_from_metadata(
        metadata={
            "access_key": key,
            "secret_key": f"secret-of-{key}",
            "token": f"token-of-{key}",
            "expiry_time": "2999-01-01T00:00:00Z",
        },
        refresh_using=dict,
        method="test",
    )


def fresh(key: str) -> dict[str, str]:
    return {
        "access_key": key,
        "secret_key": f"secret-of-{key}",
        "token": f"token-of-{key}",
        "expiry_time": "2999-01-01T00:00:00Z",
    }


def test_this_botocore_has_every_internal_shiftsync_uses() -> None:
    assert botocore_seams.missing_seams() == [], (
        f"botocore {botocore.__version__} changed internals shiftsync relies on: adapt "
        "src/shiftsync/aws/botocore_seams.py before widening the botocore range in pyproject.toml"
    )


def test_a_session_signs_with_the_given_credentials() -> None:
    given = credentials("AKIDGIVEN")
    session = botocore_seams.session_with_credentials(given, "eu-west-1")
    assert session.get_credentials() is given
    assert session.get_config_variable("region") == "eu-west-1"


def test_replace_keys_publishes_a_whole_new_set() -> None:
    current = credentials("AKIDOLD")
    assert botocore_seams.replace_keys(current, "AKIDOLD", lambda: fresh("AKIDNEW"))
    frozen = current.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        "AKIDNEW",
        "secret-of-AKIDNEW",
        "token-of-AKIDNEW",
    )
    assert botocore_seams.current_access_key(current) == "AKIDNEW"


def test_replace_keys_does_nothing_when_another_thread_replaced_them() -> None:
    current = credentials("AKIDOLD")
    fetched: list[str] = []

    def fetch() -> dict[str, str]:
        fetched.append("x")
        return fresh(f"AKIDNEW{len(fetched)}")

    threads = [
        threading.Thread(target=botocore_seams.replace_keys, args=(current, "AKIDOLD", fetch))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fetched == ["x"]
    assert current.get_frozen_credentials().access_key == "AKIDNEW1"
