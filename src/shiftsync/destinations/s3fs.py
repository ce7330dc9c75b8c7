"""A pyarrow S3 file system that reaches S3 the way botocore would."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast
from urllib.parse import urlsplit

import botocore.session
import pyarrow.fs as pafs
from botocore.credentials import ReadOnlyCredentials

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Called each time the file system is needed, so refreshed role credentials are picked up.
CredentialsProvider = Callable[[], ReadOnlyCredentials]

_AWS_HOSTS: Final = (".amazonaws.com", ".amazonaws.com.cn")


def s3_filesystem(
    credentials: ReadOnlyCredentials | None = None,
    session: botocore.session.Session | None = None,
) -> pafs.S3FileSystem:
    """An S3FileSystem configured as botocore would be.

    pyarrow does not read AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL or the config files' endpoint
    settings, so the endpoint and region come from a botocore client, the credentials from
    `credentials` (an assumed role's) or botocore's default chain.
    """
    session = session or botocore.session.get_session()
    client = session.create_client("s3")
    endpoint = urlsplit(client.meta.endpoint_url)
    options: dict[str, str | None] = {"region": client.meta.region_name or "us-east-1"}
    if not (endpoint.hostname or "").endswith(_AWS_HOSTS):
        options.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme)
    if credentials is None:
        found = session.get_credentials()
        credentials = found.get_frozen_credentials() if found is not None else None
    if credentials is not None:
        options.update(
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            session_token=credentials.token,
        )
    return pafs.S3FileSystem(**options)


def s3_client(
    credentials: ReadOnlyCredentials | None = None,
    session: botocore.session.Session | None = None,
) -> S3Client:
    """A botocore S3 client (endpoint and region as botocore resolves them) with `credentials`
    or botocore's default chain: for what pyarrow's file system cannot do (conditional
    writes, ETags)."""
    session = session or botocore.session.get_session()
    if credentials is None:
        client = session.create_client("s3")
    else:
        client = session.create_client(
            "s3",
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            aws_session_token=credentials.token,
        )
    # botocore builds the client from the service model at run time; the stubs name its type.
    return cast("S3Client", client)
