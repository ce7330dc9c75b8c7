"""The assumed-role session's forced refresh (after ExpiredToken), against the stand-in's STS.

The stand-in really expires a session (`iam.expire_session`), so the refusals here are AWS's
own ExpiredToken answers, and `AssumedRoleSession.refreshes` counts the AssumeRole calls.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.local.iam import evaluation as iam
from shiftsync.local.standin import StandInInfo


def test_threads_refused_together_assume_the_role_once(info: StandInInfo) -> None:
    session = AssumedRoleSession(info.role_arn, info.external_id, info.region)
    s3 = session.client("s3")
    s3.list_objects_v2(Bucket=info.bucket, MaxKeys=1)
    expired = session.frozen_credentials().access_key
    assert expired is not None
    refreshes = session.refreshes
    assert iam.expire_session(expired)
    # Both threads are refused with the expired key before either refreshes.
    both_refused = threading.Barrier(2, timeout=10)
    first_try = threading.local()

    def listing() -> Any:
        try:
            return s3.list_objects_v2(Bucket=info.bucket, MaxKeys=1)
        except ClientError:
            if not getattr(first_try, "done", False):
                first_try.done = True
                both_refused.wait()
            raise

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: session.call(listing), range(2)))
    assert [a["ResponseMetadata"]["HTTPStatusCode"] for a in answers] == [200, 200]
    assert session.refreshes == refreshes + 1
    assert session.frozen_credentials().access_key != expired


def test_a_forced_refresh_after_another_one_keeps_its_keys(info: StandInInfo) -> None:
    session = AssumedRoleSession(info.role_arn, info.external_id, info.region)
    before = session.frozen_credentials()
    session.force_refresh()
    after = session.frozen_credentials()
    assert session.refreshes == 2
    assert after.access_key != before.access_key
    # The key refused was the one before: another refresh has replaced it already.
    session.force_refresh(before.access_key)
    assert session.refreshes == 2
    assert session.frozen_credentials() == after
    session.client("sts").get_caller_identity()
