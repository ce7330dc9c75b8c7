"""The principal a role's trust policy names: set in the connection, or whoever we run as."""

from __future__ import annotations

from shiftsync.config import ConnectionConfig
from shiftsync.errors import AccessError


def discover_principal(name: str, conn: ConnectionConfig) -> tuple[str, str]:
    """The principal the trust policy names, and where it came from."""
    if conn.principal_arn:
        return conn.principal_arn, f"connections.{name}.principal_arn"
    from botocore.exceptions import BotoCoreError

    from shiftsync.aws.session import base_session, caller_arn

    set_it = f"or set connections.{name}.principal_arn to the ARN shiftsync will run as"
    try:
        return caller_arn(base_session(conn.region)), "sts:GetCallerIdentity"
    except AccessError as error:
        raise AccessError(error.message, fix=f"{error.fix}; {set_it}") from error
    except BotoCoreError as error:
        raise AccessError(
            f"sts:GetCallerIdentity could not be called to find the principal: {error}",
            fix=f"check the network path to AWS STS, {set_it}",
        ) from error


__all__ = ["discover_principal"]
