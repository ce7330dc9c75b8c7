"""What the role needs to write a destination in S3 (Parquet, Iceberg, Delta). Pure.

A destination with `credentials: connection` is written by the role of the sync's source
connection, so that role's permission policy must grant, on the destination's prefix: listing
(`s3:ListBucket` on the bucket, limited to the prefix), and reading, writing and deleting
objects (a load writes files, reads the table's metadata or pointer, and deletes superseded
files and probes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from shiftsync.aws.iam_document import Statement
from shiftsync.config import ShiftsyncConfig

DESTINATION_OBJECT_ACTIONS: Final[tuple[str, ...]] = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
)


def split_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key prefix ending in / or empty) of s3://bucket/prefix."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _sid(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def destination_statements(
    partition: str, destinations: Sequence[tuple[str, str]]
) -> list[Statement]:
    """The statements for each (destination name, s3:// URL)."""
    statements: list[Statement] = []
    for name, url in destinations:
        bucket, prefix = split_s3_url(url)
        bucket_arn = f"arn:{partition}:s3:::{bucket}"
        statements += [
            {
                "Sid": f"Destination{_sid(name)}List",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            },
            {
                "Sid": f"Destination{_sid(name)}Objects",
                "Effect": "Allow",
                "Action": list(DESTINATION_OBJECT_ACTIONS),
                "Resource": f"{bucket_arn}/{prefix}*",
            },
        ]
    return statements


def s3_destinations_of(config: ShiftsyncConfig, connection: str) -> list[tuple[str, str]]:
    """(name, s3:// URL) of the S3 destinations the role of `connection` writes: those of its
    syncs whose `credentials` is `connection`."""
    found: dict[str, str] = {}
    for sync in config.syncs.values():
        if sync.source != connection:
            continue
        destination = config.destinations.get(sync.destination)
        if destination is None or getattr(destination, "credentials", None) != "connection":
            continue
        url = getattr(destination, "warehouse", None) or getattr(destination, "path", None)
        if isinstance(url, str) and url.startswith("s3://"):
            found[sync.destination] = url
    return sorted(found.items())
