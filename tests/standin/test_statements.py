"""Statements on the stand-in: their life cycle, parameters, batches, idempotency, grants.

Only boto3 clients reach the stand-in, through the AWS_ENDPOINT_URL_* variables the `standin`
fixture sets, as shiftsync's own code does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shiftsync.local.standin import (
    BUCKET,
    PLATFORM_ACCOUNT,
    StandIn,
    StandInInfo,
    guide_permission_policy,
    guide_trust_policy,
)
from tests.support import TERMINAL, run_statement, wait_for_statement, wait_until

ORDER = ("SUBMITTED", "PICKED", "STARTED", "FINISHED")


def _wait(client: Any, statement_id: str, seconds: float = 30) -> dict[str, Any]:
    return wait_for_statement(client, statement_id, seconds=seconds, interval=0.01)


def _run(client: Any, info: StandInInfo, sql: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    return run_statement(client, info, sql, interval=0.01, **kwargs)


def _role_client(
    standin: StandIn, info: StandInInfo, name: str, policy: dict[str, Any]
) -> tuple[str, Any]:
    """A redshift-data client of a new role in the customer account (guide's trust policy)."""
    role_arn = standin.create_role(
        name,
        policy,
        guide_trust_policy(f"arn:aws:iam::{PLATFORM_ACCOUNT}:root", info.external_id),
    )
    credentials = boto3.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName="tests", ExternalId=info.external_id
    )["Credentials"]
    client = boto3.client(
        "redshift-data",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return role_arn, client


@pytest.fixture(scope="module")
def wider(standin: StandIn, info: StandInInfo) -> Any:
    """A role with the guide's actions plus BatchExecuteStatement, ListStatements, ListSessions."""
    policy = guide_permission_policy(BUCKET)
    policy["Statement"].append(
        {
            "Effect": "Allow",
            "Action": [
                "redshift-data:BatchExecuteStatement",
                "redshift-data:ListStatements",
                "redshift-data:ListSessions",
            ],
            "Resource": "*",
        }
    )
    return _role_client(standin, info, "shiftsync-wider", policy)[1]


@pytest.fixture
def scratch_table(standin: StandIn) -> Iterator[str]:
    """A table of this test's own in public, dropped afterwards."""
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    yield name
    with standin.admin_connection() as admin:
        admin.execute(f'DROP TABLE IF EXISTS public."{name}"')


def test_a_query_is_described_as_aws_describes_it(redshift_data: Any, info: StandInInfo) -> None:
    sql = "select pg_backend_pid() as pid, 'x' as letter"
    statement_id, described = _run(redshift_data, info, sql)
    assert described["Status"] == "FINISHED"
    assert described["QueryString"] == sql
    assert described["HasResultSet"] is True
    assert described["ResultRows"] == 1
    assert described["ResultSize"] > 0
    assert described["Duration"] > 0
    assert described["DbUser"] == "IAMR:shiftsync-reader"
    assert described["Database"] == info.database
    assert described["WorkgroupName"] == info.workgroup
    assert described["ResultFormat"] == "JSON"
    assert "Error" not in described
    pid = redshift_data.get_statement_result(Id=statement_id)["Records"][0][0]["longValue"]
    assert described["RedshiftPid"] == pid


def test_status_moves_forward_from_submitted_to_finished(
    redshift_data: Any, info: StandInInfo
) -> None:
    started = redshift_data.execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sql="select pg_sleep(0.4)"
    )
    seen: list[str] = []

    def ended() -> bool:
        status = redshift_data.describe_statement(Id=started["Id"])["Status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        return status in TERMINAL

    wait_until(ended, what="the statement ending", seconds=10, interval=0.005)
    assert seen[-1] == "FINISHED"
    assert "STARTED" in seen
    assert [ORDER.index(s) for s in seen] == sorted(ORDER.index(s) for s in seen)
    described = redshift_data.describe_statement(Id=started["Id"])
    assert described["Duration"] >= 400_000_000  # nanoseconds


def test_a_statement_without_result_set_counts_its_rows(
    redshift_data: Any, info: StandInInfo, scratch_table: str
) -> None:
    _, created = _run(redshift_data, info, f"create table public.{scratch_table} (n int)")
    assert created["Status"] == "FINISHED", created.get("Error")
    statement_id, inserted = _run(
        redshift_data, info, f"insert into public.{scratch_table} select generate_series(1, 7)"
    )
    assert inserted["Status"] == "FINISHED", inserted.get("Error")
    assert inserted["HasResultSet"] is False
    assert inserted["ResultRows"] == 7
    with pytest.raises(ClientError) as refused:
        redshift_data.get_statement_result(Id=statement_id)
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_failing_sql_fails_with_postgresql_message(redshift_data: Any, info: StandInInfo) -> None:
    statement_id, described = _run(redshift_data, info, "select * from public.no_such_table")
    assert described["Status"] == "FAILED"
    assert described["Error"] == (
        'ERROR: relation "public.no_such_table" does not exist\n  Position: 15'
    )
    assert described["HasResultSet"] is False
    with pytest.raises(ClientError) as refused:
        redshift_data.get_statement_result(Id=statement_id)
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_long_statement_cancelled_is_aborted(redshift_data: Any, info: StandInInfo) -> None:
    started = redshift_data.execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sql="select pg_sleep(30)"
    )
    wait_until(
        lambda: redshift_data.describe_statement(Id=started["Id"])["Status"] == "STARTED",
        what="the statement's start",
    )
    assert redshift_data.cancel_statement(Id=started["Id"])["Status"] is True
    # pg_sleep(30) would end FINISHED had the cancel not reached PostgreSQL.
    described = _wait(redshift_data, started["Id"], seconds=60)
    assert described["Status"] == "ABORTED"
    with pytest.raises(ClientError) as again:
        redshift_data.cancel_statement(Id=started["Id"])
    assert again.value.response["Error"]["Code"] == "ValidationException"
    assert "ABORTED" in again.value.response["Error"]["Message"]


def test_unknown_statement_id_is_not_found(redshift_data: Any) -> None:
    with pytest.raises(ClientError) as missing:
        redshift_data.describe_statement(Id=str(uuid.uuid4()))
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_parameters_are_bound_as_literals(redshift_data: Any, info: StandInInfo) -> None:
    sql = "select :num::int + 1 as plus, :word as word, ':num' as literal"
    statement_id, described = _run(
        redshift_data,
        info,
        sql,
        Parameters=[{"name": "num", "value": "41"}, {"name": "word", "value": "it's; drop"}],
    )
    assert described["Status"] == "FINISHED", described.get("Error")
    assert described["QueryParameters"] == [
        {"name": "num", "value": "41"},
        {"name": "word", "value": "it's; drop"},
    ]
    records = redshift_data.get_statement_result(Id=statement_id)["Records"]
    assert records == [[{"longValue": 42}, {"stringValue": "it's; drop"}, {"stringValue": ":num"}]]


def test_a_parameter_without_value_fails_the_statement(
    redshift_data: Any, info: StandInInfo
) -> None:
    _, described = _run(
        redshift_data, info, "select :a, :b", Parameters=[{"name": "a", "value": "1"}]
    )
    assert described["Status"] == "FAILED"
    assert ":b" in described["Error"]


def test_client_token_makes_execute_idempotent(
    redshift_data: Any, info: StandInInfo, scratch_table: str
) -> None:
    _, created = _run(redshift_data, info, f"create table public.{scratch_table} (n int)")
    assert created["Status"] == "FINISHED", created.get("Error")
    token = str(uuid.uuid4())
    sql = f"insert into public.{scratch_table} values (1)"
    first = redshift_data.execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sql=sql, ClientToken=token
    )
    _wait(redshift_data, first["Id"])
    second = redshift_data.execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sql=sql, ClientToken=token
    )
    assert second["Id"] == first["Id"]
    with pytest.raises(ClientError) as reused:
        redshift_data.execute_statement(
            WorkgroupName=info.workgroup, Database=info.database, Sql="select 2", ClientToken=token
        )
    assert reused.value.response["Error"]["Code"] == "ValidationException"
    count_id, _ = _run(redshift_data, info, f"select count(*) from public.{scratch_table}")
    records = redshift_data.get_statement_result(Id=count_id)["Records"]
    assert records == [[{"longValue": 1}]]
    other = redshift_data.execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sql=sql
    )
    assert other["Id"] != first["Id"]


def test_wait_time_seconds_returns_a_finished_statement_in_one_call(
    redshift_data: Any, info: StandInInfo
) -> None:
    started = redshift_data.execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sql="select 1 as one"
    )
    described = redshift_data.describe_statement(Id=started["Id"], WaitTimeSeconds=10)
    assert described["Status"] == "FINISHED"
    waited = redshift_data.execute_statement(
        WorkgroupName=info.workgroup,
        Database=info.database,
        Sql="select pg_sleep(0.2)",
        WaitTimeSeconds=10,
    )
    assert redshift_data.describe_statement(Id=waited["Id"])["Status"] == "FINISHED"


def test_batch_sub_statements_have_their_own_ids_and_results(
    wider: Any, info: StandInInfo, scratch_table: str
) -> None:
    redshift_data = wider
    sqls = [
        f"create table public.{scratch_table} (n int, word varchar(10))",
        f"insert into public.{scratch_table} values (1, 'one'), (2, 'two')",
        f"select n, word from public.{scratch_table} order by n",
    ]
    started = redshift_data.batch_execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sqls=sqls
    )
    described = _wait(redshift_data, started["Id"])
    assert described["Status"] == "FINISHED"
    subs = described["SubStatements"]
    assert [s["Id"] for s in subs] == [f"{started['Id']}:{n}" for n in (1, 2, 3)]
    assert [s["QueryString"] for s in subs] == sqls
    assert [s["Status"] for s in subs] == ["FINISHED"] * 3
    assert [s["HasResultSet"] for s in subs] == [False, False, True]
    assert redshift_data.describe_statement(Id=f"{started['Id']}:2")["ResultRows"] == 2
    result = redshift_data.get_statement_result(Id=f"{started['Id']}:3")
    assert result["Records"] == [
        [{"longValue": 1}, {"stringValue": "one"}],
        [{"longValue": 2}, {"stringValue": "two"}],
    ]


def test_a_failing_batch_rolls_back_every_sub_statement(
    standin: StandIn, wider: Any, info: StandInInfo, scratch_table: str
) -> None:
    redshift_data = wider
    started = redshift_data.batch_execute_statement(
        WorkgroupName=info.workgroup,
        Database=info.database,
        Sqls=[f"create table public.{scratch_table} (n int)", "select * from public.nope_nope"],
    )
    described = _wait(redshift_data, started["Id"])
    assert described["Status"] == "FAILED"
    assert "nope_nope" in described["Error"]
    assert described["SubStatements"][1]["Status"] == "FAILED"
    with standin.admin_connection() as admin:
        found = admin.execute("select to_regclass(%s)", (f"public.{scratch_table}",)).fetchone()
    assert found == (None,)


def test_statements_run_as_the_role_user_created_on_first_use(
    standin: StandIn, info: StandInInfo
) -> None:
    _, client = _role_client(standin, info, "shiftsync-newcomer", guide_permission_policy(BUCKET))
    who_id, who = _run(client, info, "select current_user")
    assert who["Status"] == "FINISHED"
    assert who["DbUser"] == "IAMR:shiftsync-newcomer"
    records = client.get_statement_result(Id=who_id)["Records"]
    assert records == [[{"stringValue": "IAMR:shiftsync-newcomer"}]]
    # Only PUBLIC's privileges: the seeded tables were granted to shiftsync-reader alone.
    _, refused = _run(client, info, "select count(*) from public.category")
    assert refused["Status"] == "FAILED"
    assert refused["Error"] == "ERROR: permission denied for table category"


def test_a_revoked_grant_fails_with_permission_denied(
    standin: StandIn, redshift_data: Any, info: StandInInfo
) -> None:
    with standin.admin_connection() as admin:
        admin.execute('REVOKE SELECT ON public.category FROM "IAMR:shiftsync-reader"')
    try:
        _, described = _run(redshift_data, info, "select count(*) from public.category")
        assert described["Status"] == "FAILED"
        assert "permission denied" in described["Error"]
    finally:
        with standin.admin_connection() as admin:
            admin.execute('GRANT SELECT ON public.category TO "IAMR:shiftsync-reader"')
    _, granted = _run(redshift_data, info, "select count(*) from public.category")
    assert granted["Status"] == "FINISHED"


def test_batch_execute_is_not_among_the_guide_actions(
    redshift_data: Any, info: StandInInfo
) -> None:
    with pytest.raises(ClientError) as refused:
        redshift_data.batch_execute_statement(
            WorkgroupName=info.workgroup, Database=info.database, Sqls=["select 1"]
        )
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "redshift-data:BatchExecuteStatement" in refused.value.response["Error"]["Message"]


def test_list_statements_names_and_filters_the_role_statements(
    wider: Any, redshift_data: Any, info: StandInInfo
) -> None:
    client = wider
    prefix = f"probe-{uuid.uuid4().hex[:8]}"
    not_mine, _ = _run(redshift_data, info, "select 0", StatementName=f"{prefix}-reader")
    ids = [_run(client, info, f"select {n}", StatementName=f"{prefix}-{n}")[0] for n in (1, 2)]
    batch = client.batch_execute_statement(
        WorkgroupName=info.workgroup,
        Database=info.database,
        Sqls=["select 3", "select 4"],
        StatementName=f"{prefix}-batch",
    )
    _wait(client, batch["Id"])
    listed = client.list_statements(StatementName=prefix, Status="FINISHED")["Statements"]
    by_id = {s["Id"]: s for s in listed}
    assert set(by_id) == {*ids, batch["Id"]}
    assert by_id[ids[0]]["StatementName"] == f"{prefix}-1"
    assert by_id[ids[1]]["QueryString"] == "select 2"
    assert by_id[batch["Id"]]["IsBatchStatement"] is True
    assert by_id[batch["Id"]]["QueryStrings"] == ["select 3", "select 4"]
    # Another role's statement is not listed; nor are those of other names.
    assert not_mine not in {s["Id"] for s in client.list_statements()["Statements"]}
    assert client.list_statements(StatementName="no-such-prefix")["Statements"] == []
    # The guide's policy does not allow the call.
    with pytest.raises(ClientError) as refused:
        redshift_data.list_statements()
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"


def test_list_sessions_shows_the_roles_open_sessions(wider: Any, info: StandInInfo) -> None:
    started = wider.execute_statement(
        WorkgroupName=info.workgroup,
        Database=info.database,
        Sql="select 1",
        SessionKeepAliveSeconds=60,
    )
    _wait(wider, started["Id"])
    listed = wider.list_sessions(SessionId=started["SessionId"])["Sessions"]
    assert [(s["SessionId"], s["Status"]) for s in listed] == [(started["SessionId"], "AVAILABLE")]


def test_auto_commit_batches_are_refused_not_ignored(wider: Any, info: StandInInfo) -> None:
    with pytest.raises(ClientError) as refused:
        wider.batch_execute_statement(
            WorkgroupName=info.workgroup,
            Database=info.database,
            Sqls=["select 1", "select 2"],
            ExecutionMode="AUTO_COMMIT",
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "AUTO_COMMIT" in refused.value.response["Error"]["Message"]
