"""A network that fails before AWS answers: one error and one fix, exit code 3, no traceback.

The endpoints are real: a name that does not resolve (`.invalid` never does), TLS spoken to
the stand-in's plain-HTTP port, and a port on 127.0.0.1 where nothing listens.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from botocore.config import Config

from shiftsync import read_table
from shiftsync.errors import AccessError, ConfigError
from shiftsync.local.postgres import free_port
from shiftsync.local.standin import StandIn, StandInInfo
from shiftsync.redshift.retry import RetryPolicy
from tests.support import Cli, Ran, write_role_workspace

Endpoint = Callable[[StandIn], str]
ENDPOINTS: dict[str, tuple[Endpoint, str]] = {
    "dns": (lambda _s: "http://shiftsync-nowhere.invalid", "could not be resolved (DNS)"),
    "tls": (lambda s: s.endpoint.replace("http://", "https://"), "TLS handshake"),
    "unreachable": (lambda _s: f"http://127.0.0.1:{free_port()}", "no connection to"),
}


@pytest.fixture(autouse=True)
def one_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's own retries (6, with back-off) would only make these tests slow."""
    monkeypatch.setattr(
        "shiftsync.aws.session.CLIENT_CONFIG",
        Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def _one_pair(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert sum(line.startswith("error:") for line in lines) == 1, err
    assert sum(line.strip().startswith("fix:") for line in lines) == 1, err
    assert "Traceback" not in err


def _cut_off(monkeypatch: pytest.MonkeyPatch, standin: StandIn, variable: str, kind: str) -> str:
    """Point the endpoint variable at a network failure of `kind`; the words its error says."""
    endpoint, words = ENDPOINTS[kind]
    monkeypatch.setenv(variable, endpoint(standin))
    return words


def _assert_unreached(ran: Ran, service: str, words: str) -> None:
    assert ran.code == 3, ran.out + ran.err
    _one_pair(ran.err)
    assert f"{service} could not be reached" in ran.err
    assert words in ran.err


def _scheduled_workspace(tmp_path: Path, info: StandInInfo) -> None:
    """A workspace whose syncs never ran and are due under `schedule --once`."""
    workspace = write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    config = yaml.safe_load(workspace.config_path.read_text())
    for sync in config["syncs"].values():
        sync["schedule"] = "0 3 * * *"
    workspace.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.mark.parametrize("kind", list(ENDPOINTS))
@pytest.mark.parametrize("command", ["sync", "discover"])
def test_sts_out_of_reach(
    cli: Cli,
    standin: StandIn,
    info: StandInInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    command: str,
) -> None:
    write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    words = _cut_off(monkeypatch, standin, "AWS_ENDPOINT_URL_STS", kind)
    _assert_unreached(cli(command, "-w", str(tmp_path)), "sts", words)


@pytest.mark.parametrize("kind", ["dns", "tls"])
def test_the_data_api_out_of_reach_in_read_table(
    standin: StandIn,
    info: StandInInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    write_role_workspace(tmp_path, info, info.role_arn, external_id=info.external_id)
    words = _cut_off(monkeypatch, standin, "AWS_ENDPOINT_URL_REDSHIFT_DATA", kind)
    with pytest.raises(AccessError) as failed:
        list(read_table(tmp_path, "public.category", method="data_api"))
    assert "redshift-data could not be reached" in failed.value.message
    assert words in failed.value.message
    assert "AWS_ENDPOINT_URL_REDSHIFT_DATA" in (failed.value.fix or "")


def test_a_session_longer_than_the_role_allows_is_named(
    cli: Cli, info: StandInInfo, tmp_path: Path
) -> None:
    write_role_workspace(
        tmp_path,
        info,
        info.role_arn,
        external_id=info.external_id,
        extra="    session_duration_seconds: 7200\n",
    )
    ran = cli("discover", "-w", str(tmp_path))
    assert ran.code == ConfigError.exit_code, ran.out + ran.err
    _one_pair(ran.err)
    assert "above the role's maximum" in ran.err
    assert "session_duration_seconds" in ran.err


@pytest.mark.parametrize("kind", list(ENDPOINTS))
def test_schedule_once_with_sts_out_of_reach(
    cli: Cli,
    standin: StandIn,
    info: StandInInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    _scheduled_workspace(tmp_path, info)
    words = _cut_off(monkeypatch, standin, "AWS_ENDPOINT_URL_STS", kind)
    _assert_unreached(cli("schedule", "--once", "-w", str(tmp_path)), "sts", words)


@pytest.mark.parametrize("kind", ["dns", "unreachable"])
def test_schedule_once_with_the_data_api_out_of_reach(
    cli: Cli,
    standin: StandIn,
    info: StandInInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    _scheduled_workspace(tmp_path, info)
    words = _cut_off(monkeypatch, standin, "AWS_ENDPOINT_URL_REDSHIFT_DATA", kind)
    # A dropped connection is retried with back-off (8 attempts): one is enough to see the end.
    monkeypatch.setattr(
        "shiftsync.redshift.data_api.RetryPolicy", lambda: RetryPolicy(max_attempts=1)
    )
    _assert_unreached(cli("schedule", "--once", "-w", str(tmp_path)), "redshift-data", words)
