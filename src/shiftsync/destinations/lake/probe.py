"""The check a sync runs before it reads, for a lake destination: a probe file written and
deleted where the tables live, as the identity that writes them.

Not a probe table: creating, writing, reading and dropping one is a commit and a delete of
the format's metadata on every run, and loads the format's writer before the read, where a
load's memory peaks. `shiftsync check` still probes a whole table (`Probed.probe`, see
destinations/base.py), so every action a load needs is proven there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from botocore.exceptions import ClientError

from shiftsync.destinations.base import new_run_token
from shiftsync.destinations.s3fs import CredentialsProvider, s3_client
from shiftsync.errors import DestinationError

PROBE_PREFIX: Final = "_shiftsync_probe_"
_BODY: Final = b"shiftsync check\n"


def probe_name() -> str:
    """A new name for a probe file or table, unique to this call."""
    return f"{PROBE_PREFIX}{new_run_token()}"


def probe_location(
    location: str,
    probe: str,
    *,
    subject: str,
    identity: str,
    credentials_provider: CredentialsProvider | None,
) -> None:
    """Write and delete the file `probe` in `location` (a local folder, made if missing, or
    s3://bucket/prefix). A refused S3 call is a DestinationError naming the action and
    `identity`; a local failure is the OSError (the caller's errors() names the folder)."""
    if not location.startswith("s3://"):
        folder = Path(location)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / probe).write_bytes(_BODY)
        (folder / probe).unlink()
        return
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    key = f"{prefix}/{probe}" if prefix else probe
    provider = credentials_provider
    client = s3_client(provider() if provider is not None else None)
    action = "s3:PutObject"
    try:
        client.put_object(Bucket=bucket, Key=key, Body=_BODY)
        action = "s3:DeleteObject"
        client.delete_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        writer = identity or "the identity of this destination"
        left = "" if action == "s3:PutObject" else " (the probe object is left behind)"
        raise DestinationError(
            f"{subject}: writing and deleting the probe object s3://{bucket}/{key} failed: "
            f"{writer} was refused {action}{left}: {exc}",
            fix=f"allow s3:PutObject and s3:DeleteObject on arn:aws:s3:::{bucket}/"
            f"{prefix + '/' if prefix else ''}* for {writer} "
            "(`shiftsync policy` prints the statements this destination needs)",
        ) from exc


__all__ = ["PROBE_PREFIX", "probe_location", "probe_name"]
