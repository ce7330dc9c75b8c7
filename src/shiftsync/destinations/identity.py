"""Which identity writes a destination in S3, as a credentials provider.

`connection`: the assumed role of the sync's source connection (the provider the engine
hands in); `default`: botocore's default chain (None here: each library then asks it);
`{profile: NAME}`: that profile of the AWS configuration files.
"""

from __future__ import annotations

from typing import Literal

import botocore.session
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import BotoCoreError

from shiftsync.config.models import ProfileCredentials
from shiftsync.destinations.s3fs import CredentialsProvider
from shiftsync.errors import AccessError, ConfigError

Identity = Literal["connection", "default"] | ProfileCredentials


def describe_identity(identity: Identity) -> str:
    if isinstance(identity, ProfileCredentials):
        return f"AWS profile {identity.profile!r}"
    if identity == "connection":
        return "the role of the sync's source connection"
    return "boto3's default credentials"


def profile_credentials(profile: str) -> CredentialsProvider:
    """A provider of `profile`'s credentials (refreshed by botocore when they are temporary)."""
    try:
        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise ConfigError(
            f"AWS profile {profile!r} (credentials of a destination) cannot be used: {exc}",
            fix=f"add [profile {profile}] to ~/.aws/config, or set credentials: default",
        ) from exc
    if credentials is None:
        raise AccessError(
            f"AWS profile {profile!r} (credentials of a destination) has no credentials",
            fix=f"run `aws configure --profile {profile}`, or set credentials: connection",
        )

    def provide() -> ReadOnlyCredentials:
        return credentials.get_frozen_credentials()

    return provide


def credentials_for(
    identity: Identity, connection: CredentialsProvider | None
) -> CredentialsProvider | None:
    """The provider for `identity`; None means botocore's default chain."""
    if isinstance(identity, ProfileCredentials):
        return profile_credentials(identity.profile)
    if identity == "connection":
        return connection
    return None
