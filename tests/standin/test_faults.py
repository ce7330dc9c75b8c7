"""Injected faults, as clients meet them: each one fires, is counted, then clears itself.

Faults are added through the Python API (`standin.faults`), the HTTP control endpoint and the
CLI; their effects are observed only through boto3 calls of the operations they hit.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ResponseStreamingError,
)
from typer.testing import CliRunner

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.cli.local import app as local_app
from shiftsync.local.standin import StandIn, StandInInfo
from tests.support import run_statement, wait_for_statement

NO_RETRIES = Config(retries={"total_max_attempts": 1})


@pytest.fixture(autouse=True)
def no_faults_left(standin: StandIn) -> Iterator[None]:
    standin.faults.clear()
    yield
    standin.faults.clear()


@pytest.fixture
def raw_data(assumed: AssumedRoleSession) -> Any:
    """A redshift-data client that does not retry: it sees every fault."""
    return assumed.boto3.client("redshift-data", config=NO_RETRIES)


@pytest.fixture
def raw_s3(assumed: AssumedRoleSession) -> Any:
    return assumed.boto3.client("s3", config=NO_RETRIES)


@pytest.fixture
def s3_key(s3: Any, info: StandInInfo) -> Iterator[str]:
    """An object of this test's own, deleted afterwards."""
    key = f"fault-tests/{uuid.uuid4().hex[:12]}.txt"
    s3.put_object(Bucket=info.bucket, Key=key, Body=b"hello")
    yield key
    s3.delete_object(Bucket=info.bucket, Key=key)


def where(info: StandInInfo) -> dict[str, Any]:
    return {"WorkgroupName": info.workgroup, "Database": info.database}


def run(client: Any, info: StandInInfo, sql: str) -> dict[str, Any]:
    return run_statement(client, info, sql)[1]


def error_of(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def fired(standin: StandIn, fault_id: str) -> int:
    return standin.faults.counts()[fault_id]


# -- redshift-data errors -----------------------------------------------------------------------


def test_throttling_the_next_calls_of_an_operation(
    standin: StandIn, info: StandInInfo, raw_data: Any, redshift_data: Any
) -> None:
    fault = standin.faults.add("throttle", operation="ListSchemas", times=2)
    assert error_of(raw_data.list_schemas, **where(info)) == ("ThrottlingException", 400)
    raw_data.list_databases(**where(info))  # another operation is not throttled
    assert error_of(raw_data.list_schemas, **where(info)) == ("ThrottlingException", 400)
    assert raw_data.list_schemas(**where(info))["Schemas"]  # cleared after two
    assert fired(standin, fault) == 2
    # A client with standard retries rides over throttling.
    again = standin.faults.add("throttle", operation="ListSchemas")
    assert redshift_data.list_schemas(**where(info))["Schemas"]
    assert fired(standin, again) == 1


def test_active_statements_exceeded(standin: StandIn, info: StandInInfo, raw_data: Any) -> None:
    fault = standin.faults.add("active_statements")
    code, status = error_of(raw_data.execute_statement, Sql="select 1", **where(info))
    assert (code, status) == ("ActiveStatementsExceededException", 400)
    assert run(raw_data, info, "select 1")["Status"] == "FINISHED"
    assert fired(standin, fault) == 1


def test_internal_server_error(
    standin: StandIn, info: StandInInfo, raw_data: Any, redshift_data: Any
) -> None:
    statement_id = raw_data.execute_statement(Sql="select 1", **where(info))["Id"]
    fault = standin.faults.add("server_error", operation="DescribeStatement")
    assert error_of(raw_data.describe_statement, Id=statement_id) == (
        "InternalServerException",
        500,
    )
    assert fired(standin, fault) == 1
    retried = standin.faults.add("server_error", operation="DescribeStatement")
    # retried past the 500
    assert wait_for_statement(redshift_data, statement_id)["Status"] == "FINISHED"
    assert fired(standin, retried) == 1


def test_a_paused_workgroup_fails_the_first_call_only(
    standin: StandIn, info: StandInInfo, raw_data: Any
) -> None:
    fault = standin.faults.add("pause_workgroup")
    code, status = error_of(raw_data.execute_statement, Sql="select 1", **where(info))
    assert (code, status) == ("DatabaseConnectionException", 500)
    assert run(raw_data, info, "select 1")["Status"] == "FINISHED"
    raw_data.list_tables(SchemaPattern="public", **where(info))
    assert fired(standin, fault) == 1
    assert standin.faults.listing()[0]["active"] is False


# -- dropped connections ------------------------------------------------------------------------


def test_a_dropped_connection(
    standin: StandIn, info: StandInInfo, raw_data: Any, redshift_data: Any
) -> None:
    fault = standin.faults.add("drop_connection", operation="ListDatabases")
    with pytest.raises(ConnectionClosedError):
        raw_data.list_databases(**where(info))
    assert fired(standin, fault) == 1
    retried = standin.faults.add("drop_connection", operation="ListDatabases")
    assert redshift_data.list_databases(**where(info))["Databases"] == [info.database]
    assert fired(standin, retried) == 1


def test_a_dropped_answer_after_the_statement_started_is_retried_idempotently(
    standin: StandIn, info: StandInInfo, redshift_data: Any
) -> None:
    table = f"fault_marks_{uuid.uuid4().hex[:8]}"
    with standin.admin_connection() as conn:
        conn.execute(f"CREATE TABLE public.{table} (x integer)")
        conn.execute(f'GRANT INSERT, SELECT ON public.{table} TO "IAMR:shiftsync-reader"')
    try:
        fault = standin.faults.add(
            "drop_connection", operation="ExecuteStatement", after_processing=True
        )
        # The insert runs, its answer is lost; botocore retries with the same ClientToken.
        started = redshift_data.execute_statement(
            Sql=f"insert into public.{table} values (1)", **where(info)
        )
        assert fired(standin, fault) == 1
        assert wait_for_statement(redshift_data, started["Id"])["Status"] == "FINISHED"
        counted = run(redshift_data, info, f"select count(*) from public.{table}")
        result = redshift_data.get_statement_result(Id=counted["Id"])
        assert result["Records"] == [[{"longValue": 1}]]  # inserted once, not twice
    finally:
        with standin.admin_connection() as conn:
            conn.execute(f"DROP TABLE public.{table}")


def test_a_body_cut_short_is_an_incomplete_read(
    standin: StandIn, info: StandInInfo, raw_s3: Any, s3_key: str
) -> None:
    fault = standin.faults.add(
        "drop_connection", service="s3", operation="GetObject", after_processing=True, cut="body"
    )
    answer = raw_s3.get_object(Bucket=info.bucket, Key=s3_key)
    with pytest.raises((IncompleteReadError, ResponseStreamingError)) as broken:
        answer["Body"].read()
    assert "IncompleteRead" in str(broken.value)
    assert fired(standin, fault) == 1
    assert raw_s3.get_object(Bucket=info.bucket, Key=s3_key)["Body"].read() == b"hello"


# -- S3 -----------------------------------------------------------------------------------------


def test_s3_slow_down_on_get(
    standin: StandIn, info: StandInInfo, raw_s3: Any, s3: Any, s3_key: str
) -> None:
    fault = standin.faults.add("throttle", service="s3", operation="GetObject", key="^fault-tests/")
    assert error_of(raw_s3.get_object, Bucket=info.bucket, Key=s3_key) == ("SlowDown", 503)
    assert raw_s3.get_object(Bucket=info.bucket, Key=s3_key)["Body"].read() == b"hello"
    assert fired(standin, fault) == 1
    retried = standin.faults.add("throttle", service="s3", operation="GetObject")
    assert s3.get_object(Bucket=info.bucket, Key=s3_key)["Body"].read() == b"hello"
    assert fired(standin, retried) == 1


def test_s3_internal_error_on_get(
    standin: StandIn, info: StandInInfo, raw_s3: Any, s3_key: str
) -> None:
    fault = standin.faults.add("server_error", service="s3", operation="GetObject")
    assert error_of(raw_s3.get_object, Bucket=info.bucket, Key=s3_key) == ("InternalError", 500)
    raw_s3.head_object(Bucket=info.bucket, Key=s3_key)  # other operations are untouched
    assert raw_s3.get_object(Bucket=info.bucket, Key=s3_key)["Body"].read() == b"hello"
    assert fired(standin, fault) == 1


def test_an_object_that_vanishes_between_listing_and_reading(
    standin: StandIn, info: StandInInfo, raw_s3: Any, s3_key: str
) -> None:
    fault = standin.faults.add("s3_vanish", key=s3_key)
    listed = raw_s3.list_objects_v2(Bucket=info.bucket, Prefix=s3_key)["Contents"]
    assert [o["Key"] for o in listed] == [s3_key]
    assert error_of(raw_s3.get_object, Bucket=info.bucket, Key=s3_key) == ("NoSuchKey", 404)
    assert raw_s3.get_object(Bucket=info.bucket, Key=s3_key)["Body"].read() == b"hello"
    assert fired(standin, fault) == 1


def test_an_object_really_deleted_on_read(
    standin: StandIn, info: StandInInfo, raw_s3: Any, s3: Any
) -> None:
    key = f"fault-tests/{uuid.uuid4().hex[:12]}.txt"
    s3.put_object(Bucket=info.bucket, Key=key, Body=b"soon gone")
    fault = standin.faults.add("s3_vanish", key=key, delete=True)
    assert error_of(raw_s3.get_object, Bucket=info.bucket, Key=key) == ("NoSuchKey", 404)
    assert error_of(raw_s3.get_object, Bucket=info.bucket, Key=key) == ("NoSuchKey", 404)
    assert raw_s3.list_objects_v2(Bucket=info.bucket, Prefix=key)["KeyCount"] == 0
    assert fired(standin, fault) == 1


# -- STS and credentials ------------------------------------------------------------------------


def test_sts_throttling(standin: StandIn, info: StandInInfo) -> None:
    fault = standin.faults.add("throttle", service="sts", operation="AssumeRole")
    sts = boto3.client("sts", config=NO_RETRIES)
    kwargs: dict[str, Any] = {
        "RoleArn": info.role_arn,
        "RoleSessionName": "probe",
        "ExternalId": info.external_id,
    }
    assert error_of(sts.assume_role, **kwargs) == ("Throttling", 400)
    sts.get_caller_identity()  # not AssumeRole: untouched
    assert sts.assume_role(**kwargs)["Credentials"]["AccessKeyId"]
    assert fired(standin, fault) == 1


# -- statements ---------------------------------------------------------------------------------


def test_a_fixed_delay(standin: StandIn, info: StandInInfo, redshift_data: Any) -> None:
    marker = uuid.uuid4().hex
    fault = standin.faults.add("delay", sql=marker, seconds=0.4)
    slow = run(redshift_data, info, f"select '{marker}' as m")
    assert slow["Status"] == "FINISHED"
    # A lower bound only (a sleep cannot end early): the reported Duration includes the delay.
    assert slow["Duration"] >= 400_000_000  # nanoseconds
    assert fired(standin, fault) == 1
    assert run(redshift_data, info, f"select '{marker}' as m")["Status"] == "FINISHED"
    assert fired(standin, fault) == 1  # once only: the second statement was not delayed


def test_a_random_delay(standin: StandIn, info: StandInInfo, redshift_data: Any) -> None:
    fault = standin.faults.add("delay", min_seconds=0.2, max_seconds=0.3, times=2)
    durations = [run(redshift_data, info, "select 1")["Duration"] for _ in range(2)]
    assert all(d >= 200_000_000 for d in durations)  # lower bounds: each was delayed
    assert fired(standin, fault) == 2
    run(redshift_data, info, "select 1")
    assert fired(standin, fault) == 2  # spent after `times`


def test_a_delayed_statement_can_be_cancelled(
    standin: StandIn, info: StandInInfo, redshift_data: Any
) -> None:
    delay = standin.faults.add("delay", seconds=20)
    started = redshift_data.execute_statement(Sql="select 1", **where(info))
    assert standin.faults.wait_fired(delay, 30), "the statement never reached its delay"
    assert redshift_data.describe_statement(Id=started["Id"])["Status"] == "STARTED"
    redshift_data.cancel_statement(Id=started["Id"])
    assert wait_for_statement(redshift_data, started["Id"])["Status"] == "ABORTED"


def test_failing_the_next_matching_statement(
    standin: StandIn, info: StandInInfo, redshift_data: Any
) -> None:
    fault = standin.faults.add(
        "fail_statement", sql=r"from public\.category", message="ERROR: disk full (injected)"
    )
    assert run(redshift_data, info, "select 1")["Status"] == "FINISHED"  # does not match
    failed = run(redshift_data, info, "SELECT count(*) FROM public.category")
    assert failed["Status"] == "FAILED"
    assert failed["Error"] == "ERROR: disk full (injected)"
    again = run(redshift_data, info, "SELECT count(*) FROM public.category")
    assert again["Status"] == "FINISHED"
    assert fired(standin, fault) == 1


def test_aborting_a_statement_as_it_starts(
    standin: StandIn, info: StandInInfo, redshift_data: Any
) -> None:
    fault = standin.faults.add("abort_statement")
    aborted = run(redshift_data, info, "select 1")
    assert aborted["Status"] == "ABORTED"
    assert run(redshift_data, info, "select 1")["Status"] == "FINISHED"
    assert fired(standin, fault) == 1


def test_aborting_a_running_statement_from_the_server(
    standin: StandIn, info: StandInInfo, redshift_data: Any
) -> None:
    fault = standin.faults.add("abort_statement", sql="pg_sleep", after_seconds=0.3)
    # pg_sleep(60) would finish with FINISHED if the server's abort did not end it.
    aborted = run(redshift_data, info, "select pg_sleep(60)")
    assert aborted["Status"] == "ABORTED"
    assert fired(standin, fault) == 1


# -- the control endpoint and the CLI -----------------------------------------------------------


def control(standin: StandIn, method: str, payload: Any = None) -> tuple[int, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(  # noqa: S310 - the stand-in's own http:// URL
        f"{standin.endpoint}/_shiftsync/faults", data=data, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local URL
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_control_endpoint(standin: StandIn, info: StandInInfo, raw_data: Any) -> None:
    status, answer = control(
        standin, "POST", {"kind": "throttle", "operation": "ListTables", "times": 1}
    )
    assert status == 200
    fault_id = answer["id"]
    assert error_of(raw_data.list_tables, **where(info))[0] == "ThrottlingException"
    status, listed = control(standin, "GET")
    assert status == 200
    assert listed["faults"] == [
        {
            "id": fault_id,
            "kind": "throttle",
            "times": 1,
            "service": "redshift-data",
            "operation": "ListTables",
            "fired": 1,
            "remaining": 0,
            "active": False,
        }
    ]
    assert control(standin, "DELETE") == (200, {"cleared": 1})
    assert control(standin, "GET") == (200, {"faults": []})


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "throttle", "operation": "ListTables", "color": "red"}, "color"),
        ({"kind": "meltdown"}, "kind"),
        ({"operation": "ListTables"}, "kind"),
        ({"kind": "delay"}, "seconds"),
        ([1, 2], "body"),
    ],
)
def test_the_control_endpoint_refuses_bad_faults(
    standin: StandIn, payload: Any, field: str
) -> None:
    status, answer = control(standin, "POST", payload)
    assert status == 400
    assert answer["field"] == field
    assert field in answer["error"] or field == "body"
    assert standin.faults.listing() == []


def test_the_control_endpoint_refuses_bad_json_and_methods(standin: StandIn) -> None:
    request = urllib.request.Request(  # noqa: S310 - the stand-in's own http:// URL
        f"{standin.endpoint}/_shiftsync/faults", data=b"{not json", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 - local URL
    assert refused.value.code == 400
    assert control(standin, "PUT", {})[0] == 405


def test_the_cli(standin: StandIn, info: StandInInfo, raw_data: Any) -> None:
    runner = CliRunner()
    endpoint = ["--endpoint", standin.endpoint]
    added = runner.invoke(
        local_app,
        ["fault", "add", "throttle", "--operation", "DescribeTable", "--times", "1", *endpoint],
    )
    assert added.exit_code == 0, added.output
    fault_id = added.output.strip()
    assert standin.faults.counts() == {fault_id: 0}
    code, _ = error_of(raw_data.describe_table, Schema="public", Table="sales", **where(info))
    assert code == "ThrottlingException"
    listed = runner.invoke(local_app, ["fault", "list", *endpoint])
    assert listed.exit_code == 0, listed.output
    assert f"{fault_id}  throttle  fired 1/1  spent" in listed.output
    cleared = runner.invoke(local_app, ["fault", "clear", *endpoint])
    assert cleared.output.strip() == "cleared 1 fault"
    refused = runner.invoke(local_app, ["fault", "add", "meltdown", *endpoint])
    assert refused.exit_code != 0
    assert "field kind" in str(refused.exception)


# -- last, because it expires the session fixture's credentials too --------------------------


def test_expired_credentials(
    standin: StandIn, info: StandInInfo, assumed: AssumedRoleSession
) -> None:
    mine = AssumedRoleSession(info.role_arn, info.external_id, info.region)
    data = mine.boto3.client("redshift-data", config=NO_RETRIES)
    data.list_databases(**where(info))
    try:
        fault = standin.faults.add("expire_credentials")
        assert fired(standin, fault) == 1
        assert standin.faults.listing()[0]["detail"]["expired_sessions"] >= 1
        assert error_of(data.list_databases, **where(info)) == ("ExpiredTokenException", 403)
        s3 = mine.boto3.client("s3", config=NO_RETRIES)
        assert error_of(s3.list_objects_v2, Bucket=info.bucket)[0] == "ExpiredToken"
        fresh = AssumedRoleSession(info.role_arn, info.external_id, info.region)
        assert fresh.client("redshift-data").list_databases(**where(info))["Databases"]
    finally:
        # Other tests share the session fixture: give it fresh credentials.
        assumed.force_refresh()
