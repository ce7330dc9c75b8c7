"""The staging bucket: S3 calls through the assumed role, retried and mapped once, here.

UNLOAD's reader fetches the manifest and deletes a read's files through `StagingBucket`;
`find_staged` and `StagingBucket.delete` serve `shiftsync cleanup`, which removes what a
crashed run left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, TypeVar

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from shiftsync.aws.session import AssumedRoleSession, error_code
from shiftsync.config import UnloadConfig
from shiftsync.errors import AccessError, ShiftsyncError, SourceError
from shiftsync.redshift.data_api_errors import ACCESS_CODES, is_retriable
from shiftsync.redshift.retry import RetryPolicy
from shiftsync.redshift.stats import ReadStats

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import DeleteObjectsOutputTypeDef, DeleteTypeDef, ObjectTypeDef

log = logging.getLogger("shiftsync.redshift")

T = TypeVar("T")

DELETE_BATCH: Final = 1000
_S3_RETRIABLE: Final = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503", "500"}
)


def is_missing(error: ClientError) -> bool:
    return error_code(error) in ("NoSuchKey", "404")


class BadObject(Exception):
    """A staged object is missing for now, or does not match its manifest entry (retried,
    then a SourceError)."""


def s3_retriable(error: Exception) -> bool:
    if isinstance(error, BadObject | IncompleteReadError):
        return True
    if isinstance(error, ClientError) and error_code(error) in _S3_RETRIABLE:
        return True
    return is_retriable(error)


def _s3_error(error: Exception, action: str, target: str, role_arn: str) -> ShiftsyncError:
    if isinstance(error, ClientError):
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        if code in ACCESS_CODES or code in ("AccessDenied", "403"):
            return AccessError(
                f"s3:{action} on {target} was refused: {code}: {message}",
                fix=f"the role {role_arn} needs s3:{action} on the staging bucket; "
                "`shiftsync policy` prints the policy",
            )
        return SourceError(
            f"s3:{action} on {target} failed: {code}: {message}",
            fix="run again; if it repeats, check the staging bucket",
        )
    return SourceError(
        f"s3:{action} on {target} failed: {error}",
        fix="check network access to S3 (or AWS_ENDPOINT_URL_S3) and run again",
    )


class StagingBucket:
    """S3 calls on the staging bucket, through the assumed role's (refreshing) credentials."""

    def __init__(self, session: AssumedRoleSession, retry: RetryPolicy) -> None:
        self.session = session
        self.retry = retry

    def s3(self) -> S3Client:
        """The session's S3 client."""
        # The session's clients are untyped where they are made (aws/): this is the one place
        # an S3 client comes into the staging code, so it gets its stub type here.
        client: S3Client = self.session.client("s3")
        return client

    def run(self, fn: Callable[[], T], action: str, target: str, stats: ReadStats) -> T:
        def count(_retry: int, error: Exception, pause: float) -> None:
            stats.add(retries=1)
            # The retry line itself is logged at WARNING by the policy (label=).
            log.debug("s3:%s on %s failed (%s); retrying in %.2f s", action, target, error, pause)

        try:
            return self.retry.run(
                lambda: self.session.call(fn),
                retriable=s3_retriable,
                on_retry=count,
                label=f"s3:{action}",
            )
        except (ClientError, BotoConnectionError, HTTPClientError, IncompleteReadError) as error:
            raise _s3_error(error, action, target, self.session.role_arn) from error

    def get(self, bucket: str, key: str, *, stats: ReadStats, missing_attempts: int = 1) -> bytes:
        """The object's bytes; a missing key is tried `missing_attempts` times in all."""
        s3 = self.s3()
        missing = 0

        def attempt() -> bytes:
            nonlocal missing
            try:
                response = s3.get_object(Bucket=bucket, Key=key)
            except ClientError as error:
                if is_missing(error):
                    missing += 1
                    if missing < missing_attempts:
                        raise BadObject(f"s3://{bucket}/{key} is missing") from error
                raise
            body = response["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        try:
            data = self.run(attempt, "GetObject", f"s3://{bucket}/{key}", stats)
        except BadObject as error:
            raise SourceError(str(error), fix="run again") from error
        return data

    def list(self, bucket: str, prefix: str, *, stats: ReadStats) -> list[ObjectTypeDef]:
        s3 = self.s3()

        def collect() -> list[ObjectTypeDef]:
            found: list[ObjectTypeDef] = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                found.extend(page.get("Contents") or [])
            return found

        return self.run(collect, "ListBucket", f"s3://{bucket}/{prefix}", stats)

    def delete(self, bucket: str, keys: Sequence[str], *, stats: ReadStats) -> int:
        """Delete keys, 1,000 a call; the number deleted. Failed keys are logged."""
        s3 = self.s3()
        deleted = 0
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            request: DeleteTypeDef = {"Objects": [{"Key": key} for key in batch], "Quiet": True}

            def attempt(request: DeleteTypeDef = request) -> DeleteObjectsOutputTypeDef:
                return s3.delete_objects(Bucket=bucket, Delete=request)

            answer = self.run(attempt, "DeleteObject", f"s3://{bucket}/{batch[0]}…", stats)
            errors = answer.get("Errors") or []
            for item in errors:
                log.warning(
                    "could not delete staged object s3://%s/%s: %s",
                    bucket,
                    item.get("Key"),
                    item.get("Message") or item.get("Code"),
                )
            deleted += len(batch) - len(errors)
        stats.add(staged_deleted=deleted)
        return deleted

    def delete_prefix(self, bucket: str, prefix: str, *, stats: ReadStats) -> int:
        keys = [str(item["Key"]) for item in self.list(bucket, prefix, stats=stats)]
        return self.delete(bucket, keys, stats=stats) if keys else 0


@dataclass(frozen=True)
class StagedObject:
    key: str
    size: int
    last_modified: datetime


def find_staged(
    bucket: StagingBucket,
    unload: UnloadConfig,
    *,
    older_than_hours: float,
    stats: ReadStats,
    now: datetime | None = None,
) -> list[StagedObject]:
    """Objects under the unload prefix older than the age (what a crashed run left)."""
    limit = (now or datetime.now(UTC)) - timedelta(hours=older_than_hours)
    found = []
    for item in bucket.list(unload.bucket, unload.prefix, stats=stats):
        modified = item.get("LastModified")
        if not isinstance(modified, datetime):
            continue
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        if modified <= limit:
            found.append(StagedObject(str(item["Key"]), int(item.get("Size", 0)), modified))
    return sorted(found, key=lambda item: item.key)
