"""UNLOAD through the Data API, as a client sees it: statements through boto3, files through S3.

Every test writes under a prefix of its own and deletes it afterwards; files are read back with
pyarrow and compared with what PostgreSQL holds (read through the stand-in's admin connection).
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from shiftsync.local.standin import StandIn, StandInInfo
from shiftsync.local.unload.grammar import MIB
from tests.support import run_statement, wait_for_statement, wait_until

SALES_COLUMNS = [
    "salesid",
    "listid",
    "sellerid",
    "buyerid",
    "eventid",
    "dateid",
    "qtysold",
    "pricepaid",
    "commission",
    "saletime",
]


# -- helpers ------------------------------------------------------------------------------------


def run(redshift_data: Any, info: StandInInfo, sql: str) -> dict[str, Any]:
    return run_statement(redshift_data, info, sql, seconds=60)[1]


def run_until_done(redshift_data: Any, statement_id: str) -> dict[str, Any]:
    return wait_for_statement(redshift_data, statement_id, seconds=60)


def finished(redshift_data: Any, info: StandInInfo, sql: str) -> dict[str, Any]:
    described = run(redshift_data, info, sql)
    assert described["Status"] == "FINISHED", described.get("Error")
    return described


def failed(redshift_data: Any, info: StandInInfo, sql: str) -> str:
    described = run(redshift_data, info, sql)
    assert described["Status"] == "FAILED", described
    error: str = described["Error"]
    return error


def keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(found)


def body(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def parquet(s3: Any, bucket: str, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(body(s3, bucket, key)))


def admin_rows(standin: StandIn, sql: str) -> list[tuple[Any, ...]]:
    with standin.admin_connection() as conn:
        return [tuple(row) for row in conn.execute(sql).fetchall()]


def table_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(zip(*columns, strict=True))


def unload(info: StandInInfo, query: str, prefix: str, options: str, role: str = "") -> str:
    inner = query.replace("'", "''")
    return (
        f"UNLOAD ('{inner}') TO 's3://{info.bucket}/{prefix}' "
        f"IAM_ROLE '{role or info.role_arn}' {options}"
    )


def redshift_role(standin: StandIn, info: StandInInfo, resource: str, trusted: bool = True) -> str:
    """A role Redshift may assume (or not), allowed s3:PutObject on `resource` only."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": (
                    {"Service": "redshift.amazonaws.com"}
                    if trusted
                    else {"AWS": f"arn:aws:iam::{info.role_arn.split(':')[4]}:root"}
                ),
                "Action": "sts:AssumeRole",
            }
        ],
    }
    permissions = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": resource}],
    }
    return standin.create_role(f"unload-{uuid.uuid4().hex[:10]}", permissions, trust)


@pytest.fixture
def prefix(s3: Any, info: StandInInfo) -> Iterator[str]:
    """A prefix of this test's own; everything under it is deleted afterwards."""
    name = f"unload-tests/{uuid.uuid4().hex[:12]}/"
    yield name
    for key in keys(s3, info.bucket, name):
        s3.delete_object(Bucket=info.bucket, Key=key)
    assert keys(s3, info.bucket, name) == []


@pytest.fixture
def small_files(standin: StandIn) -> Iterator[None]:
    """Lower the stand-in's 5 MB floor on MAXFILESIZE so a small table splits into files."""
    settings = standin.unload_settings
    saved = settings.min_max_file_bytes
    settings.min_max_file_bytes = 1024
    try:
        yield
    finally:
        settings.min_max_file_bytes = saved


# -- Parquet, in parallel, with a verbose manifest ----------------------------------------------


def test_parallel_unload_of_sales_matches_the_table(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    expected = admin_rows(standin, "select * from public.sales order by salesid")
    described = finished(
        redshift_data,
        info,
        unload(
            info, "select * from public.sales", f"{prefix}sales_", "FORMAT PARQUET MANIFEST VERBOSE"
        ),
    )
    assert described["ResultRows"] == len(expected)
    assert described["HasResultSet"] is False

    written = keys(s3, info.bucket, prefix)
    data_keys = [k for k in written if k.endswith(".parquet")]
    assert len(data_keys) >= 2  # one or more files per slice
    assert written == sorted([*data_keys, f"{prefix}sales_manifest"])
    assert f"{prefix}sales_0000_part_00.parquet" in data_keys
    assert f"{prefix}sales_0001_part_00.parquet" in data_keys

    manifest = json.loads(body(s3, info.bucket, f"{prefix}sales_manifest"))
    assert [e["url"] for e in manifest["entries"]] == [f"s3://{info.bucket}/{k}" for k in data_keys]
    assert sum(e["meta"]["record_count"] for e in manifest["entries"]) == len(expected)
    assert manifest["meta"]["record_count"] == len(expected)
    for entry, key in zip(manifest["entries"], data_keys, strict=True):
        size = s3.head_object(Bucket=info.bucket, Key=key)["ContentLength"]
        assert entry["meta"]["content_length"] == size
    assert manifest["meta"]["content_length"] == sum(
        e["meta"]["content_length"] for e in manifest["entries"]
    )
    assert [e["name"] for e in manifest["schema"]["elements"]] == SALES_COLUMNS
    types = {e["name"]: e["type"] for e in manifest["schema"]["elements"]}
    assert types["salesid"] == {"base": "integer"}
    assert types["qtysold"] == {"base": "smallint"}
    assert types["pricepaid"] == {"base": "numeric", "precision": 8, "scale": 2}
    assert types["saletime"] == {"base": "timestamp without time zone"}
    assert manifest["author"]["name"] == "Amazon Redshift"

    tables = [parquet(s3, info.bucket, k) for k in data_keys]
    for table, entry in zip(tables, manifest["entries"], strict=True):
        assert table.num_rows == entry["meta"]["record_count"]
    combined = pa.concat_tables(tables).sort_by("salesid")
    assert combined.schema.names == SALES_COLUMNS
    assert combined.schema.field("pricepaid").type == pa.decimal128(8, 2)
    assert combined.schema.field("saletime").type == pa.timestamp("us")
    assert combined.schema.field("dateid").type == pa.int16()
    assert table_rows(combined) == expected


def test_doubled_quotes_reach_the_query(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    query = "select venueid, venuename from public.venue where venuestate = 'NV' order by venueid"
    expected = admin_rows(standin, query)
    assert expected  # the sample has venues in Nevada
    statement = (
        "UNLOAD ('select venueid, venuename from public.venue where venuestate = ''NV'' "
        "order by venueid') "
        f"TO 's3://{info.bucket}/{prefix}' IAM_ROLE '{info.role_arn}' FORMAT PARQUET PARALLEL OFF"
    )
    described = finished(redshift_data, info, statement)
    assert described["ResultRows"] == len(expected)
    assert table_rows(parquet(s3, info.bucket, f"{prefix}000.parquet")) == expected


def test_timestamptz_is_written_as_utc_without_zone(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    query = "select id, c_timestamptz, c_decimal_38_10, c_super from public.types order by id"
    finished(redshift_data, info, unload(info, query, prefix, "FORMAT PARQUET PARALLEL OFF"))
    table = parquet(s3, info.bucket, f"{prefix}000.parquet")
    assert table.schema.field("c_timestamptz").type == pa.timestamp("us")  # no zone
    assert table.schema.field("c_decimal_38_10").type == pa.decimal128(38, 10)
    expected = admin_rows(
        standin,
        "select id, c_timestamptz at time zone 'UTC', c_decimal_38_10 "
        "from public.types order by id",
    )
    assert [row[:3] for row in table_rows(table)] == expected
    supers = table.column("c_super").to_pylist()
    assert any(s is not None and s.startswith("{") for s in supers)


# -- IAM_ROLE as Redshift checks it -------------------------------------------------------------


def test_a_role_limited_to_another_prefix_may_not_write_here(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    role = redshift_role(standin, info, f"arn:aws:s3:::{info.bucket}/{prefix}allowed/*")
    denied = failed(
        redshift_data,
        info,
        unload(info, "select * from public.category", f"{prefix}denied/", "PARQUET", role=role),
    )
    assert denied.startswith(
        "ERROR: S3ServiceException:Access Denied,Status 403,Error AccessDenied"
    )
    assert f"s3://{info.bucket}/{prefix}denied/" in denied
    assert keys(s3, info.bucket, f"{prefix}denied/") == []
    finished(
        redshift_data,
        info,
        unload(info, "select * from public.category", f"{prefix}allowed/", "PARQUET", role=role),
    )
    assert keys(s3, info.bucket, f"{prefix}allowed/")


def test_a_bucket_that_does_not_exist(info: StandInInfo, redshift_data: Any, prefix: str) -> None:
    sql = (
        f"UNLOAD ('select 1 as x') TO 's3://no-such-bucket-{uuid.uuid4().hex[:8]}/{prefix}' "
        f"IAM_ROLE '{info.role_arn}' PARQUET"
    )
    error = failed(redshift_data, info, sql)
    assert "S3ServiceException:The specified bucket does not exist,Status 404" in error


def test_a_role_that_does_not_trust_redshift(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    role = redshift_role(standin, info, f"arn:aws:s3:::{info.bucket}/*", trusted=False)
    error = failed(redshift_data, info, unload(info, "select 1 as x", prefix, "PARQUET", role=role))
    db_user = f"arn:aws:redshift:{info.region}:222222222222:dbuser:{info.workgroup}/IAMR:"
    assert error.startswith(f"ERROR: User {db_user}shiftsync-reader")
    assert error.endswith(f"is not authorized to assume IAM Role {role}")
    assert keys(s3, info.bucket, prefix) == []


def test_a_role_that_does_not_exist(info: StandInInfo, redshift_data: Any, prefix: str) -> None:
    missing = "arn:aws:iam::222222222222:role/no-such-role"
    error = failed(redshift_data, info, unload(info, "select 1 as x", prefix, "PARQUET", missing))
    assert error.endswith(f"is not authorized to assume IAM Role {missing}")


def test_iam_role_default_is_refused(info: StandInInfo, redshift_data: Any, prefix: str) -> None:
    sql = f"UNLOAD ('select 1 as x') TO 's3://{info.bucket}/{prefix}' IAM_ROLE default PARQUET"
    assert "no default IAM role" in failed(redshift_data, info, sql)


def test_a_role_chain(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    first_name, second_name = f"chain-first-{suffix}", f"chain-second-{suffix}"
    account = info.role_arn.split(":")[4]
    second_arn = f"arn:aws:iam::{account}:role/{second_name}"
    first = standin.create_role(
        first_name,
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": second_arn}],
        },
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "redshift.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
    )

    def make_second(trusted_principal: str) -> None:
        standin.create_role(
            second_name,
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{info.bucket}/*",
                    }
                ],
            },
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": trusted_principal},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
        )

    make_second(first)
    finished(
        redshift_data,
        info,
        unload(info, "select 1 as x", prefix, "PARQUET", f"{first},{second_arn}"),
    )
    assert keys(s3, info.bucket, prefix) == [f"{prefix}0000_part_00.parquet"]
    # The first role alone may not write to S3, and the second does not trust Redshift.
    assert "Access Denied" in failed(
        redshift_data, info, unload(info, "select 1 as x", f"{prefix}a/", "PARQUET", first)
    )
    assert "is not authorized to assume" in failed(
        redshift_data, info, unload(info, "select 1 as x", f"{prefix}b/", "PARQUET", second_arn)
    )
    make_second(info.role_arn)  # now it trusts another role, not the first one
    error = failed(
        redshift_data,
        info,
        unload(info, "select 1 as x", f"{prefix}c/", "PARQUET", f"{first},{second_arn}"),
    )
    assert error.startswith(f"ERROR: User arn:aws:sts::{account}:assumed-role/{first_name}/")
    assert error.endswith(f"is not authorized to assume IAM Role {second_arn}")


# -- types, overwriting, sizes, naming ----------------------------------------------------------


def test_a_time_column_fails_in_parquet_but_not_in_csv(
    info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    query = "select id, c_time from public.types"
    error = failed(redshift_data, info, unload(info, query, prefix, "FORMAT PARQUET"))
    assert (
        error
        == 'ERROR: UNLOAD time without time zone column "c_time" is only supported for TEXT/CSV.'
    )
    assert keys(s3, info.bucket, prefix) == []
    finished(redshift_data, info, unload(info, query, prefix, "FORMAT CSV"))


def test_a_second_unload_to_the_same_prefix_needs_allowoverwrite(
    info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    query = "select * from public.category"
    finished(redshift_data, info, unload(info, query, prefix, "PARQUET MANIFEST"))
    first = keys(s3, info.bucket, prefix)
    error = failed(redshift_data, info, unload(info, query, prefix, "PARQUET MANIFEST"))
    assert error.startswith("ERROR: Specified unload destination on S3 is not empty.")
    assert "ALLOWOVERWRITE" in error
    assert keys(s3, info.bucket, prefix) == first  # the failed UNLOAD touched nothing
    finished(redshift_data, info, unload(info, query, prefix, "PARQUET MANIFEST ALLOWOVERWRITE"))
    assert keys(s3, info.bucket, prefix) == first


def test_cleanpath_removes_what_was_under_the_prefix(
    info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    s3.put_object(Bucket=info.bucket, Key=f"{prefix}stale/old.txt", Body=b"old")
    s3.put_object(Bucket=info.bucket, Key=f"{prefix}0007_part_00.parquet", Body=b"old")
    finished(
        redshift_data,
        info,
        unload(info, "select * from public.category", prefix, "PARQUET CLEANPATH"),
    )
    assert keys(s3, info.bucket, prefix) == [f"{prefix}0000_part_00.parquet"]


@pytest.mark.usefixtures("small_files")
def test_maxfilesize_splits_each_slice_into_parts(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    limit = 0.02  # MB
    total = admin_rows(standin, "select count(*) from public.sales")[0][0]
    described = finished(
        redshift_data,
        info,
        unload(
            info,
            "select * from public.sales",
            prefix,
            f"PARQUET MAXFILESIZE {limit} MB MANIFEST VERBOSE",
        ),
    )
    assert described["ResultRows"] == total
    data_keys = [k for k in keys(s3, info.bucket, prefix) if k.endswith(".parquet")]
    assert f"{prefix}0000_part_01.parquet" in data_keys
    assert f"{prefix}0001_part_01.parquet" in data_keys
    for key in data_keys:
        name = key.removeprefix(prefix)
        assert name[:4] in ("0000", "0001")
        assert name[4:10] == "_part_"
    sizes = [s3.head_object(Bucket=info.bucket, Key=k)["ContentLength"] for k in data_keys]
    # Files are cut between row groups, before the next one would pass the limit.
    assert max(sizes) <= limit * MIB
    manifest = json.loads(body(s3, info.bucket, f"{prefix}manifest"))
    assert manifest["meta"]["record_count"] == total
    rows = sum(parquet(s3, info.bucket, k).num_rows for k in data_keys)
    assert rows == total


@pytest.mark.usefixtures("small_files")
def test_parallel_off_writes_serial_files_in_order(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    query = "select salesid, pricepaid from public.sales order by salesid"
    expected = admin_rows(standin, query)
    finished(
        redshift_data,
        info,
        unload(info, query, f"{prefix}serial_", "PARQUET PARALLEL OFF MAXFILESIZE 0.01 MB"),
    )
    data_keys = keys(s3, info.bucket, prefix)
    assert len(data_keys) >= 2
    assert data_keys == [f"{prefix}serial_{n:03d}.parquet" for n in range(len(data_keys))]
    rows = [row for k in data_keys for row in table_rows(parquet(s3, info.bucket, k))]
    assert rows == expected  # in ORDER BY order across the files


def test_csv_unload_with_header(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    query = "select catid, catgroup, catname, catdesc from public.category order by catid"
    expected = admin_rows(standin, query)
    finished(redshift_data, info, unload(info, query, prefix, "FORMAT CSV HEADER PARALLEL OFF"))
    data_keys = keys(s3, info.bucket, prefix)
    assert data_keys == [f"{prefix}000"]  # CSV files have no extension
    raw = body(s3, info.bucket, data_keys[0])
    assert raw.startswith(b"catid,catgroup,catname,catdesc\n")
    table = pacsv.read_csv(io.BytesIO(raw))
    assert table_rows(table) == expected


@pytest.mark.usefixtures("small_files")
def test_csv_files_are_cut_between_rows_and_each_has_the_header(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    limit = int(0.01 * MIB)
    query = "select salesid, saletime from public.sales order by salesid"
    expected = admin_rows(standin, "select salesid from public.sales order by salesid")
    finished(redshift_data, info, unload(info, query, prefix, "CSV HEADER MAXFILESIZE 0.01 MB"))
    data_keys = keys(s3, info.bucket, prefix)
    assert f"{prefix}0000_part_01" in data_keys
    salesids: list[int] = []
    for key in data_keys:
        raw = body(s3, info.bucket, key)
        assert len(raw) <= limit
        assert raw.startswith(b"salesid,saletime\n")
        assert raw.endswith(b"\n")
        salesids += pacsv.read_csv(io.BytesIO(raw)).column("salesid").to_pylist()
    assert sorted(salesids) == [row[0] for row in expected]


def test_an_empty_result_writes_only_its_manifest(
    info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    described = finished(
        redshift_data,
        info,
        unload(info, "select * from public.sales where false", prefix, "PARQUET MANIFEST VERBOSE"),
    )
    assert described["ResultRows"] == 0
    assert keys(s3, info.bucket, prefix) == [f"{prefix}manifest"]
    manifest = json.loads(body(s3, info.bucket, f"{prefix}manifest"))
    assert manifest["entries"] == []
    assert manifest["meta"] == {"content_length": 0, "record_count": 0}
    assert [e["name"] for e in manifest["schema"]["elements"]] == SALES_COLUMNS


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("UNLOAD ('select 1') TO", "syntax error at end of input"),
        (
            "UNLOAD ('select 1') TO 's3://{bucket}/x' IAM_ROLE '{role}' PARQUET NONSENSE",
            '"NONSENSE"',
        ),
        ("UNLOAD ('select 1') TO 's3://{bucket}/x' IAM_ROLE '{role}' FORMAT JSON", "FORMAT JSON"),
        ("UNLOAD ('select 1) TO 's3://{bucket}/x'", "syntax error"),
        (
            "UNLOAD ('select * from nope') TO 's3://{bucket}/x' IAM_ROLE '{role}' PARQUET",
            'relation "nope" does not exist',
        ),
        (
            "UNLOAD ('delete from public.sales') TO 's3://{bucket}/x' IAM_ROLE '{role}' PARQUET",
            "must be a SELECT",
        ),
    ],
)
def test_bad_unloads_fail_as_statements(
    info: StandInInfo, redshift_data: Any, sql: str, fragment: str
) -> None:
    error = failed(redshift_data, info, sql.format(bucket=info.bucket, role=info.role_arn))
    assert error.startswith("ERROR: ")
    assert fragment in error
    # The server is still there and well.
    finished(redshift_data, info, "select 1")


def test_the_query_runs_with_the_database_users_privileges(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    table = f"unload_secret_{uuid.uuid4().hex[:8]}"
    with standin.admin_connection() as conn:
        conn.execute(f"CREATE TABLE public.{table} (x integer)")
    try:
        error = failed(
            redshift_data, info, unload(info, f"select * from public.{table}", prefix, "PARQUET")
        )
        assert f"permission denied for table {table}" in error
        assert keys(s3, info.bucket, prefix) == []
    finally:
        with standin.admin_connection() as conn:
            conn.execute(f"DROP TABLE public.{table}")


def test_a_failed_unload_removes_the_files_it_wrote(
    standin: StandIn, info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    # The role may write slice 0's files but not slice 1's: the UNLOAD fails halfway.
    role = redshift_role(standin, info, f"arn:aws:s3:::{info.bucket}/{prefix}0000_*")
    error = failed(
        redshift_data, info, unload(info, "select * from public.sales", prefix, "PARQUET", role)
    )
    assert "Access Denied" in error
    assert f"{prefix}0001_part_00.parquet" in error
    assert keys(s3, info.bucket, prefix) == []


@pytest.mark.usefixtures("small_files")
def test_a_cancelled_unload_is_aborted_and_leaves_nothing(
    info: StandInInfo, redshift_data: Any, s3: Any, prefix: str
) -> None:
    # 20,000 rows at 2 ms each: 1,000-row blocks reach the 5 KB file size every ~2 s, so
    # files are written while the statement still runs.
    query = "select x, pg_sleep(0.002) as nap from generate_series(1, 20000) as x"
    started = redshift_data.execute_statement(
        WorkgroupName=info.workgroup,
        Database=info.database,
        Sql=unload(info, query, prefix, "CSV MAXFILESIZE 0.005 MB"),
    )
    # Cancel only once a file is proven written, so the cleanup of written files is tested.
    wait_until(lambda: keys(s3, info.bucket, prefix), what="the UNLOAD's first file")
    assert redshift_data.describe_statement(Id=started["Id"])["Status"] == "STARTED"
    redshift_data.cancel_statement(Id=started["Id"])
    described = run_until_done(redshift_data, started["Id"])
    assert described["Status"] == "ABORTED"
    assert keys(s3, info.bucket, prefix) == []
