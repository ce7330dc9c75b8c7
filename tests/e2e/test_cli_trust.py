"""The confused-deputy promise kept by every command that assumes the role, not only `check`.

Each test gets a role of its own on the stand-in, first trusting only the workspace's external
ID (StringEquals), then loosened as a careless admin would, and runs `shiftsync` in-process.
"""

from __future__ import annotations

import datetime
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from shiftsync.aws.trust import CACHE_FILE_NAME, cache_entries
from shiftsync.local.standin import BUCKET, StandIn, StandInInfo, guide_permission_policy
from shiftsync.workspace import Workspace
from tests.support import Cli, grant_reads, write_role_workspace

OPEN_MARK = "open to the confused deputy problem"


def trust(info: StandInInfo, condition: dict[str, Any] | None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": info.principal_arn},
        "Action": "sts:AssumeRole",
    }
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def exact(external_id: str) -> dict[str, Any]:
    return {"StringEquals": {"sts:ExternalId": external_id}}


class Role:
    """A role of one test's own, whose trust policy the test rewrites."""

    def __init__(self, standin: StandIn) -> None:
        self.standin = standin
        self.name = f"trust-{uuid.uuid4().hex[:12]}"
        self.arn = f"arn:aws:iam::222222222222:role/{self.name}"

    def trusting(self, document: dict[str, Any]) -> None:
        self.standin.create_role(self.name, guide_permission_policy(BUCKET), document)


@pytest.fixture
def role(standin: StandIn) -> Role:
    return Role(standin)


def workspace_for(
    standin: StandIn, info: StandInInfo, role: Role, folder: Path, extra: str = ""
) -> Workspace:
    workspace = write_role_workspace(
        folder, info, role.arn, tables=["public.category"], extra=extra
    )
    role.trusting(trust(info, exact(workspace.external_id)))
    grant_reads(standin, workspace)
    return workspace


def a_day_passes(workspace: Workspace) -> None:
    """Age every remembered trust proof past the default interval (one day)."""
    path = workspace.dot_dir / CACHE_FILE_NAME
    if not path.exists():
        return
    old = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1, seconds=1)).isoformat()
    entries = json.loads(path.read_text())
    path.write_text(json.dumps(dict.fromkeys(entries, old)))


@pytest.mark.parametrize(
    ("loosened", "how"),
    [
        (None, "without an external ID"),
        ({"StringLike": {"sts:ExternalId": "*"}}, "with a random external ID"),
    ],
    ids=["no-external-id", "stringlike-star"],
)
def test_a_role_loosened_after_check_is_refused_by_sync(
    cli: Cli,
    standin: StandIn,
    info: StandInInfo,
    role: Role,
    tmp_path: Path,
    loosened: dict[str, Any] | None,
    how: str,
) -> None:
    workspace = workspace_for(standin, info, role, tmp_path)
    checked = cli("check", "-w", str(tmp_path))
    assert checked.code == 0, checked.out + checked.err
    role.trusting(trust(info, loosened))
    a_day_passes(workspace)  # any proof remembered so far is older than the interval
    # `check` probed the DuckDB destination (it opens the file); the refused sync writes nothing.
    database = tmp_path / "shiftsync.duckdb"
    before = database.read_bytes() if database.exists() else None
    ran = cli("sync", "-w", str(tmp_path))
    assert ran.code == 3, ran.out + ran.err
    assert OPEN_MARK in ran.err
    assert how in ran.err
    assert "Traceback" not in ran.err
    assert (database.read_bytes() if database.exists() else None) == before
    # `check` says the same thing about the same role.
    again = cli("check", "-w", str(tmp_path), "--json")
    assert again.code == 3
    checks = {c["name"]: c for c in json.loads(again.out)["checks"]}
    finding = checks["external ID required"]
    assert finding["status"] == "fail"
    assert finding["detail"] in ran.err
    assert f"StringEquals sts:ExternalId {workspace.external_id}" in finding["fix"]


def test_discover_refuses_an_open_role_too(
    cli: Cli, standin: StandIn, info: StandInInfo, role: Role, tmp_path: Path
) -> None:
    workspace_for(standin, info, role, tmp_path)
    role.trusting(trust(info, {"StringLike": {"sts:ExternalId": "shiftsync-*"}}))
    ran = cli("discover", "-w", str(tmp_path))
    assert ran.code == 3, ran.out + ran.err
    assert OPEN_MARK in ran.err


def test_two_workspaces_cannot_share_a_role_that_names_one_id(
    cli: Cli, standin: StandIn, info: StandInInfo, role: Role, tmp_path: Path
) -> None:
    first = workspace_for(standin, info, role, tmp_path / "first")
    second = write_role_workspace(tmp_path / "second", info, role.arn, tables=["public.category"])
    assert first.external_id != second.external_id
    assert cli("sync", "-w", str(first.folder)).code == 0
    ran = cli("sync", "-w", str(second.folder))
    assert ran.code == 3, ran.out + ran.err
    assert "sts:AssumeRole" in ran.err
    assert second.external_id in ran.err
    assert not (second.folder / "shiftsync.duckdb").exists()


def test_a_pattern_shared_by_two_workspaces_is_refused_for_both(
    cli: Cli, standin: StandIn, info: StandInInfo, role: Role, tmp_path: Path
) -> None:
    first = workspace_for(standin, info, role, tmp_path / "first")
    second = write_role_workspace(tmp_path / "second", info, role.arn, tables=["public.category"])
    # Both IDs match, so AssumeRole with either works: only the random probe shows it.
    role.trusting(trust(info, {"StringLike": {"sts:ExternalId": "shiftsync-*"}}))
    for workspace in (first, second):
        ran = cli("sync", "-w", str(workspace.folder))
        assert ran.code == 3, ran.out + ran.err
        assert "with a random external ID" in ran.err


def test_the_proof_is_remembered_for_the_interval_and_owner_only(
    cli: Cli, standin: StandIn, info: StandInInfo, role: Role, tmp_path: Path
) -> None:
    workspace = workspace_for(standin, info, role, tmp_path)
    assert cli("sync", "-w", str(tmp_path)).code == 0
    cache = workspace.dot_dir / CACHE_FILE_NAME
    assert cache.stat().st_mode & 0o777 == 0o600
    assert len(cache_entries(workspace)) == 1
    assert workspace.external_id not in cache.read_text()
    # Loosened within the interval: the remembered proof stands (at most once a day)...
    role.trusting(trust(info, None))
    assert cli("sync", "-w", str(tmp_path)).code == 0
    # ...and once the interval is over, the next run proves it again and refuses the role.
    a_day_passes(workspace)
    ran = cli("sync", "-w", str(tmp_path))
    assert ran.code == 3
    assert OPEN_MARK in ran.err
    assert cache_entries(workspace) == {}  # an open role's proof is forgotten


def test_an_interval_of_zero_proves_trust_on_every_run(
    cli: Cli, standin: StandIn, info: StandInInfo, role: Role, tmp_path: Path
) -> None:
    workspace_for(standin, info, role, tmp_path, extra="    trust_check_interval_seconds: 0\n")
    assert cli("sync", "-w", str(tmp_path)).code == 0
    role.trusting(trust(info, None))
    ran = cli("sync", "-w", str(tmp_path))
    assert ran.code == 3
    assert OPEN_MARK in ran.err


def test_check_skips_the_probe_when_the_role_cannot_be_assumed(
    cli: Cli, standin: StandIn, info: StandInInfo, role: Role, tmp_path: Path
) -> None:
    workspace_for(standin, info, role, tmp_path)
    role.trusting(trust(info, exact("shiftsync-some-other-workspace")))
    ran = cli("check", "-w", str(tmp_path), "--json")
    assert ran.code == 3
    checks = {c["name"]: c for c in json.loads(ran.out)["checks"]}
    assert checks["sts:AssumeRole"]["status"] == "fail"
    assert checks["external ID required"]["status"] == "skip"
    assert "proves nothing" in checks["external ID required"]["detail"] or (
        "prove nothing" in checks["external ID required"]["detail"]
    )


def test_check_warns_about_a_stringlike_test_it_can_read(
    cli: Cli,
    standin: StandIn,
    info: StandInInfo,
    role: Role,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace = workspace_for(standin, info, role, tmp_path)
    # The optional iam:GetRole on itself lets `check` read the trust policy.
    policy = guide_permission_policy(BUCKET)
    policy["Statement"].append({"Effect": "Allow", "Action": "iam:GetRole", "Resource": role.arn})
    pattern = {"StringLike": {"sts:ExternalId": f"{workspace.external_id}*"}}
    standin.create_role(role.name, policy, trust(info, pattern))
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", info.endpoint)
    ran = cli("check", "-w", str(tmp_path), "--json")
    assert ran.code == 0, ran.out + ran.err
    finding = {c["name"]: c for c in json.loads(ran.out)["checks"]}["external ID required"]
    assert finding["status"] == "warn"
    assert "StringLike" in finding["detail"]
    assert f"StringEquals sts:ExternalId {workspace.external_id}" in finding["fix"]
    # With StringEquals the same reading passes and says it read the policy.
    standin.create_role(role.name, policy, trust(info, exact(workspace.external_id)))
    ran = cli("check", "-w", str(tmp_path), "--json")
    finding = {c["name"]: c for c in json.loads(ran.out)["checks"]}["external ID required"]
    assert finding["status"] == "pass"
    assert "iam:GetRole" in finding["detail"]
