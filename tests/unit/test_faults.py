"""The fault registry: which requests a fault takes, how it counts, and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from shiftsync.local.faults.kinds import (
    KIND_FIELDS,
    FaultRegistry,
    FaultSpec,
    FaultSpecError,
    parse_fault,
)
from shiftsync.local.faults.wire import (
    RequestInfo,
    error_response,
    s3_error_body,
    s3_operation,
    service_of,
    sts_error_body,
)


def refusal(payload: Any) -> FaultSpecError:
    with pytest.raises(FaultSpecError) as error:
        parse_fault(payload)
    return error.value


# -- parsing ------------------------------------------------------------------------------------


def test_defaults() -> None:
    spec = parse_fault({"kind": "throttle"})
    assert spec == FaultSpec(kind="throttle", times=1, service="redshift-data")
    assert spec.point == "operation"


@pytest.mark.parametrize(
    ("payload", "point"),
    [
        ({"kind": "throttle", "service": "redshift-data"}, "operation"),
        ({"kind": "throttle", "service": "s3"}, "http"),
        ({"kind": "throttle", "service": "sts"}, "http"),
        ({"kind": "server_error"}, "operation"),
        ({"kind": "server_error", "service": "s3"}, "http"),
        ({"kind": "drop_connection"}, "http"),
        ({"kind": "active_statements"}, "operation"),
        ({"kind": "pause_workgroup"}, "operation"),
        ({"kind": "s3_vanish"}, "http"),
        ({"kind": "delay", "seconds": 1}, "statement"),
        ({"kind": "fail_statement"}, "statement"),
        ({"kind": "abort_statement"}, "statement"),
        ({"kind": "expire_credentials"}, "immediate"),
    ],
)
def test_each_kind_has_its_injection_point(payload: dict[str, Any], point: str) -> None:
    assert parse_fault(payload).point == point


def test_every_kind_is_listed() -> None:
    assert set(KIND_FIELDS) == {
        "throttle",
        "server_error",
        "drop_connection",
        "active_statements",
        "pause_workgroup",
        "s3_vanish",
        "delay",
        "fail_statement",
        "abort_statement",
        "expire_credentials",
    }


def test_unknown_field_is_named() -> None:
    error = refusal({"kind": "throttle", "operation": "ExecuteStatement", "tiems": 2})
    assert error.field == "tiems"
    assert "unknown field 'tiems'" in error.message
    assert "operation" in error.message  # says what the kind takes


def test_a_field_of_another_kind_is_unknown_here() -> None:
    assert refusal({"kind": "throttle", "sql": "select"}).field == "sql"
    assert refusal({"kind": "delay", "seconds": 1, "operation": "X"}).field == "operation"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        ("throttle", "body"),
        ({}, "kind"),
        ({"kind": "explode"}, "kind"),
        ({"kind": 3}, "kind"),
        ({"kind": "throttle", "times": 0}, "times"),
        ({"kind": "throttle", "times": -1}, "times"),
        ({"kind": "throttle", "times": 1.5}, "times"),
        ({"kind": "throttle", "times": True}, "times"),
        ({"kind": "throttle", "times": "2"}, "times"),
        ({"kind": "throttle", "service": "dynamodb"}, "service"),
        ({"kind": "throttle", "operation": "DropTable"}, "operation"),
        ({"kind": "throttle", "service": "s3", "operation": "ExecuteStatement"}, "operation"),
        ({"kind": "throttle", "operation": ""}, "operation"),
        ({"kind": "throttle", "key": "^x"}, "key"),
        ({"kind": "throttle", "service": "s3", "key": "("}, "key"),
        ({"kind": "fail_statement", "sql": "[unclosed"}, "sql"),
        ({"kind": "fail_statement", "message": 5}, "message"),
        ({"kind": "delay"}, "seconds"),
        ({"kind": "delay", "seconds": -1}, "seconds"),
        ({"kind": "delay", "seconds": "1"}, "seconds"),
        ({"kind": "delay", "seconds": 4000}, "seconds"),
        ({"kind": "delay", "seconds": 1, "min_seconds": 0}, "seconds"),
        ({"kind": "delay", "max_seconds": 2}, "min_seconds"),
        ({"kind": "delay", "min_seconds": 2}, "max_seconds"),
        ({"kind": "delay", "min_seconds": 3, "max_seconds": 2}, "max_seconds"),
        ({"kind": "abort_statement", "after_seconds": False}, "after_seconds"),
        ({"kind": "drop_connection", "status": 99}, "status"),
        ({"kind": "drop_connection", "cut": "middle"}, "cut"),
        ({"kind": "drop_connection", "after_processing": "yes"}, "after_processing"),
        ({"kind": "s3_vanish", "delete": 1}, "delete"),
        ({"kind": "s3_vanish", "operation": "ListDatabases"}, "operation"),
        ({"kind": "expire_credentials", "times": 2}, "times"),
    ],
)
def test_bad_fields(payload: Any, field: str) -> None:
    assert refusal(payload).field == field


def test_s3_vanish_is_about_s3_and_active_statements_about_redshift_data() -> None:
    assert parse_fault({"kind": "s3_vanish", "key": "^stage/"}).service == "s3"
    assert parse_fault({"kind": "active_statements"}).service == "redshift-data"


def test_as_json_leaves_out_unset_fields() -> None:
    spec = parse_fault({"kind": "delay", "min_seconds": 0.1, "max_seconds": 0.2, "sql": "x"})
    assert spec.as_json() == {
        "kind": "delay",
        "times": 1,
        "sql": "x",
        "min_seconds": 0.1,
        "max_seconds": 0.2,
    }


# -- matching and counting ----------------------------------------------------------------------


def test_a_fault_fires_its_times_then_stops() -> None:
    registry = FaultRegistry()
    fault_id = registry.add("throttle", operation="ExecuteStatement", times=2)
    take = {"service": "redshift-data", "operation": "ExecuteStatement"}
    assert registry.take("operation", **take) is not None
    assert registry.take("operation", **take) is not None
    assert registry.take("operation", **take) is None
    assert registry.counts() == {fault_id: 2}
    listed = registry.listing()[0]
    assert listed["fired"] == 2
    assert listed["remaining"] == 0
    assert listed["active"] is False


def test_faults_match_their_operation_service_and_point() -> None:
    registry = FaultRegistry()
    registry.add("throttle", operation="ExecuteStatement")
    assert registry.take("operation", service="redshift-data", operation="ListTables") is None
    assert registry.take("http", service="redshift-data", operation="ExecuteStatement") is None
    assert registry.take("operation", service="s3", operation="ExecuteStatement") is None
    assert registry.take("operation", service="redshift-data", operation="ExecuteStatement")


def test_a_fault_without_operation_hits_any() -> None:
    registry = FaultRegistry()
    registry.add("server_error", times=2)
    assert registry.take("operation", service="redshift-data", operation="ListTables")
    assert registry.take("operation", service="redshift-data", operation="DescribeStatement")


def test_kinds_with_default_operations() -> None:
    registry = FaultRegistry()
    registry.add("active_statements")
    registry.add("pause_workgroup")
    assert (
        registry.take("operation", service="redshift-data", operation="DescribeStatement") is None
    )
    assert registry.take("operation", service="redshift-data", operation="ExecuteStatement")
    paused = registry.take("operation", service="redshift-data", operation="ListSchemas")
    assert paused is not None
    assert paused.spec.kind == "pause_workgroup"


def test_s3_key_patterns() -> None:
    registry = FaultRegistry()
    registry.add("s3_vanish", key=r"^stage/.*\.parquet$")
    assert registry.take("http", service="s3", operation="GetObject", key="other/a.parquet") is None
    assert (
        registry.take("http", service="s3", operation="HeadObject", key="stage/a.parquet") is None
    )
    assert registry.take("http", service="s3", operation="GetObject", key=None) is None
    assert registry.take("http", service="s3", operation="GetObject", key="stage/a.parquet")


def test_sql_patterns_ignore_case_and_span_lines() -> None:
    registry = FaultRegistry()
    registry.add("fail_statement", sql=r"select .*from public\.sales", message="ERROR: no")
    assert registry.take("statement", sql="select 1") is None
    fault = registry.take("statement", sql="SELECT *\nFROM public.sales")
    assert fault is not None
    assert fault.spec.message == "ERROR: no"


def test_the_first_matching_fault_wins_in_order_of_adding() -> None:
    registry = FaultRegistry()
    first = registry.add("delay", seconds=0.5)
    second = registry.add("fail_statement")
    fault = registry.take("statement", sql="select 1")
    assert fault is not None
    assert fault.id == first
    fault = registry.take("statement", sql="select 1")
    assert fault is not None
    assert fault.id == second


def test_armed_and_wants_service() -> None:
    registry = FaultRegistry()
    assert not registry.armed("http")
    registry.add("throttle", service="sts")
    assert registry.armed("http")
    assert registry.wants_service("http", "sts")
    assert not registry.wants_service("http", "s3")
    assert registry.take("http", service="sts", operation="AssumeRole")
    assert not registry.armed("http")


def test_clear_removes_everything() -> None:
    registry = FaultRegistry()
    registry.add("throttle")
    registry.add("delay", seconds=1)
    assert registry.clear() == 2
    assert registry.listing() == []
    assert registry.counts() == {}


def test_random_delays_use_the_injected_random() -> None:
    registry = FaultRegistry(random=lambda: 0.25)
    registry.add("delay", min_seconds=1, max_seconds=3)
    registry.add("delay", seconds=0.5)
    ranged = registry.take("statement", sql="x")
    fixed = registry.take("statement", sql="x")
    assert ranged is not None
    assert fixed is not None
    assert registry.delay_seconds(ranged) == 1.5
    assert registry.delay_seconds(fixed) == 0.5


def test_immediate_faults_act_when_added() -> None:
    calls: list[FaultSpec] = []

    def expire(spec: FaultSpec) -> dict[str, Any]:
        calls.append(spec)
        return {"expired_sessions": 3}

    registry = FaultRegistry(actions={"expire_credentials": expire})
    fault_id = registry.add("expire_credentials")
    assert [c.kind for c in calls] == ["expire_credentials"]
    assert registry.counts() == {fault_id: 1}
    assert registry.listing()[0]["detail"] == {"expired_sessions": 3}
    assert registry.take("immediate") is None  # it does not fire again


def test_an_immediate_fault_without_its_action_is_refused() -> None:
    with pytest.raises(FaultSpecError) as error:
        FaultRegistry().add("expire_credentials")
    assert error.value.field == "kind"


def test_ids_are_unique() -> None:
    registry = FaultRegistry()
    ids = {registry.add("throttle") for _ in range(5)}
    assert len(ids) == 5


# -- classifying requests -----------------------------------------------------------------------

AUTH = (
    "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20260101/us-east-1/{service}/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=abc"
)


@pytest.mark.parametrize("service", ["s3", "sts", "redshift-data"])
def test_service_from_the_authorization_header(service: str) -> None:
    assert service_of(AUTH.format(service=service), {}) == service


def test_service_from_a_presigned_url() -> None:
    query = {"X-Amz-Credential": ["ASIAEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"]}
    assert service_of("", query) == "s3"
    assert service_of("", {}) is None


@pytest.mark.parametrize(
    ("method", "path", "query", "operation"),
    [
        ("GET", "/", {}, "ListBuckets"),
        ("GET", "/bucket", {"list-type": ["2"], "prefix": ["a/"]}, "ListObjectsV2"),
        ("GET", "/bucket", {}, "ListObjects"),
        ("GET", "/bucket", {"location": [""]}, None),
        ("HEAD", "/bucket", {}, "HeadBucket"),
        ("PUT", "/bucket", {}, "CreateBucket"),
        ("DELETE", "/bucket", {}, "DeleteBucket"),
        ("POST", "/bucket", {"delete": [""]}, "DeleteObjects"),
        ("GET", "/bucket/a/b.parquet", {}, "GetObject"),
        ("GET", "/bucket/a/b.parquet", {"versionId": ["1"]}, "GetObject"),
        ("GET", "/bucket/a/b.parquet", {"response-content-type": ["x"]}, "GetObject"),
        ("GET", "/bucket/a/b.parquet", {"attributes": [""]}, "GetObjectAttributes"),
        ("GET", "/bucket/a/b.parquet", {"tagging": [""]}, None),
        ("HEAD", "/bucket/a/b.parquet", {}, "HeadObject"),
        ("PUT", "/bucket/a/b.parquet", {}, "PutObject"),
        ("PUT", "/bucket/a/b", {"partNumber": ["1"], "uploadId": ["u"]}, "UploadPart"),
        ("DELETE", "/bucket/a/b.parquet", {}, "DeleteObject"),
        ("DELETE", "/bucket/a/b", {"uploadId": ["u"]}, "AbortMultipartUpload"),
        ("POST", "/bucket/a/b", {"uploads": [""]}, "CreateMultipartUpload"),
        ("POST", "/bucket/a/b", {"uploadId": ["u"]}, "CompleteMultipartUpload"),
    ],
)
def test_s3_operations(
    method: str, path: str, query: dict[str, list[str]], operation: str | None
) -> None:
    assert s3_operation(method, path, query).operation == operation


def test_s3_copy_object_and_keys() -> None:
    assert s3_operation("PUT", "/b/k", {}, copy_source=True).operation == "CopyObject"
    assert s3_operation("GET", "/bucket/a/b/c.parquet", {}) == RequestInfo(
        "s3", "GetObject", "bucket", "a/b/c.parquet"
    )


def test_presigned_query_keys_do_not_hide_the_operation() -> None:
    query = {"X-Amz-Signature": ["x"], "X-Amz-Credential": ["y"], "X-Amz-Date": ["z"]}
    assert s3_operation("GET", "/bucket/key", query).operation == "GetObject"


# -- error bodies -------------------------------------------------------------------------------


def test_s3_error_body_is_s3_xml() -> None:
    body = s3_error_body("NoSuchKey", "The specified key does not exist.", "a&b").decode()
    assert "<Code>NoSuchKey</Code>" in body
    assert "<Key>a&amp;b</Key>" in body
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_sts_error_body_names_the_side() -> None:
    assert "<Type>Sender</Type>" in sts_error_body("Throttling", "Rate exceeded", 400).decode()
    assert "<Type>Receiver</Type>" in sts_error_body("InternalFailure", "x", 500).decode()


def test_json_errors_carry_the_error_type_header() -> None:
    headers, body = error_response("redshift-data", "ThrottlingException", "Rate exceeded", 400)
    assert ("x-amzn-ErrorType", "ThrottlingException") in headers
    assert b'"__type": "ThrottlingException"' in body
