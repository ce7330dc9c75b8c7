"""The preflight (`shiftsync check`) against the stand-in: every check, every denied action."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypedDict

import psycopg
import pytest
from botocore.exceptions import ClientError
from psycopg import sql

from shiftsync.aws.policy import database_grants, render_json
from shiftsync.aws.session import AssumedRoleSession
from shiftsync.config import SyncConfig
from shiftsync.local.iam import evaluation as iam
from shiftsync.local.standin import (
    BUCKET,
    GUIDE_ACTIONS,
    StandIn,
    StandInInfo,
    guide_permission_policy,
    guide_trust_policy,
)
from shiftsync.preflight import (
    DATA_API_CHECKS,
    IDENTITY_CHECKS,
    S3_ACTION_CHECKS,
    CheckResult,
    glob_to_like,
    planned_checks,
    preflight_ok,
    run_preflight,
    schema_patterns,
    selected_tables,
)
from shiftsync.preflight.checks import (
    ASSUME,
    ATTRIBUTES,
    BUCKET_REGION,
    CLEANUP,
    DELETE,
    EXTERNAL_ID_REQUIRED,
    GET,
    LIST_BUCKET,
    PUT,
    STAGING_CHECKS,
    STAGING_VERSIONS,
    UNLOAD,
    Outcome,
    attempt,
    short_list,
)
from shiftsync.workspace import Workspace
from tests.support import staging_prefix, write_role_workspace

UNLOAD_SUPPORTED_MARK = "UNLOAD is not supported"


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "like"),
    [
        ("public", "public"),
        ("*", "%"),
        ("sales_?", "sales__"),
        ("stage*_v?", "stage%_v_"),
        ("[ab]x", "[ab]x"),  # only * and ? are wildcards
        ("Odd Schema", "Odd Schema"),
    ],
)
def test_glob_to_like(glob: str, like: str) -> None:
    assert glob_to_like(glob) == like


def _sync(*tables: Any, exclude: Sequence[str] = ()) -> SyncConfig:
    return SyncConfig.model_validate(
        {"source": "wh", "destination": "local", "tables": list(tables), "exclude": list(exclude)}
    )


def test_schema_patterns_are_distinct_and_sorted() -> None:
    syncs = [_sync("public.*", "sales.orders"), _sync("public.users", "st?ge.*")]
    assert schema_patterns(syncs) == ["public", "sales", "st_ge"]


def test_selected_tables_follow_includes_and_excludes() -> None:
    listed = [("public", "users"), ("public", "tmp_x"), ("sales", "orders"), ("other", "t")]
    syncs = [_sync("public.*", exclude=["public.tmp_*"]), _sync("sales.orders")]
    assert selected_tables(listed, syncs) == [("public", "users"), ("sales", "orders")]


def test_selected_tables_are_case_sensitive() -> None:
    assert selected_tables([("Public", "Users")], [_sync("public.*")]) == []


@pytest.mark.parametrize(
    ("statuses", "ok"),
    [
        (["pass", "pass"], True),
        (["pass", "warn"], True),
        (["pass", "fail"], False),
        (["pass", "skip"], False),
    ],
)
def test_preflight_ok(statuses: list[Any], ok: bool) -> None:
    assert preflight_ok(CheckResult(str(i), s, "") for i, s in enumerate(statuses)) is ok


def test_outcome_classifies_refusals() -> None:
    credentials: Outcome[None] = Outcome(
        code="AccessDeniedException",
        message="... not authorized to perform: redshift-serverless:GetCredentials on ...",
    )
    assert credentials.denied
    assert credentials.credentials_denied
    plain: Outcome[None] = Outcome(code="AccessDenied", message="Access Denied")
    assert plain.denied
    assert not plain.credentials_denied
    assert not Outcome[None](code="ValidationException").denied
    assert Outcome(answer=1).ok
    assert not Outcome[None](code="X").ok


def test_attempt_keeps_client_errors() -> None:
    def refuse() -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListTables"
        )

    outcome = attempt(refuse)
    assert (outcome.code, outcome.message, outcome.describe()) == (
        "AccessDeniedException",
        "no",
        "AccessDeniedException: no",
    )


def test_short_list() -> None:
    assert short_list(["a", "b"]) == "a, b"
    assert short_list([str(i) for i in range(12)], limit=3) == "0, 1, 2 and 9 more"


def test_planned_checks_follow_who_writes_the_staged_files(
    info: StandInInfo, tmp_path: Path
) -> None:
    same = write_role_workspace(tmp_path / "same", info, role_arn("a"), unload_prefix="p/")
    assert planned_checks(same.config.connection()[1])[-len(STAGING_CHECKS) :] == STAGING_CHECKS
    split = write_role_workspace(
        tmp_path / "split", info, role_arn("a"), extra=unload_settings(info, "p/", role_arn("b"))
    )
    # UNLOAD writes first (as its own role), then shiftsync's role reads what it wrote.
    assert planned_checks(split.config.connection()[1])[-9:] == (
        BUCKET_REGION,
        STAGING_VERSIONS,
        UNLOAD,
        PUT,
        GET,
        ATTRIBUTES,
        LIST_BUCKET,
        DELETE,
        CLEANUP,
    )


# ---------------------------------------------------------------------------------------------
# Workspaces and roles on the stand-in
# ---------------------------------------------------------------------------------------------


def grant_reads(standin: StandIn, workspace: Workspace) -> None:
    """What the customer's admin does: create the role's database user and run the grants."""
    _, conn = workspace.config.connection()
    with standin.admin_connection() as admin:
        with contextlib.suppress(psycopg.errors.DuplicateObject):
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(f"IAMR:{conn.role_name}"))
            )
        for grant in database_grants(conn):
            admin.execute(grant.encode())


def unique_role() -> str:
    return f"check-{uuid.uuid4().hex[:12]}"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::222222222222:role/{name}"


@pytest.fixture
def prefix(s3: Any) -> Iterator[str]:
    """A staging prefix of this test's own, emptied afterwards whatever the checks left."""
    yield from staging_prefix(s3, "check")


def make_checked_role(
    standin: StandIn,
    info: StandInInfo,
    folder: Path,
    *,
    deny: Sequence[str] = (),
    unload_prefix: str | None = None,
    trust_external_id: bool = True,
) -> Workspace:
    """A fresh role with the guide's policies (minus `deny`), trusting the workspace's new ID."""
    name = unique_role()
    workspace = write_role_workspace(folder, info, role_arn(name), unload_prefix=unload_prefix)
    trusted_id = workspace.external_id if trust_external_id else None
    standin.create_role(
        name,
        guide_permission_policy(BUCKET, deny=deny),
        guide_trust_policy(info.principal_arn, trusted_id),
    )
    grant_reads(standin, workspace)
    return workspace


def by_name(results: Sequence[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results}


def failed(results: Sequence[CheckResult]) -> list[str]:
    return [result.name for result in results if result.status == "fail"]


def unload_works(standin: StandIn) -> bool:
    return standin.engine is not None and standin.engine.unload_handler is not None


def unload_settings(info: StandInInfo, prefix: str, unload_role_arn: str) -> str:
    """The connection's `unload:` block (for write_role_workspace's `extra`) with its own role."""
    return (
        "    unload:\n"
        f"      bucket: {info.bucket}\n"
        f"      prefix: {prefix}\n"
        f"      iam_role_arn: {unload_role_arn}\n"
    )


def without_action(policy: dict[str, Any], action: str | None) -> dict[str, Any]:
    """The policy with `action` taken out of every statement (emptied statements dropped)."""
    statements = []
    for statement in policy["Statement"]:
        actions = [a for a in statement["Action"] if a != action]
        if actions:
            statements.append({**statement, "Action": actions})
    return {**policy, "Statement": statements}


def make_split_roles(
    standin: StandIn,
    info: StandInInfo,
    folder: Path,
    prefix: str,
    *,
    reader_lacks: str | None = None,
    unloader_lacks: str | None = None,
) -> Workspace:
    """shiftsync's role and a separate UNLOAD role, each created from exactly the documents
    `shiftsync policy --format json` prints for the connection (minus one action if asked)."""
    name, unloader = unique_role(), f"unloader-{uuid.uuid4().hex[:12]}"
    workspace = write_role_workspace(
        folder, info, role_arn(name), extra=unload_settings(info, prefix, role_arn(unloader))
    )
    _, conn = workspace.config.connection()
    bundle = json.loads(render_json(conn, info.principal_arn, workspace.external_id))
    standin.create_role(
        bundle["role_name"],
        without_action(bundle["permission_policy"], reader_lacks),
        bundle["trust_policy"],
    )
    unload_role = bundle["unload_role"]
    assert unload_role["role_arn"] == role_arn(unloader)
    standin.create_role(
        unload_role["role_name"],
        without_action(unload_role["permission_policy"], unloader_lacks),
        unload_role["trust_policy"],
    )
    grant_reads(standin, workspace)
    return workspace


# ---------------------------------------------------------------------------------------------
# All green
# ---------------------------------------------------------------------------------------------


def test_all_green_without_unload(info: StandInInfo, tmp_path: Path) -> None:
    workspace = write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    seen: list[str] = []
    results = run_preflight(workspace, "wh", progress=lambda result: seen.append(result.name))
    assert [r.name for r in results] == [*IDENTITY_CHECKS, *DATA_API_CHECKS]
    assert seen == [r.name for r in results]
    assert {r.name: r.status for r in results} == {r.name: "pass" for r in results}, results
    checks = by_name(results)
    assert info.principal_arn in checks["sts:GetCallerIdentity"].detail
    assert "IAMR:shiftsync-reader" in checks["table privileges"].detail
    assert "10 tables" in checks["table privileges"].detail  # TICKIT's tables and the view
    assert preflight_ok(results)


def test_all_green_with_unload(
    standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str, s3: Any
) -> None:
    workspace = make_checked_role(standin, info, tmp_path, unload_prefix=prefix)
    results = run_preflight(workspace)
    checks = by_name(results)
    assert [r.name for r in results] == list(planned_checks(workspace.config.connection()[1]))
    # HeadBucket is authorised as s3:ListBucket and answers x-amz-bucket-region, as on AWS.
    assert checks[BUCKET_REGION].status == "pass", checks[BUCKET_REGION]
    assert info.region in checks[BUCKET_REGION].detail
    if not unload_works(standin):
        pytest.fail(
            "the stand-in cannot UNLOAD yet: " + checks[UNLOAD].detail
        )  # the check is right; the stand-in lags
    others = [r for r in results if r.name != BUCKET_REGION]
    assert all(r.status == "pass" for r in others), [r for r in others if r.status != "pass"]
    assert "wrote" in checks[UNLOAD].detail
    # Nothing is left under the staging prefix.
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0) == 0


# ---------------------------------------------------------------------------------------------
# Each action denied fails exactly its own check
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", GUIDE_ACTIONS)
def test_denied_data_api_action_fails_its_check(
    standin: StandIn, info: StandInInfo, tmp_path: Path, action: str
) -> None:
    workspace = make_checked_role(standin, info, tmp_path, deny=[action])
    results = run_preflight(workspace)
    assert failed(results) == [action], results
    refused = by_name(results)[action]
    assert refused.fix is not None
    assert action in refused.fix
    assert not preflight_ok(results)


S3_CASES = list(S3_ACTION_CHECKS)


@pytest.mark.parametrize("action", S3_CASES)
def test_denied_s3_action_fails_its_check(
    standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str, action: str, s3: Any
) -> None:
    workspace = make_checked_role(standin, info, tmp_path, deny=[action], unload_prefix=prefix)
    results = run_preflight(workspace)
    assert failed(results) == [action], results
    checks = by_name(results)
    fix = checks[action].fix
    assert fix is not None
    assert action in fix
    assert checks[UNLOAD].status == "skip"
    assert "S3 staging check failed" in checks[UNLOAD].detail
    # Whatever the role could not delete, the cleanup check says so and how to remove it.
    left = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0)
    assert (checks[CLEANUP].status == "pass") == (left == 0)
    if left:
        assert "aws s3 rm --recursive" in str(checks[CLEANUP].fix)


# ---------------------------------------------------------------------------------------------
# A separate UNLOAD role: it writes the staged files, shiftsync's role only reads and deletes
# ---------------------------------------------------------------------------------------------


def test_separate_unload_role_passes_with_the_generated_policies(
    standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str, s3: Any
) -> None:
    workspace = make_split_roles(standin, info, tmp_path, prefix)
    _, conn = workspace.config.connection()
    assert conn.unload is not None
    unloader = str(conn.unload.iam_role_arn)
    # The split is real: shiftsync's role may not write under the staging prefix.
    reader = AssumedRoleSession(conn.role_arn, workspace.external_id, info.region).client("s3")
    with pytest.raises(ClientError) as refused:
        reader.put_object(Bucket=BUCKET, Key=f"{prefix}not-mine.txt", Body=b"x")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    results = run_preflight(workspace)
    checks = by_name(results)
    assert [r.name for r in results] == list(planned_checks(conn))
    assert checks[BUCKET_REGION].status == "warn"  # moto names no region (see above)
    if not unload_works(standin):
        pytest.fail("the stand-in cannot UNLOAD yet: " + checks[UNLOAD].detail)
    others = [r for r in results if r.name != BUCKET_REGION]
    assert all(r.status == "pass" for r in others), [r for r in others if r.status != "pass"]
    assert preflight_ok(results)
    assert f"Redshift assumed {unloader} and wrote" in checks[UNLOAD].detail
    assert f"not needed by {conn.role_arn}" in checks[PUT].detail
    assert unloader in checks[PUT].detail
    assert "manifest UNLOAD wrote" in checks[GET].detail
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0) == 0


@pytest.mark.parametrize("action", [GET, ATTRIBUTES, LIST_BUCKET, DELETE])
def test_separate_unload_role_reader_without_an_action_fails_its_check(
    standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str, action: str, s3: Any
) -> None:
    workspace = make_split_roles(standin, info, tmp_path, prefix, reader_lacks=action)
    results = run_preflight(workspace)
    checks = by_name(results)
    if not unload_works(standin):
        pytest.fail("the stand-in cannot UNLOAD yet: " + checks[UNLOAD].detail)
    assert failed(results) == [action], results
    assert checks[UNLOAD].status == "pass"
    assert checks[PUT].status == "pass"
    fix = checks[action].fix
    assert fix is not None
    if action == LIST_BUCKET:
        assert fix.startswith(
            f"allow s3:ListBucket on arn:aws:s3:::{BUCKET} with Condition StringLike "
            f's3:prefix "{prefix}*" in the role\'s permission policy'
        )
    else:
        assert fix.startswith(f"allow {action} on arn:aws:s3:::{BUCKET}/{prefix}* in the role's")
    assert PUT not in fix  # shiftsync's role is not told to write
    if action == GET:
        assert checks[ATTRIBUTES].status == "skip"
    left = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0)
    assert (checks[CLEANUP].status == "pass") == (left == 0)


def test_separate_unload_role_that_cannot_write_fails_unload(
    standin: StandIn, info: StandInInfo, tmp_path: Path, prefix: str, s3: Any
) -> None:
    workspace = make_split_roles(standin, info, tmp_path, prefix, unloader_lacks="s3:PutObject")
    _, conn = workspace.config.connection()
    assert conn.unload is not None
    unloader = str(conn.unload.iam_role_arn)
    results = run_preflight(workspace)
    checks = by_name(results)
    if not unload_works(standin):
        pytest.fail("the stand-in cannot UNLOAD yet: " + checks[UNLOAD].detail)
    assert failed(results) == [UNLOAD], results
    fix = checks[UNLOAD].fix
    assert fix is not None
    assert f"give {unloader} the UNLOAD role's permission policy" in fix
    assert f"s3:PutObject on arn:aws:s3:::{BUCKET}/{prefix}*" in fix
    assert f"s3:ListBucket on arn:aws:s3:::{BUCKET} with Condition" in fix
    for name in (PUT, GET, ATTRIBUTES, DELETE):
        assert checks[name].status == "skip"
        assert f"{UNLOAD} did not write" in checks[name].detail
    assert checks[LIST_BUCKET].status == "pass"
    assert checks[CLEANUP].status == "pass"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0) == 0


# ---------------------------------------------------------------------------------------------
# Trust
# ---------------------------------------------------------------------------------------------


def test_role_assumable_without_external_id_is_not_used(
    standin: StandIn, info: StandInInfo, tmp_path: Path
) -> None:
    workspace = make_checked_role(standin, info, tmp_path, trust_external_id=False)
    results = run_preflight(workspace)
    checks = by_name(results)
    assert failed(results) == [EXTERNAL_ID_REQUIRED]
    open_role = checks[EXTERNAL_ID_REQUIRED]
    assert "can be assumed without an external ID" in open_role.detail
    assert "confused deputy" in open_role.detail
    assert open_role.fix is not None
    assert f"require Condition StringEquals sts:ExternalId {workspace.external_id}" in open_role.fix
    later = results[results.index(open_role) + 1 :]
    assert later
    assert all(r.status == "skip" and "not reached" in r.detail for r in later)
    # AWS's advice is followed: not one statement ran as the open role.
    _, conn = workspace.config.connection()
    assert standin.engine is not None
    assert not [
        s for s in standin.engine.statements.values() if s.db_user == f"IAMR:{conn.role_name}"
    ]


def test_wrong_external_id_fails_at_assume_role_with_the_expected_trust_policy(
    standin: StandIn, info: StandInInfo, tmp_path: Path
) -> None:
    workspace = make_checked_role(standin, info, tmp_path)
    workspace.external_id_path.write_text("shiftsync-not-the-trusted-one\n")
    results = run_preflight(workspace)
    checks = by_name(results)
    assert failed(results) == [ASSUME]
    # Refusals without the ID prove nothing when the right ID is refused too.
    assert checks[EXTERNAL_ID_REQUIRED].status == "skip"
    fix = checks[ASSUME].fix
    assert fix is not None
    trust = json.loads(fix[fix.index("{") :])
    statement = trust["Statement"][0]
    assert statement["Principal"] == {"AWS": info.principal_arn}
    assert statement["Condition"] == {
        "StringEquals": {"sts:ExternalId": "shiftsync-not-the-trusted-one"}
    }
    assert all(r.status == "skip" for r in results[results.index(checks[ASSUME]) + 2 :])


def test_run_preflight_with_a_bare_config_needs_the_external_id(
    info: StandInInfo, tmp_path: Path
) -> None:
    workspace = write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    results = run_preflight(workspace.config, external_id=info.external_id)
    assert preflight_ok(results)
    from shiftsync.errors import ConfigError

    with pytest.raises(ConfigError, match="external ID"):
        run_preflight(workspace.config)


# ---------------------------------------------------------------------------------------------
# Sessions that expire in the middle of work
# ---------------------------------------------------------------------------------------------


class Where(TypedDict):
    """The workgroup and database every Data API call names."""

    WorkgroupName: str
    Database: str


def test_session_survives_expiry_mid_sequence(info: StandInInfo) -> None:
    """Data API work through one AssumedRoleSession carries on when its credentials expire."""
    session = AssumedRoleSession(info.role_arn, info.external_id, info.region)
    data = session.client("redshift-data")
    where = Where(WorkgroupName=info.workgroup, Database=info.database)
    expired_before = set(iam._expired_access_keys)
    try:
        for _ in range(5):
            session.call(data.list_schemas, **where)
        started = session.call(
            data.execute_statement, Sql="select count(*) from public.users", **where
        )
        assert iam.expire_all_sessions() >= 1
        with pytest.raises(ClientError) as expired:  # the expiry is real...
            data.list_databases(**where)
        assert "Expired" in expired.value.response["Error"]["Code"]
        # ... and session.call() carries on: the statement started before is still ours.
        while True:
            described = session.call(data.describe_statement, Id=started["Id"])
            if described["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                break
        assert described["Status"] == "FINISHED", described.get("Error")
        result = session.call(data.get_statement_result, Id=started["Id"])
        assert int(result["Records"][0][0]["longValue"]) > 0
        for _ in range(5):
            session.call(data.list_tables, SchemaPattern="public", **where)
        assert session.refreshes == 2
    finally:
        # Undo this test's fault for the sessions other tests share (the `assumed` fixture):
        # the stand-in has no public way to revive them.
        with iam._lock:
            iam._expired_access_keys.intersection_update(expired_before)
