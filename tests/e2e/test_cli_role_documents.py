"""The role documents `shiftsync policy` prints, loaded into the stand-in as they are: `check`
and an UNLOAD sync pass, and the UNLOAD trust statement holds for shiftsync's database user
only (the stand-in passes the user's ARN as sts:ExternalId, as Redshift does)."""

from __future__ import annotations

import json
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
