"""shiftsync.yaml: models, loading, interpolation and the error lines users see."""

from __future__ import annotations

import copy
import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from shiftsync.config import (
    REFERENCE_SECTIONS,
    SECRET_KEYS,
    ColumnSelection,
    DuckDBDestinationConfig,
    ParquetDestinationConfig,
    PostgresDestinationConfig,
    RedshiftServerlessConfig,
    ShiftsyncConfig,
    SyncConfig,
    TableSelection,
    bucket_name_problem,
    config_json_schema,
    config_reference_markdown,
    config_template,
    cron_problem,
    load_config,
    match_table,
    parse_role_arn,
)
from shiftsync.errors import EXIT_CONFIG, ConfigError

ROLE = "arn:aws:iam::123456789012:role/shiftsync-reader"
PASSWORD = "hunter2-very-secret"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
LINE_RE = re.compile(
    r"^shiftsync\.yaml: (?P<path>[^:]+): (?P<what>.+) \(got (?P<got>.*)\); expected .+$"
)

BASE: dict[str, Any] = {
    "connections": {
        "warehouse": {
            "type": "redshift_serverless",
            "region": "us-east-1",
            "workgroup": "analytics",
            "database": "dev",
            "role_arn": ROLE,
        }
    },
    "destinations": {"local": {"type": "duckdb", "path": "shiftsync.duckdb"}},
    "syncs": {"nightly": {"source": "warehouse", "destination": "local", "tables": ["public.*"]}},
}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "shiftsync.yaml"
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, data: Any, env: dict[str, str] | None = None) -> ShiftsyncConfig:
    return load_config(write(tmp_path, data), env=env or {})


_LINE_NUMBER = re.compile(r"^(shiftsync\.yaml: )line \d+: ")


def problems(tmp_path: Path, data: Any, env: dict[str, str] | None = None) -> list[str]:
    """The problem lines, without their "line N: " (tested on its own below)."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data, env)
    return [_LINE_NUMBER.sub(r"\1", line) for line in info.value.message.splitlines()]


def with_value(path: str, value: Any, base: dict[str, Any] = BASE) -> dict[str, Any]:
    """A copy of base with the value at a dotted path replaced (numbers index lists)."""
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def line_for(lines: list[str], path: str) -> str:
    found = [line for line in lines if line.startswith(f"shiftsync.yaml: {path}: ")]
    assert found, f"no problem reported at {path}: {lines}"
    return found[0]


# --- the happy path -------------------------------------------------------------------------


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    name, conn = config.connection(None)
    assert name == "warehouse"
    assert conn.session_duration_seconds == 3600
    assert conn.method == "auto"
    assert conn.result_format == "csv"
    assert conn.unload is None
    assert conn.unload_region is None
    assert conn.unload_role_arn is None
    assert conn.account_id == "123456789012"
    assert conn.partition == "aws"
    assert conn.role_name == "shiftsync-reader"
    _, sync = config.sync(None)
    assert sync.concurrency == 2
    assert sync.schema_changes == "evolve"
    assert sync.normalize_names is False
    assert sync.tables == (TableSelection(include="public.*"),)
    assert sync.tables[0].mode == "full_refresh"


FULL_EXAMPLE = """
connections:
  warehouse:
    type: redshift_serverless
    region: us-east-1
    workgroup: analytics
    database: dev
    role_arn: arn:aws:iam::123456789012:role/shiftsync-reader
    session_duration_seconds: 3600
    principal_arn: null
    method: auto
    result_format: csv
    unload:
      bucket: my-staging-bucket
      prefix: shiftsync/stage
      kms_key_id: null
      iam_role_arn: null
destinations:
  local:
    type: duckdb
    path: shiftsync.duckdb
  pg:
    type: postgres
    dsn: postgresql://user@host:5432/db
    schema: public
  lake:
    type: parquet
    path: ./lake
syncs:
  nightly:
    source: warehouse
    destination: local
    concurrency: 2
    method: auto
    normalize_names: false
    schema_changes: evolve
    schedule: "0 3 * * MON-FRI"
    tables:
      - "public.*"
      - include: "public.sales"
        exclude: []
        mode: incremental
        tracking_field: saletime
        primary_key: [salesid]
        columns: {include: [salesid, saletime, buyerid, qtysold], hash: [buyerid]}
        filter: "qtysold > 0"
        target: sales_fact
        method: unload
    exclude: ["public.tmp_*"]
"""


def test_the_documented_example_loads(tmp_path: Path) -> None:
    config = load(tmp_path, FULL_EXAMPLE)
    conn = config.connections["warehouse"]
    assert conn.unload is not None
    assert conn.unload.prefix == "shiftsync/stage/"  # normalised with a trailing /
    assert conn.unload_region == "us-east-1"
    assert conn.unload_role_arn == ROLE
    pg = config.destinations["pg"]
    assert isinstance(pg, PostgresDestinationConfig)
    assert pg.db_schema == "public"
    assert pg.dsn.get_secret_value() == "postgresql://user@host:5432/db"
    assert isinstance(config.destinations["local"], DuckDBDestinationConfig)
    assert isinstance(config.destinations["lake"], ParquetDestinationConfig)
    sales = config.syncs["nightly"].tables[1]
    assert sales.mode == "incremental"
    assert sales.tracking_field == "saletime"
    assert sales.primary_key == ("salesid",)
    assert sales.columns == ColumnSelection(
        include=("salesid", "saletime", "buyerid", "qtysold"), hash=("buyerid",)
    )
    assert sales.target == "sales_fact"
    assert sales.method == "unload"


def test_template_loads_as_written(tmp_path: Path) -> None:
    config = load(tmp_path, config_template())
    _, conn = config.connection(None)
    assert conn.role_arn == ROLE
    _, destination = config.destination(None)
    assert isinstance(destination, DuckDBDestinationConfig)
    _, sync = config.sync(None)
    assert sync.select("public", "sales") is not None


def test_template_is_commented() -> None:
    template = config_template()
    assert template.count("CHANGE") >= 4
    assert "docs/configuration.md" in template


def test_models_are_frozen(tmp_path: Path) -> None:
    conn = load(tmp_path, BASE).connections["warehouse"]
    with pytest.raises(ValidationError):
        conn.region = "eu-west-1"


# --- one value at a time: good values load, bad ones name the key and the value -------------

C = "connections.warehouse"
U = "connections.warehouse.unload"
S = "syncs.nightly"
T = "syncs.nightly.tables.0"

GOOD: list[tuple[str, Any]] = [
    (f"{C}.region", "eu-west-2"),
    (f"{C}.region", "ap-southeast-5"),
    (f"{C}.workgroup", "abc"),
    (f"{C}.workgroup", "a" * 64),
    (f"{C}.workgroup", "default-workgroup"),
    (f"{C}.database", "_x$1"),
    (f"{C}.database", "D" * 127),
    (f"{C}.role_arn", "arn:aws:iam::000000000000:role/team/data/reader_1+=,.@-"),
    (f"{C}.session_duration_seconds", 900),
    (f"{C}.session_duration_seconds", 43200),
    (f"{C}.principal_arn", "arn:aws:iam::111122223333:root"),
    (f"{C}.principal_arn", "arn:aws:iam::111122223333:user/ci/deployer"),
    (f"{C}.principal_arn", "arn:aws:iam::111122223333:role/runner"),
    (f"{C}.principal_arn", "arn:aws:sts::111122223333:assumed-role/runner/session-1"),
    (f"{C}.method", "data_api"),
    (f"{C}.result_format", "json"),
    (f"{U}", {"bucket": "a.b-c1"}),
    (f"{U}", {"bucket": "bkt", "region": "eu-west-1", "prefix": "a/b/"}),
    (f"{U}", {"bucket": "bkt", "kms_key_id": "alias/staging"}),
    (f"{U}", {"bucket": "bkt", "iam_role_arn": "arn:aws:iam::123456789012:role/unloader"}),
    ("destinations.local", {"type": "duckdb"}),
    ("destinations.local", {"type": "postgres", "dsn": "host=db user=me dbname=x"}),
    ("destinations.local", {"type": "postgres", "dsn": "postgres://h/db", "schema": "raw_1"}),
    ("destinations.local", {"type": "parquet", "path": "s3://my-bucket/lake"}),
    ("destinations.local", {"type": "parquet", "path": "/data/lake"}),
    (f"{S}.concurrency", 1),
    (f"{S}.concurrency", 16),
    (f"{S}.method", "data_api"),
    (f"{S}.normalize_names", True),
    (f"{S}.schema_changes", "fail"),
    (f"{S}.schedule", "*/15 0-6,22 1 JAN,jul *"),
    (f"{S}.exclude", ["public.tmp_*", "stag?ng.x[0-9]"]),
    (T, "sales.*"),
    (T, {"include": "public.sales", "exclude": ["public.sales_old"]}),
    (T, {"include": "a.b", "mode": "incremental", "tracking_field": "updated_at"}),
    (T, {"include": "a.b", "primary_key": ["id", "tenant"]}),
    (T, {"include": "a.b", "columns": {"exclude": ["ssn"]}}),
    (T, {"include": "a.b", "filter": "qty > 0", "target": "b_copy"}),
    (T, {"include": "a.b", "method": "data_api"}),
]


@pytest.mark.parametrize(("path", "value"), GOOD)
def test_good_values_load(tmp_path: Path, path: str, value: Any) -> None:
    load(tmp_path, with_value(path, value))


BAD: list[tuple[str, Any, str, str]] = [
    # (dotted path in the file, value, path in the error line, what the line says)
    (f"{C}.region", "us-east", f"{C}.region", "not an AWS region"),
    (f"{C}.region", "US-EAST-1", f"{C}.region", "not an AWS region"),
    (f"{C}.workgroup", "ab", f"{C}.workgroup", "not a Redshift Serverless workgroup name"),
    (f"{C}.workgroup", "a" * 65, f"{C}.workgroup", "not a Redshift Serverless workgroup name"),
    (f"{C}.workgroup", "Analytics", f"{C}.workgroup", "not a Redshift Serverless workgroup name"),
    (f"{C}.database", "1dev", f"{C}.database", "not a Redshift identifier"),
    (f"{C}.database", "d" * 128, f"{C}.database", "not a Redshift identifier"),
    (f"{C}.database", "my-db", f"{C}.database", "not a Redshift identifier"),
    (f"{C}.database", 5, f"{C}.database", "wrong type"),
    (f"{C}.role_arn", "arn:aws:iam::12345:role/x", f"{C}.role_arn", "not an IAM role ARN"),
    (f"{C}.role_arn", "arn:aws:iam::123456789012:user/x", f"{C}.role_arn", "not an IAM role ARN"),
    (f"{C}.role_arn", "arn:aws:iam::123456789012:role/", f"{C}.role_arn", "not an IAM role ARN"),
    (f"{C}.session_duration_seconds", 899, f"{C}.session_duration_seconds", "out of range"),
    (f"{C}.session_duration_seconds", 43201, f"{C}.session_duration_seconds", "out of range"),
    (f"{C}.session_duration_seconds", "soon", f"{C}.session_duration_seconds", "wrong type"),
    (f"{C}.principal_arn", "123456789012", f"{C}.principal_arn", "not an AWS principal ARN"),
    (
        f"{C}.principal_arn",
        "arn:aws:sts::123456789012:federated-user/bob",
        f"{C}.principal_arn",
        "not an AWS principal ARN",
    ),
    (f"{C}.method", "copy", f"{C}.method", "not an allowed value"),
    (f"{C}.result_format", "parquet", f"{C}.result_format", "not an allowed value"),
    (f"{C}.type", "redshift", f"{C}.type", "not an allowed value"),
    (f"{U}.bucket", "ab", f"{U}.bucket", "not an S3 bucket name (must be 3-63"),
    (f"{U}.bucket", "My_Bucket", f"{U}.bucket", "not an S3 bucket name (may only hold"),
    (f"{U}.bucket", "-bucket", f"{U}.bucket", "not an S3 bucket name (must begin and end"),
    (f"{U}.bucket", "a..b", f"{U}.bucket", "two adjacent periods"),
    (f"{U}.bucket", "192.168.1.1", f"{U}.bucket", "IP address"),
    (f"{U}.bucket", "xn--bucket", f"{U}.bucket", "must not start with xn--"),
    (f"{U}.bucket", "bucket-s3alias", f"{U}.bucket", "must not end with -s3alias"),
    (f"{U}.region", "mars", f"{U}.region", "not an AWS region"),
    (f"{U}.prefix", "/abs/", f"{U}.prefix", "starts with /"),
    (f"{U}.prefix", "a/../b/", f"{U}.prefix", "holds .. or //"),
    (f"{U}.prefix", "a*/", f"{U}.prefix", "characters that are not allowed"),
    (f"{U}.prefix", "it's/", f"{U}.prefix", "characters that are not allowed"),
    (f"{U}.prefix", "${}/", f"{U}.prefix", "malformed ${...} reference"),
    (f"{U}.prefix", "", f"{U}.prefix", "empty"),
    (f"{U}.kms_key_id", "my key", f"{U}.kms_key_id", "not a KMS key id"),
    (f"{U}.iam_role_arn", "unloader", f"{U}.iam_role_arn", "not an IAM role ARN"),
    ("destinations.local.type", "sqlite", "destinations.local.type", "unknown type"),
    ("destinations.local.path", "  ", "destinations.local.path", "empty"),
    (S + ".concurrency", 0, S + ".concurrency", "out of range"),
    (S + ".concurrency", 17, S + ".concurrency", "out of range"),
    (S + ".normalize_names", "maybe", S + ".normalize_names", "wrong type"),
    (S + ".schema_changes", "drop", S + ".schema_changes", "not an allowed value"),
    (S + ".schedule", "0 3 * *", S + ".schedule", "has 4 fields, not 5"),
    (S + ".schedule", "60 3 * * *", S + ".schedule", "minute field '60' is out of range"),
    (S + ".schedule", "0 3 * FOO *", S + ".schedule", "month field 'FOO'"),
    (S + ".schedule", "0 3 * * */0", S + ".schedule", "malformed"),
    (S + ".tables", [], S + ".tables", "empty"),
    (S + ".tables", "public.*", S + ".tables", "wrong type"),
    (S + ".exclude", ["tmp_*"], S + ".exclude.0", "not a table pattern"),
    (S + ".source", "Warehouse!", S + ".source", "not a valid name"),
    (T, "public", T + ".include", "not a table pattern"),
    (T, "a.b.c", T + ".include", "not a table pattern"),
    (T, 'a."b', T + ".include", "not a table pattern"),
    (T, 7, T, "wrong type"),
    (T, {"include": "a.b", "mode": "cdc"}, T + ".mode", "not an allowed value"),
    (T, {"include": "a.b", "mode": "incremental"}, T + ".tracking_field", "missing, but mode"),
    (T, {"include": "a.b", "tracking_field": "ts"}, T + ".tracking_field", "set, but mode"),
    (T, {"include": "a.b", "primary_key": []}, T + ".primary_key", "empty"),
    (T, {"include": "a.b", "primary_key": "id"}, T + ".primary_key", "wrong type"),
    (T, {"include": "a.b", "filter": ""}, T + ".filter", "empty"),
    (T, {"include": "a.*", "target": "t"}, T + ".target", "set, but include 'a.*' is a pattern"),
    (T, {"include": "a.b", "target": "x.y"}, T + ".target", "not a table name"),
    (T, {"include": "a.b", "method": "fast"}, T + ".method", "not an allowed value"),
    (T, {"exclude": ["a.b"]}, T + ".include", "missing"),
    (
        T,
        {"include": "a.b", "columns": {"include": ["x"], "exclude": ["y"]}},
        T + ".columns.exclude",
        "set together with include",
    ),
    (
        T,
        {"include": "a.b", "columns": {"exclude": ["y"], "hash": ["y"]}},
        T + ".columns.hash",
        "names excluded columns",
    ),
    (
        T,
        {"include": "a.b", "columns": {"include": ["x"], "hash": ["y"]}},
        T + ".columns.hash",
        "names columns missing from include",
    ),
    (
        T,
        {
            "include": "a.b",
            "mode": "incremental",
            "tracking_field": "ts",
            "columns": {"exclude": ["ts"]},
        },
        T + ".columns",
        "leaves out key columns ['ts']",
    ),
    (
        T,
        {"include": "a.b", "primary_key": ["id"], "columns": {"include": ["x"]}},
        T + ".columns",
        "leaves out key columns ['id']",
    ),
    (
        T,
        {
            "include": "a.b",
            "mode": "incremental",
            "tracking_field": "ts",
            "columns": {"hash": ["ts"]},
        },
        T + ".columns",
        "hashes the tracking_field ts",
    ),
    (T, {"include": "a.b", "columns": {"hash": [""]}}, T + ".columns.hash.0", "not a column name"),
]


@pytest.mark.parametrize(("path", "value", "where", "what"), BAD)
def test_bad_values_name_the_key_and_the_value(
    tmp_path: Path, path: str, value: Any, where: str, what: str
) -> None:
    data = with_value(path, value)
    if path.startswith(U + "."):
        data["connections"]["warehouse"]["unload"].setdefault("bucket", "bkt")
    line = line_for(problems(tmp_path, data), where)
    assert what in line
    match = LINE_RE.match(line)
    assert match, line
    if isinstance(value, str | int) and where == path and "${" not in str(value):
        # the value as written is echoed back (long ones cut short)
        shown = match["got"].removesuffix("…").strip('"')
        assert str(value).startswith(shown)
        assert len(shown) >= min(len(str(value)), 60)


def test_every_line_has_the_documented_shape(tmp_path: Path) -> None:
    lines = problems(tmp_path, FULL_EXAMPLE.replace("us-east-1", "moon").replace("csv", "xml"))
    assert lines
    for line in lines:
        assert LINE_RE.match(line), line


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    data = with_value(f"{C}.region", "nowhere")
    data["connections"]["warehouse"]["session_duration_seconds"] = 5
    data["syncs"]["nightly"]["concurrency"] = 99
    data["syncs"]["nightly"]["destination"] = "missing"
    lines = problems(tmp_path, data)
    assert [line.split(": ")[1] for line in lines] == [
        f"{C}.region",
        f"{C}.session_duration_seconds",
        f"{S}.concurrency",
        f"{S}.destination",
    ]


def test_missing_keys_are_listed_with_what_is_expected(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    del data["connections"]["warehouse"]["role_arn"]
    del data["connections"]["warehouse"]["workgroup"]
    lines = problems(tmp_path, data)
    assert line_for(lines, f"{C}.role_arn") == (
        f"shiftsync.yaml: {C}.role_arn: missing (got nothing); "
        "expected arn:aws:iam::<account>:role/<name>"
    )
    assert "missing (got nothing)" in line_for(lines, f"{C}.workgroup")


def test_connections_are_required(tmp_path: Path) -> None:
    lines = problems(tmp_path, {"destinations": {}})
    assert "missing" in line_for(lines, "connections")
    lines = problems(tmp_path, {"connections": {}})
    assert "empty" in line_for(lines, "connections")


def test_partition_must_serve_the_region(tmp_path: Path) -> None:
    line = line_for(problems(tmp_path, with_value(f"{C}.region", "cn-north-1")), f"{C}.role_arn")
    assert "partition aws does not serve region cn-north-1" in line
    data = with_value(f"{C}.role_arn", "arn:aws-cn:iam::123456789012:role/r")
    line = line_for(problems(tmp_path, data), f"{C}.role_arn")
    assert "partition aws-cn does not serve region us-east-1" in line
    data["connections"]["warehouse"]["region"] = "cn-northwest-1"
    assert load(tmp_path, data).connections["warehouse"].partition == "aws-cn"
    data = with_value(f"{C}.role_arn", "arn:aws-us-gov:iam::123456789012:role/r")
    data["connections"]["warehouse"]["region"] = "us-gov-west-1"
    assert load(tmp_path, data).connections["warehouse"].partition == "aws-us-gov"
    data["connections"]["warehouse"]["role_arn"] = ROLE
    line = line_for(problems(tmp_path, data), f"{C}.role_arn")
    assert "partition aws does not serve region us-gov-west-1" in line


def test_method_unload_needs_an_unload_block(tmp_path: Path) -> None:
    line = line_for(problems(tmp_path, with_value(f"{C}.method", "unload")), f"{C}.unload")
    assert "missing, but method is unload (got nothing)" in line
    data = with_value(f"{C}.method", "unload")
    data["connections"]["warehouse"]["unload"] = {"bucket": "bkt"}
    assert load(tmp_path, data).connections["warehouse"].method == "unload"


def test_sync_and_table_method_unload_need_the_connection_to_unload(tmp_path: Path) -> None:
    data = with_value(f"{S}.method", "unload")
    data["syncs"]["nightly"]["tables"] = ["a.b", {"include": "c.d", "method": "unload"}]
    lines = problems(tmp_path, data)
    assert "unload needs an unload: bucket on connection warehouse" in line_for(
        lines, f"{S}.method"
    )
    assert "unload needs" in line_for(lines, f"{S}.tables.1.method")
    data["connections"]["warehouse"]["unload"] = {"bucket": "bkt"}
    load(tmp_path, data)


def test_references_must_exist(tmp_path: Path) -> None:
    data = with_value(f"{S}.source", "wh")
    data["syncs"]["nightly"]["destination"] = "nowhere"
    lines = problems(tmp_path, data)
    assert line_for(lines, f"{S}.source") == (
        f'shiftsync.yaml: {S}.source: no connection named wh (got "wh"); expected one of: warehouse'
    )
    assert "expected one of: local" in line_for(lines, f"{S}.destination")


def test_a_destination_that_is_not_a_name_is_one_problem_line(tmp_path: Path) -> None:
    # The one-writer check keys its table by destination: a list there once raised TypeError.
    data = with_value(f"{S}.tables", ["public.orders"])
    data["syncs"]["nightly"]["destination"] = ["local"]
    assert problems(tmp_path, data) == [
        f'shiftsync.yaml: {S}.destination: wrong type (got ["local"]); '
        "expected the name of a destination"
    ]


# --- unknown keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "listed"),
    [
        ("version", "connections, destinations, syncs"),
        (
            f"{C}.colour",
            "type, region, workgroup, cluster_identifier, db_user, secret_arn, database, role_arn",
        ),
        (f"{U}.colour", "bucket, region, prefix, kms_key_id, iam_role_arn"),
        ("destinations.local.colour", "type, path"),
        (f"{S}.colour", "source, destination, concurrency"),
        (f"{S}.tables.0.colour", "include, exclude, mode, tracking_field"),
        (f"{S}.tables.0.columns.colour", "include, exclude, hash"),
    ],
)
def test_unknown_keys_are_refused_everywhere(tmp_path: Path, path: str, listed: str) -> None:
    base = copy.deepcopy(BASE)
    base["connections"]["warehouse"]["unload"] = {"bucket": "bkt"}
    base["syncs"]["nightly"]["tables"] = [{"include": "a.b", "columns": {}}]
    key = path.rsplit(".", 1)[-1]
    line = line_for(problems(tmp_path, with_value(path, "blue", base)), path)
    assert f'unknown key (got "{key}"); expected one of: {listed}' in line


def test_postgres_schema_key_is_spelled_schema(tmp_path: Path) -> None:
    data = with_value("destinations.local", {"type": "postgres", "dsn": "postgres://h/d"})
    data["destinations"]["local"]["db_schema"] = "x"
    line = line_for(problems(tmp_path, data), "destinations.local.db_schema")
    assert "expected one of: type, dsn, schema" in line


# --- secrets --------------------------------------------------------------------------------


def secret_dsn() -> str:
    return f"postgresql://me:{PASSWORD}@db.internal:5432/analytics"


@pytest.mark.parametrize(
    "destination",
    [
        {"type": "postgres", "dsn": f"mysql://me:{PASSWORD}@h/db"},
        {"type": "postgres", "dsn": secret_dsn(), "schema": "bad schema"},
        {"type": "postgres", "dsn": secret_dsn(), "password": PASSWORD[:4]},
        {"type": "postgress", "dsn": secret_dsn()},
        {"dsn": secret_dsn()},
        {"type": "duckdb", "dsn": secret_dsn()},
        {"type": "postgres", "dsn": [secret_dsn()]},
    ],
)
def test_secret_dsn_never_appears_in_messages(tmp_path: Path, destination: Any) -> None:
    data = with_value("destinations.local", destination)
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data)
    assert PASSWORD not in str(info.value)
    assert "db.internal" not in str(info.value)


def test_secret_from_environment_never_appears(tmp_path: Path) -> None:
    data = with_value("destinations.local", {"type": "postgres", "dsn": "${PG_DSN}"})
    data["destinations"]["local"]["schema"] = "1bad"
    data["destinations"]["other"] = {"type": "postgres", "dsn": "${PG_BAD}"}
    env = {"PG_DSN": secret_dsn(), "PG_BAD": f"mysql://x:{PASSWORD}@h/d"}
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data, env)
    message = str(info.value)
    assert PASSWORD not in message
    assert "destinations.other.dsn: not a PostgreSQL URL (wrong scheme) (got <secret>)" in message


def test_dsn_is_kept_as_a_secret(tmp_path: Path) -> None:
    data = with_value("destinations.local", {"type": "postgres", "dsn": secret_dsn()})
    destination = load(tmp_path, data).destinations["local"]
    assert isinstance(destination, PostgresDestinationConfig)
    assert PASSWORD not in repr(destination)
    assert destination.dsn.get_secret_value() == secret_dsn()


def _secret_fields(model: type[BaseModel]) -> set[str]:
    found = set()
    for name, info in model.model_fields.items():
        if "SecretStr" in str(info.annotation) or info.annotation is SecretStr:
            found.add(info.alias or name)
    return found


def test_every_secret_field_is_listed_in_secret_keys() -> None:
    fields = set().union(*(_secret_fields(model) for _, _, model in REFERENCE_SECTIONS))
    assert fields == {"dsn", "url", "secret", "apprise", "catalog_uri"}
    assert fields <= SECRET_KEYS


# --- environment interpolation --------------------------------------------------------------


def test_env_variables_are_interpolated(tmp_path: Path) -> None:
    data = with_value(f"{C}.region", "${REGION}")
    data["connections"]["warehouse"]["workgroup"] = "${WG:-analytics}"
    data["connections"]["warehouse"]["role_arn"] = "arn:aws:iam::${ACCOUNT}:role/shiftsync-reader"
    data["syncs"]["nightly"]["concurrency"] = "${CONCURRENCY}"
    data["syncs"]["nightly"]["tables"] = ["${SCHEMA}.*"]
    config = load(
        tmp_path,
        data,
        {"REGION": "eu-west-1", "ACCOUNT": "210987654321", "CONCURRENCY": "4", "SCHEMA": "sales"},
    )
    conn = config.connections["warehouse"]
    assert (conn.region, conn.workgroup, conn.account_id) == (
        "eu-west-1",
        "analytics",
        "210987654321",
    )
    assert config.syncs["nightly"].concurrency == 4
    assert config.syncs["nightly"].tables[0].include == "sales.*"


def test_default_applies_when_the_variable_is_empty(tmp_path: Path) -> None:
    data = with_value(f"{C}.workgroup", "${WG:-fallback}")
    assert load(tmp_path, data, {"WG": ""}).connections["warehouse"].workgroup == "fallback"
    assert load(tmp_path, data, {"WG": "mine"}).connections["warehouse"].workgroup == "mine"


def test_double_dollar_is_a_literal(tmp_path: Path) -> None:
    data = with_value(f"{T}", {"include": "a.b", "filter": "note = '$${HOME}'"})
    entry = load(tmp_path, data, {"HOME": "/root"}).syncs["nightly"].tables[0]
    assert entry.filter == "note = '${HOME}'"


def test_uses_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIFTSYNC_TEST_WG", "from-env")
    path = write(tmp_path, with_value(f"{C}.workgroup", "${SHIFTSYNC_TEST_WG}"))
    assert load_config(path).connections["warehouse"].workgroup == "from-env"


def test_missing_variable_names_the_key_and_the_variable(tmp_path: Path) -> None:
    # The only connection is needed by every command that reads: reported at load.
    data = with_value(f"{C}.region", "${AWS_REGION_X}")
    lines = problems(tmp_path, data)
    assert lines == [
        f"shiftsync.yaml: {C}.region: environment variable AWS_REGION_X is not set "
        '(got "${AWS_REGION_X}"); expected AWS_REGION_X to be set, or a default as '
        "${AWS_REGION_X:-value}",
    ]
    # A sync's is reported when the sync is used (tests/unit/test_config_environments.py).
    data = copy.deepcopy(BASE)
    data["syncs"]["nightly"]["tables"] = ["public.a", "${MISSING_TABLE}"]
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data).sync("nightly")
    assert info.value.message.splitlines()[1:] == [
        f"shiftsync.yaml: {S}.tables.1: environment variable MISSING_TABLE is not set "
        '(got "${MISSING_TABLE}"); expected MISSING_TABLE to be set, or a default as '
        "${MISSING_TABLE:-value}",
    ]


@pytest.mark.parametrize("text", ["${1X}", "${X:default}", "${}", "${X", "a ${X-b}"])
def test_malformed_references_are_reported(tmp_path: Path, text: str) -> None:
    line = line_for(problems(tmp_path, with_value(f"{C}.region", text), {"X": "x"}), f"{C}.region")
    assert "malformed ${...} reference" in line


@pytest.mark.parametrize("text", ["${A:-${B}}", "${A:-x${B:-y}z}", "pre ${A:-${B}} post"])
def test_nested_references_are_reported_not_kept_as_text(tmp_path: Path, text: str) -> None:
    # `[^}]*` stops at the first }: `${A:-${B}}` used to become the text "${B}" (or "${B}}").
    for env in ({}, {"B": "b"}):
        line = line_for(
            problems(tmp_path, with_value(f"{C}.workgroup", text), env), C + ".workgroup"
        )
        assert "nested ${...} references are not supported" in line
        assert f"(got {text!r}".replace("'", '"') in line


def test_nested_reference_in_a_secret_hides_the_value(tmp_path: Path) -> None:
    dsn = f"postgresql://me:{PASSWORD}@h/${{DB:-${{OTHER}}}}"
    data = with_value("destinations.local", {"type": "postgres", "dsn": dsn})
    line = line_for(problems(tmp_path, data), "destinations.local.dsn")
    assert "nested ${...} references are not supported (got <secret>)" in line
    assert PASSWORD not in line


def test_docs_say_references_do_not_nest() -> None:
    assert "nested ${...} references are not supported" in DOCS.read_text(encoding="utf-8")


def test_missing_variable_in_a_secret_hides_the_value(tmp_path: Path) -> None:
    dsn = f"postgresql://me:{PASSWORD}@h/${{DB}}"
    data = with_value("destinations.local", {"type": "postgres", "dsn": dsn})
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data).destination("local")
    line = line_for(info.value.message.splitlines(), "destinations.local.dsn")
    assert "environment variable DB is not set (got <secret>)" in line
    assert PASSWORD not in str(info.value)


def test_keys_are_not_interpolated(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["connections"]["${NAME}"] = data["connections"]["warehouse"]
    line = line_for(problems(tmp_path, data, {"NAME": "x"}), "connections.${NAME}")
    assert "not a valid name" in line


# --- the file itself ------------------------------------------------------------------------


def test_missing_file_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "shiftsync.yaml", env={})
    assert "does not exist" in info.value.message
    assert "shiftsync init" in str(info.value.fix)
    assert info.value.exit_code == EXIT_CONFIG


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    text = "connections:\n  warehouse:\n    region: [us-east-1\n    type: x\n"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert re.match(r"shiftsync\.yaml: line \d+, column \d+: invalid YAML", info.value.message)


def test_tab_indentation_is_a_syntax_error_with_position(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "connections:\n\twarehouse: {}\n")
    assert info.value.message.startswith("shiftsync.yaml: line 2, column 1: invalid YAML")


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(BASE, sort_keys=False).replace(
        "    region: us-east-1\n", "    region: us-east-1\n    region: eu-west-1\n"
    )
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert info.value.message == (
        "shiftsync.yaml: line 5, column 5: invalid YAML: found duplicate key 'region'"
    )


def test_empty_file_and_non_mapping_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is empty"):
        load(tmp_path, "")
    lines = problems(tmp_path, "- a\n- b\n")
    assert lines == [
        'shiftsync.yaml: the document is not a mapping (got ["a", "b"]); '
        "expected keys connections, destinations, syncs"
    ]


def test_unsafe_yaml_tags_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        load(tmp_path, "connections: !!python/object/apply:os.system ['true']\n")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # PyYAML raises a plain ValueError past Python's limit on the digits of an int.
        (
            "connections:\n  w:\n    session_duration_seconds: " + "9" * 5000 + "\n",
            "a value cannot be read (Exceeds the limit (4300 digits)",
        ),
        ("connections:\n  w:\n    since: 2020-13-45\n", "a value cannot be read (month must be"),
        # PyYAML's parser recurses once per level: RecursionError long before _shape_problem.
        ("connections: " + "[" * 5000 + "]" * 5000 + "\n", "nests too deep to read"),
        ("connections: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "nests too deep to read"),
    ],
    ids=["huge-int", "bad-date", "deep-lists", "deep-mappings"],
)
def test_yaml_the_loader_cannot_build_is_a_config_error(
    tmp_path: Path, text: str, said: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert info.value.message.startswith("shiftsync.yaml: invalid YAML: ")
    assert said in info.value.message
    assert "set_int_max_str_digits" not in info.value.message
    assert "9" * 50 not in info.value.message
    assert str(tmp_path / "shiftsync.yaml") in str(info.value.fix)
    assert info.value.exit_code == EXIT_CONFIG


def test_yaml_anchors_still_work(tmp_path: Path) -> None:
    text = yaml.safe_dump(BASE, sort_keys=False) + (
        "  other:\n    source: warehouse\n    destination: local\n    tables: [a.b]\n"
    )
    assert set(load(tmp_path, text).syncs) == {"nightly", "other"}


# --- helpers: connection(), destination(), sync() -------------------------------------------


def test_pick_by_name_or_the_only_one(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["connections"]["second"] = dict(data["connections"]["warehouse"])
    config = load(tmp_path, data)
    assert config.connection("second")[0] == "second"
    with pytest.raises(ConfigError) as info:
        config.connection(None)
    assert "2 connections (warehouse, second)" in info.value.message
    with pytest.raises(ConfigError) as info:
        config.connection("third")
    assert info.value.message == "shiftsync.yaml has no connection named 'third'"
    assert info.value.fix == "use one of: warehouse, second"
    assert config.destination(None)[0] == "local"
    assert config.sync("nightly")[1].source == "warehouse"


def test_pick_when_none_are_defined(tmp_path: Path) -> None:
    config = load(tmp_path, {"connections": BASE["connections"]})
    with pytest.raises(ConfigError, match="defines no sync"):
        config.sync(None)
    with pytest.raises(ConfigError, match="defines no destination"):
        config.destination(None)


# --- table selection ------------------------------------------------------------------------


def sync_with(tables: list[Any], exclude: list[str] | None = None) -> SyncConfig:
    return SyncConfig.model_validate(
        {"source": "w", "destination": "d", "tables": tables, "exclude": exclude or []}
    )


def test_exact_entry_wins_over_a_pattern_in_any_order() -> None:
    exact = {"include": "public.sales", "mode": "incremental", "tracking_field": "ts"}
    for tables in (["public.*", exact], [exact, "public.*"]):
        chosen = sync_with(tables).select("public", "sales")
        assert chosen is not None
        assert chosen.mode == "incremental"


def test_last_matching_pattern_wins() -> None:
    sync = sync_with([{"include": "public.*"}, {"include": "public.s*", "method": "unload"}])
    chosen = sync.select("public", "sales")
    assert chosen is not None
    assert chosen.method == "unload"
    other = sync.select("public", "users")
    assert other is not None
    assert other.method is None


def test_excludes_remove_tables() -> None:
    sync = sync_with(
        [{"include": "public.*", "exclude": ["public.audit_*"]}], exclude=["public.tmp_?"]
    )
    assert sync.select("public", "audit_log") is None
    assert sync.select("public", "tmp_1") is None
    assert sync.select("public", "tmp_12") is not None
    assert sync.select("sales", "x") is None


def test_sync_exclude_beats_an_exact_include() -> None:
    assert sync_with(["public.tmp_x"], exclude=["public.tmp_*"]).select("public", "tmp_x") is None


def test_matching_is_per_part_and_case_sensitive() -> None:
    assert match_table("p*.s*", "public", "sales")
    assert not match_table("p*", "public", "sales")  # no dot: a schema pattern only
    assert not match_table("*.sales", "pub.lic", "x")
    assert not match_table("public.sales", "Public", "sales")
    # Only * and ? are wildcards: "[" is itself (public.t[1] does not copy public.t1).
    assert not match_table("s[0-9].t?", "s1", "tx")
    assert match_table("s[0-9].t?", "s[0-9]", "tx")
    assert match_table('"Odd Schema"."Mixed.Case"', "Odd Schema", "Mixed.Case")
    assert not match_table('"Odd Schema"."Mixed*"', "Odd Schema", "Mixed Case")


def test_column_selection_copies() -> None:
    assert ColumnSelection(include=("a",)).copies("a")
    assert not ColumnSelection(include=("a",)).copies("b")
    assert not ColumnSelection(exclude=("a",)).copies("a")
    assert ColumnSelection().copies("anything")


# --- pure value checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 3 * * *", None),
        ("*/5 * * * 0-7", None),
        ("0 0 1,15 JAN-MAR sun", None),
        ("0 0 0 * *", "the day of month field '0' is out of range 1-31"),
        ("0 24 * * *", "the hour field '24' is out of range 0-23"),
        ("0 0 * 13 *", "the month field '13' is out of range 1-12"),
        ("0 0 * * 8", "the day of week field '8' is out of range 0-7"),
        ("@daily", "has 1 fields, not 5"),
        ("0 0 * * * *", "has 6 fields, not 5"),
        ("0 0 * * 1/", "the day of week field '1/' is malformed"),
        ("a b c d e", "the minute field 'a' is out of range 0-59"),
    ],
)
def test_cron_problem(expression: str, problem: str | None) -> None:
    assert cron_problem(expression) == problem


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("abc", True),
        ("a" * 63, True),
        ("my.bucket-1", True),
        ("a" * 64, False),
        ("ab", False),
        ("bucket.", False),
        ("amzn-s3-demo-x", False),
        ("x--x-s3", False),
        ("x--table-s3", False),
        ("x.mrap", False),
        ("x--ol-s3", False),
        ("sthree-x", False),
    ],
)
def test_bucket_names(name: str, ok: bool) -> None:
    assert (bucket_name_problem(name) is None) is ok


def test_parse_role_arn_with_a_path() -> None:
    role = parse_role_arn("arn:aws-us-gov:iam::123456789012:role/a/b/reader")
    assert (role.partition, role.account, role.path, role.name) == (
        "aws-us-gov",
        "123456789012",
        "a/b/",
        "reader",
    )
    assert role.iam_path == "/a/b/"
    assert role.arn == "arn:aws-us-gov:iam::123456789012:role/a/b/reader"
    assert parse_role_arn(ROLE).iam_path == "/"
    with pytest.raises(ConfigError):
        parse_role_arn("arn:aws:iam::123456789012:user/x")


def test_destination_paths_resolve_against_the_workspace(tmp_path: Path) -> None:
    duck = DuckDBDestinationConfig.model_validate({"type": "duckdb", "path": "data/x.duckdb"})
    assert duck.resolve_path(tmp_path) == tmp_path / "data" / "x.duckdb"
    absolute = DuckDBDestinationConfig.model_validate({"type": "duckdb", "path": "/srv/x.duckdb"})
    assert absolute.resolve_path(tmp_path) == Path("/srv/x.duckdb")
    lake = ParquetDestinationConfig.model_validate({"type": "parquet", "path": "s3://bkt/lake"})
    assert lake.is_s3
    with pytest.raises(ConfigError):
        lake.resolve_path(tmp_path)


@pytest.mark.parametrize("path", ["s3://Bad_Bucket/x", "gs://bucket/x"])
def test_parquet_path_shapes(tmp_path: Path, path: str) -> None:
    data = with_value("destinations.local", {"type": "parquet", "path": path})
    assert LINE_RE.match(line_for(problems(tmp_path, data), "destinations.local.path"))


def test_connection_model_alone(tmp_path: Path) -> None:
    conn = RedshiftServerlessConfig.model_validate(
        {**BASE["connections"]["warehouse"], "unload": {"bucket": "bkt", "region": "eu-west-1"}}
    )
    assert conn.unload_region == "eu-west-1"


# --- schema and docs ------------------------------------------------------------------------


def test_json_schema_uses_yaml_names() -> None:
    schema = config_json_schema()
    assert set(schema["properties"]) == {"connections", "destinations", "syncs", "alerts"}
    postgres = schema["$defs"]["PostgresDestinationConfig"]
    assert "schema" in postgres["properties"]
    assert "db_schema" not in postgres["properties"]
    assert postgres["additionalProperties"] is False


def test_every_field_has_a_meaning_and_an_expected_value() -> None:
    for _, _, model in REFERENCE_SECTIONS:
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
            extra = info.json_schema_extra
            assert isinstance(extra, dict), name
            assert extra.get("expected"), name


def test_reference_sections_cover_every_model() -> None:
    covered = {model for _, _, model in REFERENCE_SECTIONS}
    reachable: set[type[BaseModel]] = set()
    todo: list[Any] = [ShiftsyncConfig]
    while todo:
        item = todo.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            if item in reachable:
                continue
            reachable.add(item)
            todo += [info.annotation for info in item.model_fields.values()]
        else:
            todo += list(typing.get_args(item))
    assert reachable == covered


def test_docs_hold_the_generated_reference() -> None:
    text = DOCS.read_text(encoding="utf-8")
    begin, end = "<!-- BEGIN GENERATED REFERENCE -->\n", "<!-- END GENERATED REFERENCE -->"
    assert begin in text
    assert end in text
    generated = text.split(begin, 1)[1].split(end, 1)[0]
    assert generated.strip() == config_reference_markdown().strip(), (
        "docs/configuration.md is stale: paste shiftsync.config.config_reference_markdown() "
        "between its GENERATED REFERENCE markers"
    )


def test_docs_name_every_field() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for _, _, model in REFERENCE_SECTIONS:
        for name, info in model.model_fields.items():
            assert f"`{info.alias or name}`" in text, f"{model.__name__}.{name} not documented"


def test_self_referencing_aliases_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 1, column 4: invalid YAML"):
        load(tmp_path, "a: &a [*a]\n")


def test_alias_expansion_is_bounded(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(ConfigError, match="holds more than 100000 values"):
        load(tmp_path, "\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("section", "value", "expected"),
    [
        (
            "destinations",
            "duckdb",
            "expected a mapping with type: one of duckdb, postgres, parquet",
        ),
        ("connections", 5, "expected a mapping with keys among: type, region, workgroup"),
        ("syncs", [], "expected a mapping with keys among: source, destination"),
    ],
)
def test_an_entry_of_the_wrong_type_says_what_an_entry_looks_like(
    tmp_path: Path, section: str, value: Any, expected: str
) -> None:
    data = copy.deepcopy(BASE)
    data[section]["odd"] = value
    assert expected in line_for(problems(tmp_path, data), f"{section}.odd")


def test_a_null_type_is_shown_as_null(tmp_path: Path) -> None:
    line = line_for(
        problems(tmp_path, with_value("destinations.local.type", None)), "destinations.local.type"
    )
    assert "unknown type (got null); expected one of: duckdb, postgres, parquet" in line


# --- DuckDB memory limit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [("512MB", 512 * 10**6), ("4GB", 4 * 10**9), ("1.5GiB", 3 * 2**29), (" 300 mib ", 300 * 2**20)],
)
def test_memory_sizes(text: str, size: int) -> None:
    from shiftsync.config.validators import memory_bytes

    assert memory_bytes(text) == size


@pytest.mark.parametrize("text", ["lots", "12", "1 PB", "-3GB", "10MB"])
def test_a_memory_limit_that_is_not_a_size_is_refused(text: str) -> None:
    from shiftsync.config import DuckDBDestinationConfig

    with pytest.raises(ValueError, match="memory_limit"):
        DuckDBDestinationConfig.model_validate({"type": "duckdb", "memory_limit": text})


# --- one writer per destination table ---------------------------------------------------------


def test_two_syncs_writing_one_destination_table_are_refused_at_load(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    incremental = {"include": "public.sales", "mode": "incremental", "tracking_field": "t"}
    data["destinations"]["other"] = {"type": "duckdb", "path": "other.duckdb"}
    data["syncs"] = {
        "hourly": {"source": "warehouse", "destination": "local", "tables": [incremental]},
        "nightly": {
            "source": "warehouse",
            "destination": "local",
            "tables": ["public.sales", {"include": "public.a", "target": "shared"}],
        },
        "again": {
            "source": "warehouse",
            "destination": "local",
            "tables": [{"include": "public.b", "target": "shared"}, "public.*"],
        },
        # Another destination: no conflict.
        "elsewhere": {"source": "warehouse", "destination": "other", "tables": ["public.sales"]},
    }
    lines = problems(tmp_path, data)
    assert len(lines) == 2, lines
    assert lines[0].startswith("shiftsync.yaml: syncs.nightly.tables.0.include: writes the same")
    assert "syncs.hourly.tables.0" in lines[0]
    assert lines[1].startswith("shiftsync.yaml: syncs.again.tables.0.target:")
    assert "syncs.nightly.tables.1" in lines[1]
    assert all(LINE_RE.match(line) for line in lines)


# --- where a problem is, and what was meant ----------------------------------------------


def test_a_misspelt_key_gets_the_close_one(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["connections"]["warehouse"]["regoin"] = data["connections"]["warehouse"].pop("region")
    lines = problems(tmp_path, data)
    line = line_for(lines, "connections.warehouse.regoin")
    assert "unknown key (did you mean region?)" in line


def test_problems_carry_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "shiftsync.yaml"
    data = copy.deepcopy(BASE)
    data["syncs"]["nightly"]["source"] = "wh"  # semantic: no such connection
    data["syncs"]["nightly"]["concurrency"] = 99  # a value out of range
    text = yaml.safe_dump(data, sort_keys=False)
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    numbered = {
        line.split(": ")[2]: int(line.split(": ")[1].removeprefix("line "))
        for line in info.value.message.splitlines()
    }
    source_line = 1 + text.splitlines().index("    source: wh")
    concurrency_line = 1 + text.splitlines().index("    concurrency: 99")
    assert numbered == {
        "syncs.nightly.source": source_line,
        "syncs.nightly.concurrency": concurrency_line,
    }
