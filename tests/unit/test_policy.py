"""The IAM documents, grants and renderings shiftsync generates for customers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import lark
import pytest
import yaml

from shiftsync.aws.iam_document import PolicyDocument
from shiftsync.aws.policy import (
    POLICY_FORMATS,
    REDSHIFT_DATA_ACTIONS,
    S3_ACTIONS,
    database_grants,
    namespace_association_steps,
    permission_policy,
    render_cloudformation,
    render_json,
    render_policy_bundle,
    render_terraform,
    separate_unload_role,
    trust_policy,
    trust_principal,
    unload_role_policy,
    unload_role_trust_policy,
)
from shiftsync.config import RedshiftServerlessConfig
from shiftsync.errors import ConfigError

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/shiftsync-reader"
PRINCIPAL = "arn:aws:iam::568237466542:role/shiftsync-runner"
EXTERNAL_ID = "shiftsync-6f1c2d3e4b5a69788796a5b4c3d2e1f0"
WORKGROUPS = f"arn:aws:redshift-serverless:us-east-1:{ACCOUNT}:workgroup/*"
TERRAFORM = shutil.which("terraform")


def make_conn(**changes: Any) -> RedshiftServerlessConfig:
    data: dict[str, Any] = {
        "type": "redshift_serverless",
        "region": "us-east-1",
        "workgroup": "analytics",
        "database": "dev",
        "role_arn": ROLE,
    }
    data.update(changes)
    return RedshiftServerlessConfig.model_validate(data)


def unload_conn(**unload: Any) -> RedshiftServerlessConfig:
    return make_conn(unload={"bucket": "unload-example", **unload})


UNLOADER = f"arn:aws:iam::{ACCOUNT}:role/redshift-unloader"


def split_conn(**unload: Any) -> RedshiftServerlessConfig:
    """UNLOAD writes with a role of its own."""
    return unload_conn(iam_role_arn=UNLOADER, **unload)


DATA_API_STATEMENTS: list[dict[str, Any]] = [
    {
        "Sid": "ServerlessCredentialsInAccountRegion",
        "Effect": "Allow",
        "Action": ["redshift-serverless:GetCredentials"],
        "Resource": WORKGROUPS,
    },
    {
        "Sid": "DataApiOnWorkgroupsInAccountRegion",
        "Effect": "Allow",
        "Action": [
            "redshift-data:DescribeTable",
            "redshift-data:ExecuteStatement",
            "redshift-data:ListDatabases",
            "redshift-data:ListSchemas",
            "redshift-data:ListTables",
        ],
        "Resource": WORKGROUPS,
    },
    {
        "Sid": "DataApiOwnStatementsOnly",
        "Effect": "Allow",
        "Action": [
            "redshift-data:CancelStatement",
            "redshift-data:DescribeStatement",
            "redshift-data:GetStatementResult",
        ],
        "Resource": "*",
        "Condition": {
            "StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}
        },
    },
]


def actions_of(policy: PolicyDocument) -> set[str]:
    return {action for statement in policy["Statement"] for action in statement["Action"]}


# --- the guide's action lists ---------------------------------------------------------------


def test_action_lists_match_the_guide() -> None:
    assert set(REDSHIFT_DATA_ACTIONS) == {
        "redshift-data:CancelStatement",
        "redshift-data:DescribeStatement",
        "redshift-data:DescribeTable",
        "redshift-data:ExecuteStatement",
        "redshift-data:GetStatementResult",
        "redshift-data:ListDatabases",
        "redshift-data:ListSchemas",
        "redshift-data:ListTables",
        "redshift-serverless:GetCredentials",
    }
    assert len(REDSHIFT_DATA_ACTIONS) == 9
    assert set(S3_ACTIONS) == {
        "s3:PutObject",
        "s3:GetObject",
        "s3:GetObjectAttributes",
        "s3:ListBucket",
        "s3:DeleteObject",
    }


# --- permission policy ----------------------------------------------------------------------


def test_permission_policy_without_unload_is_exact() -> None:
    assert permission_policy(make_conn()) == {
        "Version": "2012-10-17",
        "Statement": DATA_API_STATEMENTS,
    }


def test_permission_policy_grants_exactly_the_guide_actions() -> None:
    assert actions_of(permission_policy(make_conn())) == set(REDSHIFT_DATA_ACTIONS)
    assert actions_of(permission_policy(unload_conn())) == set(REDSHIFT_DATA_ACTIONS) | set(
        S3_ACTIONS
    )


def test_permission_policy_with_unload_is_exact() -> None:
    policy = permission_policy(unload_conn())
    assert policy["Statement"][:3] == DATA_API_STATEMENTS
    assert policy["Statement"][3:] == [
        {
            "Sid": "StagingListPrefix",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": "arn:aws:s3:::unload-example",
            "Condition": {"StringLike": {"s3:prefix": ["shiftsync/*"]}},
        },
        {
            "Sid": "StagingObjects",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:GetObjectAttributes", "s3:DeleteObject"],
            "Resource": "arn:aws:s3:::unload-example/shiftsync/*",
        },
    ]


def test_staging_prefix_scopes_the_s3_statements() -> None:
    policy = permission_policy(unload_conn(prefix="teams/data"))
    listing, objects = policy["Statement"][3:5]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["teams/data/*"]}}
    assert objects["Resource"] == "arn:aws:s3:::unload-example/teams/data/*"


def test_statement_ids_are_unique_and_alphanumeric() -> None:
    policy = permission_policy(unload_conn(kms_key_id="1234abcd-12ab-34cd-56ef-1234567890ab"))
    sids = [statement["Sid"] for statement in policy["Statement"]]
    assert len(sids) == len(set(sids)) == 6
    assert all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)


def test_a_separate_unload_role_leaves_writing_to_it() -> None:
    conn = split_conn()
    assert separate_unload_role(conn)
    assert not separate_unload_role(unload_conn())
    assert not separate_unload_role(unload_conn(iam_role_arn=ROLE))  # named, but the same
    assert not separate_unload_role(make_conn())
    objects = permission_policy(conn)["Statement"][4]
    assert objects["Action"] == ["s3:GetObject", "s3:GetObjectAttributes", "s3:DeleteObject"]


def test_a_separate_unload_role_leaves_its_kms_data_keys_to_it() -> None:
    conn = split_conn(kms_key_id="k1")
    assert permission_policy(conn)["Statement"][-1]["Action"] == ["kms:Decrypt"]
    assert unload_role_policy(conn)["Statement"][-1]["Action"] == [
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ]


# --- a separate UNLOAD role -----------------------------------------------------------------


def test_unload_role_policy_is_exact() -> None:
    # AWS: UNLOAD needs GET, LIST and PUT on the bucket; ListBucket applies to the bucket (with
    # an s3:prefix condition), the object actions to keys under the prefix.
    assert unload_role_policy(split_conn(prefix="teams/data")) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UnloadListPrefix",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": "arn:aws:s3:::unload-example",
                "Condition": {"StringLike": {"s3:prefix": ["teams/data/*"]}},
            },
            {
                "Sid": "UnloadObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": "arn:aws:s3:::unload-example/teams/data/*",
            },
        ],
    }


def test_unload_role_policy_lists_like_shiftsyncs_role() -> None:
    conn = split_conn(prefix="teams/data")
    listing = unload_role_policy(conn)["Statement"][0]
    ours = permission_policy(conn)["Statement"][3]
    assert {k: v for k, v in listing.items() if k != "Sid"} == {
        k: v for k, v in ours.items() if k != "Sid"
    }


def test_unload_role_policy_grants_nothing_else() -> None:
    policy = unload_role_policy(split_conn(kms_key_id="alias/k"))
    assert actions_of(policy) == {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    for statement in policy["Statement"]:
        resource = statement["Resource"]
        if "s3:ListBucket" in statement["Action"]:
            assert statement["Action"] == ["s3:ListBucket"]
            assert resource == "arn:aws:s3:::unload-example"
        elif statement["Action"][0].startswith("s3:"):
            assert resource == "arn:aws:s3:::unload-example/shiftsync/*"
    sids = [statement["Sid"] for statement in policy["Statement"]]
    assert len(sids) == len(set(sids)) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)


@pytest.mark.parametrize(
    ("key", "resource", "condition"),
    [
        ("k1", f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k1", None),
        (
            "arn:aws:kms:eu-west-1:210987654321:key/k1",
            "arn:aws:kms:eu-west-1:210987654321:key/k1",
            None,
        ),
        (
            "alias/staging",
            f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/*",
            {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/staging"}},
        ),
    ],
)
def test_unload_role_policy_allows_the_kms_key(
    key: str, resource: str, condition: dict[str, Any] | None
) -> None:
    # UNLOAD with KMS_KEY_ID: a data key per object written, Decrypt for multipart uploads; the
    # key lives in the bucket's region.
    statement = unload_role_policy(split_conn(kms_key_id=key, region="eu-west-1"))["Statement"][-1]
    assert statement["Sid"] == "UnloadKmsKey"
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == resource
    assert statement.get("Condition") == condition


def test_unload_role_policy_follows_the_partition() -> None:
    conn = make_conn(
        region="cn-north-1",
        role_arn=f"arn:aws-cn:iam::{ACCOUNT}:role/shiftsync-reader",
        unload={"bucket": "unload-example", "iam_role_arn": f"arn:aws-cn:iam::{ACCOUNT}:role/u"},
    )
    resources = [statement["Resource"] for statement in unload_role_policy(conn)["Statement"]]
    assert resources == [
        "arn:aws-cn:s3:::unload-example",
        "arn:aws-cn:s3:::unload-example/shiftsync/*",
    ]


def test_unload_role_policy_needs_unload() -> None:
    with pytest.raises(ConfigError, match="UNLOAD is off"):
        unload_role_policy(make_conn())


def test_unload_role_trust_policy_lets_redshift_assume_it_for_shiftsyncs_user_only() -> None:
    conn = split_conn()
    assert unload_role_trust_policy(conn) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RedshiftUnload",
                "Effect": "Allow",
                "Principal": {
                    "Service": ["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"]
                },
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {
                        "sts:ExternalId": f"arn:aws:redshift:{conn.region}:{ACCOUNT}:dbuser:"
                        f"{conn.workgroup}/IAMR:{conn.role_name}"
                    }
                },
            }
        ],
    }


@pytest.mark.parametrize("kms", [None, "alias/k"])
def test_namespace_steps_print_the_unload_roles_policy(kms: str | None) -> None:
    conn = split_conn(kms_key_id=kms)
    steps = namespace_association_steps(conn)
    assert f"--iam-roles <existing role ARNs...> {UNLOADER}" in steps
    assert f"{UNLOADER} is not the role shiftsync assumes" in steps
    assert "redshift.amazonaws.com" in steps
    assert "GET, LIST and PUT" in steps
    assert ("and the KMS key" in steps) == (kms is not None)
    policy = json.dumps(unload_role_policy(conn), indent=2)
    indented = "\n".join(f"  {line}" for line in policy.splitlines())
    assert steps.endswith("\n" + indented)
    # Not the old advice: ListBucket on object keys, and no GetObject.
    assert "s3:ListBucket on arn:aws:s3:::unload-example/" not in steps


def test_namespace_steps_of_a_template_point_to_its_policy_resource() -> None:
    conn = split_conn()
    steps = namespace_association_steps(conn, "resource X below")
    assert steps.endswith(": resource X below.")
    assert '"Statement"' not in steps
    assert namespace_association_steps(unload_conn(), "resource X below") == (
        namespace_association_steps(unload_conn())
    )


@pytest.mark.parametrize(
    ("key", "resource", "condition"),
    [
        (
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            None,
        ),
        (
            "arn:aws:kms:eu-west-1:210987654321:key/k1",
            "arn:aws:kms:eu-west-1:210987654321:key/k1",
            None,
        ),
        (
            "alias/staging",
            f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*",
            {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/staging"}},
        ),
        (
            f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/staging",
            f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*",
            {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/staging"}},
        ),
        (
            # An alias of another region and account: the keys it names live there.
            "arn:aws:kms:eu-west-1:999999999999:alias/shared",
            "arn:aws:kms:eu-west-1:999999999999:key/*",
            {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/shared"}},
        ),
    ],
)
def test_kms_key_is_allowed_for_staged_files(
    key: str, resource: str, condition: dict[str, Any] | None
) -> None:
    statement = permission_policy(unload_conn(kms_key_id=key))["Statement"][-1]
    assert statement["Sid"] == "StagingKmsKey"
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == resource
    assert statement.get("Condition") == condition


def test_kms_key_uses_the_bucket_region() -> None:
    statement = permission_policy(unload_conn(kms_key_id="k1", region="eu-west-1"))["Statement"][-1]
    assert statement["Resource"] == f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k1"


@pytest.mark.parametrize(
    ("partition", "region"), [("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")]
)
def test_partitions_follow_the_role_arn(partition: str, region: str) -> None:
    conn = make_conn(
        region=region,
        role_arn=f"arn:{partition}:iam::{ACCOUNT}:role/shiftsync-reader",
        unload={"bucket": "unload-example"},
    )
    policy = permission_policy(conn)
    resources = [statement["Resource"] for statement in policy["Statement"]]
    assert resources == [
        f"arn:{partition}:redshift-serverless:{region}:{ACCOUNT}:workgroup/*",
        f"arn:{partition}:redshift-serverless:{region}:{ACCOUNT}:workgroup/*",
        "*",
        f"arn:{partition}:s3:::unload-example",
        f"arn:{partition}:s3:::unload-example/shiftsync/*",
    ]


def test_account_comes_from_the_role() -> None:
    conn = make_conn(role_arn="arn:aws:iam::000011112222:role/path/to/reader")
    assert permission_policy(conn)["Statement"][0]["Resource"] == (
        "arn:aws:redshift-serverless:us-east-1:000011112222:workgroup/*"
    )


# --- trust policy ---------------------------------------------------------------------------


def test_trust_policy_is_exact() -> None:
    assert trust_policy(PRINCIPAL, EXTERNAL_ID, unload=None) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ShiftsyncWithExternalId",
                "Effect": "Allow",
                "Principal": {"AWS": PRINCIPAL},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
            }
        ],
    }


def test_trust_policy_with_unload_lets_redshift_assume_the_role_for_one_user() -> None:
    conn = unload_conn()
    statements = trust_policy(PRINCIPAL, EXTERNAL_ID, unload=conn)["Statement"]
    assert len(statements) == 2
    # "Restricting access to IAM roles": Redshift passes the database user's ARN as the
    # external ID, so no other user of the namespace can name the role in COPY or UNLOAD.
    assert statements[1] == {
        "Sid": "RedshiftUnload",
        "Effect": "Allow",
        "Principal": {"Service": ["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"]},
        "Action": "sts:AssumeRole",
        "Condition": {
            "StringEquals": {
                "sts:ExternalId": f"arn:aws:redshift:{conn.region}:{ACCOUNT}:dbuser:"
                f"{conn.workgroup}/IAMR:shiftsync-reader"
            }
        },
    }
    # the external ID condition stays on the AWS principal
    assert statements[0]["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("arn:aws:iam::568237466542:root", "arn:aws:iam::568237466542:root"),
        (
            "arn:aws:iam::568237466542:user/ci/deployer",
            "arn:aws:iam::568237466542:user/ci/deployer",
        ),
        ("arn:aws:iam::568237466542:role/a/b/runner", "arn:aws:iam::568237466542:role/a/b/runner"),
        (
            "arn:aws:sts::568237466542:assumed-role/runner/i-0abc123",
            "arn:aws:iam::568237466542:role/runner",
        ),
        (
            "arn:aws-us-gov:sts::568237466542:assumed-role/ops@team/alice@example.com",
            "arn:aws-us-gov:iam::568237466542:role/ops@team",
        ),
        (
            "arn:aws-cn:sts::568237466542:assumed-role/runner/s",
            None,  # a one-character session name is not a valid ARN
        ),
    ],
)
def test_trust_principal(principal: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ConfigError):
            trust_principal(principal)
    else:
        assert trust_principal(principal) == expected
        statement = trust_policy(principal, EXTERNAL_ID, unload=None)["Statement"][0]
        assert statement["Principal"] == {"AWS": expected}


@pytest.mark.parametrize(
    "principal",
    [
        "568237466542",
        "arn:aws:sts::568237466542:federated-user/bob",
        "arn:aws:iam::56823746654:root",
        "arn:aws:iam::568237466542:group/admins",
        "*",
    ],
)
def test_other_principals_are_refused(principal: str) -> None:
    with pytest.raises(ConfigError, match="not an AWS principal ARN"):
        trust_policy(principal, EXTERNAL_ID, unload=None)


@pytest.mark.parametrize("external_id", ["", "x", "with space", "a" * 1225, 'quote"d'])
def test_invalid_external_ids_are_refused(external_id: str) -> None:
    with pytest.raises(ConfigError, match="external ID"):
        trust_policy(PRINCIPAL, external_id, unload=None)


# --- database grants ------------------------------------------------------------------------


def test_database_grants_are_exact() -> None:
    assert database_grants(make_conn()) == [
        'GRANT USAGE ON SCHEMA "public" TO "IAMR:shiftsync-reader"',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "IAMR:shiftsync-reader"',
        'ALTER DEFAULT PRIVILEGES IN SCHEMA "public" GRANT SELECT ON TABLES '
        'TO "IAMR:shiftsync-reader"',
    ]


def test_database_grants_quote_odd_names() -> None:
    conn = make_conn(role_arn=f"arn:aws:iam::{ACCOUNT}:role/team/x.y@z+=,-q")
    grants = database_grants(conn, schemas=['we"ird', "Mixed Case"])
    assert grants == [
        'GRANT USAGE ON SCHEMA "we""ird" TO "IAMR:x.y@z+=,-q"',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "we""ird" TO "IAMR:x.y@z+=,-q"',
        'ALTER DEFAULT PRIVILEGES IN SCHEMA "we""ird" GRANT SELECT ON TABLES TO "IAMR:x.y@z+=,-q"',
        'GRANT USAGE ON SCHEMA "Mixed Case" TO "IAMR:x.y@z+=,-q"',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "Mixed Case" TO "IAMR:x.y@z+=,-q"',
        'ALTER DEFAULT PRIVILEGES IN SCHEMA "Mixed Case" GRANT SELECT ON TABLES '
        'TO "IAMR:x.y@z+=,-q"',
    ]


# --- namespace association ------------------------------------------------------------------


def test_namespace_steps_keep_existing_roles() -> None:
    steps = namespace_association_steps(unload_conn())
    assert "aws redshift-serverless update-namespace --region us-east-1" in steps
    assert f"--iam-roles <existing role ARNs...> {ROLE}" in steps
    assert "REPLACES" in steps
    assert "get-namespace" in steps
    assert "--workgroup-name analytics" in steps
    assert "Manage IAM roles" in steps


def test_namespace_steps_without_unload() -> None:
    assert "no role needs to be associated" in namespace_association_steps(make_conn())


# --- renderings -----------------------------------------------------------------------------


@pytest.mark.parametrize("conn", [make_conn(), unload_conn(kms_key_id="alias/k")])
def test_json_bundle(conn: RedshiftServerlessConfig) -> None:
    bundle = json.loads(render_json(conn, PRINCIPAL, EXTERNAL_ID))
    assert list(bundle) == [
        "role_name",
        "trust_policy",
        "permission_policy",
        "database_grants",
        "namespace_association",
    ]
    assert bundle["role_name"] == "shiftsync-reader"
    assert bundle["trust_policy"] == trust_policy(
        PRINCIPAL, EXTERNAL_ID, conn if conn.unload is not None else None
    )
    assert bundle["permission_policy"] == permission_policy(conn)
    assert bundle["database_grants"] == database_grants(conn)
    assert bundle["namespace_association"] == namespace_association_steps(conn)


def test_separate_unload_role_keeps_redshift_out_of_the_trust_policy() -> None:
    conn = split_conn()
    bundle = json.loads(render_json(conn, PRINCIPAL, EXTERNAL_ID))
    assert len(bundle["trust_policy"]["Statement"]) == 1


def test_json_bundle_with_a_separate_unload_role() -> None:
    conn = make_conn(
        unload={
            "bucket": "unload-example",
            "kms_key_id": "alias/k",
            "iam_role_arn": f"arn:aws:iam::{ACCOUNT}:role/service/redshift-unloader",
        }
    )
    bundle = json.loads(render_json(conn, PRINCIPAL, EXTERNAL_ID))
    assert bundle["unload_role"] == {
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/service/redshift-unloader",
        "role_name": "redshift-unloader",
        "trust_policy": unload_role_trust_policy(conn),
        "permission_policy": unload_role_policy(conn),
    }
    assert bundle["namespace_association"] == namespace_association_steps(conn)
    # Without a separate role there is none.
    for other in (make_conn(), unload_conn(), unload_conn(iam_role_arn=ROLE)):
        assert "unload_role" not in json.loads(render_json(other, PRINCIPAL, EXTERNAL_ID))


def test_cloudformation_adds_the_unload_roles_policy() -> None:
    conn = split_conn(kms_key_id="alias/k")
    text = render_cloudformation(conn, PRINCIPAL, EXTERNAL_ID)
    resources = yaml.safe_load(text)["Resources"]
    assert resources["ShiftsyncUnloadPolicy"] == {
        "Type": "AWS::IAM::RolePolicy",
        "Properties": {
            "RoleName": "redshift-unloader",
            "PolicyName": "shiftsync-unload",
            "PolicyDocument": unload_role_policy(conn),
        },
    }
    assert "resource ShiftsyncUnloadPolicy below" in text
    assert (
        "ShiftsyncUnloadPolicy"
        not in yaml.safe_load(render_cloudformation(unload_conn(), PRINCIPAL, EXTERNAL_ID))[
            "Resources"
        ]
    )


def test_terraform_adds_the_unload_roles_policy() -> None:
    text = render_terraform(split_conn(), PRINCIPAL, EXTERNAL_ID)
    assert (
        'resource "aws_iam_role_policy" "shiftsync_unload" {\n'
        '  name   = "shiftsync-unload"\n'
        '  role   = "redshift-unloader"\n'
        "  policy = jsonencode(local.shiftsync_unload_permission_policy)\n"
        "}\n"
    ) in text
    assert "shiftsync_unload" not in render_terraform(unload_conn(), PRINCIPAL, EXTERNAL_ID)


def test_cloudformation_template() -> None:
    conn = unload_conn()
    text = render_cloudformation(conn, PRINCIPAL, EXTERNAL_ID)
    template = yaml.safe_load(text)
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    role = template["Resources"]["ShiftsyncRole"]
    assert role["Type"] == "AWS::IAM::Role"
    properties = role["Properties"]
    assert properties["RoleName"] == "shiftsync-reader"
    assert properties["Path"] == "/"
    assert properties["MaxSessionDuration"] == 3600
    assert properties["AssumeRolePolicyDocument"] == trust_policy(PRINCIPAL, EXTERNAL_ID, conn)
    assert properties["Policies"] == [
        {"PolicyName": "shiftsync-access", "PolicyDocument": permission_policy(conn)}
    ]
    assert template["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["ShiftsyncRole", "Arn"]}
    assert "CAPABILITY_NAMED_IAM" in text


def test_role_path_and_session_length_reach_the_templates() -> None:
    conn = make_conn(
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/data/eng/reader", session_duration_seconds=7200
    )
    properties = yaml.safe_load(render_cloudformation(conn, PRINCIPAL, EXTERNAL_ID))["Resources"][
        "ShiftsyncRole"
    ]["Properties"]
    assert (properties["RoleName"], properties["Path"]) == ("reader", "/data/eng/")
    assert properties["MaxSessionDuration"] == 7200
    terraform = render_terraform(conn, PRINCIPAL, EXTERNAL_ID)
    assert '  name                 = "reader"\n' in terraform
    assert '  path                 = "/data/eng/"\n' in terraform
    assert "  max_session_duration = 7200\n" in terraform


def test_terraform_escapes_policy_variables() -> None:
    text = render_terraform(make_conn(), PRINCIPAL, EXTERNAL_ID)
    assert '"$${aws:userid}"' in text
    assert re.search(r"(?<!\$)\$\{", text) is None  # no interpolation left unescaped


def test_terraform_braces_balance() -> None:
    text = render_terraform(unload_conn(), PRINCIPAL, EXTERNAL_ID)
    code = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    depth = 0
    for char in code:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0


def terraform_binary() -> str:
    """The terraform CLI; under CI its absence fails the test instead of skipping it."""
    if TERRAFORM is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "terraform is not installed, so the Terraform output would go unchecked by "
                "terraform itself: install the terraform CLI on the CI machine"
            )
        pytest.skip("the terraform binary is not installed (the HCL is still parsed by hcl2)")
    return TERRAFORM


def run_terraform(args: list[str], folder: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CHECKPOINT_DISABLE": "1",  # no call home for version checks
        "TF_CLI_CONFIG_FILE": os.devnull,
        "TF_IN_AUTOMATION": "1",
    }
    return subprocess.run(
        [terraform_binary(), *args],
        input=stdin,
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "conn", [make_conn(), unload_conn(kms_key_id="alias/k"), split_conn(kms_key_id="alias/k")]
)
def test_terraform_is_valid_and_formatted(tmp_path: Path, conn: RedshiftServerlessConfig) -> None:
    text = render_terraform(conn, PRINCIPAL, EXTERNAL_ID)
    result = run_terraform(["fmt", "-check", "-"], tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_fmt_rejects_broken_hcl(tmp_path: Path) -> None:
    # the check above can fail: a missing brace is an error
    text = render_terraform(make_conn(), PRINCIPAL, EXTERNAL_ID).rstrip().removesuffix("}")
    assert run_terraform(["fmt", "-check", "-"], tmp_path, text).returncode != 0


@pytest.mark.parametrize("separate", [False, True], ids=["one_role", "unload_role"])
def test_terraform_evaluates_to_the_same_policies(tmp_path: Path, separate: bool) -> None:
    conn = split_conn(kms_key_id="alias/k") if separate else unload_conn(kms_key_id="alias/k")
    text = render_terraform(conn, PRINCIPAL, EXTERNAL_ID)
    # Evaluate the locals block alone: the aws provider is not available offline.
    start = text.index("locals {")
    end = text.index("\n}\n", start) + 3
    (tmp_path / "main.tf").write_text(text[start:end], encoding="utf-8")
    expectations = [
        (
            "shiftsync_trust_policy",
            trust_policy(PRINCIPAL, EXTERNAL_ID, unload=None if separate else conn),
        ),
        ("shiftsync_permission_policy", permission_policy(conn)),
    ]
    if separate:
        expectations.append(("shiftsync_unload_permission_policy", unload_role_policy(conn)))
    for local, expected in expectations:
        result = run_terraform(["console"], tmp_path, f"jsonencode(local.{local})\n")
        assert result.returncode == 0, result.stderr
        assert json.loads(json.loads(result.stdout)) == expected


def hcl_value(value: Any) -> Any:
    """A value as python-hcl2 parses it → the value Terraform would evaluate (quotes, escapes)."""
    if isinstance(value, dict):
        return {hcl_value(k): hcl_value(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [hcl_value(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return json.loads(value).replace("$${", "${").replace("%%{", "%{")
    return value


@pytest.mark.parametrize("separate", [False, True], ids=["one_role", "unload_role"])
def test_terraform_parses_to_the_same_policies_and_resources(separate: bool) -> None:
    # Runs with or without the terraform CLI: the output is never unchecked.
    conn = split_conn(kms_key_id="alias/k") if separate else unload_conn(kms_key_id="alias/k")
    parsed = hcl_value(hcl2.loads(render_terraform(conn, PRINCIPAL, EXTERNAL_ID)))
    (local_values,) = parsed["locals"]
    assert local_values["shiftsync_trust_policy"] == trust_policy(
        PRINCIPAL, EXTERNAL_ID, unload=None if separate else conn
    )
    assert local_values["shiftsync_permission_policy"] == permission_policy(conn)
    resources = {
        (kind, name): body
        for block in parsed["resource"]
        for kind, named in block.items()
        for name, body in named.items()
    }
    role = resources[("aws_iam_role", "shiftsync")]
    assert role["name"] == "shiftsync-reader"
    assert role["assume_role_policy"] == "${jsonencode(local.shiftsync_trust_policy)}"
    access = resources[("aws_iam_role_policy", "shiftsync")]
    assert access["policy"] == "${jsonencode(local.shiftsync_permission_policy)}"
    assert access["role"] == "${aws_iam_role.shiftsync.id}"
    if separate:
        assert local_values["shiftsync_unload_permission_policy"] == unload_role_policy(conn)
        unload = resources[("aws_iam_role_policy", "shiftsync_unload")]
        assert unload["role"] == "redshift-unloader"
    else:
        assert ("aws_iam_role_policy", "shiftsync_unload") not in resources


def test_hcl_parse_rejects_broken_hcl() -> None:
    text = render_terraform(make_conn(), PRINCIPAL, EXTERNAL_ID).rstrip().removesuffix("}")
    with pytest.raises(lark.exceptions.UnexpectedInput):
        hcl2.loads(text)


def test_rendering_is_deterministic() -> None:
    conn = unload_conn()
    # the same settings written in another key order
    same = RedshiftServerlessConfig.model_validate(dict(reversed(conn.model_dump().items())))
    for fmt in POLICY_FORMATS:
        first = render_policy_bundle(conn, PRINCIPAL, EXTERNAL_ID, fmt)
        assert render_policy_bundle(same, PRINCIPAL, EXTERNAL_ID, fmt) == first


def test_bundle_dispatches_on_format() -> None:
    conn = make_conn()
    assert render_policy_bundle(conn, PRINCIPAL, EXTERNAL_ID, "json") == render_json(
        conn, PRINCIPAL, EXTERNAL_ID
    )
    assert render_policy_bundle(conn, PRINCIPAL, EXTERNAL_ID, "terraform") == render_terraform(
        conn, PRINCIPAL, EXTERNAL_ID
    )
    assert render_policy_bundle(
        conn, PRINCIPAL, EXTERNAL_ID, "cloudformation"
    ) == render_cloudformation(conn, PRINCIPAL, EXTERNAL_ID)
    with pytest.raises(ConfigError, match="unknown policy format 'xml'"):
        render_policy_bundle(conn, PRINCIPAL, EXTERNAL_ID, "xml")  # type: ignore[arg-type]


def test_grants_appear_in_the_template_comments() -> None:
    conn = make_conn()
    for text in (
        render_terraform(conn, PRINCIPAL, EXTERNAL_ID),
        render_cloudformation(conn, PRINCIPAL, EXTERNAL_ID),
    ):
        for grant in database_grants(conn):
            assert f"#   {grant};" in text


def test_aws_setup_doc_shows_what_the_code_generates() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "aws-setup.md").read_text("utf-8")
    conn = make_conn(unload={"bucket": "my-staging-bucket"})
    principal = "arn:aws:iam::111122223333:role/etl-runner"
    external_id = "shiftsync-4f9d2c1b7a6e4d3c8b2a1f0e9d8c7b6a"
    assert json.dumps(permission_policy(conn), indent=2) in doc
    assert json.dumps(trust_policy(principal, external_id, unload=conn), indent=2) in doc
    assert "".join(f"{grant};\n" for grant in database_grants(conn, ("public", "sales"))) in doc
    assert namespace_association_steps(conn) in doc
    terraform = render_terraform(conn, principal, external_id)
    assert terraform[terraform.index('resource "aws_iam_role"') :].strip() in doc
    split = make_conn(
        unload={"bucket": "my-staging-bucket", "iam_role_arn": f"arn:aws:iam::{ACCOUNT}:role/u"}
    )
    assert json.dumps(unload_role_policy(split), indent=2) in doc
