"""Results: Field unions, ColumnMetadata, pages bounded in bytes, JSON and CSV alike."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Final

import pytest
from botocore.exceptions import ClientError

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.local.data_api.results import Limits
from shiftsync.local.standin import StandInInfo
from tests.support import TYPES_TABLE_TYPE_NAMES, run_statement

WIDE_ROWS: Final = 2500
# 2,500 rows of ~530 bytes: more than the default 1 MiB page, so at least two pages.
WIDE_SQL: Final = (
    f"select n, repeat('x', 500) as pad from generate_series(1, {WIDE_ROWS}) as n order by n"
)


def _run(client: Any, info: StandInInfo, sql: str, **kwargs: Any) -> str:
    statement_id, described = run_statement(client, info, sql, interval=0.01, **kwargs)
    assert described["Status"] == "FINISHED", described.get("Error")
    return statement_id


def _pages(client: Any, statement_id: str, csv_format: bool = False) -> list[dict[str, Any]]:
    fetch = client.get_statement_result_v2 if csv_format else client.get_statement_result
    pages = [fetch(Id=statement_id)]
    while pages[-1].get("NextToken"):
        pages.append(fetch(Id=statement_id, NextToken=pages[-1]["NextToken"]))
        assert len(pages) < 100, "NextToken never ran out"
    return pages


def _plain(field: dict[str, Any]) -> Any:
    """A JSON Field's value as Python (None for isNull)."""
    if field.get("isNull"):
        return None
    (value,) = field.values()
    return value


@pytest.fixture(scope="module")
def wide_json(redshift_data: Any, info: StandInInfo) -> list[dict[str, Any]]:
    return _pages(redshift_data, _run(redshift_data, info, WIDE_SQL))


@pytest.fixture(scope="module")
def wide_csv(redshift_data: Any, info: StandInInfo) -> list[dict[str, Any]]:
    statement_id = _run(redshift_data, info, WIDE_SQL, ResultFormat="CSV")
    return _pages(redshift_data, statement_id, csv_format=True)


def test_a_wide_result_spans_pages_with_the_right_total(wide_json: list[dict[str, Any]]) -> None:
    assert len(wide_json) >= 2
    assert all(page["TotalNumRows"] == WIDE_ROWS for page in wide_json)
    rows = [row for page in wide_json for row in page["Records"]]
    assert [row[0]["longValue"] for row in rows] == list(range(1, WIDE_ROWS + 1))
    assert all(row[1] == {"stringValue": "x" * 500} for row in rows)
    assert "NextToken" not in wide_json[-1]
    assert all(page["ColumnMetadata"] == wide_json[0]["ColumnMetadata"] for page in wide_json)


def test_pages_are_bounded_in_bytes(wide_json: list[dict[str, Any]]) -> None:
    page_bytes = Limits().page_bytes
    for page in wide_json:
        encoded = json.dumps(page["Records"], separators=(",", ":")).encode()
        # A page is closed once it passes the bound: at most one row over it.
        assert len(encoded) <= page_bytes + 600


def test_boto3_paginator_reads_every_row(redshift_data: Any, info: StandInInfo) -> None:
    statement_id = _run(redshift_data, info, WIDE_SQL)
    paginator = redshift_data.get_paginator("get_statement_result")
    rows = [row for page in paginator.paginate(Id=statement_id) for row in page["Records"]]
    assert len(rows) == WIDE_ROWS


def test_csv_pages_carry_the_header_once(wide_csv: list[dict[str, Any]]) -> None:
    assert len(wide_csv) >= 2
    texts = [page["Records"][0]["CSVRecords"] for page in wide_csv]
    assert texts[0].startswith("n,pad\n")
    assert not any(text.startswith("n,pad") for text in texts[1:])
    assert all(page["TotalNumRows"] == WIDE_ROWS for page in wide_csv)
    assert all(page["ResultFormat"] == "CSV" for page in wide_csv)


def test_json_and_csv_give_the_same_rows(
    wide_json: list[dict[str, Any]], wide_csv: list[dict[str, Any]]
) -> None:
    from_json = [
        [str(_plain(field)) for field in row] for page in wide_json for row in page["Records"]
    ]
    text = "".join(page["Records"][0]["CSVRecords"] for page in wide_csv)
    header, *from_csv = list(csv.reader(io.StringIO(text)))
    assert header == [c["name"] for c in wide_json[0]["ColumnMetadata"]]
    assert from_csv == from_json
    assert wide_csv[0]["ColumnMetadata"] == wide_json[0]["ColumnMetadata"]


def test_json_and_csv_agree_on_awkward_strings(redshift_data: Any, info: StandInInfo) -> None:
    sql = "select id, c_varchar from public.types order by id"
    json_rows = [
        [_plain(f) for f in row]
        for page in _pages(redshift_data, _run(redshift_data, info, sql))
        for row in page["Records"]
    ]
    csv_id = _run(redshift_data, info, sql, ResultFormat="CSV")
    text = "".join(p["Records"][0]["CSVRecords"] for p in _pages(redshift_data, csv_id, True))
    _, *csv_rows = list(csv.reader(io.StringIO(text)))
    assert len(csv_rows) == len(json_rows)
    strings = [value for _, value in json_rows if value]
    assert {"a,b,c", 'say "hi"', "line1\nline2", "crlf\r\nend", "日本語のテキスト"} <= set(strings)
    for (json_id, json_value), (csv_id_text, csv_value) in zip(json_rows, csv_rows, strict=True):
        assert str(json_id) == csv_id_text
        assert (json_value or "") == csv_value


def test_csv_tells_null_from_empty_string(redshift_data: Any, info: StandInInfo) -> None:
    sql = "select NULL::varchar as a, ''::varchar as b, 'x,y' as c, 'say \"hi\"' as d"
    statement_id = _run(redshift_data, info, sql, ResultFormat="CSV")
    page = redshift_data.get_statement_result_v2(Id=statement_id)
    assert page["Records"] == [{"CSVRecords": 'a,b,c,d\n,"","x,y","say ""hi"""\n'}]


def test_field_unions_follow_the_type(redshift_data: Any, info: StandInInfo) -> None:
    sql = (
        "select c_smallint, c_bigint, c_decimal_38_0, c_real, c_double, c_boolean, c_date,"
        " c_timestamp, c_varbyte from public.types where id in (1, 3) order by id"
    )
    nulls, edges = redshift_data.get_statement_result(Id=_run(redshift_data, info, sql))["Records"]
    assert nulls == [{"isNull": True}] * 9
    assert edges == [
        {"longValue": 32767},
        {"longValue": 9223372036854775807},
        {"stringValue": "9" * 38},
        {"doubleValue": pytest.approx(3.4028235e38)},
        {"doubleValue": 1.7976931348623157e308},
        {"booleanValue": False},
        {"stringValue": "1969-12-31"},
        {"stringValue": "1969-12-31 23:59:59.999999"},
        {"stringValue": "ff"},
    ]


def test_non_finite_doubles_travel_as_json_strings(
    redshift_data: Any, info: StandInInfo, assumed: AssumedRoleSession
) -> None:
    """JSON has no NaN or infinities: the AWS JSON 1.1 protocol sends them as strings, and
    the body stays strict JSON (Python's json would otherwise write bare NaN tokens)."""
    sql = (
        "select 'NaN'::float8 as a, 'Infinity'::float8 as b, '-Infinity'::float4 as c,"
        " 1.5::float8 as d, -0.0::float8 as e"
    )
    statement_id = _run(redshift_data, info, sql)
    bodies: list[bytes] = []

    def keep_body(response_dict: dict[str, Any], **_: Any) -> None:
        bodies.append(bytes(response_dict["body"]))

    client = assumed.boto3.client("redshift-data")
    client.meta.events.register("before-parse.redshift-data.GetStatementResult", keep_body)
    result = client.get_statement_result(Id=statement_id)
    assert result["Records"] == [
        [
            {"doubleValue": "NaN"},
            {"doubleValue": "Infinity"},
            {"doubleValue": "-Infinity"},
            {"doubleValue": 1.5},
            {"doubleValue": -0.0},
        ]
    ]

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} is not JSON")

    [body] = bodies
    assert json.loads(body, parse_constant=refuse)["Records"] == result["Records"]


def test_column_metadata_uses_redshift_type_names(redshift_data: Any, info: StandInInfo) -> None:
    statement_id = _run(redshift_data, info, "select * from public.types order by id")
    result = redshift_data.get_statement_result(Id=statement_id)
    metadata = {c["name"]: c for c in result["ColumnMetadata"]}
    assert {name: c["typeName"] for name, c in metadata.items()} == TYPES_TABLE_TYPE_NAMES
    assert (metadata["c_decimal_38_10"]["precision"], metadata["c_decimal_38_10"]["scale"]) == (
        38,
        10,
    )
    assert (metadata["c_varchar"]["precision"], metadata["c_varchar"]["length"]) == (300, 0)
    assert (metadata["c_char"]["precision"], metadata["c_char"]["length"]) == (12, 0)
    assert metadata["c_bigint"]["isSigned"] is True
    assert metadata["c_varchar"]["isCaseSensitive"] is True
    assert (metadata["c_date"]["schemaName"], metadata["c_date"]["tableName"]) == (
        "public",
        "types",
    )
    assert result["TotalNumRows"] == len(result["Records"])


def test_an_expression_column_reads_as_varchar(redshift_data: Any, info: StandInInfo) -> None:
    statement_id = _run(redshift_data, info, "select 'a' || 'b' as joined, 1.5::numeric(4,1) n")
    result = redshift_data.get_statement_result(Id=statement_id)
    assert [c["typeName"] for c in result["ColumnMetadata"]] == ["varchar", "numeric"]
    assert result["Records"] == [[{"stringValue": "ab"}, {"stringValue": "1.5"}]]


def test_an_empty_result_still_has_columns(redshift_data: Any, info: StandInInfo) -> None:
    statement_id = _run(redshift_data, info, "select catid from public.category where false")
    described = redshift_data.describe_statement(Id=statement_id)
    assert described["HasResultSet"] is True
    assert described["ResultRows"] == 0
    result = redshift_data.get_statement_result(Id=statement_id)
    assert result["Records"] == []
    assert result["TotalNumRows"] == 0
    assert [c["name"] for c in result["ColumnMetadata"]] == ["catid"]


def test_each_result_format_has_its_own_operation(redshift_data: Any, info: StandInInfo) -> None:
    csv_id = _run(redshift_data, info, "select 1 as one", ResultFormat="CSV")
    json_id = _run(redshift_data, info, "select 1 as one")
    for call, statement_id in (
        (redshift_data.get_statement_result, csv_id),
        (redshift_data.get_statement_result_v2, json_id),
    ):
        with pytest.raises(ClientError) as wrong:
            call(Id=statement_id)
        assert wrong.value.response["Error"]["Code"] == "ValidationException"


def test_a_foreign_next_token_is_refused(
    redshift_data: Any, info: StandInInfo, wide_json: list[dict[str, Any]]
) -> None:
    other = _run(redshift_data, info, "select 1")
    with pytest.raises(ClientError) as refused:
        redshift_data.get_statement_result(Id=other, NextToken=wide_json[0]["NextToken"])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as garbage:
        redshift_data.get_statement_result(Id=other, NextToken="not-a-token")
    assert garbage.value.response["Error"]["Code"] == "ValidationException"
