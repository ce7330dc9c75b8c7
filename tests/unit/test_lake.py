"""The lake destinations' pure parts: storage types, Iceberg's evolution rules, merge filters
and predicates, commit properties, S3 settings, and the configuration they are built from."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pytest
from botocore.credentials import ReadOnlyCredentials
from pyiceberg.expressions.parser import parse

from shiftsync.config import (
    DeltaDestinationConfig,
    IcebergDestinationConfig,
    ParquetDestinationConfig,
    ProfileCredentials,
    validate_config_data,
)
from shiftsync.destinations.delta.destination import merge_predicate
from shiftsync.destinations.delta.storage import DeltaSettings, storage_options
from shiftsync.destinations.iceberg.catalog import IcebergSettings, catalog_properties, redact_uri
from shiftsync.destinations.iceberg.deletes import key_bounds, rows_to_delete
from shiftsync.destinations.iceberg.evolution import check_evolution, iceberg_promotes
from shiftsync.destinations.identity import credentials_for
from shiftsync.destinations.lake.properties import (
    CURSOR,
    RUN_ID,
    STATE,
    commit_properties,
    is_shiftsync_commit,
    read_schema,
    read_states,
)
from shiftsync.destinations.lake.s3 import S3Settings, delta_storage_options
from shiftsync.destinations.lake.types import from_storage, storage_schema, to_storage
from shiftsync.destinations.registry import DestinationContext, create_destination
from shiftsync.destinations.schema_change import plan_schema
from shiftsync.errors import ConfigError, DestinationError
from shiftsync.json_types import JsonValue

JSON = pa.json_(pa.string())
CONTRACT = pa.schema(
    [
        ("i16", pa.int16()),
        ("clock", pa.time64("us")),
        ("span", pa.duration("us")),
        ("doc", JSON),
        ("instant", pa.timestamp("us", tz="UTC")),
        ("d38", pa.decimal128(38, 10)),
    ]
)


@pytest.mark.parametrize(
    ("flavor", "expected"),
    [
        ("iceberg", [pa.int32(), pa.time64("us"), pa.int64(), pa.string()]),
        ("delta", [pa.int16(), pa.int64(), pa.int64(), pa.string()]),
    ],
)
def test_storage_types_follow_the_table(flavor: Any, expected: list[pa.DataType]) -> None:
    stored = storage_schema("t", CONTRACT, flavor)
    assert stored.types[:4] == expected
    assert stored.field("instant").type == pa.timestamp("us", tz="UTC")
    assert stored.field("d38").type == pa.decimal128(38, 10)
    assert all(f.nullable for f in stored)


@pytest.mark.parametrize("flavor", ["iceberg", "delta"])
def test_storage_round_trips_every_contract_type(flavor: Any) -> None:
    batch = pa.RecordBatch.from_arrays(
        [
            pa.array([32767, None], pa.int16()),
            pa.array([dt.time(23, 59, 59, 999999), None], pa.time64("us")),
            pa.array([dt.timedelta(days=-999_999, seconds=1), None], pa.duration("us")),
            pa.ExtensionArray.from_storage(JSON, pa.array(['{"a": 1}', None])),
            pa.array([dt.datetime(1900, 1, 1, tzinfo=dt.UTC), None], CONTRACT.field(4).type),
            pa.array([None, None], pa.decimal128(38, 10)),
        ],
        schema=CONTRACT,
    )
    stored = storage_schema("t", CONTRACT, flavor)
    back = from_storage(to_storage(batch, stored), CONTRACT)
    assert back.schema == CONTRACT
    assert back.to_pylist() == batch.to_pylist()


@pytest.mark.parametrize("flavor", ["iceberg", "delta"])
def test_a_type_the_format_cannot_hold_is_refused_by_name(flavor: Any) -> None:
    schema = pa.schema([("id", pa.int64()), ("span", pa.month_day_nano_interval())])
    with pytest.raises(DestinationError, match="'span'") as caught:
        storage_schema("t", schema, flavor)
    assert caught.value.fix


@pytest.mark.parametrize(
    ("old", "new", "promotes"),
    [
        (pa.int32(), pa.int64(), True),
        (pa.float32(), pa.float64(), True),
        (pa.decimal128(10, 2), pa.decimal128(12, 2), True),
        (pa.decimal128(10, 2), pa.decimal128(12, 4), False),
        (pa.int64(), pa.int32(), False),
        (pa.string(), pa.string(), True),
    ],
)
def test_iceberg_promotion_rules(old: pa.DataType, new: pa.DataType, promotes: bool) -> None:
    assert iceberg_promotes(old, new) is promotes


def test_a_decimal_scale_change_is_refused_naming_table_column_and_types() -> None:
    existing = pa.schema([("id", pa.int64()), ("price", pa.decimal128(10, 2))])
    incoming = pa.schema([("id", pa.int64()), ("price", pa.decimal128(10, 4))])
    plan = plan_schema("sales", existing, incoming, "evolve")
    with pytest.raises(DestinationError, match=r"'sales'.*'price'.*decimal128\(10, 2\)"):
        check_evolution("sales", existing, plan)
    int16_to_int32 = plan_schema(
        "sales", pa.schema([("n", pa.int16())]), pa.schema([("n", pa.int32())]), "evolve"
    )
    check_evolution("sales", pa.schema([("n", pa.int16())]), int16_to_int32)  # both Iceberg int


def test_key_bounds_box_the_keys_with_literals() -> None:
    keys = pa.table({"id": [3, 1, 2]})
    assert key_bounds(["id"], keys) == parse("id >= 1 AND id <= 3")
    pairs = pa.table({"a": ["it's", "x) OR (1=1"], "b": [7, 2]})
    expected = parse("a >= 'it''s' AND a <= 'x) OR (1=1' AND b >= 2 AND b <= 7")
    assert key_bounds(["a", "b"], pairs) == expected


def test_rows_to_delete_match_whole_composite_keys_of_every_key_type() -> None:
    when = [dt.datetime(2024, 1, 1, 0, 0, 0, i, tzinfo=dt.UTC) for i in range(4)]
    rows = pa.table(
        {
            "a": ["a|1:b", "a", "a|1:b", "a"],
            "at": pa.array(when, pa.timestamp("us", tz="UTC")),
            "n": pa.array([Decimal("1.50"), Decimal("2.00"), Decimal("1.50"), Decimal("3")]),
            "v": ["w", "x", "y", "z"],
        }
    )
    keys = rows.select(["a", "at", "n"]).take([1, 2])
    # Row 0 shares a and n with a deleted key, but not at: it stays.
    mask = rows_to_delete(rows, keys, ["a", "at", "n"])
    assert mask.to_pylist() == [False, True, True, False]


def test_delta_merge_predicate_quotes_names() -> None:
    assert merge_predicate(["id"]) == "t.`id` = s.`id`"
    assert merge_predicate(["My Key", "a`b"]) == "t.`My Key` = s.`My Key` AND t.`a``b` = s.`a``b`"


def test_commit_properties_carry_state_cursor_and_schema() -> None:
    schema = pa.schema([pa.field("id", pa.int64(), metadata={b"k": b"v"})])
    state = {"cursor": "2024-01-01", "run_id": "r1", "mode": "incremental"}
    properties = commit_properties("t", schema, {"other": {"x": 1}}, "key", state, "merge", 3)
    assert is_shiftsync_commit(properties)
    assert properties[CURSOR] == "2024-01-01"
    assert properties[RUN_ID] == "r1"
    assert read_states("t", properties) == {"other": {"x": 1}, "key": state}
    assert read_schema("t", properties).field("id").metadata == {b"k": b"v"}
    without = commit_properties("t", schema, {"key": state}, "key", None, "append", 1)
    assert read_states("t", without) == {"key": state}
    assert CURSOR not in without
    # Not JSON, as a caller that broke the type contract would pass it.
    not_json = cast("dict[str, JsonValue]", {"when": dt.date(2024, 1, 1)})
    with pytest.raises(DestinationError, match="JSON"):
        commit_properties("t", schema, {}, "key", not_json, "merge", 0)
    with pytest.raises(DestinationError, match="not valid JSON"):
        read_states("t", {STATE: "{nope"})


CREDENTIALS = ReadOnlyCredentials("AKIDEXAMPLE", "secret-example", "token-example")


def test_s3_settings_for_each_library() -> None:
    stand_in = S3Settings("us-east-1", "http://127.0.0.1:9000", CREDENTIALS)
    options = delta_storage_options(stand_in)
    assert options["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert options["AWS_ALLOW_HTTP"] == "true"
    assert options["AWS_SESSION_TOKEN"] == "token-example"
    aws = S3Settings("eu-west-1", None, None)
    assert delta_storage_options(aws) == {"AWS_REGION": "eu-west-1"}
    iceberg = IcebergSettings("sql", "s3://lake/wh", uri="sqlite:///c.db")
    properties = catalog_properties(iceberg, stand_in)
    assert properties["s3.endpoint"] == "http://127.0.0.1:9000"
    assert properties["s3.session-token"] == "token-example"
    assert properties["warehouse"] == "s3://lake/wh"


def test_delta_on_s3_needs_locking_and_says_how() -> None:
    with pytest.raises(ConfigError, match="locking: conditional_put"):
        DeltaSettings("s3://lake/delta").check_locking()
    with pytest.raises(ConfigError, match="dynamodb_table"):
        DeltaSettings("s3://lake/delta", locking="dynamodb").check_locking()
    DeltaSettings("/tmp/delta").check_locking()  # local disks commit atomically
    settings = S3Settings("us-east-1", None, None)
    assert (
        storage_options(DeltaSettings("s3://l/d", "conditional_put"), settings)["conditional_put"]
        == "etag"
    )
    dynamo = storage_options(DeltaSettings("s3://l/d", "dynamodb", "delta_log"), settings)
    assert dynamo["AWS_S3_LOCKING_PROVIDER"] == "dynamodb"
    assert dynamo["DELTA_DYNAMO_TABLE_NAME"] == "delta_log"


def test_catalog_uri_password_is_never_shown() -> None:
    uri = "postgresql+psycopg://loader:hunter2@db.example:5432/catalog"
    assert redact_uri(uri) == "postgresql+psycopg://loader:***@db.example:5432/catalog"
    assert "hunter2" not in IcebergSettings("sql", "/w", uri=uri).describe()


ROLE = "arn:aws:iam::123456789012:role/shiftsync-reader"
BASE: dict[str, Any] = {
    "connections": {
        "warehouse": {
            "type": "redshift_serverless",
            "region": "us-east-1",
            "workgroup": "analytics",
            "database": "dev",
            "role_arn": ROLE,
            "unload": {"bucket": "staging-bucket", "prefix": "shiftsync/"},
        }
    },
    "destinations": {},
    "syncs": {"nightly": {"source": "warehouse", "destination": "lake", "tables": ["public.*"]}},
}


def problems_of(destination: dict[str, Any]) -> list[str]:
    data = copy.deepcopy(BASE)
    data["destinations"]["lake"] = destination
    _, problems = validate_config_data(data, {})
    return [str(p) for p in problems]


@pytest.mark.parametrize(
    "destination",
    [
        {"type": "parquet", "path": "s3://staging-bucket/shiftsync/lake"},
        {"type": "parquet", "path": "s3://staging-bucket/shiftsync"},
        {"type": "iceberg", "warehouse": "s3://staging-bucket/shiftsync/iceberg/"},
        {"type": "delta", "path": "s3://staging-bucket/shiftsync/d", "locking": "conditional_put"},
    ],
)
def test_a_destination_under_the_staging_prefix_is_refused(destination: dict[str, Any]) -> None:
    found = problems_of(destination)
    assert len(found) == 1
    assert "destinations.lake." in found[0]
    assert "staging prefix s3://staging-bucket/shiftsync/" in found[0]


@pytest.mark.parametrize(
    "destination",
    [
        {"type": "parquet", "path": "s3://staging-bucket/lake"},
        {"type": "parquet", "path": "s3://other-bucket/shiftsync/lake"},
        {"type": "parquet", "path": "s3://staging-bucket/shiftsync-lake"},
        {"type": "parquet", "path": "lake"},
    ],
)
def test_a_destination_beside_the_staging_prefix_is_accepted(destination: dict[str, Any]) -> None:
    assert problems_of(destination) == []


def test_delta_on_s3_without_locking_is_a_config_problem() -> None:
    found = problems_of({"type": "delta", "path": "s3://lake-bucket/delta"})
    assert len(found) == 1
    assert "destinations.lake.locking" in found[0]
    assert "conditional_put" in found[0]
    assert problems_of({"type": "delta", "path": "delta"}) == []


def test_credentials_setting_forms() -> None:
    parquet = ParquetDestinationConfig.model_validate({"type": "parquet", "path": "p"})
    assert parquet.credentials == "connection"
    profiled = IcebergDestinationConfig.model_validate(
        {"type": "iceberg", "credentials": {"profile": "lake-writer"}}
    )
    assert profiled.credentials == ProfileCredentials(profile="lake-writer")
    assert problems_of({"type": "parquet", "path": "p", "credentials": "mine"})


def test_connection_identity_uses_the_connection_provider() -> None:
    def connection() -> ReadOnlyCredentials:
        return CREDENTIALS

    assert credentials_for("connection", connection) is connection
    assert credentials_for("default", connection) is None


def test_registry_builds_lake_destinations_with_workspace_defaults(tmp_path: Path) -> None:
    context = DestinationContext(folder=tmp_path)
    iceberg = create_destination(
        IcebergDestinationConfig.model_validate({"type": "iceberg"}), context
    )
    assert iceberg.kind == "iceberg"
    settings = iceberg.settings  # type: ignore[attr-defined]
    assert settings.uri == f"sqlite:///{tmp_path / 'iceberg_catalog.db'}"
    assert settings.warehouse == str(tmp_path / "iceberg")
    delta = create_destination(
        DeltaDestinationConfig.model_validate({"type": "delta", "path": "d"}), context
    )
    assert delta.kind == "delta"
    assert delta.settings.root == str(tmp_path / "d")  # type: ignore[attr-defined]


def test_destination_statements_scope_the_prefix() -> None:
    from shiftsync.aws.destination_policy import destination_statements, split_s3_url

    assert split_s3_url("s3://lake/a/b/") == ("lake", "a/b/")
    assert split_s3_url("s3://lake") == ("lake", "")
    listing, objects = destination_statements("aws-cn", [("my-lake", "s3://lake/iceberg")])
    assert listing["Sid"] == "DestinationMyLakeList"
    assert listing["Resource"] == "arn:aws-cn:s3:::lake"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["iceberg/*"]}}
    assert objects["Resource"] == "arn:aws-cn:s3:::lake/iceberg/*"
    assert objects["Action"] == ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]


def test_policy_lists_only_s3_destinations_written_as_the_connection() -> None:
    from shiftsync.aws.destination_policy import s3_destinations_of

    data = copy.deepcopy(BASE)
    data["destinations"] = {
        "lake": {"type": "iceberg", "warehouse": "s3://lake/iceberg"},
        "own": {"type": "parquet", "path": "s3://lake/own", "credentials": "default"},
        "local": {"type": "delta", "path": "delta"},
    }
    data["syncs"] = {
        name: {"source": "warehouse", "destination": name, "tables": ["public.*"]}
        for name in data["destinations"]
    }
    config, problems = validate_config_data(data, {})
    assert problems == []
    assert config is not None
    assert s3_destinations_of(config, "warehouse") == [("lake", "s3://lake/iceberg")]
    assert s3_destinations_of(config, "elsewhere") == []
