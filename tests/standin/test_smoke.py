"""The stand-in answers the real boto3 clients, with IAM enforced across two accounts."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shiftsync.local.standin import StandInInfo
from tests.support import wait_for_statement


def test_platform_identity_is_the_runner(info: StandInInfo) -> None:
    sts = boto3.Session().client("sts")
    assert sts.get_caller_identity()["Arn"] == info.principal_arn


def test_select_runs_on_postgres_as_the_role_user(redshift_data: Any, info: StandInInfo) -> None:
    started = redshift_data.execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sql="select current_user as who"
    )
    described = wait_for_statement(redshift_data, started["Id"])
    assert described["Status"] == "FINISHED", described.get("Error")
    result = redshift_data.get_statement_result(Id=started["Id"])
    assert result["Records"] == [[{"stringValue": "IAMR:shiftsync-reader"}]]


def test_wrong_external_id_is_refused(info: StandInInfo) -> None:
    sts = boto3.Session().client("sts")
    with pytest.raises(ClientError) as refused:
        sts.assume_role(RoleArn=info.role_arn, RoleSessionName="probe", ExternalId="not-it")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
