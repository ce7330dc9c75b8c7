"""Syncs into S3 destinations (Parquet, Iceberg, Delta) on the stand-in's lake bucket, as a
user runs them: `shiftsync sync` in a workspace, the stand-in reached through the standard
AWS variables, whose own keys (the runner's) may not write the lake bucket; the role may."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from shiftsync.local.standin import (
    LAKE_BUCKET,
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

TABLES = ["public.venue", "public.category"]


def lake_workspace(folder: Path, info: StandInInfo, destination: dict[str, Any]) -> Path:
    write_external_id(folder, info.external_id)
    write_sync_config(
        folder,
        standin_connection(info),
        {"lake": destination},
        {"destination": "lake", "tables": TABLES},
    )
    return folder


def _prefix() -> str:
    return f"s3://{LAKE_BUCKET}/{uuid.uuid4().hex[:10]}"


DESTINATIONS = {
    "parquet": lambda url: {"type": "parquet", "path": url},
    "iceberg": lambda url: {"type": "iceberg", "warehouse": url},
    "delta": lambda url: {"type": "delta", "path": url, "locking": "conditional_put"},
}


def _one_kind_fast(fast: str) -> list[Any]:
    """The three kinds share the S3 code under test: make test runs `fast`, the others are
    `slow` (each a whole sync or check, 5-12 s); the tests below rotate which kind is fast."""
    return [
        pytest.param(kind, marks=() if kind == fast else (pytest.mark.slow,), id=kind)
        for kind in sorted(DESTINATIONS)
    ]


@pytest.mark.parametrize("kind", _one_kind_fast("parquet"))
def test_the_runners_own_keys_are_refused_and_the_message_names_them(
    tmp_path: Path, info: StandInInfo, kind: str
) -> None:
    # What every S3 destination did before `credentials`: write with the runner's own keys.
    destination = {**DESTINATIONS[kind](_prefix()), "credentials": "default"}
    folder = lake_workspace(tmp_path, info, destination)
    done = shiftsync(folder, info, "sync")
    assert done.returncode == 1, done.stdout + done.stderr
    shown = done.stdout + done.stderr
    assert "access_denied" in shown.lower().replace("accessdenied", "access_denied"), shown
    assert "written as boto3's default credentials" in shown


@pytest.mark.parametrize("kind", _one_kind_fast("iceberg"))
def test_a_sync_writes_s3_as_the_connection_role(
    tmp_path: Path, info: StandInInfo, kind: str
) -> None:
    url = _prefix()
    folder = lake_workspace(tmp_path, info, DESTINATIONS[kind](url))  # credentials: connection
    done = shiftsync(folder, info, "sync", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    tables = {t["table"]: t for t in report["tables"]}
    assert set(tables) == set(TABLES)
    for table in tables.values():
        assert table["verification"]["status"] == "ok", table
    rows = {"venue": tables["public.venue"]["rows"]}
    assert rows["venue"] == 202
    again = shiftsync(folder, info, "sync", "--json")  # a second full refresh replaces
    assert again.returncode == 0, again.stdout + again.stderr
    if kind == "iceberg":
        # Another reader of the same catalog sees the committed rows.
        catalog = SqlCatalog(
            "shiftsync",  # the SQL catalog keeps tables per catalog name
            uri=f"sqlite:///{folder / 'iceberg_catalog.db'}",
            warehouse=url,
            **role_s3_properties(info),
        )
        table = catalog.load_table(("shiftsync", "venue"))
        files = [task.file.file_path for task in table.scan().plan_files()]
        assert table.scan().to_arrow().num_rows == rows["venue"]
        with duckdb.connect() as connection:
            connection.register("venue", table.scan().to_arrow_batch_reader())
            counted = connection.execute("SELECT count(*), count(DISTINCT venueid) FROM venue")
            assert counted.fetchall() == [(rows["venue"], rows["venue"])]
        assert files
        assert all(f.startswith(url) for f in files)


def test_policy_prints_the_statements_the_lake_destination_needs(
    tmp_path: Path, info: StandInInfo
) -> None:
    url = _prefix()
    folder = lake_workspace(tmp_path, info, DESTINATIONS["iceberg"](url))
    done = shiftsync(folder, info, "policy")
    assert done.returncode == 0, done.stdout + done.stderr
    statements = json.loads(done.stdout)["permission_policy"]["Statement"]
    prefix = url.split("/", 3)[3] + "/"
    objects = next(s for s in statements if s["Sid"] == "DestinationLakeObjects")
    assert objects["Resource"] == f"arn:aws:s3:::{LAKE_BUCKET}/{prefix}*"
    assert set(objects["Action"]) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    listing = next(s for s in statements if s["Sid"] == "DestinationLakeList")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
    assert "destination lake" in done.stderr


@pytest.mark.parametrize("kind", _one_kind_fast("delta"))
def test_check_probes_the_destination_as_the_identity_that_writes_it(
    tmp_path: Path, info: StandInInfo, kind: str
) -> None:
    url = _prefix()
    folder = lake_workspace(tmp_path / "role", info, DESTINATIONS[kind](url))
    done = shiftsync(folder, info, "check", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["destination lake"]["status"] == "pass"

    own_keys = {**DESTINATIONS[kind](url), "credentials": "default"}
    folder = lake_workspace(tmp_path / "own", info, own_keys)
    done = shiftsync(folder, info, "check", "--json")
    assert done.returncode == 3, done.stdout + done.stderr
    failed = {c["name"]: c for c in json.loads(done.stdout)["checks"] if c["status"] == "fail"}
    # The runner's own keys may not write the lake bucket at all: every action is refused.
    assert list(failed) == [f"destination lake {a}" for a in LAKE_ACTIONS]
    for check in failed.values():
        assert "boto3's default credentials was refused" in check["detail"]
        assert check["fix"]


LAKE_ACTIONS = ["s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:DeleteObject"]


def _policy_without(action: str) -> dict[str, Any]:
    return role_policy_without(action, [("lake", f"s3://{LAKE_BUCKET}")])


def _action_cases() -> list[Any]:
    """Every action × every kind; make test runs one kind per action, rotating, so each action
    and each kind is checked there (the kinds share the probe's code), the rest is `slow`
    (about 25 s a case: a whole `shiftsync check`)."""
    kinds = sorted(DESTINATIONS)
    cases = []
    for n, action in enumerate(LAKE_ACTIONS):
        for kind in kinds:
            fast = kind == kinds[n % len(kinds)]
            marks = () if fast else (pytest.mark.slow,)
            cases.append(pytest.param(action, kind, marks=marks, id=f"{action}-{kind}"))
    return cases


@pytest.mark.parametrize(("action", "kind"), _action_cases())
def test_check_names_the_one_s3_action_the_role_is_refused(
    tmp_path: Path, info: StandInInfo, standin: StandIn, kind: str, action: str
) -> None:
    url = _prefix()
    folder = lake_workspace(tmp_path, info, DESTINATIONS[kind](url))
    with replaced_role_policy(standin, _policy_without(action)):
        done = shiftsync(folder, info, "check", "--json")
    assert done.returncode == 3, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    failed = [name for name, c in checks.items() if c["status"] == "fail"]
    assert failed == [f"destination lake {action}"]
    refused = checks[f"destination lake {action}"]
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    resource = f"arn:aws:s3:::{bucket}" if action == "s3:ListBucket" else (
        f"arn:aws:s3:::{bucket}/{prefix}/*"
    )  # fmt: skip
    assert f"{action} on {resource}" in refused["detail"]
    assert "the role of the sync's source connection was refused" in refused["detail"]
    assert refused["fix"].startswith(f"allow {action} on {resource}")
    assert checks["destination lake"]["status"] == "skip"
    passed = {f"destination lake {a}" for a in LAKE_ACTIONS if a != action}
    assert all(checks[name]["status"] == "pass" for name in passed)


@pytest.mark.parametrize("kind", ["iceberg", "delta"])
def test_a_lake_sync_names_the_s3_action_its_probe_file_was_refused(
    tmp_path: Path, info: StandInInfo, standin: StandIn, kind: str
) -> None:
    # A sync checks an Iceberg warehouse or a Delta root with a probe file, not a probe table:
    # a role that may not write there is still refused before anything is read, naming the
    # action (a Delta probe table failed with delta-rs's own error, naming none).
    url = _prefix()
    folder = lake_workspace(tmp_path, info, DESTINATIONS[kind](url))
    with replaced_role_policy(standin, _policy_without("s3:PutObject")):
        done = shiftsync(folder, info, "sync")
    assert done.returncode == 1, done.stdout + done.stderr
    shown = done.stdout + done.stderr
    assert "the role of the sync's source connection was refused s3:PutObject" in shown, shown
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    assert f"allow s3:PutObject and s3:DeleteObject on arn:aws:s3:::{bucket}/{prefix}/*" in (
        " ".join(shown.split())
    )
    assert "Traceback" not in shown
