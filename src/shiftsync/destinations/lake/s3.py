"""How the lake libraries reach S3: endpoint and region as botocore resolves them, and the
credentials of the identity that writes the destination.

pyiceberg (PyArrowFileIO) and delta-rs (object_store) each take S3 settings as a mapping of
their own; both read neither AWS_ENDPOINT_URL_S3 nor botocore's configuration files the same
way botocore does, so the settings are resolved once here, like s3fs.py does for pyarrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import botocore.session
from botocore.credentials import ReadOnlyCredentials

from shiftsync.destinations.s3fs import CredentialsProvider

_AWS_HOSTS: Final = (".amazonaws.com", ".amazonaws.com.cn")


@dataclass(frozen=True)
class S3Settings:
    """Where S3 is and who writes it; `endpoint` is None for AWS itself."""

    region: str
    endpoint: str | None
    credentials: ReadOnlyCredentials | None


def resolve_s3(provider: CredentialsProvider | None = None) -> S3Settings:
    """The S3 settings botocore would use, with `provider`'s credentials (else the default
    chain's)."""
    session = botocore.session.get_session()
    client = session.create_client("s3")
    endpoint = client.meta.endpoint_url
    host = urlsplit(endpoint).hostname or ""
    credentials = provider() if provider is not None else None
    if credentials is None:
        found = session.get_credentials()
        credentials = found.get_frozen_credentials() if found is not None else None
    return S3Settings(
        region=client.meta.region_name or "us-east-1",
        endpoint=None if host.endswith(_AWS_HOSTS) else endpoint,
        credentials=credentials,
    )


def pyiceberg_properties(settings: S3Settings) -> dict[str, str]:
    """FileIO properties for pyiceberg (`s3.*`)."""
    properties = {"s3.region": settings.region}
    if settings.endpoint is not None:
        properties["s3.endpoint"] = settings.endpoint
    return properties | pyiceberg_credentials(settings, "s3")


def pyiceberg_credentials(settings: S3Settings, service: str) -> dict[str, str]:
    """pyiceberg's `<service>.access-key-id`… properties of the writer's credentials (none for
    boto3's own chain)."""
    credentials = settings.credentials
    if credentials is None:
        return {}
    properties = {
        f"{service}.access-key-id": str(credentials.access_key),
        f"{service}.secret-access-key": str(credentials.secret_key),
    }
    if credentials.token:
        properties[f"{service}.session-token"] = str(credentials.token)
    return properties


def delta_storage_options(settings: S3Settings) -> dict[str, str]:
    """object_store options for delta-rs (`AWS_*`)."""
    options = {"AWS_REGION": settings.region}
    if settings.endpoint is not None:
        options["AWS_ENDPOINT_URL"] = settings.endpoint
        if settings.endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    if settings.credentials is not None:
        options["AWS_ACCESS_KEY_ID"] = str(settings.credentials.access_key)
        options["AWS_SECRET_ACCESS_KEY"] = str(settings.credentials.secret_key)
        if settings.credentials.token:
            options["AWS_SESSION_TOKEN"] = str(settings.credentials.token)
    return options
