"""A provisioned cluster beside the workgroup: the Data API with ClusterIdentifier.

Three ways to the database user, each with its own IAM action: IAM temporary credentials
(redshift:GetClusterCredentialsWithIAM, user `IAMR:<role>`), a named user
(redshift:GetClusterCredentials, `DbUser`) and a Secrets Manager secret
(secretsmanager:GetSecretValue, the secret's `username`).
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shiftsync.local.standin import (
    CLUSTER,
    CUSTOMER_ACCOUNT,
    PLATFORM_ACCOUNT,
    REGION,
    StandIn,
    StandInInfo,
    guide_trust_policy,
)
from tests.support import store_secret, wait_for_statement

DATA_ACTIONS = ["redshift-data:*"]


def _client(standin: StandIn, info: StandInInfo, actions: list[str]) -> Any:
    name = f"cluster-{uuid.uuid4().hex[:8]}"
    role_arn = standin.create_role(
        name,
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": DATA_ACTIONS + actions, "Resource": "*"}],
        },
        guide_trust_policy(f"arn:aws:iam::{PLATFORM_ACCOUNT}:root", info.external_id),
    )
    keys = boto3.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName="cluster", ExternalId=info.external_id
    )["Credentials"]
    return boto3.client(
        "redshift-data",
        region_name=info.region,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )


def _current_user(client: Any, info: StandInInfo, **auth: str) -> tuple[dict[str, Any], str]:
    started = client.execute_statement(
        ClusterIdentifier=CLUSTER, Database=info.database, Sql="select current_user", **auth
    )
    described = wait_for_statement(client, started["Id"], seconds=30, interval=0.01)
    assert described["Status"] == "FINISHED", described.get("Error")
    records = client.get_statement_result(Id=started["Id"])["Records"]
    return started, str(records[0][0]["stringValue"])


def test_iam_temporary_credentials_run_as_the_role(standin: StandIn, info: StandInInfo) -> None:
    client = _client(standin, info, ["redshift:GetClusterCredentialsWithIAM"])
    started, user = _current_user(client, info)
    assert user.startswith("IAMR:cluster-")
    assert started["ClusterIdentifier"] == CLUSTER
    assert "WorkgroupName" not in started
    described = client.describe_statement(Id=started["Id"])
    assert described["ClusterIdentifier"] == CLUSTER


def test_a_named_database_user_needs_get_cluster_credentials(
    standin: StandIn, info: StandInInfo
) -> None:
    allowed = _client(standin, info, ["redshift:GetClusterCredentials"])
    _, user = _current_user(allowed, info, DbUser="analyst")
    assert user == "analyst"
    denied = _client(standin, info, ["redshift:GetClusterCredentialsWithIAM"])
    with pytest.raises(ClientError) as refused:
        denied.execute_statement(
            ClusterIdentifier=CLUSTER, Database=info.database, Sql="select 1", DbUser="analyst"
        )
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "redshift:GetClusterCredentials " in refused.value.response["Error"]["Message"]


def test_without_the_iam_action_the_cluster_is_refused(standin: StandIn, info: StandInInfo) -> None:
    client = _client(standin, info, [])
    with pytest.raises(ClientError) as refused:
        client.list_schemas(ClusterIdentifier=CLUSTER, Database=info.database)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "GetClusterCredentialsWithIAM" in refused.value.response["Error"]["Message"]


def test_a_secret_gives_its_username(standin: StandIn, info: StandInInfo) -> None:
    arn = store_secret({"username": "etl", "password": "x", "dbClusterIdentifier": CLUSTER})
    allowed = _client(standin, info, ["secretsmanager:GetSecretValue"])
    _, user = _current_user(allowed, info, SecretArn=arn)
    assert user == "etl"
    denied = _client(standin, info, [])
    with pytest.raises(ClientError) as refused:
        denied.execute_statement(
            ClusterIdentifier=CLUSTER, Database=info.database, Sql="select 1", SecretArn=arn
        )
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "secretsmanager:GetSecretValue" in refused.value.response["Error"]["Message"]


def test_a_secret_that_is_not_the_clusters_is_refused(standin: StandIn, info: StandInInfo) -> None:
    arn = store_secret({"password": "no user here"})
    client = _client(standin, info, ["secretsmanager:GetSecretValue"])
    with pytest.raises(ClientError) as refused:
        client.execute_statement(
            ClusterIdentifier=CLUSTER, Database=info.database, Sql="select 1", SecretArn=arn
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_a_workgroup_and_a_cluster_together_are_refused(
    standin: StandIn, info: StandInInfo
) -> None:
    client = _client(standin, info, ["redshift:GetClusterCredentialsWithIAM"])
    with pytest.raises(ClientError) as refused:
        client.execute_statement(
            ClusterIdentifier=CLUSTER,
            WorkgroupName=info.workgroup,
            Database=info.database,
            Sql="select 1",
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as unknown:
        client.execute_statement(
            ClusterIdentifier="no-such-cluster", Database=info.database, Sql="select 1"
        )
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_the_catalog_of_the_cluster(standin: StandIn, info: StandInInfo) -> None:
    client = _client(standin, info, ["redshift:GetClusterCredentialsWithIAM"])
    schemas = client.list_schemas(ClusterIdentifier=CLUSTER, Database=info.database)["Schemas"]
    assert "public" in schemas


def test_a_session_on_the_cluster_keeps_its_database_user(
    standin: StandIn, info: StandInInfo
) -> None:
    client = _client(standin, info, ["redshift:GetClusterCredentials"])
    opened = client.execute_statement(
        ClusterIdentifier=CLUSTER,
        Database=info.database,
        DbUser="analyst",
        Sql="select current_user",
        SessionKeepAliveSeconds=60,
    )
    assert wait_for_statement(client, opened["Id"], seconds=30, interval=0.01)["Status"] == (
        "FINISHED"
    )
    following = client.execute_statement(SessionId=opened["SessionId"], Sql="select current_user")
    described = wait_for_statement(client, following["Id"], seconds=30, interval=0.01)
    assert described["Status"] == "FINISHED", described.get("Error")
    records = client.get_statement_result(Id=following["Id"])["Records"]
    assert records[0][0]["stringValue"] == "analyst"
    [listed] = [
        s for s in client.list_sessions()["Sessions"] if s["SessionId"] == opened["SessionId"]
    ]
    assert listed["ClusterIdentifier"] == CLUSTER
    assert "WorkgroupName" not in listed


def test_a_database_user_needs_the_database_too(standin: StandIn, info: StandInInfo) -> None:
    prefix = f"arn:aws:redshift:{REGION}:{CUSTOMER_ACCOUNT}"
    name = f"cluster-{uuid.uuid4().hex[:8]}"
    role_arn = standin.create_role(
        name,
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": DATA_ACTIONS, "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": ["redshift:GetClusterCredentials"],
                    "Resource": [
                        f"{prefix}:dbuser:{CLUSTER}/analyst",
                        f"{prefix}:dbname:{CLUSTER}/another_db",
                    ],
                },
            ],
        },
        guide_trust_policy(f"arn:aws:iam::{PLATFORM_ACCOUNT}:root", info.external_id),
    )
    keys = boto3.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName="cluster", ExternalId=info.external_id
    )["Credentials"]
    client = boto3.client(
        "redshift-data",
        region_name=info.region,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )
    with pytest.raises(ClientError) as refused:
        client.execute_statement(
            ClusterIdentifier=CLUSTER, Database=info.database, Sql="select 1", DbUser="analyst"
        )
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"dbname:{CLUSTER}/{info.database}" in refused.value.response["Error"]["Message"]
