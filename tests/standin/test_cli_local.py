"""`shiftsync local up` as a user runs it: a process that prints exports, writes a JSON file of
its endpoints and keys, stops cleanly on SIGTERM and says in one line why it cannot start."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import boto3
import psycopg
import pytest
from botocore.exceptions import ClientError

from tests.support import pumped

SHIFTSYNC: Final = str(Path(sys.executable).parent / "shiftsync")
JSON_KEYS: Final = {
    "region",
    "endpoints",
    "access_key_id",
    "secret_access_key",
    "principal_arn",
    "role_arn",
    "external_id",
    "workgroup",
    "database",
    "bucket",
    "postgres_dsn",
}
EXPORTED: Final = (
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_REDSHIFT_DATA",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_GLUE",
)


def _clean_environment() -> dict[str, str]:
    """This process's environment without any AWS setting (the session stand-in sets some)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


@dataclass
class Running:
    process: subprocess.Popen[str]
    stdout: list[str]
    info: dict[str, Any]
    json_path: Path

    def client(self, service: str, credentials: dict[str, Any] | None = None) -> Any:
        keys = (
            {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"],
            }
            if credentials
            else {
                "aws_access_key_id": self.info["access_key_id"],
                "aws_secret_access_key": self.info["secret_access_key"],
            }
        )
        endpoint = self.info["endpoints"][service.replace("-", "_")]
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=self.info["region"],
            endpoint_url=endpoint,
            **keys,
        )

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stderr


def _start(tmp_path: Path, *arguments: str) -> Running:
    json_path = tmp_path / "standin.json"
    process = subprocess.Popen(
        [SHIFTSYNC, "local", "up", "--json-out", str(json_path), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_environment(),
    )
    lines = pumped(process.stdout)
    stdout: list[str] = []
    deadline = time.monotonic() + 60
    while sum(line.startswith("export ") for line in stdout) < len(EXPORTED):
        if process.poll() is not None or time.monotonic() > deadline:
            process.terminate()
            _, stderr = process.communicate(timeout=30)
            raise AssertionError(f"`shiftsync local up` did not come up: {stderr}")
        try:
            stdout.append(lines.get(timeout=0.2).rstrip("\n"))
        except queue.Empty:
            continue
    return Running(process, stdout, json.loads(json_path.read_text()), json_path)


def _shut_down(running: Running) -> None:
    """SIGTERM, so the stand-in removes its PostgreSQL; SIGKILL would leave the server behind."""
    if running.process.poll() is not None:
        return
    try:
        running.stop()
    except subprocess.TimeoutExpired:
        running.process.kill()
        running.process.communicate()


@pytest.fixture(scope="module")
def default_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = _start(tmp_path_factory.mktemp("up"))
    try:
        yield running
    finally:
        _shut_down(running)


@pytest.fixture(scope="module")
def unsafe_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = _start(
        tmp_path_factory.mktemp("unsafe"),
        "--seed",
        "none",
        "--deny",
        "redshift-data:ListTables",
        "--trust-without-external-id",
    )
    try:
        yield running
    finally:
        _shut_down(running)


def test_json_out_names_everything_a_client_needs(default_up: Running) -> None:
    info = default_up.info
    assert set(info) == JSON_KEYS
    assert set(info["endpoints"]) == {"sts", "s3", "redshift_data", "glue"}
    assert all(url.startswith("http://127.0.0.1:") for url in info["endpoints"].values())
    assert info["role_arn"].startswith("arn:aws:iam::222222222222:role/")
    assert info["principal_arn"].startswith("arn:aws:iam::111111111111:user/")
    assert info["postgres_dsn"].startswith("postgresql://")
    assert default_up.json_path.stat().st_mode & 0o777 == 0o600


def test_exports_point_at_the_endpoints_and_keep_the_keys_off_screen(default_up: Running) -> None:
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in default_up.stdout
        if line.startswith("export ")
    )
    assert tuple(exports) == EXPORTED
    assert (
        exports["AWS_ENDPOINT_URL_REDSHIFT_DATA"] == default_up.info["endpoints"]["redshift_data"]
    )
    assert exports["AWS_ENDPOINT_URL_STS"] == default_up.info["endpoints"]["sts"]
    assert exports["AWS_ENDPOINT_URL_S3"] == default_up.info["endpoints"]["s3"]
    assert exports["AWS_REGION"] == default_up.info["region"]
    screen = "\n".join(default_up.stdout)
    assert default_up.info["secret_access_key"] not in screen


def test_the_started_stand_in_serves_the_guide_role(default_up: Running) -> None:
    info = default_up.info
    credentials = default_up.client("sts").assume_role(
        RoleArn=info["role_arn"], RoleSessionName="cli", ExternalId=info["external_id"]
    )["Credentials"]
    data = default_up.client("redshift-data", credentials)
    started = data.execute_statement(
        WorkgroupName=info["workgroup"],
        Database=info["database"],
        Sql="select count(*) from public.category",
        WaitTimeSeconds=20,
    )
    assert data.describe_statement(Id=started["Id"])["Status"] == "FINISHED"
    with pytest.raises(ClientError) as refused:
        default_up.client("sts").assume_role(RoleArn=info["role_arn"], RoleSessionName="cli")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_sigterm_stops_it_and_removes_its_postgresql(default_up: Running) -> None:
    # Last of the tests that use `default_up`: it stops it.
    with psycopg.connect(default_up.info["postgres_dsn"]) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    folder = Path(row[0]).parent
    assert folder.is_dir()
    code, stderr = default_up.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert not folder.exists()
    port = int(default_up.info["endpoints"]["sts"].rsplit(":", 1)[1])
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


def test_deny_leaves_the_action_out_of_the_role_policy(unsafe_up: Running) -> None:
    info = unsafe_up.info
    credentials = unsafe_up.client("sts").assume_role(
        RoleArn=info["role_arn"], RoleSessionName="cli"
    )["Credentials"]
    data = unsafe_up.client("redshift-data", credentials)
    target = {"WorkgroupName": info["workgroup"], "Database": info["database"]}
    assert "public" in data.list_schemas(**target)["Schemas"]
    with pytest.raises(ClientError) as refused:
        data.list_tables(**target)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "redshift-data:ListTables" in refused.value.response["Error"]["Message"]


def test_trust_without_external_id_lets_assume_role_pass_without_it(unsafe_up: Running) -> None:
    sts = unsafe_up.client("sts")
    answer = sts.assume_role(RoleArn=unsafe_up.info["role_arn"], RoleSessionName="no-external-id")
    assert answer["AssumedRoleUser"]["Arn"].endswith("/no-external-id")


def test_a_taken_port_is_one_line_and_exit_4() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [SHIFTSYNC, "local", "up", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_environment(),
        )
    assert done.returncode == 4
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    # The error in one line, then the project's usual `fix:` line.
    assert lines[0] == f"error: port {port} on 127.0.0.1 is taken"
    assert len(lines) <= 2
    assert all(line.startswith("  fix: ") for line in lines[1:])
