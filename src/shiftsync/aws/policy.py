"""The IAM documents and SQL grants a customer needs for shiftsync: pure functions, no AWS calls.

- `permission_policy(conn)`: what the assumed role may do, scoped as tightly as the known ARNs
  allow.
- `trust_policy(principal, external_id, unload)`: who may assume the role (only with the
  external ID), plus Redshift itself when UNLOAD writes with this role, for shiftsync's
  database user only (its ARN is the external ID Redshift passes).
- `unload_role_policy(conn)`, `unload_role_trust_policy(conn)`: the same for a separate UNLOAD role
  (`unload.iam_role_arn`), which Redshift assumes to write the staged files.
- `database_grants(conn)`: the SQL an admin runs so the role's database user can read.
- `render_policy_bundle(...)`: all of it as one JSON, Terraform or CloudFormation document.

Output is deterministic: the same configuration always gives the same text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final, Literal, get_args

import yaml

from shiftsync.aws.destination_policy import destination_statements
from shiftsync.aws.iam_document import PolicyDocument, Statement
from shiftsync.config import (
    PRINCIPAL_ARN_RE,
    SECRET_USER_PLACEHOLDER,
    RoleArn,
    parse_role_arn,
    split_table_pattern,
)
from shiftsync.errors import ConfigError
from shiftsync.sql_quote import quote_redshift
from shiftsync.workspace import is_valid_external_id

if TYPE_CHECKING:
    from shiftsync.config import AuthMode, ConnectionConfig, ShiftsyncConfig, UnloadConfig

PolicyFormat = Literal["json", "terraform", "cloudformation"]
POLICY_FORMATS: Final[tuple[PolicyFormat, ...]] = get_args(PolicyFormat)

POLICY_VERSION: Final = "2012-10-17"
REDSHIFT_DATA_ACTIONS: Final[tuple[str, ...]] = (
    "redshift-data:CancelStatement",
    "redshift-data:DescribeStatement",
    "redshift-data:DescribeTable",
    "redshift-data:ExecuteStatement",
    "redshift-data:GetStatementResult",
    "redshift-data:ListDatabases",
    "redshift-data:ListSchemas",
    "redshift-data:ListTables",
    "redshift-serverless:GetCredentials",
)
S3_ACTIONS: Final[tuple[str, ...]] = (
    "s3:PutObject",
    "s3:GetObject",
    "s3:GetObjectAttributes",
    "s3:ListBucket",
    "s3:DeleteObject",
)
# Actions that take the workgroup ARN as resource; the rest have no resource type and are
# limited to statements the caller submitted (AWS's recommended condition).
_WORKGROUP_ACTIONS: Final = (
    "redshift-data:DescribeTable",
    "redshift-data:ExecuteStatement",
    "redshift-data:ListDatabases",
    "redshift-data:ListSchemas",
    "redshift-data:ListTables",
)
_OWN_STATEMENT_ACTIONS: Final = (
    "redshift-data:CancelStatement",
    "redshift-data:DescribeStatement",
    "redshift-data:GetStatementResult",
)
STATEMENT_OWNER_KEY: Final = "redshift-data:statement-owner-iam-userid"
REDSHIFT_SERVICE_PRINCIPAL: Final = "redshift.amazonaws.com"
# Redshift Serverless's guide names both as the services that may assume a namespace's role.
REDSHIFT_SERVICE_PRINCIPALS: Final = (
    REDSHIFT_SERVICE_PRINCIPAL,
    "redshift-serverless.amazonaws.com",
)
INLINE_POLICY_NAME: Final = "shiftsync-access"
UNLOAD_INLINE_POLICY_NAME: Final = "shiftsync-unload"
# What Redshift needs on the staging prefix to UNLOAD ("GET, LIST, and PUT permissions for the
# Amazon S3 bucket to which the data files are being unloaded"); s3:ListBucket goes on the
# bucket, the others on the prefix's objects.
UNLOAD_OBJECT_ACTIONS: Final[tuple[str, ...]] = ("s3:GetObject", "s3:PutObject")
# With a KMS key: a data key for each object written, and Decrypt for multipart uploads.
UNLOAD_KMS_ACTIONS: Final[tuple[str, ...]] = ("kms:Decrypt", "kms:GenerateDataKey")
_EXTERNAL_ID_EXPECTED: Final = "2-1224 characters of letters, digits and _+=,.@:/-"
DEFAULT_SCHEMAS: Final[tuple[str, ...]] = ("public",)
# The account AWS's documentation (and shiftsync's template) uses as an example.
TEMPLATE_ACCOUNT: Final = "123456789012"
# IAM Identity Center (SSO) creates its roles under this path; session ARNs drop it.
SSO_ROLE_PATH: Final = "aws-reserved/sso.amazonaws.com/"
SSO_ROLE_PREFIX: Final = "AWSReservedSSO_"
# Role chaining (a role assuming another) caps the session at one hour (IAM User Guide,
# "Methods to assume a role": "role chaining limits your ... session to a maximum of one hour").
CHAINED_SESSION_MAX_SECONDS: Final = 3600


# The action the Data API calls for the caller to log in, by the connection's auth mode.
CREDENTIALS_ACTIONS: Final[dict[AuthMode, str]] = {
    "serverless": "redshift-serverless:GetCredentials",
    "cluster_iam": "redshift:GetClusterCredentialsWithIAM",
    "cluster_db_user": "redshift:GetClusterCredentials",
    "cluster_secret": "secretsmanager:GetSecretValue",
}


def credentials_action(conn: ConnectionConfig) -> str:
    """The IAM action that logs the role in to the database through the Data API."""
    return CREDENTIALS_ACTIONS[conn.auth_mode]


def workgroup_arn_pattern(conn: ConnectionConfig) -> str:
    """Every workgroup of the role's account in the connection's region.

    A workgroup ARN ends in the workgroup's UUID, which the configuration does not hold (only
    the name), so the account and region are as tight as shiftsync can scope it.
    """
    return f"arn:{conn.partition}:redshift-serverless:{conn.region}:{conn.account_id}:workgroup/*"


def cluster_arn(conn: ConnectionConfig) -> str:
    """The provisioned cluster's ARN: the Data API actions' resource on a cluster."""
    return (
        f"arn:{conn.partition}:redshift:{conn.region}:{conn.account_id}:cluster:{conn.target_name}"
    )


def data_api_resource(conn: ConnectionConfig) -> str:
    """The resource of the Data API actions that name a workgroup or a cluster."""
    return cluster_arn(conn) if conn.is_cluster else workgroup_arn_pattern(conn)


def credentials_resources(conn: ConnectionConfig) -> list[str]:
    """The resources of the log-in action (`credentials_action`), in AWS's ARN forms.

    GetClusterCredentialsWithIAM is checked on the database (`dbname:<cluster>/<db>`),
    GetClusterCredentials on the user (`dbuser:<cluster>/<user>`) and on the database the Data
    API names, GetSecretValue on the secret.
    """
    if conn.auth_mode == "serverless":
        return [workgroup_arn_pattern(conn)]
    if conn.auth_mode == "cluster_secret" and conn.secret_arn is not None:
        return [conn.secret_arn]
    prefix = f"arn:{conn.partition}:redshift:{conn.region}:{conn.account_id}"
    dbname = f"{prefix}:dbname:{conn.target_name}/{conn.database}"
    if conn.auth_mode == "cluster_db_user":
        return [f"{prefix}:dbuser:{conn.target_name}/{conn.login_user}", dbname]
    return [dbname]


def _credentials_statement(conn: ConnectionConfig) -> Statement:
    resources = credentials_resources(conn)
    sid = {
        "serverless": "ServerlessCredentialsInAccountRegion",
        "cluster_iam": "ClusterCredentialsForTheRole",
        "cluster_db_user": "ClusterCredentialsForTheDatabaseUser",
        "cluster_secret": "SecretOfTheDatabaseUser",
    }[conn.auth_mode]
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": [credentials_action(conn)],
        "Resource": resources[0] if len(resources) == 1 else resources,
    }


def permission_policy(
    conn: ConnectionConfig, destinations: Sequence[tuple[str, str]] = ()
) -> PolicyDocument:
    """The inline policy of the role shiftsync assumes; `destinations` are the (name, s3 URL)
    of the S3 destinations it writes (`credentials: connection`)."""
    statements: list[Statement] = [
        _credentials_statement(conn),
        {
            "Sid": "DataApiOnTheCluster"
            if conn.is_cluster
            else "DataApiOnWorkgroupsInAccountRegion",
            "Effect": "Allow",
            "Action": list(_WORKGROUP_ACTIONS),
            "Resource": data_api_resource(conn),
        },
        {
            "Sid": "DataApiOwnStatementsOnly",
            "Effect": "Allow",
            "Action": list(_OWN_STATEMENT_ACTIONS),
            "Resource": "*",
            "Condition": {"StringEquals": {STATEMENT_OWNER_KEY: "${aws:userid}"}},
        },
    ]
    statements += _staging_statements(conn)
    statements += destination_statements(
        conn.partition, destinations, region=conn.region, account=conn.role.account
    )
    return {"Version": POLICY_VERSION, "Statement": statements}


def _unload_uses_this_role(conn: ConnectionConfig) -> bool:
    return conn.unload is not None and conn.unload_role_arn == conn.role_arn


def separate_unload_role(conn: ConnectionConfig) -> bool:
    """True when UNLOAD writes with a role of its own (`unload.iam_role_arn`), not shiftsync's."""
    return conn.unload is not None and not _unload_uses_this_role(conn)


def _bucket_arn(conn: ConnectionConfig, bucket: str) -> str:
    return f"arn:{conn.partition}:s3:::{bucket}"


def _list_prefix_statement(conn: ConnectionConfig, unload: UnloadConfig, sid: str) -> Statement:
    """s3:ListBucket on the staging bucket, for listings under the staging prefix only."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": _bucket_arn(conn, unload.bucket),
        "Condition": {"StringLike": {"s3:prefix": [f"{unload.prefix}*"]}},
    }


def _staging_statements(conn: ConnectionConfig) -> list[Statement]:
    unload = conn.unload
    if unload is None:
        return []
    # shiftsync reads and deletes staged files; it writes them only when Redshift uses this
    # same role for UNLOAD.
    object_actions = [action for action in S3_ACTIONS if action != "s3:ListBucket"]
    if not _unload_uses_this_role(conn):
        object_actions.remove("s3:PutObject")
    statements: list[Statement] = [
        _list_prefix_statement(conn, unload, "StagingListPrefix"),
        {
            "Sid": "StagingObjects",
            "Effect": "Allow",
            "Action": object_actions,
            "Resource": f"{_bucket_arn(conn, unload.bucket)}/{unload.prefix}*",
        },
    ]
    if unload.kms_key_id:
        actions = ["kms:Decrypt"]
        if _unload_uses_this_role(conn):
            actions.append("kms:GenerateDataKey")
        statements.append(_kms_statement(conn, unload.kms_key_id, "StagingKmsKey", actions))
    return statements


def unload_role_policy(conn: ConnectionConfig) -> PolicyDocument:
    """The permission policy of a separate UNLOAD role: what Redshift needs to write there.

    AWS: UNLOAD needs GET, LIST and PUT on the bucket it unloads to, and with a KMS key
    kms:GenerateDataKey (kms:Decrypt too, for multipart uploads). Listing is limited to the
    staging prefix, as for shiftsync's role, and objects to keys under it.
    """
    unload = conn.unload
    if unload is None:
        raise ConfigError(
            "UNLOAD is off for this connection: there is no UNLOAD role",
            fix="add an unload: mapping (bucket, and iam_role_arn for a separate role)",
        )
    statements: list[Statement] = [
        _list_prefix_statement(conn, unload, "UnloadListPrefix"),
        {
            "Sid": "UnloadObjects",
            "Effect": "Allow",
            "Action": list(UNLOAD_OBJECT_ACTIONS),
            "Resource": f"{_bucket_arn(conn, unload.bucket)}/{unload.prefix}*",
        },
    ]
    if unload.kms_key_id:
        statements.append(
            _kms_statement(conn, unload.kms_key_id, "UnloadKmsKey", list(UNLOAD_KMS_ACTIONS))
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def _kms_statement(conn: ConnectionConfig, key: str, sid: str, actions: list[str]) -> Statement:
    region = conn.unload_region or conn.region
    statement: Statement = {"Sid": sid, "Effect": "Allow", "Action": actions}
    key_arns = f"arn:{conn.partition}:kms:{region}:{conn.account_id}:key/*"
    if key.startswith("arn:") and ":alias/" not in key:
        statement["Resource"] = key
    elif key.startswith(("arn:", "alias/")):
        # An alias cannot be a policy resource: allow the keys that carry this alias, in the
        # alias ARN's own region and account when it names them.
        alias = "alias/" + key.split(":alias/", 1)[-1].removeprefix("alias/")
        if key.startswith("arn:"):
            _, partition, _, alias_region, alias_account, _ = key.split(":", 5)
            key_arns = f"arn:{partition}:kms:{alias_region}:{alias_account}:key/*"
        statement["Resource"] = key_arns
        statement["Condition"] = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}}
    else:
        statement["Resource"] = f"arn:{conn.partition}:kms:{region}:{conn.account_id}:key/{key}"
    return statement


def trust_principal(principal_arn: str) -> str:
    """The ARN a trust policy names for this principal.

    An assumed-role session (what sts:GetCallerIdentity returns inside a role) becomes its role:
    trust policies name roles, not sessions. The session ARN does not carry the role's path, so
    a role with a path must be given as its role ARN.
    """
    match = PRINCIPAL_ARN_RE.fullmatch(principal_arn)
    if not match:
        raise ConfigError(
            f"{principal_arn!r} is not an AWS principal ARN",
            fix="give an account root, IAM user or role ARN (arn:aws:iam::<account>:...) or "
            "an assumed-role ARN (arn:aws:sts::<account>:assumed-role/<role>/<session>)",
        )
    if match["role"]:
        # IAM Identity Center's roles live under /aws-reserved/sso.amazonaws.com/: IAM rejects
        # a trust policy naming them without it (the session ARN does not carry the path).
        path = SSO_ROLE_PATH if match["role"].startswith(SSO_ROLE_PREFIX) else ""
        return f"arn:{match['partition']}:iam::{match['sts_account']}:role/{path}{match['role']}"
    return principal_arn


def is_role_session(principal_arn: str) -> bool:
    """Whether the identity is an assumed-role session (so assuming another role chains)."""
    match = PRINCIPAL_ARN_RE.fullmatch(principal_arn)
    return bool(match and match["role"])


def chained_session_problem(conn: ConnectionConfig, caller: str) -> str | None:
    """Why AssumeRole will fail for this caller's session length, or None.

    AWS caps a chained session (a role assuming another role) at one hour whatever the role's
    maximum session duration says.
    """
    duration = conn.session_duration_seconds
    if duration <= CHAINED_SESSION_MAX_SECONDS or not is_role_session(caller):
        return None
    return (
        f"shiftsync runs as the role session {caller}, so assuming {conn.role_arn} is role "
        f"chaining, which AWS caps at {CHAINED_SESSION_MAX_SECONDS} s; "
        f"session_duration_seconds is {duration}"
    )


def chained_session_fix(connection_name: str) -> str:
    return (
        f"set connections.{connection_name}.session_duration_seconds to "
        f"{CHAINED_SESSION_MAX_SECONDS} or less in shiftsync.yaml (sessions are renewed before "
        "they expire, so longer runs still work), or run shiftsync as an IAM user"
    )


def template_values(conn: ConnectionConfig) -> list[str]:
    """Values of the connection still as the commented template (or AWS's examples) has them."""
    found = []
    if conn.account_id == TEMPLATE_ACCOUNT:
        found.append(f"role_arn {conn.role_arn} (account {TEMPLATE_ACCOUNT} is AWS's example)")
    if conn.workgroup == "default-workgroup":
        found.append("workgroup default-workgroup")
    if conn.cluster_identifier == "my-cluster":
        found.append("cluster_identifier my-cluster")
    if conn.unload is not None and conn.unload.bucket == "my-staging-bucket":
        found.append("unload.bucket my-staging-bucket")
    return found


def check_external_id(external_id: str) -> str:
    """The external ID, if sts:AssumeRole would accept it; else ConfigError."""
    if not is_valid_external_id(external_id):
        raise ConfigError(
            "the external ID is not valid for sts:AssumeRole",
            fix=f"use {_EXTERNAL_ID_EXPECTED} (the workspace's .shiftsync/external_id)",
        )
    return external_id


def trust_policy(
    principal_arn: str, external_id: str, unload: ConnectionConfig | None
) -> PolicyDocument:
    """Who may assume the role: shiftsync's principal with the external ID, and, when `unload`
    (the connection) writes with this role, Redshift on behalf of the role's database user."""
    statements: list[Statement] = [
        {
            "Sid": "ShiftsyncWithExternalId",
            "Effect": "Allow",
            "Principal": {"AWS": trust_principal(principal_arn)},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": check_external_id(external_id)}},
        }
    ]
    if unload is not None:
        statements.append(_redshift_trust_statement(unload))
    return {"Version": POLICY_VERSION, "Statement": statements}


def trust_policy_for(conn: ConnectionConfig, principal_arn: str | None, external_id: str) -> str:
    """The trust policy `shiftsync policy` generates for the connection, as indented JSON
    (for error messages: a principal not known yet is shown as a placeholder)."""
    principal = principal_arn or "<the ARN shiftsync runs as>"
    try:
        document = trust_policy(
            principal, external_id, conn if _unload_uses_this_role(conn) else None
        )
    except ConfigError as error:
        return f"(cannot be built: {error.message})"
    return json.dumps(document, indent=2)


def unload_database_user_arn(conn: ConnectionConfig) -> str:
    """The ARN of the database user that runs shiftsync's UNLOADs, as Redshift passes it as
    sts:ExternalId when it assumes the role ("Restricting access to IAM roles")."""
    return (
        f"arn:{conn.partition}:redshift:{conn.region}:{conn.account_id}:dbuser:"
        f"{conn.target_name}/{database_user(conn)}"
    )


def _redshift_trust_statement(conn: ConnectionConfig) -> Statement:
    # Without the condition every database user of the namespace could name the role in its
    # own COPY or UNLOAD; Redshift sends the user's ARN as the external ID, so only shiftsync's
    # user may. Serverless asks for both service principals.
    # A provisioned cluster assumes its roles as redshift.amazonaws.com only.
    services = (
        [REDSHIFT_SERVICE_PRINCIPAL] if conn.is_cluster else list(REDSHIFT_SERVICE_PRINCIPALS)
    )
    return {
        "Sid": "RedshiftUnload",
        "Effect": "Allow",
        "Principal": {"Service": services},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": unload_database_user_arn(conn)}},
    }


def unload_role_trust_policy(conn: ConnectionConfig) -> PolicyDocument:
    """The trust policy of a separate UNLOAD role: Redshift may assume it for shiftsync's
    database user only."""
    return {"Version": POLICY_VERSION, "Statement": [_redshift_trust_statement(conn)]}


def database_user(conn: ConnectionConfig) -> str:
    """The database user the Data API logs in as: IAMR:<role name> (path not included) for
    the role itself, a cluster's db_user, or a placeholder for a secret's username."""
    return conn.login_user


def _grantee(conn: ConnectionConfig) -> str:
    # A secret's username is only known to whoever reads the secret: left for the admin.
    user = database_user(conn)
    return user if conn.auth_mode == "cluster_secret" else quote_redshift(user)


def database_grants(conn: ConnectionConfig, schemas: Sequence[str] = ("public",)) -> list[str]:
    """The statements an admin runs so the role's database user can read these schemas.

    One statement per item, without a trailing semicolon (ready for ExecuteStatement).
    """
    user = _grantee(conn)
    grants: list[str] = []
    for schema in schemas:
        quoted = quote_redshift(schema)
        grants += [
            f"GRANT USAGE ON SCHEMA {quoted} TO {user}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {quoted} TO {user}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted} GRANT SELECT ON TABLES TO {user}",
        ]
    return grants


def grant_schemas(includes: Iterable[str]) -> tuple[list[str], list[str]]:
    """The schemas to grant for these `tables:` patterns: (named schemas, schema patterns).

    A pattern's schemas are only known by listing the catalog: `policy` makes no Redshift call,
    so those are left to the admin (and `check` lists what is still missing).
    """
    named: set[str] = set()
    patterns: set[str] = set()
    for include in includes:
        schema, _ = split_table_pattern(include)
        (named if schema.literal else patterns).add(schema.text)
    return sorted(named) or list(DEFAULT_SCHEMAS if not patterns else ()), sorted(patterns)


def schemas_read_by(config: ShiftsyncConfig, connection_name: str) -> tuple[list[str], list[str]]:
    """`grant_schemas` of every `tables:` entry of the syncs that read this connection."""
    return grant_schemas(
        entry.include
        for sync in config.syncs.values()
        if sync.source == connection_name
        for entry in sync.tables
    )


def namespace_association_steps(conn: ConnectionConfig, policy_where: str | None = None) -> str:
    """How to let Redshift use the role for UNLOAD (associate it with the namespace).

    With a separate UNLOAD role, also what that role needs: its permission policy as JSON, or,
    when `policy_where` is given, a pointer to where the document holds it.
    """
    if conn.unload is None:
        return (
            "UNLOAD is off for this connection: no role needs to be associated with the namespace."
        )
    role_arn = conn.unload_role_arn
    lines = [
        f"UNLOAD runs inside Redshift, which writes to s3://{conn.unload.bucket}/"
        f"{conn.unload.prefix} as the role {role_arn}.",
        *(_cluster_association(conn) if conn.is_cluster else _namespace_association(conn)),
    ]
    if not _unload_uses_this_role(conn):
        lines += ["", *_unload_role_lines(conn, conn.unload, policy_where)]
    return "\n".join(lines)


def _namespace_association(conn: ConnectionConfig) -> list[str]:
    role_arn, region = conn.unload_role_arn or "", conn.region
    return [
        "Associate that role with the namespace of workgroup "
        f"{conn.workgroup} (same account), in one of two ways:",
        "",
        "Console: Amazon Redshift > Serverless dashboard > Namespace configuration > "
        "<your namespace> > Security and encryption > Manage IAM roles > Associate IAM roles > "
        f"pick {role_arn.rsplit('/', 1)[-1]} > Save changes.",
        "",
        "AWS CLI:",
        "  # 1. find the namespace of the workgroup",
        f"  aws redshift-serverless get-workgroup --region {region} "
        f"--workgroup-name {conn.workgroup} --query workgroup.namespaceName --output text",
        "  # 2. list the roles already associated (shown as IamRole(applyStatus=...,",
        "  #    iamRoleArn=...): keep each iamRoleArn)",
        f"  aws redshift-serverless get-namespace --region {region} "
        "--namespace-name <namespace> --query namespace.iamRoles",
        "  # 3. set the full list: update-namespace REPLACES the associated roles, so include",
        "  #    every existing role ARN as well as the new one",
        f"  aws redshift-serverless update-namespace --region {region} "
        f"--namespace-name <namespace> --iam-roles <existing role ARNs...> {role_arn}",
    ]


def _cluster_association(conn: ConnectionConfig) -> list[str]:
    role_arn = conn.unload_role_arn or ""
    lines = [
        f"Associate that role with cluster {conn.target_name} (same account), in one of two ways:",
        "",
        f"Console: Amazon Redshift > Clusters > {conn.target_name} > Actions > Manage IAM roles "
        f"> pick {role_arn.rsplit('/', 1)[-1]} > Associate IAM role > Save changes.",
        "",
        "AWS CLI (adds the role; the roles already associated stay):",
        f"  aws redshift modify-cluster-iam-roles --region {conn.region} "
        f"--cluster-identifier {conn.target_name} --add-iam-roles {role_arn}",
    ]
    if conn.auth_mode == "cluster_secret":
        lines += [
            "",
            f"The trust policy's sts:ExternalId names the database user: replace "
            f"{SECRET_USER_PLACEHOLDER} with the username in secret {conn.secret_arn}.",
        ]
    return lines


def _unload_role_lines(
    conn: ConnectionConfig, unload: UnloadConfig, policy_where: str | None
) -> list[str]:
    kms = ", and the KMS key" if unload.kms_key_id else ""
    needs = f"UNLOAD needs GET, LIST and PUT on the staging prefix{kms}"
    lines = [
        f"{conn.unload_role_arn} is not the role shiftsync assumes: shiftsync's role only reads "
        "and deletes the staged files, Redshift writes them with this one, which needs:",
        f"- a trust policy that lets the services {' and '.join(REDSHIFT_SERVICE_PRINCIPALS)} "
        f"call sts:AssumeRole with sts:ExternalId {unload_database_user_arn(conn)} (only "
        "shiftsync's database user may use the role);",
    ]
    if policy_where is not None:
        return [*lines, f"- its permission policy ({needs}): {policy_where}."]
    policy = json.dumps(unload_role_policy(conn), indent=2)
    trust = json.dumps(unload_role_trust_policy(conn), indent=2)
    return [
        *lines,
        "  its trust policy:",
        *(f"  {line}" for line in trust.splitlines()),
        f"- this permission policy ({needs}), for example as its inline policy "
        f"{UNLOAD_INLINE_POLICY_NAME}:",
        *(f"  {line}" for line in policy.splitlines()),
    ]


# ---------------------------------------------------------------------------------------------
# Renderers: one complete document each
# ---------------------------------------------------------------------------------------------


def _bundle_parts(
    conn: ConnectionConfig,
    principal_arn: str,
    external_id: str,
    destinations: Sequence[tuple[str, str]] = (),
) -> tuple[RoleArn, PolicyDocument, PolicyDocument]:
    role = parse_role_arn(conn.role_arn)
    trust = trust_policy(principal_arn, external_id, conn if _unload_uses_this_role(conn) else None)
    return role, trust, permission_policy(conn, destinations)


def _max_session_duration(conn: ConnectionConfig) -> int:
    # AssumeRole fails when DurationSeconds exceeds the role's MaxSessionDuration.
    return max(3600, conn.session_duration_seconds)


def _unload_role(conn: ConnectionConfig) -> RoleArn | None:
    """The separate UNLOAD role, or None when UNLOAD is off or writes with shiftsync's role."""
    if not separate_unload_role(conn) or conn.unload_role_arn is None:
        return None
    return parse_role_arn(conn.unload_role_arn)


def render_json(
    conn: ConnectionConfig,
    principal_arn: str,
    external_id: str,
    schemas: Sequence[str] = DEFAULT_SCHEMAS,
    destinations: Sequence[tuple[str, str]] = (),
) -> str:
    role, trust, permissions = _bundle_parts(conn, principal_arn, external_id, destinations)
    bundle: dict[str, object] = {
        "role_name": role.name,
        "trust_policy": trust,
        "permission_policy": permissions,
        "database_grants": database_grants(conn, schemas),
        "namespace_association": namespace_association_steps(conn),
    }
    unload_role = _unload_role(conn)
    if unload_role is not None:
        bundle["unload_role"] = {
            "role_arn": unload_role.arn,
            "role_name": unload_role.name,
            "trust_policy": unload_role_trust_policy(conn),
            "permission_policy": unload_role_policy(conn),
        }
    return json.dumps(bundle, indent=2) + "\n"


def _comment_block(
    prefix: str,
    conn: ConnectionConfig,
    how: str,
    policy_where: str | None = None,
    schemas: Sequence[str] = ("public",),
) -> list[str]:
    lines = [
        f"shiftsync: the IAM role for {_source_label(conn)} ({conn.region}).",
        how,
        "Then, as a database admin, run:",
        *(f"  {grant};" for grant in database_grants(conn, schemas)),
    ]
    if conn.unload is not None:
        where = "cluster" if conn.is_cluster else "namespace"
        lines += [f"For UNLOAD, associate the role with the {where}:"]
        lines += [
            f"  {line}" if line else ""
            for line in namespace_association_steps(conn, policy_where).splitlines()
        ]
    return [f"{prefix} {line}".rstrip() for line in lines]


def _product(conn: ConnectionConfig) -> str:
    return "a Redshift cluster" if conn.is_cluster else "Redshift Serverless"


def _source_label(conn: ConnectionConfig) -> str:
    """`Redshift Serverless workgroup NAME` or `Redshift cluster NAME`."""
    kind = "Redshift cluster" if conn.is_cluster else "Redshift Serverless workgroup"
    return f"{kind} {conn.target_name}"


def _hcl_string(value: str) -> str:
    # JSON string syntax is HCL's, except that ${ and %{ start templates.
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def _hcl_object(document: PolicyDocument, indent: int) -> str:
    # JSON with " : " is HCL object syntax that `terraform fmt` leaves as it is.
    text = json.dumps(document, indent=2, separators=(",", " : "))
    text = text.replace("${", "$${").replace("%{", "%%{")
    pad = " " * indent
    return "\n".join(line if i == 0 else pad + line for i, line in enumerate(text.splitlines()))


def render_terraform(
    conn: ConnectionConfig,
    principal_arn: str,
    external_id: str,
    schemas: Sequence[str] = DEFAULT_SCHEMAS,
    destinations: Sequence[tuple[str, str]] = (),
) -> str:
    role, trust, permissions = _bundle_parts(conn, principal_arn, external_id, destinations)
    unload_role = _unload_role(conn)
    header = _comment_block(
        "#",
        conn,
        "Add this file to a Terraform configuration with the aws provider, then apply.",
        "resource aws_iam_role_policy.shiftsync_unload below adds it as "
        f'"{UNLOAD_INLINE_POLICY_NAME}" (the role must exist)',
        schemas,
    )
    unload_local = unload_resource = ""
    if unload_role is not None:
        unload_local = (
            f"\n\n  shiftsync_unload_permission_policy = {_hcl_object(unload_role_policy(conn), 2)}"
        )
        unload_resource = f"""
# The separate UNLOAD role's permissions (the role itself is yours: it must exist and trust
# {REDSHIFT_SERVICE_PRINCIPAL}).
resource "aws_iam_role_policy" "shiftsync_unload" {{
  name   = {_hcl_string(UNLOAD_INLINE_POLICY_NAME)}
  role   = {_hcl_string(unload_role.name)}
  policy = jsonencode(local.shiftsync_unload_permission_policy)
}}
"""
    body = f"""
locals {{
  shiftsync_trust_policy = {_hcl_object(trust, 2)}

  shiftsync_permission_policy = {_hcl_object(permissions, 2)}{unload_local}
}}

resource "aws_iam_role" "shiftsync" {{
  name                 = {_hcl_string(role.name)}
  path                 = {_hcl_string(role.iam_path)}
  description          = "Assumed by shiftsync to read {_product(conn)}"
  max_session_duration = {_max_session_duration(conn)}
  assume_role_policy   = jsonencode(local.shiftsync_trust_policy)
}}

resource "aws_iam_role_policy" "shiftsync" {{
  name   = {_hcl_string(INLINE_POLICY_NAME)}
  role   = aws_iam_role.shiftsync.id
  policy = jsonencode(local.shiftsync_permission_policy)
}}

output "shiftsync_role_arn" {{
  value = aws_iam_role.shiftsync.arn
}}
{unload_resource}"""
    return "\n".join(header) + "\n" + body


def render_cloudformation(
    conn: ConnectionConfig,
    principal_arn: str,
    external_id: str,
    schemas: Sequence[str] = DEFAULT_SCHEMAS,
    destinations: Sequence[tuple[str, str]] = (),
) -> str:
    role, trust, permissions = _bundle_parts(conn, principal_arn, external_id, destinations)
    unload_role = _unload_role(conn)
    header = _comment_block(
        "#",
        conn,
        "Deploy with: aws cloudformation deploy --template-file <this file> "
        "--stack-name shiftsync-role --capabilities CAPABILITY_NAMED_IAM",
        f'resource ShiftsyncUnloadPolicy below adds it as "{UNLOAD_INLINE_POLICY_NAME}" '
        "(the role must exist)",
        schemas,
    )
    resources: dict[str, object] = {
        "ShiftsyncRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": role.name,
                "Path": role.iam_path,
                "Description": f"Assumed by shiftsync to read {_product(conn)}",
                "MaxSessionDuration": _max_session_duration(conn),
                "AssumeRolePolicyDocument": trust,
                "Policies": [{"PolicyName": INLINE_POLICY_NAME, "PolicyDocument": permissions}],
            },
        }
    }
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"shiftsync: the role that reads {_source_label(conn)}",
        "Resources": resources,
        "Outputs": {"RoleArn": {"Value": {"Fn::GetAtt": ["ShiftsyncRole", "Arn"]}}},
    }
    if unload_role is not None:
        # The separate UNLOAD role is the customer's: only its inline policy is added here.
        resources["ShiftsyncUnloadPolicy"] = {
            "Type": "AWS::IAM::RolePolicy",
            "Properties": {
                "RoleName": unload_role.name,
                "PolicyName": UNLOAD_INLINE_POLICY_NAME,
                "PolicyDocument": unload_role_policy(conn),
            },
        }
    body = yaml.safe_dump(template, sort_keys=False, default_flow_style=False, width=1000)
    return "\n".join(header) + "\n" + body


_RENDERERS: Final = {
    "json": render_json,
    "terraform": render_terraform,
    "cloudformation": render_cloudformation,
}


def render_policy_bundle(
    conn: ConnectionConfig,
    principal_arn: str,
    external_id: str,
    fmt: PolicyFormat,
    schemas: Sequence[str] = ("public",),
    destinations: Sequence[tuple[str, str]] = (),
) -> str:
    """The role, its trust policy and its permission policy as one document in `fmt`, with
    the grants for `schemas` (those the connection's syncs read)."""
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise ConfigError(
            f"unknown policy format {fmt!r}", fix=f"use one of: {', '.join(POLICY_FORMATS)}"
        )
    return renderer(conn, principal_arn, external_id, schemas, destinations)
