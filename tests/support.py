"""Plain helpers that several test modules share (fixtures stay in tests/conftest.py).

Imported as `from tests.support import …`; pytest finds `tests` through `pythonpath = ["."]`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import psycopg
import yaml
from psycopg import sql

import shiftsync
from bench.workspaces import standin_connection
from shiftsync.aws.policy import database_grants
from shiftsync.local.standin import (
    BUCKET,
    CUSTOMER_ACCOUNT,
    REGION,
    ROLE_NAME,
    StandIn,
    StandInInfo,
)
from shiftsync.workspace import Workspace

# The Data API's statuses after which a statement changes no more.
TERMINAL: Final = ("FINISHED", "FAILED", "ABORTED")
# The database user the stand-in maps the role to, as Redshift Serverless does.
ROLE_DB_USER: Final = f"IAMR:{ROLE_NAME}"
# The seeded tables' keys (also the row order for comparisons; tables without one sort by
# every column).
SEED_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "category": ("catid",),
    "date": ("dateid",),
    "event": ("eventid",),
    "listing": ("listid",),
    "sales": ("salesid",),
    "sales_summary": ("eventid",),
    "types": ("id",),
    "users": ("userid",),
    "venue": ("venueid",),
}


@dataclass(frozen=True)
class Ran:
    """What a `shiftsync` command did: its exit code and what it printed."""

    code: int
    out: str
    err: str


# The `cli` fixture (tests/e2e/conftest.py): `cli("sync", "-w", folder)` runs in-process.
Cli = Callable[..., Ran]

# Every `shiftsync …` command the CLI suggested in the tests' runs (its output quotes commands
# in backticks), with the test that provoked it: tests/e2e/test_zz_fix_lines.py parses each.
SUGGESTED_COMMAND_RE: Final = re.compile(r"`(shiftsync(?: [^`\n]*)?)`")
SUGGESTED_COMMANDS: list[tuple[str, str]] = []


def record_suggested_commands(text: str, origin: str) -> None:
    for command in SUGGESTED_COMMAND_RE.findall(text):
        SUGGESTED_COMMANDS.append((command, origin))


# The secret key of a stand-in that points nowhere.
FAKE_SECRET: Final = "fake-secret-of-no-account"


def fake_standin_info(secret_access_key: str = FAKE_SECRET) -> StandInInfo:
    """What a stand-in would report, pointing nowhere: for code that only writes or shows it."""
    return StandInInfo(
        region="us-east-1",
        endpoint="http://127.0.0.1:1",
        access_key_id="AKIAFAKEFAKEFAKEFAKE",
        secret_access_key=secret_access_key,
        principal_arn="arn:aws:iam::111111111111:user/shiftsync-runner",
        role_arn="arn:aws:iam::222222222222:role/shiftsync-reader",
        external_id="shiftsync-0123456789abcdef0123456789abcdef",
        workgroup="shiftsync-demo",
        database="dev",
        bucket="shiftsync-staging-222222222222",
        postgres_dsn="postgresql://postgres@127.0.0.1:1/dev",
    )


# --- statements on the stand-in ---------------------------------------------------------------


def wait_until(
    condition: Callable[[], object], *, what: str, seconds: float = 60, interval: float = 0.02
) -> None:
    """Wait for a condition the test cannot be told of by an event; fail if it never holds.

    `seconds` only bounds a hang: nothing is asserted about how long the wait took.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        time.sleep(interval)


def wait_for_statement(
    client: Any, statement_id: str, *, seconds: float = 30, interval: float = 0.02
) -> dict[str, Any]:
    """DescribeStatement until the statement ends; an AssertionError if it does not in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        described: dict[str, Any] = client.describe_statement(Id=statement_id)
        if described["Status"] in TERMINAL:
            return described
        time.sleep(interval)
    raise AssertionError(f"statement {statement_id} did not end in {seconds} s")


def run_statement(
    client: Any,
    info: StandInInfo,
    sql: str,
    *,
    seconds: float = 30,
    interval: float = 0.02,
    **kwargs: Any,
) -> tuple[str, dict[str, Any]]:
    """ExecuteStatement on the stand-in's workgroup, then wait: (its id, its last description)."""
    started = client.execute_statement(
        WorkgroupName=info.workgroup, Database=info.database, Sql=sql, **kwargs
    )
    statement_id = str(started["Id"])
    return statement_id, wait_for_statement(
        client, statement_id, seconds=seconds, interval=interval
    )


def staging_prefix(s3: Any, label: str) -> Iterator[str]:
    """A staging prefix `<label>-<random>/` of one test's own, emptied afterwards."""
    value = f"{label}-{uuid.uuid4().hex[:12]}/"
    yield value
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=value).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])


# --- workspaces on the stand-in ---------------------------------------------------------------


def write_external_id(folder: Path, external_id: str) -> None:
    """The workspace's `.shiftsync/external_id`, creating the folders as needed."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".shiftsync").mkdir(exist_ok=True)
    (folder / ".shiftsync" / "external_id").write_text(external_id + "\n")


def connection_template(name: str, *settings: str) -> str:
    """One connection `name` of a shiftsync.yaml template to the stand-in's workgroup, with
    further `settings` lines (indented under it as given), for write_template_workspace."""
    lines = [
        f"  {name}:",
        "    type: redshift_serverless",
        "    region: {region}",
        "    workgroup: {workgroup}",
        "    database: {database}",
        "    role_arn: {role_arn}",
        *(f"    {line}" for line in settings),
    ]
    return "\n".join(lines) + "\n"


def connection_yaml(name: str, info: StandInInfo, role_arn: str | None = None) -> str:
    """connection_template filled in: the stand-in's workgroup, read as `role_arn` (default:
    the stand-in's role)."""
    return connection_template(name).format(
        region=info.region,
        workgroup=info.workgroup,
        database=info.database,
        role_arn=role_arn or info.role_arn,
    )


# An UNLOAD staging setting of connection_template: the stand-in's bucket and the prefix.
UNLOAD_SETTINGS: Final = ("unload:", "  bucket: {bucket}", "  prefix: {prefix}")


def write_template_workspace(
    folder: Path, template: str, info: StandInInfo, prefix: str
) -> Workspace:
    """A workspace whose shiftsync.yaml is `template` filled in with the stand-in's names."""
    (folder / "shiftsync.yaml").write_text(
        template.format(
            region=info.region,
            workgroup=info.workgroup,
            database=info.database,
            role_arn=info.role_arn,
            bucket=info.bucket,
            prefix=prefix,
        )
    )
    write_external_id(folder, info.external_id)
    return Workspace(folder)


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


def write_sync_config(
    folder: Path,
    connection: Mapping[str, Any],
    destinations: Mapping[str, Any],
    sync: Mapping[str, Any],
) -> None:
    """shiftsync.yaml with one connection `warehouse` and one sync `main` reading from it."""
    config = {
        "connections": {"warehouse": dict(connection)},
        "destinations": dict(destinations),
        "syncs": {"main": {"source": "warehouse", **sync}},
    }
    (folder / "shiftsync.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def write_category_sync(folder: Path, info: StandInInfo) -> None:
    """shiftsync.yaml whose sync `main` copies public.category from the stand-in into the
    DuckDB file out.duckdb (destination `local`)."""
    write_sync_config(
        folder,
        standin_connection(info),
        {"local": {"type": "duckdb", "path": "out.duckdb"}},
        {"destination": "local", "tables": ["public.category"]},
    )


def write_role_workspace(
    folder: Path,
    info: StandInInfo,
    role_arn: str,
    *,
    external_id: str | None = None,
    unload_prefix: str | None = None,
    bucket: str | None = None,
    tables: Sequence[str] = ("public.*",),
    extra: str = "",
) -> Workspace:
    """A workspace whose one connection `wh` is the stand-in's workgroup, read as `role_arn`.

    `extra` is inserted as is into the connection's settings (indented four spaces).
    """
    workspace = Workspace.init(folder)
    if external_id is not None:
        workspace.external_id_path.write_text(external_id + "\n")
    unload = (
        f"    unload:\n      bucket: {bucket or info.bucket}\n      prefix: {unload_prefix}\n"
        if unload_prefix
        else ""
    )
    workspace.config_path.write_text(
        "connections:\n"
        f"{connection_yaml('wh', info, role_arn)}"
        f"{extra}{unload}"
        "destinations:\n"
        "  local: {type: duckdb}\n"
        "syncs:\n"
        "  nightly:\n"
        "    source: wh\n"
        "    destination: local\n"
        f"    tables: {json.dumps(list(tables))}\n"
    )
    return workspace


# public.types: column → the typeName Redshift reports for it.
TYPES_TABLE_TYPE_NAMES: Final = {
    "id": "int4",
    "c_smallint": "int2",
    "c_integer": "int4",
    "c_bigint": "int8",
    "c_decimal_38_0": "numeric",
    "c_decimal_38_10": "numeric",
    "c_decimal_10_2": "numeric",
    "c_real": "float4",
    "c_double": "float8",
    "c_boolean": "bool",
    "c_char": "bpchar",
    "c_varchar": "varchar",
    "c_date": "date",
    "c_timestamp": "timestamp",
    "c_timestamptz": "timestamptz",
    "c_time": "time",
    "c_timetz": "timetz",
    "c_super": "super",
    "c_varbyte": "varbyte",
    "c_geometry": "geometry",
    "c_hllsketch": "hllsketch",
    "c_interval": "interval",
}


# --- `shiftsync` as a subprocess ----------------------------------------------------------------

# The folder of the shiftsync package under test, whichever checkout runs the tests.
CODE_UNDER_TEST: Final = str(Path(shiftsync.__file__).resolve().parents[1])


def checkout_env(info: StandInInfo, **extra: str) -> dict[str, str]:
    """This process's environment with the stand-in's variables, importing the code under test."""
    return {**os.environ, **info.environment(), "PYTHONPATH": CODE_UNDER_TEST, **extra}


def start_shiftsync(folder: Path, env: Mapping[str, str], *args: str) -> subprocess.Popen[str]:
    """`python -m shiftsync <args>` started in `folder`, its stdout and stderr piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "shiftsync", *args],
        cwd=folder,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines_until(stream: IO[str] | None, wanted: Callable[[str], bool]) -> list[str]:
    """The lines read from `stream` up to the first that `wanted` accepts (the last listed);
    every line when none does, the stream having ended."""
    assert stream is not None
    seen: list[str] = []
    for line in stream:
        seen.append(line)
        if wanted(line):
            break
    return seen


def pumped(stream: IO[str] | None) -> queue.Queue[str]:
    """The lines of `stream` as a daemon thread reads them, for a wait that keeps a deadline
    (a blocking read of the pipe would not)."""
    assert stream is not None
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


@contextmanager
def replaced_role_policy(
    standin: StandIn, policy: Mapping[str, Any], name: str = ROLE_NAME
) -> Iterator[None]:
    """The role's permission policy replaced until the block ends, then put back as it was: the
    stand-in is the session's, and a later test expects the role it started with."""
    saved = standin.role_policy(name)
    standin.set_role_policy(name, policy)
    try:
        yield
    finally:
        standin.set_role_policy(name, saved)


@contextmanager
def lowered_limits(standin: StandIn, **changes: int) -> Iterator[None]:
    """The stand-in's Data API limits changed (`max_result_bytes=…`, `page_bytes=…`) until the
    block ends, then restored."""
    assert standin.engine is not None
    saved = standin.engine.limits
    standin.engine.limits = dataclasses.replace(saved, **changes)
    try:
        yield
    finally:
        standin.engine.limits = saved


def store_secret(document: Mapping[str, str]) -> str:
    """A Secrets Manager secret in the customer's account, as an admin stores it (straight into
    moto's backend, which the stand-in serves); its ARN."""
    from moto.secretsmanager.models import secretsmanager_backends

    secret = secretsmanager_backends[CUSTOMER_ACCOUNT][REGION].create_secret(
        name=f"redshift/{uuid.uuid4().hex[:8]}",
        secret_string=json.dumps(dict(document)),
        secret_binary=None,
        description=None,
        tags=None,
        kms_key_id=None,
        client_request_token=None,
        replica_regions=[],
        force_overwrite=False,
    )
    return str(json.loads(secret)["ARN"])


def role_s3_properties(info: StandInInfo) -> dict[str, str]:
    """pyiceberg's S3 properties for the stand-in, as the role (assumed with the external ID)."""
    from shiftsync.aws.session import AssumedRoleSession

    credentials = AssumedRoleSession(
        info.role_arn, info.external_id, info.region
    ).frozen_credentials()
    # An assumed role's credentials hold all three (botocore types each as optional).
    assert credentials.access_key
    assert credentials.secret_key
    assert credentials.token
    return {
        "s3.endpoint": info.endpoint,
        "s3.region": info.region,
        "s3.access-key-id": credentials.access_key,
        "s3.secret-access-key": credentials.secret_key,
        "s3.session-token": credentials.token,
    }


def role_policy_without(
    action: str, lake: Sequence[tuple[str, str]], *, region: str = "*", account: str = "*"
) -> dict[str, Any]:
    """The stand-in role's policy (the guide's statements and those of the `lake`
    destinations) less one action of the destinations' statements."""
    from shiftsync.aws.destination_policy import destination_statements
    from shiftsync.local.standin import guide_permission_policy

    policy = guide_permission_policy(BUCKET)
    kept = []
    for statement in destination_statements("aws", lake, region=region, account=account):
        actions = [a for a in statement["Action"] if a != action]
        if actions:
            kept.append({**statement, "Action": actions})
    return {**policy, "Statement": [*policy["Statement"], *kept]}
