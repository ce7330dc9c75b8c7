"""A provisioned cluster through the CLI, as a user meets it: `init --cluster` → `policy` → a
role made from it → `check` → `discover` → `sync` (Data API, then UNLOAD) with verification,
for each way the Data API logs in (the role itself, a database user, a Secrets Manager secret);
and the policy minus the log-in action failing exactly that check."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from shiftsync.config import SECRET_USER_PLACEHOLDER
from shiftsync.engine.runs import RunStore
from shiftsync.local.standin import CLUSTER, CUSTOMER_ACCOUNT, StandIn, StandInInfo
from tests.e2e.test_cli_setup import run_grants, without_action
from tests.support import Cli, staging_prefix, store_secret

MODES = ("role", "db_user", "secret")
LOGIN_ACTIONS = {
    "role": "redshift:GetClusterCredentialsWithIAM",
    "db_user": "redshift:GetClusterCredentials",
    "secret": "secretsmanager:GetSecretValue",
}
TABLE = "public.venue"


@pytest.fixture
def prefix(s3: Any) -> Any:
    yield from staging_prefix(s3, "cluster")


def cluster_workspace(
    cli: Cli, info: StandInInfo, folder: Path, mode: str, prefix: str | None
) -> tuple[str, dict[str, Any]]:
    """`init --cluster`, then the lines marked CHANGE edited; (the database user, the
    connection as written)."""
    ran = cli("init", "--cluster", str(folder))
    assert ran.code == 0, ran.err
    assert "cluster_identifier" in ran.out
    config = yaml.safe_load((folder / "shiftsync.yaml").read_text())
    role = f"cluster-{uuid.uuid4().hex[:10]}"
    conn = config["connections"]["warehouse"]
    assert conn["type"] == "redshift_provisioned"
    conn.update(
        region=info.region,
        cluster_identifier=CLUSTER,
        database=info.database,
        role_arn=f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/{role}",
    )
    user = f"IAMR:{role}"
    if mode == "db_user":
        user = f"etl_{uuid.uuid4().hex[:8]}"
        conn["db_user"] = user
    elif mode == "secret":
        user = f"sec_{uuid.uuid4().hex[:8]}"
        conn["secret_arn"] = store_secret(
            {"username": user, "password": "never-shown", "dbClusterIdentifier": CLUSTER}
        )
    if prefix is not None:
        conn["unload"] = {"bucket": info.bucket, "prefix": prefix}
    config["syncs"]["nightly"]["tables"] = [TABLE]
    (folder / "shiftsync.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return user, conn


def role_from_policy(
    cli: Cli, standin: StandIn, folder: Path, user: str, *, missing: str | None = None
) -> dict[str, Any]:
    """The role exactly as `shiftsync policy` describes it; the admin's grants to `user` (a
    secret's username is the admin's to fill in, as the policy says)."""
    ran = cli("policy", "--format", "json", "-w", str(folder))
    assert ran.code == 0, ran.err
    bundle: dict[str, Any] = json.loads(
        ran.out.replace(SECRET_USER_PLACEHOLDER, user.replace('"', '\\"'))
    )
    standin.create_role(
        bundle["role_name"],
        without_action(bundle["permission_policy"], missing),
        bundle["trust_policy"],
    )
    run_grants(standin, user, bundle["database_grants"])
    return bundle


def actions_of(document: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in document["Statement"]:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


@pytest.mark.parametrize("mode", MODES)
def test_a_cluster_from_init_to_a_verified_sync(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str, mode: str
) -> None:
    user, _ = cluster_workspace(cli, info, tmp_path, mode, prefix)
    bundle = role_from_policy(cli, standin, tmp_path, user)
    permissions = bundle["permission_policy"]
    assert LOGIN_ACTIONS[mode] in actions_of(permissions)
    assert "redshift-serverless:GetCredentials" not in actions_of(permissions)
    assert not set(LOGIN_ACTIONS.values()) - {LOGIN_ACTIONS[mode]} & actions_of(permissions)

    ran = cli("check", "--json", "-w", str(tmp_path))
    checks = {c["name"]: c for c in json.loads(ran.out)["checks"]}
    assert checks[LOGIN_ACTIONS[mode]]["status"] == "pass", checks[LOGIN_ACTIONS[mode]]
    assert user in checks[LOGIN_ACTIONS[mode]]["detail"]
    not_passed = {n: c for n, c in checks.items() if c["status"] != "pass"}
    not_passed.pop("bucket region", None)  # moto names no bucket region: a warning
    assert not_passed == {}
    assert ran.code == 0, ran.err

    found = cli("discover", "--json", "-w", str(tmp_path))
    assert found.code == 0, found.err
    listed = json.loads(found.out)
    assert listed["cluster_identifier"] == CLUSTER
    assert listed["workgroup"] is None
    assert TABLE in {t["table"] for t in listed["tables"]}

    for method in ("data_api", "unload"):
        config = yaml.safe_load((tmp_path / "shiftsync.yaml").read_text())
        config["connections"]["warehouse"]["method"] = method
        (tmp_path / "shiftsync.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        done = cli("sync", "--json", "-w", str(tmp_path))
        assert done.code == 0, done.out + done.err
        table = {t["table"]: t for t in json.loads(done.out)["tables"]}[TABLE]
        assert (table["method"], table["rows"]) == (method, 202)
        assert table["verification"]["status"] == "ok"
        assert table["verification"]["source_rows"] == 202
        # A cluster has no SYS_SERVERLESS_USAGE: not asked, so not blamed on privileges.
        cost = RunStore(tmp_path / ".shiftsync" / "runs").load("latest").cost or {}
        assert cost.get("statements")
        assert not any("SYS_SERVERLESS_USAGE" in note for note in cost.get("notes", []))
        assert "serverless_rpu_seconds" not in cost


@pytest.mark.parametrize("mode", MODES)
def test_the_policy_without_the_login_action_fails_exactly_that_check(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path, mode: str
) -> None:
    user, _ = cluster_workspace(cli, info, tmp_path, mode, None)
    action = LOGIN_ACTIONS[mode]
    role_from_policy(cli, standin, tmp_path, user, missing=action)
    ran = cli("check", "--json", "-w", str(tmp_path))
    assert ran.code == 3, ran.err
    checks = {c["name"]: c for c in json.loads(ran.out)["checks"]}
    failed = {name for name, c in checks.items() if c["status"] == "fail"}
    assert failed == {action}
    assert action in checks[action]["fix"]
    assert "shiftsync policy" in checks[action]["fix"]


def test_a_secret_that_is_not_a_redshift_secret_fails_the_check(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path
) -> None:
    user, _ = cluster_workspace(cli, info, tmp_path, "secret", None)
    config = yaml.safe_load((tmp_path / "shiftsync.yaml").read_text())
    config["connections"]["warehouse"]["secret_arn"] = store_secret({"token": "not-a-login"})
    (tmp_path / "shiftsync.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    role_from_policy(cli, standin, tmp_path, user)
    ran = cli("check", "--json", "-w", str(tmp_path))
    assert ran.code == 3, ran.err
    check = {c["name"]: c for c in json.loads(ran.out)["checks"]}[LOGIN_ACTIONS["secret"]]
    assert check["status"] == "fail"
    assert "not a Redshift secret" in check["detail"]
    assert "username" in check["fix"]
    assert "not-a-login" not in ran.out + ran.err


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"cluster_identifier": "Prod--1-"}, "cluster_identifier", "not a Redshift cluster"),
        ({"secret_arn": "arn:aws:s3:::bucket/x"}, "secret_arn", "not a Secrets Manager"),
        ({"workgroup": "wg-1"}, "workgroup", "a workgroup on a redshift_provisioned"),
        (
            {"db_user": "etl", "secret_arn": "arn:aws:secretsmanager:us-east-1:"
             f"{CUSTOMER_ACCOUNT}:secret:redshift/etl-AbCdEf"},
            "secret_arn",
            "db_user and secret_arn together",
        ),
        (
            {"type": "redshift_serverless", "cluster_identifier": None, "workgroup": "wg-1",
             "db_user": "etl"},
            "db_user",
            "db_user on a Serverless workgroup connection",
        ),
    ],
)  # fmt: skip
def test_bad_cluster_settings_are_refused_at_config_check(
    cli: Cli, info: StandInInfo, tmp_path: Path, change: dict[str, Any], key: str, words: str
) -> None:
    cluster_workspace(cli, info, tmp_path, "role", None)
    config = yaml.safe_load((tmp_path / "shiftsync.yaml").read_text())
    conn = config["connections"]["warehouse"]
    conn.update(change)
    for name in [k for k, v in conn.items() if v is None]:
        del conn[name]
    (tmp_path / "shiftsync.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    ran = cli("check", "-w", str(tmp_path))
    assert ran.code == 2, ran.out + ran.err
    assert f"connections.warehouse.{key}: {words}" in ran.err
    assert "Traceback" not in ran.err
    lines = [line for line in ran.err.splitlines() if line.strip()]
    assert sum(line.startswith("error:") for line in lines) == 1, ran.err
    assert sum(line.strip().startswith("fix:") for line in lines) == 1, ran.err


def test_unload_with_a_secret_names_the_users_arn_the_trust_policy_needs(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str
) -> None:
    user, _ = cluster_workspace(cli, info, tmp_path, "secret", prefix)
    ran = cli("policy", "--format", "json", "-w", str(tmp_path))
    bundle = json.loads(ran.out)
    assert SECRET_USER_PLACEHOLDER in json.dumps(bundle["trust_policy"])
    assert "replace <username in the secret>" in bundle["namespace_association"]
    # The admin forgot to put the secret's username into the trust policy.
    standin.create_role(bundle["role_name"], bundle["permission_policy"], bundle["trust_policy"])
    run_grants(standin, user, [g.replace(SECRET_USER_PLACEHOLDER, user) for g in bundle[
        "database_grants"]])  # fmt: skip
    checked = cli("check", "--json", "-w", str(tmp_path))
    checks = {c["name"]: c for c in json.loads(checked.out)["checks"]}
    failed = {name for name, c in checks.items() if c["status"] == "fail"}
    assert failed == {"UNLOAD"}
    expected = f"arn:aws:redshift:{info.region}:{CUSTOMER_ACCOUNT}:dbuser:{CLUSTER}/{user}"
    assert f"sts:ExternalId {expected}" in checks["UNLOAD"]["fix"]


def test_a_denied_data_api_action_on_a_cluster_names_the_clusters_arn(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path
) -> None:
    user, _ = cluster_workspace(cli, info, tmp_path, "db_user", None)
    role_from_policy(cli, standin, tmp_path, user, missing="redshift-data:ListTables")
    ran = cli("check", "--json", "-w", str(tmp_path))
    assert ran.code == 3, ran.err
    checks = {c["name"]: c for c in json.loads(ran.out)["checks"]}
    assert {name for name, c in checks.items() if c["status"] == "fail"} == {
        "redshift-data:ListTables"
    }
    cluster_arn = f"arn:aws:redshift:{info.region}:{CUSTOMER_ACCOUNT}:cluster:{CLUSTER}"
    assert f"allow redshift-data:ListTables on {cluster_arn}" in checks[
        "redshift-data:ListTables"]["fix"]  # fmt: skip
