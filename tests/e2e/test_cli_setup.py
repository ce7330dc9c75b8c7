"""`shiftsync init`, `policy` and `check` run as a user runs them (through `main()`), exit codes
included, against the stand-in."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shiftsync.cli import main
from shiftsync.cli.output import (
    column_widths,
    is_terminal,
    plain_row,
    plain_table,
    rich_table,
)
from shiftsync.config import config_template
from shiftsync.local.standin import (
    BUCKET,
    CUSTOMER_ACCOUNT,
    StandIn,
    StandInInfo,
    guide_permission_policy,
    guide_trust_policy,
)
from shiftsync.preflight import planned_checks
from shiftsync.workspace import Workspace
from tests.support import Cli, staging_prefix, write_role_workspace


def new_role_arn() -> str:
    return f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/cli-{uuid.uuid4().hex[:12]}"


def run_grants(standin: StandIn, role_name: str, grants: Sequence[str]) -> None:
    """The admin's part: the role's database user, then the grants `shiftsync policy` printed."""
    with standin.admin_connection() as admin:
        with contextlib.suppress(psycopg.errors.DuplicateObject):
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role_name)))
        for grant in grants:
            admin.execute(grant.encode())


@pytest.fixture
def prefix(s3: Any) -> Iterator[str]:
    yield from staging_prefix(s3, "cli")


def unload_works(standin: StandIn) -> bool:
    return standin.engine is not None and standin.engine.unload_handler is not None


# ---------------------------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------------------------


def test_init_creates_the_workspace_once(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    first = cli("init", str(folder))
    assert first.code == 0, first.err
    external_id = (folder / ".shiftsync" / "external_id").read_text().strip()
    assert (folder / "shiftsync.yaml").read_text() == config_template()
    assert f"external ID: {external_id} (new)" in first.out
    assert "shiftsync policy" in first.out
    assert f"cd {folder}" in first.out

    again = cli("init", str(folder))
    assert again.code == 0
    assert f"external ID: {external_id}\n" in again.out  # kept, not new
    assert "kept" in again.out
    assert (folder / ".shiftsync" / "external_id").read_text().strip() == external_id


def test_init_says_when_it_had_to_make_a_new_id_for_an_existing_config(
    cli: Cli, tmp_path: Path
) -> None:
    (tmp_path / "shiftsync.yaml").write_text(config_template())
    ran = cli("init", str(tmp_path))
    assert ran.code == 0
    assert "new external ID was generated" in ran.err


def test_init_refuses_a_damaged_external_id(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / ".shiftsync").mkdir()
    (tmp_path / ".shiftsync" / "external_id").write_text("x\n")
    ran = cli("init", str(tmp_path))
    assert ran.code == 2
    assert "external ID" in ran.err
    assert "fix:" in ran.err


# ---------------------------------------------------------------------------------------------
# policy
# ---------------------------------------------------------------------------------------------


def test_policy_json_is_the_only_thing_on_stdout(
    cli: Cli, info: StandInInfo, tmp_path: Path
) -> None:
    write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    ran = cli("policy", "--workspace", str(tmp_path))
    assert ran.code == 0, ran.err
    bundle = json.loads(ran.out)
    trust = bundle["trust_policy"]["Statement"]
    assert trust[0]["Principal"] == {"AWS": info.principal_arn}  # from GetCallerIdentity
    assert trust[0]["Condition"] == {"StringEquals": {"sts:ExternalId": info.external_id}}
    assert len(trust) == 1  # no UNLOAD: Redshift is not trusted
    assert f"external ID: {info.external_id}" in ran.err
    assert "sts:GetCallerIdentity" in ran.err
    assert "shiftsync check" in ran.err


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [("terraform", 'resource "aws_iam_role" "shiftsync"'), ("cloudformation", "AWS::IAM::Role")],
)
def test_policy_other_formats(
    cli: Cli, info: StandInInfo, tmp_path: Path, fmt: str, marker: str
) -> None:
    write_role_workspace(
        tmp_path, info, info.role_arn, external_id=info.external_id, unload_prefix="stage/"
    )
    ran = cli("policy", "wh", "-f", fmt, "-w", str(tmp_path))
    assert ran.code == 0, ran.err
    assert marker in ran.out
    assert info.external_id in ran.out
    assert "redshift.amazonaws.com" in ran.out  # UNLOAD is on
    assert "associate the role" in ran.err


def test_policy_with_principal_arn_needs_no_aws_credentials(
    cli: Cli, info: StandInInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    principal = "arn:aws:sts::111111111111:assumed-role/etl-runner/session-1"
    write_role_workspace(tmp_path, info, info.role_arn, extra=f"    principal_arn: {principal}\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    ran = cli("policy", "-w", str(tmp_path))
    assert ran.code == 0, ran.err
    statement = json.loads(ran.out)["trust_policy"]["Statement"][0]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::111111111111:role/etl-runner"}
    assert "connections.wh.principal_arn" in ran.err
    assert "is a session of that role" in ran.err


# ---------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------


def destination_names(workspace: Workspace) -> list[str]:
    return [f"destination {s.destination}" for s in workspace.config.syncs.values()]


def test_check_all_green(cli: Cli, info: StandInInfo, tmp_path: Path) -> None:
    workspace = write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    ran = cli("check", "-w", str(tmp_path))
    assert ran.code == 0, ran.out + ran.err
    assert f"external ID: {info.external_id}" in ran.out
    # The connection's checks, then one probe of each destination its syncs write.
    names = (*planned_checks(workspace.config.connection()[1]), *destination_names(workspace))
    assert f"all {len(names)} checks passed" in ran.out
    lines = ran.out.splitlines()
    for name in names:
        assert any(line.startswith("pass") and f" {name} " in line for line in lines), name


def test_check_json_document(cli: Cli, info: StandInInfo, tmp_path: Path) -> None:
    write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    ran = cli("check", "--json", "-w", str(tmp_path))
    assert ran.code == 0, ran.err
    document = json.loads(ran.out)
    assert document["external_id"] == info.external_id
    assert document["role_arn"] == info.role_arn
    assert document["ok"] is True
    assert {c["status"] for c in document["checks"]} == {"pass"}
    assert set(document["checks"][0]) == {"name", "status", "detail", "fix"}


def test_check_failure_exits_3_and_json_stays_clean(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path
) -> None:
    arn = new_role_arn()
    workspace = write_role_workspace(tmp_path, info, arn)
    name = arn.rsplit("/", 1)[1]
    standin.create_role(
        name,
        guide_permission_policy(BUCKET, deny=["redshift-data:ListSchemas"]),
        guide_trust_policy(info.principal_arn, workspace.external_id),
    )
    ran = cli("check", "--json", "-w", str(tmp_path))
    assert ran.code == 3
    document = json.loads(ran.out)
    assert document["ok"] is False
    failing = [c for c in document["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failing] == ["redshift-data:ListSchemas", "table privileges"]
    assert "GRANT SELECT ON ALL TABLES" in failing[1]["fix"]  # no grants were run for it
    assert "error: 2 of" in ran.err
    assert "fix:" in ran.err


def test_check_on_a_terminal_draws_a_table(
    info: StandInInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "argv", ["shiftsync", "check", "-w", str(tmp_path)])
    monkeypatch.setenv("TERM", "xterm")
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 0
    text = screen.getvalue()
    assert "sts:GetCallerIdentity" in text
    assert "─" in text or "━" in text  # rich box drawing
    assert "all 14 checks passed" in text  # 13 of the role, 1 of the DuckDB destination


# ---------------------------------------------------------------------------------------------
# The round trip: `shiftsync policy` → a role → `shiftsync check`
# ---------------------------------------------------------------------------------------------


def without_action(document: dict[str, Any], action: str | None) -> dict[str, Any]:
    statements = []
    for statement in document["Statement"]:
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        kept = [a for a in actions if a != action]
        if kept:
            statements.append({**statement, "Action": kept})
    return {**document, "Statement": statements}


def role_from_policy(
    cli: Cli, standin: StandIn, folder: Path, *, missing: str | None = None
) -> None:
    """Create the role exactly as `shiftsync policy --format json` describes it."""
    ran = cli("policy", "--format", "json", "-w", str(folder))
    assert ran.code == 0, ran.err
    bundle = json.loads(ran.out)
    standin.create_role(
        bundle["role_name"],
        without_action(bundle["permission_policy"], missing),
        bundle["trust_policy"],
    )
    run_grants(standin, f"IAMR:{bundle['role_name']}", bundle["database_grants"])


@pytest.mark.parametrize("unload", [False, True], ids=["data_api", "unload"])
def test_policy_round_trip_passes_check(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str, unload: bool
) -> None:
    write_role_workspace(tmp_path, info, new_role_arn(), unload_prefix=prefix if unload else None)
    role_from_policy(cli, standin, tmp_path)
    ran = cli("check", "--json", "-w", str(tmp_path))
    checks = {c["name"]: c for c in json.loads(ran.out)["checks"]}
    not_passed = {name: c for name, c in checks.items() if c["status"] != "pass"}
    if unload:
        # moto names no bucket region (see test_preflight): a warning, which does not fail.
        assert checks["bucket region"]["status"] == "warn"
        not_passed.pop("bucket region")
        if not unload_works(standin):
            pytest.fail("the stand-in cannot UNLOAD yet: " + checks["UNLOAD"]["detail"])
    assert not_passed == {}
    assert ran.code == 0, ran.err


@pytest.mark.parametrize(
    "missing",
    [
        "redshift-serverless:GetCredentials",
        "redshift-data:ListSchemas",
        "redshift-data:GetStatementResult",
        "redshift-data:CancelStatement",
        "s3:PutObject",
        "s3:DeleteObject",
    ],
)
def test_policy_minus_one_action_fails_that_check(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str, missing: str
) -> None:
    unload = prefix if missing.startswith("s3:") else None
    write_role_workspace(tmp_path, info, new_role_arn(), unload_prefix=unload)
    role_from_policy(cli, standin, tmp_path, missing=missing)
    ran = cli("check", "--json", "-w", str(tmp_path))
    assert ran.code == 3
    failing = [c for c in json.loads(ran.out)["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failing] == [missing]
    assert missing in failing[0]["fix"]


# ---------------------------------------------------------------------------------------------
# Bad input: one clear message, the fix, the documented exit code
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["check", "policy"])
def test_missing_config_is_a_config_error(cli: Cli, tmp_path: Path, command: str) -> None:
    ran = cli(command, "-w", str(tmp_path))
    assert ran.code == 2
    assert "no shiftsync.yaml" in ran.err
    assert "fix: run `shiftsync init`" in ran.err
    assert "Traceback" not in ran.err


def test_missing_workspace_folder_is_a_config_error(cli: Cli, tmp_path: Path) -> None:
    ran = cli("check", "-w", str(tmp_path / "nowhere"))
    assert ran.code == 2
    assert "does not exist" in ran.err


def test_malformed_config_is_a_config_error(cli: Cli, tmp_path: Path) -> None:
    Workspace.init(tmp_path)
    (tmp_path / "shiftsync.yaml").write_text("connections: [unclosed\n")
    ran = cli("check", "-w", str(tmp_path))
    assert ran.code == 2
    assert "shiftsync.yaml" in ran.err
    assert "Traceback" not in ran.err


def test_unknown_connection_is_a_config_error(cli: Cli, info: StandInInfo, tmp_path: Path) -> None:
    write_role_workspace(tmp_path, info, info.role_arn)
    ran = cli("check", "nope", "-w", str(tmp_path))
    assert ran.code == 2
    assert "no connection named 'nope'" in ran.err
    assert "use one of: wh" in ran.err


@pytest.mark.parametrize("command", ["check", "policy"])
def test_role_arn_of_the_wrong_shape_is_a_config_error(
    cli: Cli, info: StandInInfo, tmp_path: Path, command: str
) -> None:
    write_role_workspace(tmp_path, info, "arn:aws:iam::12345:role/short-account")
    ran = cli(command, "-w", str(tmp_path))
    assert ran.code == 2
    assert "connections.wh.role_arn: not an IAM role ARN" in ran.err
    assert "arn:aws:iam::<12-digit account>:role/" in ran.err


def test_missing_external_id_is_a_config_error(cli: Cli, info: StandInInfo, tmp_path: Path) -> None:
    workspace = write_role_workspace(tmp_path, info, info.role_arn)
    workspace.external_id_path.unlink()
    ran = cli("check", "-w", str(tmp_path))
    assert ran.code == 2
    assert "external_id is missing" in ran.err


@pytest.fixture
def no_credentials(info: StandInInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no slow IMDS probing


@pytest.mark.usefixtures("no_credentials")
def test_check_without_any_credentials_exits_3(cli: Cli, info: StandInInfo, tmp_path: Path) -> None:
    write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    ran = cli("check", "-w", str(tmp_path))
    assert ran.code == 3
    first = next(line for line in ran.out.splitlines() if "sts:GetCallerIdentity" in line)
    assert first.startswith("fail")
    assert "no AWS credentials were found" in first
    assert "AWS_ACCESS_KEY_ID" in ran.out  # the fix
    assert "error: 1 of 13 checks failed (sts:GetCallerIdentity); 12 more" in ran.err


@pytest.mark.usefixtures("no_credentials")
def test_policy_without_any_credentials_exits_3(
    cli: Cli, info: StandInInfo, tmp_path: Path
) -> None:
    write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    ran = cli("policy", "-w", str(tmp_path))
    assert ran.code == 3
    assert ran.out == ""
    assert "no AWS credentials were found" in ran.err
    assert "principal_arn" in ran.err


def test_bucket_in_another_region_fails_check(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path
) -> None:
    from moto.s3.models import s3_backends

    bucket = f"shiftsync-euw1-{uuid.uuid4().hex[:8]}"
    s3_backends[CUSTOMER_ACCOUNT]["aws"].create_bucket(bucket, "eu-west-1")
    arn = new_role_arn()
    workspace = write_role_workspace(tmp_path, info, arn, unload_prefix="stage/", bucket=bucket)
    permissions = guide_permission_policy(bucket)
    # Stand-in gap: moto reports a bucket's region only on HeadBucket, which it authorises as
    # s3:HeadBucket (AWS: s3:ListBucket, and the header comes even with a refusal).
    permissions["Statement"].append(
        {"Effect": "Allow", "Action": "s3:HeadBucket", "Resource": f"arn:aws:s3:::{bucket}"}
    )
    standin.create_role(
        arn.rsplit("/", 1)[1],
        permissions,
        guide_trust_policy(info.principal_arn, workspace.external_id),
    )
    _, conn = workspace.config.connection()
    from shiftsync.aws.policy import database_grants

    run_grants(standin, f"IAMR:{conn.role_name}", database_grants(conn))
    ran = cli("check", "-w", str(tmp_path))
    assert ran.code == 3
    line = next(line for line in ran.out.splitlines() if " bucket region " in line)
    assert line.startswith("fail")
    assert f"bucket {bucket} is in another region: eu-west-1" in line
    assert "connections.wh.unload.region: eu-west-1" in ran.out  # the fix
    assert "(bucket region)" in ran.err
    s3_backends[CUSTOMER_ACCOUNT]["aws"].delete_bucket(bucket)


# ---------------------------------------------------------------------------------------------
# No secret in any output or file
# ---------------------------------------------------------------------------------------------


def issued_secrets(info: StandInInfo) -> set[str]:
    """The platform user's secret key, and every assumed-role secret and token issued so far."""
    from moto.sts.models import sts_backends

    secrets = {info.secret_access_key}
    for account in list(sts_backends.keys()):
        for backend in sts_backends[account].values():
            for assumed in backend.assumed_roles:
                secrets |= {assumed.secret_access_key, assumed.session_token}
    return secrets


def test_no_secret_in_any_output_or_file(
    cli: Cli, standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str
) -> None:
    folder = tmp_path / "project"
    outputs = [cli("init", str(folder))]
    write_role_workspace(folder, info, new_role_arn(), unload_prefix=prefix)
    role_from_policy(cli, standin, folder)
    for fmt in ("json", "terraform", "cloudformation"):
        outputs.append(cli("policy", "-f", fmt, "-w", str(folder)))
    outputs.append(cli("check", "-w", str(folder)))
    outputs.append(cli("check", "--json", "-w", str(folder)))
    written = [path.read_text(errors="replace") for path in folder.rglob("*") if path.is_file()]
    secrets = issued_secrets(info)
    assert len(secrets) > 3  # the checks did assume the role: there are tokens to look for
    everything = "\n".join([*written, *(ran.out + ran.err for ran in outputs)])
    leaked = [secret for secret in secrets if secret and secret in everything]
    assert leaked == []


# ---------------------------------------------------------------------------------------------
# Rendering helpers
# ---------------------------------------------------------------------------------------------


def test_plain_table_aligns_columns_and_indents_further_lines() -> None:
    lines = plain_table(
        ["status", "check", "detail"],
        [["pass", "a", "fine"], ["fail", "longer-name", "broken\nfix: do this\n  and that"]],
    )
    assert lines == [
        "status  check        detail",
        "pass    a            fine",
        "fail    longer-name  broken",
        "                     fix: do this",
        "                       and that",
    ]


def test_column_widths_use_first_lines() -> None:
    assert column_widths([["ab", "x\nlonger line"], ["a", "yz"]]) == [2, 2]
    assert plain_row(["a", "b"], [3, 1]) == ["a    b"]


def test_is_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not is_terminal(io.StringIO())
    assert is_terminal(Terminal())


def test_is_terminal_respects_dumb_terminals(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "dumb")
    assert not is_terminal(Terminal())


def test_rich_table_keeps_brackets_and_styles_statuses() -> None:
    from rich.console import Console

    screen = Console(file=io.StringIO(), width=80, record=True, color_system="truecolor")
    screen.print(rich_table(["status", "detail"], [["fail", "[bold]not markup[/bold]"]]))
    assert "[bold]not markup[/bold]" in screen.export_text(clear=False)
    assert "\x1b[1;31mfail" in screen.export_text(styles=True)


@pytest.mark.parametrize("command", ["check", "policy", "discover"])
def test_a_missing_aws_profile_is_one_clear_error(
    cli: Cli, info: StandInInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    ran = cli(command, "-w", str(tmp_path))
    assert ran.code == 3
    assert "the AWS profile 'no-such-profile'" in ran.err
    assert "Traceback" not in ran.err
