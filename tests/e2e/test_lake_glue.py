"""Iceberg through the Glue Data Catalog (moto's Glue in the stand-in, IAM enforced) with
the warehouse on the stand-in's lake bucket: a sync full then incremental, read back through
Glue by pyiceberg and DuckDB; `check` names a glue: action the role is refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from pyiceberg.catalog.glue import GlueCatalog

from shiftsync.aws.destination_policy import (
    GLUE_ACTIONS,
    glue_location,
)
from shiftsync.aws.session import AssumedRoleSession
from shiftsync.destinations.base import LoadMode, LoadSpec
from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings
from shiftsync.errors import DestinationError
from shiftsync.local.standin import (
    CUSTOMER_ACCOUNT,
    LAKE_BUCKET,
    LAKE_GLUE_DATABASE,
    REGION,
    StandIn,
    StandInInfo,
)
from tests.e2e.test_cli_sync import shiftsync
from tests.support import (
    replaced_role_policy,
    role_policy_without,
    role_s3_properties,
    standin_connection,
    write_external_id,
    write_sync_config,
)


@pytest.fixture
def source(standin: StandIn) -> Iterator[str]:
    """A copy of TICKIT's category of this test's own (the session's stand-in is shared)."""
    name = f"glue_category_{uuid.uuid4().hex[:8]}"
    with standin.admin_connection() as admin:
        admin.execute(f"CREATE TABLE public.{name} AS SELECT * FROM public.category")
        admin.execute(f"GRANT SELECT ON public.{name} TO PUBLIC")
    yield name
    with standin.admin_connection() as admin:
        admin.execute(f"DROP TABLE public.{name}")


def _workspace(folder: Path, info: StandInInfo, table: str, warehouse: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_external_id(folder, info.external_id)
    write_sync_config(
        folder,
        standin_connection(info),
        {"lake": {"type": "iceberg", "catalog": "glue", "warehouse": warehouse}},
        {
            "destination": "lake",
            "tables": [
                {
                    "include": f"public.{table}",
                    "mode": "incremental",
                    "tracking_field": "catid",
                    "primary_key": ["catid"],
                }
            ],
        },
    )
    return folder


def _glue_catalog(info: StandInInfo) -> GlueCatalog:
    s3 = role_s3_properties(info)
    return GlueCatalog(
        "reader",
        **{
            **s3,
            "glue.endpoint": info.endpoint,
            "glue.region": info.region,
            "glue.access-key-id": s3["s3.access-key-id"],
            "glue.secret-access-key": s3["s3.secret-access-key"],
            "glue.session-token": s3["s3.session-token"],
        },
    )


def _source_rows(standin: StandIn, table: str) -> list[tuple[Any, ...]]:
    with standin.admin_connection() as admin:
        found = admin.execute(
            f"SELECT catid, catgroup, catname, catdesc FROM public.{table} ORDER BY catid"
        )
        return [tuple(row) for row in found.fetchall()]


def test_a_sync_through_glue_full_then_incremental_reads_back_equal(
    tmp_path: Path, info: StandInInfo, standin: StandIn, source: str
) -> None:
    warehouse = f"s3://{LAKE_BUCKET}/{uuid.uuid4().hex[:10]}"
    folder = _workspace(tmp_path, info, source, warehouse)
    first = shiftsync(folder, info, "sync", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    with standin.admin_connection() as admin:
        admin.execute(f"INSERT INTO public.{source} VALUES (100, 'Shows', 'Circus', 'All circus')")
    second = shiftsync(folder, info, "sync", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    report = json.loads(second.stdout)
    assert [t["verification"]["status"] for t in report["tables"]] == ["ok"]
    # The new row and the cursor's own row (read again, merged by key): not the table.
    assert [t["rows"] for t in report["tables"]] == [2]

    table = _glue_catalog(info).load_table((LAKE_GLUE_DATABASE, source))
    assert table.metadata_location.startswith(warehouse)
    expected = _source_rows(standin, source)
    assert len(expected) == 12
    read = table.scan(selected_fields=("catid", "catgroup", "catname", "catdesc")).to_arrow()
    assert sorted(tuple(r.values()) for r in read.to_pylist()) == expected
    # DuckDB reads the snapshot's data files itself (no httpfs/iceberg extension here: see
    # tests/integration/test_lake_readers.py), fetched from the lake bucket as the role.
    files = []
    for n, task in enumerate(table.scan().plan_files()):
        local = tmp_path / f"data-{n}.parquet"
        with table.io.new_input(task.file.file_path).open() as stream:
            local.write_bytes(stream.read())
        files.append(str(local))
    assert files
    with duckdb.connect() as connection:
        found = connection.execute(
            "SELECT catid, catgroup, catname, catdesc FROM read_parquet(?) ORDER BY catid",
            [files],
        ).fetchall()
    assert found == expected
    # Two syncs, two commits: the incremental one appended one row to the full one's.
    assert len(table.metadata.snapshots) >= 2


def _policy_without(action: str) -> dict[str, Any]:
    """The stand-in role's policy less one glue: action of the lake's Glue statement."""
    lake = [("lake", f"s3://{LAKE_BUCKET}"), ("lake", glue_location(LAKE_GLUE_DATABASE))]
    return role_policy_without(action, lake, region=REGION, account=CUSTOMER_ACCOUNT)


def _glue_cases() -> list[Any]:
    """make test runs one refused action (a whole `shiftsync check`); the others are slow."""
    return [
        pytest.param(action, marks=() if action == "glue:CreateTable" else (pytest.mark.slow,))
        for action in GLUE_ACTIONS
    ]


@pytest.mark.parametrize("action", _glue_cases())
def test_check_names_the_glue_action_the_role_is_refused(
    tmp_path: Path, info: StandInInfo, standin: StandIn, action: str
) -> None:
    warehouse = f"s3://{LAKE_BUCKET}/{uuid.uuid4().hex[:10]}"
    folder = _workspace(tmp_path, info, "category", warehouse)
    with replaced_role_policy(standin, _policy_without(action)):
        done = shiftsync(folder, info, "check", "--json")
    assert done.returncode == 3, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    failed = [name for name, c in checks.items() if c["status"] == "fail"]
    assert failed == ["destination lake"], done.stdout
    refused = checks["destination lake"]
    assert f"not authorized to perform: {action}" in refused["detail"]
    assert "written as the role of the sync's source connection" in refused["detail"]
    assert f"allow {action}" in refused["fix"]


@pytest.mark.slow  # a whole `shiftsync check`; make test's refused case passes the rest
def test_with_the_glue_statement_check_passes(
    tmp_path: Path, info: StandInInfo, standin: StandIn
) -> None:
    warehouse = f"s3://{LAKE_BUCKET}/{uuid.uuid4().hex[:10]}"
    folder = _workspace(tmp_path, info, "category", warehouse)
    done = shiftsync(folder, info, "check", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["destination lake"]["status"] == "pass"


SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])


def _destination(info: StandInInfo, warehouse: str) -> IcebergDestination:
    session = AssumedRoleSession(info.role_arn, info.external_id, info.region)
    settings = IcebergSettings("glue", warehouse, namespace=LAKE_GLUE_DATABASE)
    return IcebergDestination(settings, credentials_provider=session.frozen_credentials)


def _load(destination: IcebergDestination, target: str, mode: LoadMode, ids: list[int]) -> Any:
    load = destination.start_load(LoadSpec(target, SCHEMA, mode, primary_key=("id",)))
    load.write(pa.RecordBatch.from_pydict({"id": ids, "v": [str(mode)] * len(ids)}, SCHEMA))
    return load


@pytest.mark.slow  # three commits through Glue and S3, about 8 s on a loaded machine
def test_a_second_writer_through_glue_is_refused(info: StandInInfo, standin: StandIn) -> None:
    # The later merge saw a table that has changed since: pyiceberg's check of the table it
    # re-reads from Glue refuses it (Glue's VersionId lock guards the narrower window between
    # that read and UpdateTable: tests/standin/test_glue.py).
    warehouse = f"s3://{LAKE_BUCKET}/{uuid.uuid4().hex[:10]}"
    target = f"w_{uuid.uuid4().hex[:8]}"
    one, two = _destination(info, warehouse), _destination(info, warehouse)
    try:
        _load(one, target, LoadMode.REPLACE, [1, 2]).commit({"run": 1})
        first = _load(one, target, LoadMode.MERGE, [1])
        second = _load(two, target, LoadMode.MERGE, [1, 3])
        first.commit({"run": 2})
        with pytest.raises(DestinationError, match="another writer") as refused:
            second.commit({"run": 3})
        second.abort()
        assert refused.value.fix
        assert one.read_state(target, target) == {"run": 2}
        rows = one.read_table(target).sort_by("id").to_pylist()
        assert [r["id"] for r in rows] == [1, 2]
    finally:
        one.close()
        two.close()


def test_policy_prints_the_glue_statement_of_the_destination(
    tmp_path: Path, info: StandInInfo
) -> None:
    folder = _workspace(tmp_path, info, "category", f"s3://{LAKE_BUCKET}/wh")
    done = shiftsync(folder, info, "policy")
    assert done.returncode == 0, done.stdout + done.stderr
    statements = json.loads(done.stdout)["permission_policy"]["Statement"]
    (glue,) = [s for s in statements if s["Sid"] == "DestinationLakeGlueCatalog"]
    assert glue["Action"] == list(GLUE_ACTIONS)
    # The stand-in's role lives in the customer account; its connection is in us-east-1.
    arn = f"arn:aws:glue:{REGION}:{CUSTOMER_ACCOUNT}"
    assert glue["Resource"] == [
        f"{arn}:catalog",
        f"{arn}:database/{LAKE_GLUE_DATABASE}",
        f"{arn}:table/{LAKE_GLUE_DATABASE}/*",
    ]
