"""Shared fixtures: one stand-in of Redshift Serverless for the whole test session.

The stand-in is real (moto's STS/IAM/S3 with IAM enforced, redshift-data on PostgreSQL); the
tests reach it only through the standard AWS variables, as a user's shell would.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.local.postgres import TempPostgres
from shiftsync.local.standin import StandIn, StandInInfo, StandInOptions
from tests.support import ROLE_DB_USER, SEED_KEYS, lowered_limits

# Keep the developer's own AWS configuration out of the tests.
_SCRUBBED = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def pytest_configure(config: pytest.Config) -> None:
    # A suite started with SIGINT ignored (`nohup make test &`, a background job of a script)
    # passes that on to every child it starts, and Python raises no KeyboardInterrupt where
    # SIGINT was ignored at its start: the Ctrl-C tests then waited until their timeout. A
    # handler of this process, unlike an ignored signal, is not inherited across exec.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    stand_in = StandIn(StandInOptions(seed="tickit", scale=0.01)).start()
    saved = {k: os.environ.get(k) for k in (*_SCRUBBED, *stand_in.info.environment())}
    for key in _SCRUBBED:
        os.environ.pop(key, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ.update(stand_in.info.environment())
    try:
        yield stand_in
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stand_in.stop()


@pytest.fixture(autouse=True)
def idle_sessions_expire(request: pytest.FixtureRequest) -> Iterator[None]:
    """Between tests, the stand-in's idle Data API sessions end, as their 15-minute keep-alive
    would in time: each table's snapshot leaves one, and each holds a PostgreSQL connection."""
    yield
    if "standin" in request.fixturenames:
        end_idle_sessions()


def end_idle_sessions() -> None:
    """The stand-in's Data API sessions that run no statement end (rolling back what they
    left open), as their keep-alive would in time."""
    from shiftsync.local.data_api import sessions as redshift_data_sessions

    registry = redshift_data_sessions.active_registry()
    if registry is not None:
        registry.close_idle()


@pytest.fixture(scope="session")
def info(standin: StandIn) -> StandInInfo:
    return standin.info


@pytest.fixture(scope="session")
def assumed(info: StandInInfo) -> AssumedRoleSession:
    return AssumedRoleSession(info.role_arn, info.external_id, info.region)


@pytest.fixture(scope="session")
def redshift_data(assumed: AssumedRoleSession) -> Any:
    return assumed.client("redshift-data")


@pytest.fixture(scope="session")
def s3(assumed: AssumedRoleSession) -> Any:
    return assumed.client("s3")


@pytest.fixture(scope="module")
def postgres() -> Iterator[TempPostgres]:
    """A throwaway PostgreSQL cluster, one for each test module that asks for it."""
    server = TempPostgres().start()
    try:
        yield server
    finally:
        server.stop()


# --- the stand-in's PostgreSQL as its superuser, and throwaway copies of seed tables -------


@pytest.fixture(scope="module")
def admin(standin: StandIn) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection (autocommit) to the stand-in's database, one per test module."""
    with standin.admin_connection() as connection:
        yield connection


@pytest.fixture
def copies(admin: psycopg.Connection[Any]) -> Iterator[Callable[[str, str], str]]:
    """`copy(seed_table, kind)` → the name of a fresh copy in public, dropped after the test."""
    made: list[str] = []

    def copy(seed: str, kind: str) -> str:
        name = f"t_{kind}_{uuid.uuid4().hex[:8]}"
        table = sql.Identifier("public", name)
        admin.execute(
            sql.SQL("CREATE TABLE {} AS SELECT * FROM {}").format(
                table, sql.Identifier("public", seed)
            )
        )
        if seed in SEED_KEYS:
            admin.execute(
                sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                    table, sql.SQL(", ").join(map(sql.Identifier, SEED_KEYS[seed]))
                )
            )
        reader = sql.Identifier(ROLE_DB_USER)
        admin.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, reader))
        admin.execute(sql.SQL("ANALYZE {}").format(table))
        made.append(name)
        return name

    yield copy
    # A run killed in a snapshot (a test that failed at a pause) leaves its session's
    # transaction open, holding the copy: DROP would wait for it forever.
    end_idle_sessions()
    for name in made:
        admin.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("public", name)))


@pytest.fixture
def null_as_text(standin: StandIn) -> Iterator[None]:
    """The stand-in's CSV results write NULL as the text `NULL`, as some CSV writers do."""
    assert standin.engine is not None
    standin.engine.csv_null_text = "NULL"
    try:
        yield
    finally:
        standin.engine.csv_null_text = None


@pytest.fixture
def low_result_cap(standin: StandIn) -> Iterator[int]:
    """The stand-in's Data API result cap lowered so that public.sales (~107 KB) passes it."""
    with lowered_limits(standin, max_result_bytes=30_000):
        yield 30_000
