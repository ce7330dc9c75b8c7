"""UNLOAD's staging: a probe object through the five S3 actions, the bucket's region, a real
UNLOAD, and the removal of everything the checks wrote under their probe prefix.

With a separate UNLOAD role (`unload.iam_role_arn`), shiftsync's role has no s3:PutObject (the
policy `shiftsync policy` prints leaves it out): the real UNLOAD writes the probe files with
the UNLOAD role first, and shiftsync's role then reads, measures, lists and deletes what it
wrote, as a sync does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NotRequired, TypedDict, TypeVar

from shiftsync.aws.policy import (
    REDSHIFT_SERVICE_PRINCIPAL,
    separate_unload_role,
    unload_database_user_arn,
)
from shiftsync.aws.session import CLIENT_CONFIG
from shiftsync.config import SECRET_USER_PLACEHOLDER
from shiftsync.preflight.checks import (
    ATTRIBUTES,
    BUCKET_REGION,
    CLEANUP,
    DELETE,
    GET,
    LIST_BUCKET,
    PUT,
    STAGING_VERSIONS,
    UNLOAD,
    CheckResult,
    Context,
    Outcome,
    grant_fix,
    short_list,
)
from shiftsync.preflight.data_api import Statements
from shiftsync.redshift.sql import build_unload_sql

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import LifecycleRuleOutputTypeDef, LifecycleRuleTypeDef

T = TypeVar("T")


class _Continuation(TypedDict):
    ContinuationToken: NotRequired[str]


REGION_HEADER: Final = "x-amz-bucket-region"
# UNLOAD ... MANIFEST writes its manifest as <target>manifest.
MANIFEST_NAME: Final = "manifest"


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
        self.unload_target = self.probe + "unload/"
        # The role Redshift writes with; when it is not shiftsync's, the object the S3 checks
        # read is the manifest UNLOAD writes, not one shiftsync puts.
        self.unload_role = conn.unload_role_arn or conn.role_arn
        self.separate_role = separate_unload_role(conn)
        self.key = (
            self.unload_target + MANIFEST_NAME if self.separate_role else self.probe + "probe.txt"
        )
        self.body = f"shiftsync check probe {uuid.uuid4().hex}\n".encode()
        self.regions: list[str] = []
        self.get_refused = False
        self.unload_submitted = False
        self.s3 = ctx.session.boto3.client(
            "s3", region_name=self.expected_region, config=CLIENT_CONFIG
        )
        # S3 names the bucket's region in a header of ListObjectsV2 and HeadBucket answers
        # (HeadBucket's even when it refuses): GetBucketLocation is not among the five actions.
        self.s3.meta.events.register("after-call.s3", self._note_region)

    def _note_region(self, http_response: object = None, **_: object) -> None:
        region = getattr(http_response, "headers", {}).get(REGION_HEADER)
        if region:
            self.regions.append(str(region))

    @property
    def probe_url(self) -> str:
        return f"s3://{self.bucket}/{self.probe}"

    def run(self) -> None:
        try:
            if self.separate_role:
                self.ctx.add(self.region_check())
                self.ctx.add(self.versions_check())
                unloaded = self.ctx.add(self.unload_check()).status == "pass"
                self.unloaded_objects(unloaded)
            else:
                self.objects()
                self.ctx.add(self.region_check())
                self.ctx.add(self.versions_check())
                self.ctx.add(self.unload_check())
        finally:
            self.ctx.add(self.cleanup())

    # -- the five actions ---------------------------------------------------------------------
    def s3_call(
        self, action: str, fn: Callable[..., T], **kwargs: object
    ) -> tuple[Outcome[T], CheckResult | None]:
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
        self.read_checks(
            put.ok,
            f"not reached: there is no probe object ({PUT} failed)",
            f"not reached: {PUT} failed",
        )

    def unloaded_objects(self, unloaded: bool) -> None:
        """The five S3 checks when a separate role writes: on the files UNLOAD wrote."""
        role = self.ctx.conn.role_arn
        if unloaded:
            self.ctx.add(
                CheckResult(
                    PUT,
                    "pass",
                    f"not needed by {role}: Redshift wrote the probe files as the UNLOAD role "
                    f"{self.unload_role}",
                )
            )
        else:
            self.ctx.add(
                CheckResult(
                    PUT,
                    "skip",
                    f"not reached: {UNLOAD} did not write the probe files (Redshift writes them "
                    f"as the UNLOAD role {self.unload_role}; {role} needs no {PUT})",
                )
            )
        no_files = f"not reached: there are no probe files ({UNLOAD} did not write them)"
        self.read_checks(unloaded, no_files, no_files)

    def read_checks(self, written: bool, no_object: str, no_delete: str) -> None:
        """GetObject, GetObjectAttributes, ListBucket and DeleteObject on the probe object."""
        if written:
            self.ctx.add(self.get_object())
            if self.get_refused:
                # AWS wants s3:GetObject as well for GetObjectAttributes: no verdict of its own.
                reason = f"not reached: GetObjectAttributes needs {GET} too, which was refused"
                self.ctx.add(CheckResult(ATTRIBUTES, "skip", reason))
            else:
                self.ctx.add(self.object_attributes())
        else:
            self.ctx.add(CheckResult(GET, "skip", no_object))
            self.ctx.add(CheckResult(ATTRIBUTES, "skip", no_object))
        self.ctx.add(self.list_probe(written))
        if written:
            _, failed = self.s3_call(DELETE, self.s3.delete_object, Key=self.key)
            self.ctx.add(failed or CheckResult(DELETE, "pass", f"deleted {self.what}"))
        else:
            self.ctx.add(CheckResult(DELETE, "skip", no_delete))

    @property
    def what(self) -> str:
        """The object the read checks use, in words."""
        if self.separate_role:
            return f"the manifest UNLOAD wrote (s3://{self.bucket}/{self.key})"
        return "the probe object"

    def get_object(self) -> CheckResult:
        got, failed = self.s3_call(GET, self.s3.get_object, Key=self.key)
        self.get_refused = got.denied
        if failed is not None:
            return failed
        body = got.value["Body"].read()
        if self.separate_role:
            return self.judge_manifest(body)
        if body != self.body:
            self.ctx.staging_failed = True
            return CheckResult(
                GET, "fail", "the probe object read back differs from what was written"
            )
        return CheckResult(GET, "pass", "read the probe object back")

    def judge_manifest(self, body: bytes) -> CheckResult:
        try:
            entries = json.loads(body).get("entries")
        except (ValueError, AttributeError):
            entries = None
        if not isinstance(entries, list):
            self.ctx.staging_failed = True
            return CheckResult(
                GET, "fail", f"{self.what} read back is not an UNLOAD manifest (no entries list)"
            )
        files = f"{len(entries)} file" + ("" if len(entries) == 1 else "s")
        return CheckResult(GET, "pass", f"read back {self.what}: it lists {files}")

    def object_attributes(self) -> CheckResult:
        attributes, failed = self.s3_call(
            ATTRIBUTES, self.s3.get_object_attributes, Key=self.key, ObjectAttributes=["ObjectSize"]
        )
        if failed is not None:
            return failed
        size = attributes.value.get("ObjectSize")
        if self.separate_role:
            return CheckResult(ATTRIBUTES, "pass", f"{self.what} is {size} bytes")
        return CheckResult(ATTRIBUTES, "pass", f"the probe object's size is {size} bytes")

    def list_probe(self, expect_object: bool) -> CheckResult:
        # UNLOAD writes a file per slice before its manifest: list them all to find it.
        keys_wanted = 1000 if self.separate_role else 10
        listed, failed = self.s3_call(
            LIST_BUCKET, self.s3.list_objects_v2, Prefix=self.probe, MaxKeys=keys_wanted
        )
        if failed is not None:
            return failed
        keys = [item["Key"] for item in listed.value.get("Contents", [])]
        if expect_object and self.key not in keys:
            return CheckResult(
                LIST_BUCKET, "warn", f"{self.what} is not listed in {self.probe_url}"
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

    # -- versions -----------------------------------------------------------------------------
    def versions_check(self) -> CheckResult:
        """A versioned bucket keeps every deleted extract as a noncurrent version: warn unless a
        lifecycle rule expires noncurrent versions under the staging prefix."""
        optional = (
            "s3:GetBucketVersioning and s3:GetLifecycleConfiguration on the bucket are optional; "
            "allow them to let `shiftsync check` see this"
        )
        versioning = self.ctx.call(self.s3.get_bucket_versioning, Bucket=self.bucket)
        if versioning.denied:
            # Optional, like iam:GetRole: not reading it is no finding about the bucket.
            return CheckResult(
                STAGING_VERSIONS,
                "pass",
                f"not read: the role may not call s3:GetBucketVersioning on {self.bucket} "
                "(optional; allow it and s3:GetLifecycleConfiguration to have versioning checked)",
            )
        if not versioning.ok:
            return CheckResult(
                STAGING_VERSIONS,
                "warn",
                f"could not tell whether bucket {self.bucket} keeps deleted staged files as old "
                f"versions: {versioning.describe()}",
                optional,
            )
        status = str(versioning.value.get("Status", ""))
        if status not in ("Enabled", "Suspended"):
            return CheckResult(
                STAGING_VERSIONS,
                "pass",
                f"bucket {self.bucket} is not versioned: deleted staged files are gone",
            )
        lifecycle = self.ctx.call(self.s3.get_bucket_lifecycle_configuration, Bucket=self.bucket)
        rules = lifecycle.value.get("Rules", []) if lifecycle.ok else []
        if not lifecycle.ok and lifecycle.code != "NoSuchLifecycleConfiguration":
            return CheckResult(
                STAGING_VERSIONS,
                "warn",
                f"bucket {self.bucket} is versioned ({status}) and its lifecycle rules could not "
                f"be read: {lifecycle.describe()}",
                optional,
            )
        covering = [rule for rule in rules if expires_noncurrent_versions(rule, self.unload.prefix)]
        if covering:
            return CheckResult(
                STAGING_VERSIONS,
                "pass",
                f"bucket {self.bucket} is versioned; lifecycle rule "
                f"{covering[0].get('ID') or '(unnamed)'} expires noncurrent versions under "
                f"{self.unload.prefix}",
            )
        return CheckResult(
            STAGING_VERSIONS,
            "warn",
            f"bucket {self.bucket} is versioned ({status}) without a lifecycle rule that expires "
            f"noncurrent versions under {self.unload.prefix}: every staged extract shiftsync "
            "deletes stays in the bucket as a noncurrent version",
            "add this rule to the bucket's lifecycle configuration (put-bucket-lifecycle-"
            "configuration replaces the existing rules: keep them in the list):\n"
            + json.dumps(staging_lifecycle_rule(self.unload.prefix), indent=2),
        )

    # -- UNLOAD -------------------------------------------------------------------------------
    def unload_check(self) -> CheckResult:
        conn = self.ctx.conn
        if not self.ctx.statements_run:
            return CheckResult(UNLOAD, "skip", "not reached: statements cannot be run and awaited")
        if self.ctx.staging_failed:
            return CheckResult(UNLOAD, "skip", "not reached: an S3 staging check failed")
        if self.ctx.region_failed:
            return CheckResult(UNLOAD, "skip", f"not reached: {BUCKET_REGION} failed")
        role = self.unload_role
        target = f"s3://{self.bucket}/{self.unload_target}"
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
                f"{self.unload.prefix}: associate the role with "
                + (
                    conn.target_label
                    if conn.is_cluster
                    else f"the namespace of {conn.target_label}"
                )
                + f", let its trust policy allow {REDSHIFT_SERVICE_PRINCIPAL} with "
                f"sts:ExternalId {self.unload_user_arn()}, and "
                f"{self.unload_grants()} (`shiftsync policy` prints each step)",
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

    def unload_user_arn(self) -> str:
        """The database user's ARN Redshift passes as sts:ExternalId (a secret's username is
        known here once the check read the secret)."""
        arn = unload_database_user_arn(self.ctx.conn)
        if self.ctx.secret_user is not None:
            arn = arn.replace(SECRET_USER_PLACEHOLDER, self.ctx.secret_user)
        return arn

    def unload_grants(self) -> str:
        """What the UNLOAD role must be allowed, in words."""
        partition = self.ctx.conn.partition
        objects = f"arn:{partition}:s3:::{self.bucket}/{self.unload.prefix}*"
        if not self.separate_role:
            return f"allow s3:PutObject on {objects}"
        kms = (
            f", and kms:GenerateDataKey and kms:Decrypt on the key {self.unload.kms_key_id}"
            if self.unload.kms_key_id
            else ""
        )
        return (
            f"give {self.unload_role} the UNLOAD role's permission policy: s3:GetObject and "
            f"s3:PutObject on {objects}, s3:ListBucket on arn:{partition}:s3:::{self.bucket} "
            f'with Condition StringLike s3:prefix "{self.unload.prefix}*"{kms}'
        )

    # -- cleanup ------------------------------------------------------------------------------
    def cleanup(self) -> CheckResult:
        """Remove every object under the probe prefix, whatever happened before."""
        by_hand = f"remove what is left: aws s3 rm --recursive {self.probe_url}"
        keys: list[str] = []
        token: str | None = None
        while True:
            more: _Continuation = {"ContinuationToken": token} if token else {}
            page = self.ctx.call(
                self.s3.list_objects_v2, Bucket=self.bucket, Prefix=self.probe, **more
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

    def cleanup_unlisted(self, listing: Outcome[object], by_hand: str) -> CheckResult:
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


def staging_lifecycle_rule(prefix: str) -> LifecycleRuleTypeDef:
    """A lifecycle rule that removes what deleting staged files leaves in a versioned bucket."""
    return {
        "ID": "shiftsync-staging-noncurrent",
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "Expiration": {"ExpiredObjectDeleteMarker": True},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def expires_noncurrent_versions(rule: LifecycleRuleOutputTypeDef, prefix: str) -> bool:
    """Whether an S3 lifecycle rule expires noncurrent versions of every key under prefix."""
    if rule.get("Status") != "Enabled" or "NoncurrentVersionExpiration" not in rule:
        return False
    rule_filter = rule.get("Filter")
    if rule_filter is None:
        rule_prefix = str(rule.get("Prefix", ""))  # the older, filter-less form
    elif set(rule_filter) <= {"Prefix"}:
        rule_prefix = str(rule_filter.get("Prefix", ""))
    else:
        return False  # tags or sizes: not every staged object is covered
    return prefix.startswith(rule_prefix)
