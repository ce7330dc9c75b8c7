"""What the role needs to write a destination in S3 (Parquet, Iceberg, Delta). Pure.

A destination with `credentials: connection` is written by the role of the sync's source
connection, so that role's permission policy must grant, on the destination's prefix: listing
(`s3:ListBucket` on the bucket, limited to the prefix), and reading, writing and deleting
objects (a load writes files, reads the table's metadata or pointer, and deletes superseded
files and probes).

An Iceberg destination with `catalog: glue` also needs the Glue Data Catalog: its namespace
is a Glue database, each table a Glue table, and AWS authorises every catalog call on the
catalog, the database and the table it names, so the statement lists those three ARNs for the
destination's database and its tables only. Its location is written `glue://NAMESPACE` here.
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


# What the Iceberg destination calls through pyiceberg's GlueCatalog: the namespace is created
# when missing (CreateDatabase, answered AlreadyExists when it is there), a table is read
# (GetTable), created, committed (UpdateTable with the version it read) and, for the probe of
# `shiftsync check`, dropped; a new table's location comes from its database (GetDatabase).
GLUE_ACTIONS: Final[tuple[str, ...]] = (
    "glue:GetDatabase",
    "glue:CreateDatabase",
    "glue:GetTable",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:DeleteTable",
)
GLUE_SCHEME: Final = "glue://"


def glue_location(namespace: str) -> str:
    """How a Glue catalog's namespace is written among destination locations."""
    return f"{GLUE_SCHEME}{namespace}"


def glue_resources(partition: str, region: str, account: str, namespace: str) -> list[str]:
    """The catalog, the database `namespace` and its tables."""
    prefix = f"arn:{partition}:glue:{region}:{account}"
    return [f"{prefix}:catalog", f"{prefix}:database/{namespace}", f"{prefix}:table/{namespace}/*"]


def _sid(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def destination_statements(
    partition: str,
    destinations: Sequence[tuple[str, str]],
    *,
    region: str = "*",
    account: str = "*",
) -> list[Statement]:
    """The statements for each (destination name, s3:// URL or glue://NAMESPACE); `region`
    and `account` are those of the Glue Data Catalog."""
    statements: list[Statement] = []
    for name, url in destinations:
        if url.startswith(GLUE_SCHEME):
            namespace = url.removeprefix(GLUE_SCHEME)
            statements.append(
                {
                    "Sid": f"Destination{_sid(name)}GlueCatalog",
                    "Effect": "Allow",
                    "Action": list(GLUE_ACTIONS),
                    "Resource": glue_resources(partition, region, account, namespace),
                }
            )
            continue
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
    syncs whose `credentials` is `connection`; an Iceberg destination with a Glue catalog also
    gives (name, glue://NAMESPACE)."""
    found: dict[str, str] = {}
    glue: list[tuple[str, str]] = []
    for sync in config.syncs.values():
        if sync.source != connection:
            continue
        destination = config.destinations.get(sync.destination)
        if destination is None or getattr(destination, "credentials", None) != "connection":
            continue
        url = getattr(destination, "warehouse", None) or getattr(destination, "path", None)
        if isinstance(url, str) and url.startswith("s3://"):
            found[sync.destination] = url
        if getattr(destination, "catalog", None) == "glue":
            entry = (sync.destination, glue_location(str(getattr(destination, "namespace", ""))))
            if entry not in glue:
                glue.append(entry)
    return sorted([*found.items(), *glue])
