"""`shiftsync check` of the destinations the connection's syncs write: each destination's own
probe (`Probed.probe()` where it has one, else the `Destination.check()` a sync runs), as the
identity that writes it in a sync.

Parquet writes, reads and deletes a probe object; Iceberg creates, writes, reads and drops a
probe table in its catalog; Delta writes, reads and deletes a probe table; DuckDB opens its
file; PostgreSQL creates and rolls back a table. A destination in S3 with `credentials:
connection` is probed with the role this check assumed, so a missing permission shows here,
named with the identity and the S3 operation that was refused, not in the first sync.

Before its own probe, a destination in S3 gets one check per S3 action it needs
(destination_actions.py); when one is refused the destination's probe is skipped, so the
refused action is the one failure shown.
"""

from __future__ import annotations

from pathlib import Path

from shiftsync.config import DestinationConfig
from shiftsync.destinations.s3fs import CredentialsProvider
from shiftsync.errors import ShiftsyncError
from shiftsync.preflight.checks import CheckResult, Context, syncs_reading
from shiftsync.preflight.destination_actions import s3_action_checks

DESTINATION_CHECK: str = "destination"


def check_name(destination: str) -> str:
    return f"{DESTINATION_CHECK} {destination}"


def destination_checks(ctx: Context, folder: Path) -> None:
    """One result per destination of the connection's syncs."""
    from shiftsync.destinations.base import Probed
    from shiftsync.destinations.registry import DestinationContext, create_destination

    names = sorted({s.destination for s in syncs_reading(ctx.config, ctx.connection_name).values()})
    role = ctx.assumed.frozen_credentials if ctx.assumed is not None else None
    for name in names:
        config = ctx.config.destinations.get(name)
        if config is None:
            continue
        try:
            if not _actions_allowed(ctx, name, config, role):
                ctx.add(
                    CheckResult(
                        check_name(name),
                        "skip",
                        "not probed: an S3 action this destination needs was refused (above)",
                    )
                )
                continue
            destination = create_destination(
                config, DestinationContext(folder=folder, connection_credentials=role)
            )
            try:
                if isinstance(destination, Probed):
                    destination.probe()
                else:
                    destination.check()
            finally:
                destination.close()
        except ShiftsyncError as error:
            ctx.add(CheckResult(check_name(name), "fail", error.message, error.fix))
        else:
            ctx.add(
                CheckResult(
                    check_name(name), "pass", f"{config.type}: probe written, read and removed"
                )
            )


def s3_url(config: DestinationConfig) -> str | None:
    """The s3:// URL a destination writes, or None when it is not in S3."""
    url = getattr(config, "warehouse", None) or getattr(config, "path", None)
    return url if isinstance(url, str) and url.startswith("s3://") else None


def _actions_allowed(
    ctx: Context, name: str, config: DestinationConfig, role: CredentialsProvider | None
) -> bool:
    from shiftsync.destinations.identity import credentials_for, describe_identity

    url = s3_url(config)
    identity = getattr(config, "credentials", None)
    if url is None or identity is None:
        return True
    provider = credentials_for(identity, role)
    return s3_action_checks(ctx, name, url, provider, describe_identity(identity))
