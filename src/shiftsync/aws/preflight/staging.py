"""UNLOAD's staging: a probe object through the five S3 actions, the bucket's region, a real
UNLOAD, and the removal of everything the checks wrote under their probe prefix."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Final

from shiftsync.aws.preflight.checks import (
    ATTRIBUTES,
    BUCKET_REGION,
    CLEANUP,
    DELETE,
    GET,
    LIST_BUCKET,
    PUT,
    UNLOAD,
    CheckResult,
    Context,
    Outcome,
    grant_fix,
    short_list,
)
from shiftsync.aws.preflight.data_api import Statements
from shiftsync.aws.session import CLIENT_CONFIG
from shiftsync.redshift.sql import build_unload_sql

REGION_HEADER: Final = "x-amz-bucket-region"


class StagingChecks:
    def __init__(self, ctx: Context) -> None:
        conn = ctx.conn
        if conn.unload is None:
            raise ValueError("the staging checks need a connection with unload:")
        self.ctx = ctx
        self.unload = conn.unload
        self.bucket = conn.unload.bucket
        self.expected_region = conn.unload_region or conn.region
        self.probe = f"{conn.unload.prefix}shiftsync-check-{uuid.uuid4().hex}/"
        self.key = self.probe + "probe.txt"
        self.body = f"shiftsync check probe {uuid.uuid4().hex}\n".encode()
        self.regions: list[str] = []
        self.get_refused = False
        self.unload_submitted = False
        factory: Any = ctx.session.boto3.client
        self.s3: Any = factory("s3", region_name=self.expected_region, config=CLIENT_CONFIG)
        # S3 names the bucket's region in a header of ListObjectsV2 and HeadBucket answers
        # (HeadBucket's even when it refuses): GetBucketLocation is not among the five actions.
        self.s3.meta.events.register("after-call.s3", self._note_region)

    def _note_region(self, http_response: Any = None, **_: Any) -> None:
        region = getattr(http_response, "headers", {}).get(REGION_HEADER)
        if region:
            self.regions.append(str(region))

    @property
    def probe_url(self) -> str:
        return f"s3://{self.bucket}/{self.probe}"

    def run(self) -> None:
        try:
            self.objects()
            self.ctx.add(self.region_check())
            self.ctx.add(self.unload_check())
        finally:
            self.ctx.add(self.cleanup())

    # -- the five actions ---------------------------------------------------------------------
    def s3_call(
        self, action: str, fn: Callable[..., Any], **kwargs: Any
    ) -> tuple[Outcome, CheckResult | None]:
        """Call S3; on failure also the failing check (with the grant that fixes it)."""
        outcome = self.ctx.call(fn, Bucket=self.bucket, **kwargs)
        if outcome.ok:
            return outcome, None
        self.ctx.staging_failed = True
        partition = self.ctx.conn.partition
        if not outcome.denied:
            return outcome, CheckResult(
                action,
                "fail",
                f"{action} on {self.probe_url} failed: {outcome.describe()}",
                f"check connections.{self.ctx.connection_name}.unload: bucket {self.bucket} must "
                f"exist in {self.expected_region}",
            )
        if action == LIST_BUCKET:
            fix = grant_fix(
                action,
                f"arn:{partition}:s3:::{self.bucket}",
                f' with Condition StringLike s3:prefix "{self.unload.prefix}*"',
            )
        else:
            fix = grant_fix(action, f"arn:{partition}:s3:::{self.bucket}/{self.unload.prefix}*")
        return outcome, CheckResult(
            action, "fail", f"{action} was refused: {outcome.describe()}", fix
        )

    def objects(self) -> None:
        extra: dict[str, str] = {}
        if self.unload.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.unload.kms_key_id}
        put, failed = self.s3_call(PUT, self.s3.put_object, Key=self.key, Body=self.body, **extra)
        self.ctx.add(failed or CheckResult(PUT, "pass", f"wrote s3://{self.bucket}/{self.key}"))
        if put.ok:
            self.ctx.add(self.get_object())
            if self.get_refused:
                # AWS wants s3:GetObject as well for GetObjectAttributes: no verdict of its own.
                reason = f"not reached: GetObjectAttributes needs {GET} too, which was refused"
                self.ctx.add(CheckResult(ATTRIBUTES, "skip", reason))
            else:
                self.ctx.add(self.object_attributes())
        else:
            no_object = f"not reached: there is no probe object ({PUT} failed)"
            self.ctx.add(CheckResult(GET, "skip", no_object))
            self.ctx.add(CheckResult(ATTRIBUTES, "skip", no_object))
        self.ctx.add(self.list_probe(put.ok))
        if put.ok:
            _, failed = self.s3_call(DELETE, self.s3.delete_object, Key=self.key)
            self.ctx.add(failed or CheckResult(DELETE, "pass", "deleted the probe object"))
        else:
            self.ctx.add(CheckResult(DELETE, "skip", f"not reached: {PUT} failed"))

    def get_object(self) -> CheckResult:
        got, failed = self.s3_call(GET, self.s3.get_object, Key=self.key)
        self.get_refused = got.denied
        if failed is not None:
            return failed
        if got.value["Body"].read() != self.body:
            self.ctx.staging_failed = True
            return CheckResult(
                GET, "fail", "the probe object read back differs from what was written"
            )
        return CheckResult(GET, "pass", "read the probe object back")

    def object_attributes(self) -> CheckResult:
        attributes, failed = self.s3_call(
            ATTRIBUTES, self.s3.get_object_attributes, Key=self.key, ObjectAttributes=["ObjectSize"]
        )
        if failed is not None:
            return failed
        return CheckResult(
            ATTRIBUTES,
            "pass",
            f"the probe object's size is {attributes.value.get('ObjectSize')} bytes",
        )

    def list_probe(self, expect_object: bool) -> CheckResult:
        listed, failed = self.s3_call(
            LIST_BUCKET, self.s3.list_objects_v2, Prefix=self.probe, MaxKeys=10
        )
        if failed is not None:
            return failed
        keys = [item["Key"] for item in listed.value.get("Contents", [])]
        if expect_object and self.key not in keys:
            return CheckResult(
                LIST_BUCKET, "warn", f"the probe object is not listed in {self.probe_url}"
            )
        return CheckResult(LIST_BUCKET, "pass", f"listed {self.probe_url}")

    # -- region -------------------------------------------------------------------------------
    def bucket_region(self) -> str | None:
        if not self.regions:
            self.ctx.call(self.s3.head_bucket, Bucket=self.bucket)
        return self.regions[-1] if self.regions else None

    def region_check(self) -> CheckResult:
        actual = self.bucket_region()
        name = self.ctx.connection_name
        key = f"connections.{name}.unload.region"
        source = key if self.unload.region else f"connections.{name}.region; {key} is not set"
        if actual is None:
            return CheckResult(
                BUCKET_REGION,
                "warn",
                f"S3 did not say which region bucket {self.bucket} is in; shiftsync expects "
                f"{self.expected_region} ({source})",
                f"make sure the bucket is in {self.expected_region}, or set {key}",
            )
        if actual != self.expected_region:
            self.ctx.region_failed = True
            return CheckResult(
                BUCKET_REGION,
                "fail",
                f"bucket {self.bucket} is in another region: {actual}, not "
                f"{self.expected_region} ({source})",
                f"set {key}: {actual} (UNLOAD then writes across regions), or stage in a bucket "
                f"in {self.ctx.conn.region}",
            )
        return CheckResult(BUCKET_REGION, "pass", f"bucket {self.bucket} is in {actual}")

    # -- UNLOAD -------------------------------------------------------------------------------
    def unload_check(self) -> CheckResult:
        conn = self.ctx.conn
        if not self.ctx.statements_run:
            return CheckResult(UNLOAD, "skip", "not reached: statements cannot be run and awaited")
        if self.ctx.staging_failed:
            return CheckResult(UNLOAD, "skip", "not reached: an S3 staging check failed")
        if self.ctx.region_failed:
            return CheckResult(UNLOAD, "skip", f"not reached: {BUCKET_REGION} failed")
        role = conn.unload_role_arn or conn.role_arn
        target = f"{self.probe_url}unload/"
        region = self.expected_region if self.expected_region != conn.region else None
        sql = build_unload_sql(
            "select 1", target, role, kms_key_id=self.unload.kms_key_id, region=region
        )
        self.unload_submitted = True
        submitted, ended = Statements(self.ctx).run(sql)
        problem = submitted if not submitted.ok else ended
        if not problem.ok:
            return CheckResult(UNLOAD, "fail", f"UNLOAD could not run: {problem.describe()}")
        if ended.value["Status"] != "FINISHED":
            return CheckResult(
                UNLOAD,
                "fail",
                f"UNLOAD to {target} ended {ended.value['Status']}: {ended.value.get('Error', '')}",
                f"Redshift must be able to assume {role} and write to s3://{self.bucket}/"
                f"{self.unload.prefix}: associate the role with the namespace of workgroup "
                f"{conn.workgroup}, let its trust policy allow redshift.amazonaws.com, and allow "
                f"s3:PutObject on arn:{conn.partition}:s3:::{self.bucket}/{self.unload.prefix}* "
                "(`shiftsync policy` prints each step)",
            )
        listed = self.ctx.call(
            self.s3.list_objects_v2,
            Bucket=self.bucket,
            Prefix=target[len(f"s3://{self.bucket}/") :],
        )
        count = int(listed.value.get("KeyCount", 0)) if listed.ok else None
        if count == 0:
            return CheckResult(UNLOAD, "fail", f"UNLOAD finished but wrote nothing to {target}")
        wrote = f"{count} objects" if count is not None else "its files"
        return CheckResult(UNLOAD, "pass", f"Redshift assumed {role} and wrote {wrote} to {target}")

    # -- cleanup ------------------------------------------------------------------------------
    def cleanup(self) -> CheckResult:
        """Remove every object under the probe prefix, whatever happened before."""
        by_hand = f"remove what is left: aws s3 rm --recursive {self.probe_url}"
        keys: list[str] = []
        token: str | None = None
        while True:
            page = self.ctx.call(
                self.s3.list_objects_v2,
                Bucket=self.bucket,
                Prefix=self.probe,
                **({"ContinuationToken": token} if token else {}),
            )
            if not page.ok:
                return self.cleanup_unlisted(page, by_hand)
            keys += [item["Key"] for item in page.value.get("Contents", [])]
            token = page.value.get("NextContinuationToken")
            if not token:
                break
        left = [
            key
            for key in keys
            if not self.ctx.call(self.s3.delete_object, Bucket=self.bucket, Key=key).ok
        ]
        if left:
            return CheckResult(
                CLEANUP,
                "warn",
                f"{len(left)} probe objects could not be deleted: {short_list(left)}",
                by_hand,
            )
        return CheckResult(CLEANUP, "pass", f"nothing is left under {self.probe_url}")

    def cleanup_unlisted(self, listing: Outcome, by_hand: str) -> CheckResult:
        """Without a listing only the probe object is known: enough unless UNLOAD wrote too."""
        deleted = self.ctx.call(self.s3.delete_object, Bucket=self.bucket, Key=self.key)
        if deleted.ok and not self.unload_submitted:
            return CheckResult(
                CLEANUP,
                "pass",
                f"deleted the only probe object (listing {self.probe_url} was refused)",
            )
        return CheckResult(
            CLEANUP,
            "warn",
            f"could not list {self.probe_url} to remove the probe objects: {listing.describe()}",
            by_hand,
        )
