"""What UNLOAD does as the IAM role it names: assume the role chain, then write into moto's S3.

Redshift assumes the first role as the service `redshift.amazonaws.com`, passing the ARN of
the database user that runs the UNLOAD (`arn:aws:redshift:<region>:<account>:dbuser:<workgroup>/
<user>`) as sts:ExternalId, so a trust policy can restrict the role to that user; each further
role is assumed as the one before it, and S3 objects are written as the last one. The checks
below are the ones AWS makes (trust policies, identity policies, the bucket policy), evaluated
with iam/evaluation.py; failures are the statement errors Redshift reports.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from shiftsync.local.iam import evaluation as iam
from shiftsync.local.unload.grammar import UnloadError

REDSHIFT_SERVICE: Final = "redshift.amazonaws.com"
# The session name Redshift uses when it assumes a customer's role.
SESSION_NAME: Final = "RedshiftIamRoleSession"
_COPY_CHUNK: Final = 1024 * 1024


@dataclass(frozen=True)
class AssumedRole:
    """The last role of an IAM_ROLE chain, as Redshift holds it while writing to S3."""

    role_arn: str
    session_arn: str
    account_id: str
    documents: list[Mapping[str, Any]]

    @property
    def context(self) -> dict[str, str]:
        return {"aws:PrincipalArn": self.role_arn, "aws:PrincipalAccount": self.account_id}


def _trust_document(role: Any) -> Mapping[str, Any]:
    document = role.assume_role_policy_document
    parsed = json.loads(document) if isinstance(document, str) else document
    return parsed if isinstance(parsed, dict) else {}


def _session_arn(role_arn: str) -> str:
    account = role_arn.split(":")[4]
    name = role_arn.rsplit("/", 1)[-1]
    return f"arn:aws:sts::{account}:assumed-role/{name}/{SESSION_NAME}"


def assume_role_chain(roles: tuple[str, ...], db_user_arn: str) -> AssumedRole:
    """Assume each role in turn; raises UnloadError naming the link that fails."""
    previous: AssumedRole | None = None
    for role_arn in roles:
        who = db_user_arn if previous is None else previous.session_arn
        refused = UnloadError(f"ERROR: User {who} is not authorized to assume IAM Role {role_arn}")
        role = iam.find_role(role_arn)
        if role is None:
            raise refused
        trust = _trust_document(role)
        if previous is None:
            # Redshift names the database user that runs the statement as the external ID.
            trusted = iam.service_trusted(trust, REDSHIFT_SERVICE, {"sts:ExternalId": db_user_arn})
        else:
            allowed = iam.evaluate_identity_policies(
                previous.documents, "sts:AssumeRole", role_arn, previous.context
            )
            trusted = allowed == "allow" and iam.trust_allows(
                trust,
                "sts:AssumeRole",
                previous.session_arn,
                previous.account_id,
                previous.context,
            )
        if not trusted:
            raise refused
        previous = AssumedRole(
            role_arn=role_arn,
            session_arn=_session_arn(role_arn),
            account_id=role_arn.split(":")[4],
            documents=iam.role_policy_documents(role),
        )
    if previous is None:
        raise UnloadError("ERROR: IAM_ROLE names no role")
    return previous


def s3_error(message: str, status: int, code: str, detail: str) -> UnloadError:
    """An S3 failure in the shape Redshift reports it (request ids are random)."""
    rid = secrets.token_hex(8).upper()
    ext = secrets.token_urlsafe(24)
    return UnloadError(
        f"ERROR: S3ServiceException:{message},Status {status},Error {code},Rid {rid},"
        f"ExtRid {ext},CanRetry 1\nDETAIL: {detail}"
    )


class S3Target:
    """The bucket an UNLOAD writes to, seen through moto's S3 backend, as the assumed role."""

    def __init__(self, bucket_name: str, role: AssumedRole, region: str) -> None:
        from moto.s3.models import s3_backends

        self.bucket_name = bucket_name
        self.role = role
        found = s3_backends.bucket_accounts.get(bucket_name)
        if found is None:
            raise s3_error(
                "The specified bucket does not exist",
                404,
                "NoSuchBucket",
                f"bucket {bucket_name} does not exist",
            )
        partition, account_id = found
        self.backend: Any = s3_backends[account_id][partition]
        self.bucket: Any = self.backend.get_bucket(bucket_name)
        self.account_id: str = account_id
        if self.bucket.region_name != region:
            raise s3_error(
                "The bucket you are attempting to access must be addressed using the specified "
                "endpoint. Please send all future requests to this endpoint.",
                301,
                "PermanentRedirect",
                f"bucket {bucket_name} is in {self.bucket.region_name}, not {region}: "
                f"add REGION '{self.bucket.region_name}'",
            )

    # -- permissions -----------------------------------------------------------------------
    def _bucket_policy_verdict(self, action: str, resource: str) -> str:
        raw = self.bucket.policy
        if not raw:
            return "neutral"
        document = json.loads(raw)
        statements = [
            s
            for s in _as_list(document.get("Statement", []))
            if isinstance(s, dict)
            and iam.principal_matches(
                s.get("Principal"), self.role.session_arn, self.role.account_id
            )
        ]
        return iam.evaluate_identity_policies(
            [{"Statement": statements}], action, resource, self.role.context
        )

    def check(self, action: str, key: str) -> None:
        """Raise Redshift's S3 Access Denied unless the role may do `action` on the key."""
        resource = f"arn:aws:s3:::{self.bucket_name}/{key}"
        identity = iam.evaluate_identity_policies(
            self.role.documents, action, resource, self.role.context
        )
        bucket = self._bucket_policy_verdict(action, resource)
        if "deny" in (identity, bucket):
            allowed = False
        elif self.account_id == self.role.account_id:
            allowed = "allow" in (identity, bucket)
        else:  # across accounts both the role and the bucket owner must allow it
            allowed = identity == "allow" and bucket == "allow"
        if not allowed:
            raise s3_error(
                "Access Denied",
                403,
                "AccessDenied",
                f"{action} on s3://{self.bucket_name}/{key} is not allowed for "
                f"{self.role.role_arn}",
            )

    # -- objects ---------------------------------------------------------------------------
    def keys_under(self, prefix: str) -> list[str]:
        from moto.s3.models import FakeKey

        return sorted(
            name
            for name in list(self.bucket.keys.keys())
            if name.startswith(prefix) and isinstance(self.bucket.keys.get(name), FakeKey)
        )

    def delete(self, key: str) -> None:
        self.backend.delete_object(self.bucket_name, key)

    def _encryption(self, kms_key_id: str | None) -> tuple[str | None, str | None]:
        if kms_key_id is not None:
            return "aws:kms", kms_key_id
        if self.bucket.encryption:
            return None, None  # moto applies the bucket's default encryption
        return "AES256", None  # Redshift's default: SSE-S3

    def put_bytes(self, key: str, data: bytes, kms_key_id: str | None = None) -> None:
        encryption, kms = self._encryption(kms_key_id)
        self.backend.put_object(self.bucket_name, key, data, encryption=encryption, kms_key_id=kms)

    def put_file(self, key: str, path: Path, kms_key_id: str | None = None) -> int:
        """Store a local file as an object without reading it into memory at once.

        moto's put_object takes bytes; its FakeKey keeps the value in a spooled temporary file,
        so the object is created empty and its buffer filled from the file in chunks.
        """
        encryption, kms = self._encryption(kms_key_id)
        fake = self.backend.put_object(
            self.bucket_name, key, b"", encryption=encryption, kms_key_id=kms
        )
        size = path.stat().st_size
        with fake.lock, path.open("rb") as source:
            buffer = fake._value_buffer
            buffer.seek(0)
            buffer.truncate()
            shutil.copyfileobj(source, buffer, _COPY_CHUNK)
            fake.contentsize = size
            fake._etag = None
        return size


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
