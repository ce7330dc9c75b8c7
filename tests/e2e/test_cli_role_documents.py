"""The role documents `shiftsync policy` prints, loaded into the stand-in as they are: `check`
and an UNLOAD sync pass, and the UNLOAD trust statement holds for shiftsync's database user
only (the stand-in passes the user's ARN as sts:ExternalId, as Redshift does)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shiftsync.local.standin import StandIn, StandInInfo
from tests.e2e.test_cli_setup import new_role_arn, run_grants
from tests.support import Cli, staging_prefix, write_role_workspace


@pytest.fixture
def prefix(s3: Any) -> Iterator[str]:
    yield from staging_prefix(s3, "roles")


def bundle_of(cli: Cli, folder: Path) -> dict[str, Any]:
    ran = cli("policy", "--format", "json", "-w", str(folder))
    assert ran.code == 0, ran.err
    bundle: dict[str, Any] = json.loads(ran.out)
    return bundle


def unload_workspace(info: StandInInfo, folder: Path, prefix: str) -> None:
    write_role_workspace(
        folder,
        info,
        new_role_arn(),
        unload_prefix=prefix,
        tables=["public.category"],
        extra="    method: unload\n",
    )


def test_policy_output_passes_check_and_an_unload_sync(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str
) -> None:
    unload_workspace(info, tmp_path, prefix)
    bundle = bundle_of(cli, tmp_path)
    redshift = bundle["trust_policy"]["Statement"][1]
    assert redshift["Principal"]["Service"] == [
        "redshift.amazonaws.com",
        "redshift-serverless.amazonaws.com",
    ]
    user_arn = redshift["Condition"]["StringEquals"]["sts:ExternalId"]
    assert user_arn == (
        f"arn:aws:redshift:{info.region}:222222222222:dbuser:{info.workgroup}/"
        f"IAMR:{bundle['role_name']}"
    )
    standin.create_role(bundle["role_name"], bundle["permission_policy"], bundle["trust_policy"])
    run_grants(standin, f"IAMR:{bundle['role_name']}", bundle["database_grants"])
    checked = cli("check", "--json", "-w", str(tmp_path))
    checks = {c["name"]: c for c in json.loads(checked.out)["checks"]}
    assert checks["UNLOAD"]["status"] == "pass", checks["UNLOAD"]
    assert checked.code == 0, checked.err
    ran = cli("sync", "--json", "-w", str(tmp_path))
    assert ran.code == 0, ran.out + ran.err
    (table,) = json.loads(ran.out)["tables"]
    assert table["method"] == "unload"
    assert table["status"] == "ok"


def test_the_unload_trust_statement_holds_for_no_other_database_user(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str
) -> None:
    unload_workspace(info, tmp_path, prefix)
    bundle = bundle_of(cli, tmp_path)
    trust = bundle["trust_policy"]
    condition = trust["Statement"][1]["Condition"]["StringEquals"]
    # The statement as it would be for another database user of the same workgroup.
    condition["sts:ExternalId"] = condition["sts:ExternalId"].rsplit("/", 1)[0] + "/IAMR:other"
    standin.create_role(bundle["role_name"], bundle["permission_policy"], trust)
    run_grants(standin, f"IAMR:{bundle['role_name']}", bundle["database_grants"])
    checked = cli("check", "--json", "-w", str(tmp_path))
    assert checked.code == 3
    checks = {c["name"]: c for c in json.loads(checked.out)["checks"]}
    assert checks["UNLOAD"]["status"] == "fail"
    assert "not authorized to assume IAM Role" in checks["UNLOAD"]["detail"]


def test_policy_grants_the_schemas_the_syncs_read(
    cli: Cli, info: StandInInfo, tmp_path: Path
) -> None:
    write_role_workspace(
        tmp_path,
        info,
        new_role_arn(),
        tables=["public.category", "sales.orders", '"Odd Schema"."Mixed Case"', "st?ge.*"],
    )
    ran = cli("policy", "--format", "json", "-w", str(tmp_path))
    assert ran.code == 0, ran.err
    grants = json.loads(ran.out)["database_grants"]
    granted = {g.split(" ON SCHEMA ")[1].split(" TO ")[0] for g in grants if "USAGE" in g}
    assert granted == {'"Odd Schema"', '"public"', '"sales"'}
    assert "st?ge" in ran.err


def test_policy_on_the_untouched_template_warns(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", str(tmp_path)).code == 0
    ran = cli("policy", "-w", str(tmp_path))
    assert ran.code == 0, ran.err
    assert "warning: role_arn arn:aws:iam::123456789012:role/shiftsync-reader" in ran.err
    assert "workgroup default-workgroup" in ran.err


def test_role_chaining_over_an_hour_is_refused_with_the_reason(
    cli: Cli,
    info: StandInInfo,
    assumed: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_role_workspace(
        tmp_path,
        info,
        info.role_arn,
        external_id=info.external_id,
        extra="    session_duration_seconds: 7200\n",
    )
    # shiftsync itself runs as a role session: assuming the customer's role chains.
    frozen = assumed.frozen_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", frozen.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", frozen.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", frozen.token)
    ran = cli("sync", "-w", str(tmp_path))
    assert ran.code == 2, ran.out + ran.err
    assert "role chaining" in ran.err
    assert "connections.wh.session_duration_seconds to 3600" in ran.err
    checked = cli("check", "--json", "-w", str(tmp_path))
    checks = {c["name"]: c for c in json.loads(checked.out)["checks"]}
    assert checks["sts:AssumeRole"]["status"] == "fail"
    assert "role chaining" in checks["sts:AssumeRole"]["detail"]
    assert frozen.secret_key not in ran.out + ran.err + checked.out + checked.err


def test_check_warns_about_a_versioned_bucket_without_a_noncurrent_rule(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path
) -> None:
    from moto.s3.models import s3_backends

    from shiftsync.local.standin import CUSTOMER_ACCOUNT, guide_permission_policy

    bucket = f"versioned-{uuid.uuid4().hex[:12]}"
    backend = s3_backends[CUSTOMER_ACCOUNT]["aws"]
    backend.create_bucket(bucket, info.region)
    backend.put_bucket_versioning(bucket, "Enabled")
    role_arn = new_role_arn()
    workspace = write_role_workspace(
        tmp_path, info, role_arn, unload_prefix="staged/", bucket=bucket, tables=["public.category"]
    )
    policy = guide_permission_policy(bucket)
    policy["Statement"].append(
        {
            "Effect": "Allow",
            "Action": ["s3:GetBucketVersioning", "s3:GetLifecycleConfiguration"],
            "Resource": f"arn:aws:s3:::{bucket}",
        }
    )
    role_name = role_arn.rsplit("/", 1)[1]
    bundle = bundle_of(cli, tmp_path)
    standin.create_role(role_name, policy, bundle["trust_policy"])
    run_grants(standin, f"IAMR:{role_name}", bundle["database_grants"])

    def versions() -> dict[str, Any]:
        ran = cli("check", "--json", "-w", str(workspace.folder))
        assert ran.code == 0, ran.out + ran.err
        found: dict[str, Any] = {c["name"]: c for c in json.loads(ran.out)["checks"]}[
            "staging versions"
        ]
        return found

    finding = versions()
    assert finding["status"] == "warn"
    assert "noncurrent version" in finding["detail"]
    rule = json.loads(finding["fix"][finding["fix"].index("{") :])
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert rule["Filter"] == {"Prefix": "staged/"}
    # The rule it suggests, applied as is, satisfies it.
    backend.put_bucket_lifecycle(bucket, [rule])
    assert versions()["status"] == "pass"
