"""Checks AWS makes before a request reaches S3's or STS's code, which moto does not make.

- S3 answers a request signed for another region than the bucket's with 400
  `AuthorizationHeaderMalformed` naming the bucket's region (moto serves every region).
- STS checks AssumeRole's input against its model before anything else: a malformed session
  name, external ID or role ARN is a `ValidationError`, not the AccessDenied moto's trust check
  gives.
- HeadBucket is authorised as `s3:ListBucket` (there is no `s3:HeadBucket` action), and a
  made-up ListObjectsV2 ContinuationToken is 400 `InvalidArgument` (moto crashes with a 500).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final
from urllib.parse import parse_qs, unquote

import botocore.session
from moto.s3 import responses as s3_responses
from moto.s3.exceptions import InvalidContinuationToken
from moto.s3.models import S3Backend, s3_backends

_SCOPE: Final = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/aws4_request")
# An IAM role ARN (the STS model only bounds its length; AWS also checks the form).
_ROLE_ARN: Final = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_installed = False


def signing_scope(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(region, service) of the request's SigV4 credential scope (header or presigned URL)."""
    found = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found:
        return found.group(1), found.group(2)
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
    if credential:
        parts = credential[0].split("/")
        if len(parts) >= 4:
            return parts[2], parts[3]
    return None


def s3_region_mismatch(environ: dict[str, Any]) -> str | None:
    """The bucket's region when an S3 request was signed for another one, else None."""
    scope = signing_scope(environ)
    if scope is None or scope[1] != "s3":
        return None
    bucket = unquote(environ.get("PATH_INFO", "").lstrip("/").split("/", 1)[0])
    owner = s3_backends.bucket_accounts.get(bucket) if bucket else None
    if owner is None:
        return None
    partition, account = owner
    found = s3_backends[account][partition].buckets.get(bucket)
    region = getattr(found, "region_name", None)
    return str(region) if region and region != scope[0] else None


@functools.cache
def _sts_input() -> Any:
    model = botocore.session.get_session().get_service_model("sts")
    return model.operation_model("AssumeRole").input_shape


def assume_role_problem(form: dict[str, list[str]]) -> str | None:
    """AWS's ValidationError message for a malformed AssumeRole request, or None."""
    shape = _sts_input()
    problems: list[str] = []
    for member, wire in (
        ("RoleArn", "roleArn"),
        ("RoleSessionName", "roleSessionName"),
        ("ExternalId", "externalId"),
    ):
        values = form.get(member)
        if not values:
            continue
        value = values[0]
        meta = shape.members[member].metadata
        if len(value) < meta.get("min", 0):
            rule = f"have length greater than or equal to {meta['min']}"
        elif len(value) > meta.get("max", len(value)):
            rule = f"have length less than or equal to {meta['max']}"
        elif "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            rule = f"satisfy regular expression pattern: {meta['pattern']}"
        elif member == "RoleArn" and not _ROLE_ARN.fullmatch(value):
            # AWS's wording for a well-sized string that is not a role ARN is unverified.
            problems.append(f"Value '{value}' at '{wire}' is not a valid IAM role ARN")
            continue
        else:
            continue
        problems.append(
            f"Value '{value}' at '{wire}' failed to satisfy constraint: Member must {rule}"
        )
    if not problems:
        return None
    count = len(problems)
    return f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)


def _list_objects_v2(self: S3Backend, *args: Any, **kwargs: Any) -> Any:
    token = kwargs.get("continuation_token")
    if token and token not in self._pagination_tokens:
        raise InvalidContinuationToken()
    return _original_list_objects_v2(self, *args, **kwargs)


_original_list_objects_v2 = S3Backend.list_objects_v2


def install() -> None:
    """Patch moto's S3 once per process."""
    global _installed
    if _installed:
        return
    s3_responses.ACTION_MAP["BUCKET"]["HEAD"]["DEFAULT"] = "ListBucket"
    S3Backend.list_objects_v2 = _list_objects_v2  # type: ignore[method-assign]
    _installed = True
