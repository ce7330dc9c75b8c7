"""The stand-in of Redshift Serverless: one process on 127.0.0.1, two AWS accounts, one workgroup.

A platform account holds the IAM user whose static keys shiftsync runs with; a customer account
owns the workgroup, its database, the staging bucket and the role shiftsync assumes. IAM is
enforced on every call once the fixtures exist.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Self

import boto3
import psycopg

from shiftsync.aws.destination_policy import destination_statements, glue_location
from shiftsync.aws.policy import REDSHIFT_DATA_ACTIONS
from shiftsync.aws.policy import S3_ACTIONS as S3_ACTIONS
from shiftsync.errors import StandInError
from shiftsync.local import front_rules
from shiftsync.local.data_api import plugin as redshift_data
from shiftsync.local.data_api import sessions as redshift_data_sessions
from shiftsync.local.data_api import state as redshift_data_state
from shiftsync.local.data_api import system_views
from shiftsync.local.data_api.csv_framing import CsvFraming
from shiftsync.local.data_api.results import Limits
from shiftsync.local.data_api.statements import DataApiEngine
from shiftsync.local.dialect import char_bytes
from shiftsync.local.faults import hooks as fault_hooks
from shiftsync.local.faults import http as fault_http
from shiftsync.local.faults.kinds import FaultRegistry, FaultSpec
from shiftsync.local.glue import auth as glue_auth
from shiftsync.local.glue import versions as glue_versions
from shiftsync.local.iam import evaluation as iam
from shiftsync.local.info import StandInInfo as StandInInfo
from shiftsync.local.postgres import TempPostgres
from shiftsync.local.server import StandInServer, ensure_port_free
from shiftsync.local.unload.execute import UnloadExecutor, UnloadSettings

log = logging.getLogger("shiftsync.local")

PLATFORM_ACCOUNT: Final = "111111111111"
CUSTOMER_ACCOUNT: Final = "222222222222"
REGION: Final = "us-east-1"
USER_NAME: Final = "shiftsync-runner"
ROLE_NAME: Final = "shiftsync-reader"
WORKGROUP: Final = "shiftsync-demo"
# A provisioned cluster beside the workgroup, on the same database (Data API with
# ClusterIdentifier: IAM temporary credentials, DbUser or a Secrets Manager secret).
CLUSTER: Final = "shiftsync-cluster"
DATABASE: Final = "dev"
BUCKET: Final = "shiftsync-staging-222222222222"
# A bucket for S3 destinations (Parquet, Iceberg, Delta), which the role may write: the
# statements `shiftsync policy` prints for a destination there.
LAKE_BUCKET: Final = "shiftsync-lake-222222222222"
# The Glue database the role may use as an Iceberg namespace (the destination's default).
LAKE_GLUE_DATABASE: Final = "shiftsync"

# The product guide's nine actions and the five S3 actions of the staging bucket: the same
# lists `shiftsync policy` grants, so the stand-in's role is the one the product asks for.
GUIDE_ACTIONS: Final = REDSHIFT_DATA_ACTIONS


@dataclass(frozen=True)
class StandInOptions:
    port: int = 0
    seed: str | None = "tickit"
    scale: float = 0.01
    deny: Sequence[str] = ()
    trust_without_external_id: bool = False
    role_policy: Mapping[str, Any] | None = None
    trust_policy: Mapping[str, Any] | None = None
    external_id: str | None = None
    limits: Limits = field(default_factory=Limits)
    # UNLOAD writes one or more files per slice, as a Redshift workgroup with this many slices.
    slices: int = 2
    # Redshift's setting of that name: off (the default) folds quoted identifiers to lower case.
    enable_case_sensitive_identifier: bool = False


def guide_permission_policy(bucket: str, deny: Sequence[str] = ()) -> dict[str, Any]:
    """The guide's permission policy plus the S3 statement, without the denied actions."""
    denied = {d.lower() for d in deny}
    data_actions = [a for a in GUIDE_ACTIONS if a.lower() not in denied]
    s3_actions = [a for a in S3_ACTIONS if a.lower() not in denied]
    statements: list[dict[str, Any]] = []
    if data_actions:
        statements.append({"Effect": "Allow", "Action": data_actions, "Resource": "*"})
    if s3_actions:
        statements.append(
            {
                "Effect": "Allow",
                "Action": s3_actions,
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def lake_statements(deny: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The statements `shiftsync policy` prints for the lake bucket and for an Iceberg
    destination on the Glue database `shiftsync`, without the denied glue: actions (an `s3:`
    deny means the staging bucket, as before the lake existed)."""
    statements = destination_statements(
        "aws",
        [("lake", f"s3://{LAKE_BUCKET}"), ("lake", glue_location(LAKE_GLUE_DATABASE))],
        region=REGION,
        account=CUSTOMER_ACCOUNT,
    )
    denied = {d.lower() for d in deny if d.lower().startswith("glue:")}
    kept: list[dict[str, Any]] = []
    for statement in statements:
        actions = [a for a in statement["Action"] if a.lower() not in denied]
        if actions:
            kept.append({**statement, "Action": actions})
    return kept


def guide_trust_policy(principal: str, external_id: str | None) -> dict[str, Any]:
    """The guide's trust policy: the platform principal with the external ID, and Redshift."""
    platform: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "sts:AssumeRole",
    }
    if external_id is not None:
        platform["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    redshift = {
        "Effect": "Allow",
        "Principal": {"Service": "redshift.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    return {"Version": "2012-10-17", "Statement": [platform, redshift]}


class StandIn:
    """Start with `StandIn(options).start()` or as a context manager; `stop()` cleans up."""

    def __init__(self, options: StandInOptions | None = None) -> None:
        self.options = options or StandInOptions()
        self.pg: TempPostgres | None = None
        self.engine: DataApiEngine | None = None
        self.sessions: redshift_data_sessions.SessionRegistry | None = None
        self.server: StandInServer | None = None
        self._info: StandInInfo | None = None
        self.workgroup = redshift_data.Workgroup(WORKGROUP, CUSTOMER_ACCOUNT, REGION)
        self.cluster = redshift_data_state.Cluster(CLUSTER, CUSTOMER_ACCOUNT, REGION)
        self.faults = FaultRegistry(actions={"expire_credentials": _expire_credentials})
        self.unload_settings = UnloadSettings(REGION, CUSTOMER_ACCOUNT, slices=self.options.slices)

    @property
    def info(self) -> StandInInfo:
        if self._info is None:
            raise StandInError("the stand-in is not running", fix="call start() first")
        return self._info

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    def start(self) -> Self:
        if self.options.port:
            ensure_port_free(self.options.port)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        iam.install()
        front_rules.install()
        redshift_data.install()
        glue_auth.install()
        glue_versions.install()
        self.pg = TempPostgres().start()
        self._prepare_database()
        self.engine = DataApiEngine(self.pg, self.options.limits)
        self.engine.case_sensitive_identifiers = self.options.enable_case_sensitive_identifier
        self.engine.unload_handler = UnloadExecutor(self.unload_settings)
        self.engine.statement_hook = fault_hooks.statement_hook(self.faults, self.engine)
        self.sessions = redshift_data_sessions.SessionRegistry(self.engine)
        redshift_data_sessions.install(self.sessions)
        system_views.SystemViews(self.engine)
        redshift_data.activate(
            redshift_data.PluginState(
                self.engine,
                {self.workgroup.name: self.workgroup},
                before_operation=fault_hooks.before_operation(self.faults),
                clusters={CLUSTER: self.cluster},
            )
        )
        # Fixtures are made over HTTP with enforcement off, then enforcement goes on for good.
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
        self.server = StandInServer(self.options.port, wrap=self._wrap_app)
        self.server.start()
        self._info = self._create_fixtures()
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0

    def _wrap_app(self, app: Any) -> Any:
        return fault_http.FaultMiddleware(app, self.faults)

    def _prepare_database(self) -> None:
        assert self.pg is not None
        with psycopg.connect(self.pg.dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
            # Redshift lets every user create tables in public; PostgreSQL 15 no longer does.
        with psycopg.connect(self.pg.dsn(DATABASE), autocommit=True) as conn:
            conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
            from shiftsync.local.dialect import flavour
            from shiftsync.local.seed import seeding as seed

            flavour.install_flavour(conn, DATABASE)
            char_bytes.install_character_rules(conn)
            system_views.install(conn)
            db_user = f"IAMR:{ROLE_NAME}"
            conn.execute(
                psycopg.sql.SQL("CREATE ROLE {} LOGIN").format(psycopg.sql.Identifier(db_user))
            )
            if self.options.seed == "tickit":
                seed.seed_all(conn, self.options.scale, grantee=db_user)
            elif self.options.seed not in (None, "none"):
                raise StandInError(
                    f"unknown seed {self.options.seed!r}", fix="use --seed tickit or --seed none"
                )

    def _admin_client(self, service: str, account_id: str) -> Any:
        client: Any = boto3.client(
            service,  # type: ignore[call-overload]
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="fixture",
            aws_secret_access_key="fixture",  # noqa: S106 - enforcement is off for fixtures
        )

        def add_account(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account_id

        client.meta.events.register("before-send.*.*", add_account)
        return client

    def _create_fixtures(self) -> StandInInfo:
        options = self.options
        platform_iam = self._admin_client("iam", PLATFORM_ACCOUNT)
        platform_iam.create_user(UserName=USER_NAME)
        platform_iam.put_user_policy(
            UserName=USER_NAME,
            PolicyName="assume-customer-roles",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Resource": f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/*",
                        }
                    ],
                }
            ),
        )
        key = platform_iam.create_access_key(UserName=USER_NAME)["AccessKey"]
        principal_arn = f"arn:aws:iam::{PLATFORM_ACCOUNT}:user/{USER_NAME}"
        external_id = options.external_id or f"shiftsync-{uuid.uuid4()}"
        trust = options.trust_policy or guide_trust_policy(
            f"arn:aws:iam::{PLATFORM_ACCOUNT}:root",
            None if options.trust_without_external_id else external_id,
        )
        permissions = options.role_policy or guide_permission_policy(BUCKET, options.deny)
        if options.role_policy is None:
            lake = lake_statements(options.deny)
            permissions = {**permissions, "Statement": [*permissions["Statement"], *lake]}
        role_arn = self.create_role(ROLE_NAME, permissions, trust)
        s3 = self._admin_client("s3", CUSTOMER_ACCOUNT)
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket=LAKE_BUCKET)
        assert self.pg is not None
        return StandInInfo(
            region=REGION,
            endpoint=self.endpoint,
            access_key_id=key["AccessKeyId"],
            secret_access_key=key["SecretAccessKey"],
            principal_arn=principal_arn,
            role_arn=role_arn,
            external_id=external_id,
            workgroup=WORKGROUP,
            database=DATABASE,
            bucket=BUCKET,
            postgres_dsn=self.pg.url(DATABASE),
        )

    def create_role(
        self,
        name: str,
        permission_policy: Mapping[str, Any],
        trust_policy: Mapping[str, Any],
        account_id: str = CUSTOMER_ACCOUNT,
    ) -> str:
        """Create (or replace) a role in the customer account; works while IAM is enforced."""
        from moto.iam.models import iam_backends

        backend = iam_backends[account_id]["aws"]
        try:
            backend.delete_role_policy(name, "shiftsync")
            backend.delete_role(name)
        except Exception:  # a role of that name did not exist yet
            log.debug("role %s did not exist", name)
        role = backend.create_role(
            role_name=name,
            assume_role_policy_document=json.dumps(trust_policy),
            path="/",
            permissions_boundary=None,
            description="created by the shiftsync stand-in",
            tags=[],
            max_session_duration="3600",
        )
        backend.put_role_policy(name, "shiftsync", json.dumps(permission_policy))
        return str(role.arn)

    def set_role_policy(
        self, name: str, permission_policy: Mapping[str, Any], account_id: str = CUSTOMER_ACCOUNT
    ) -> None:
        """Replace a role's permission policy, as an administrator would while sessions live."""
        from moto.iam.models import iam_backends

        backend = iam_backends[account_id]["aws"]
        backend.put_role_policy(name, "shiftsync", json.dumps(permission_policy))

    def role_policy(self, name: str, account_id: str = CUSTOMER_ACCOUNT) -> dict[str, Any]:
        """A role's permission policy as it is now (what `set_role_policy` put, or the start's)."""
        from moto.iam.models import iam_backends

        backend = iam_backends[account_id]["aws"]
        _, document = backend.get_role_policy(name, "shiftsync")
        loaded: dict[str, Any] = json.loads(document)
        return loaded

    def set_csv_framing(self, framing: CsvFraming) -> None:
        """Serve GetStatementResultV2 pages in this framing from now on (tests, demos)."""
        state = redshift_data_state.active()
        if state is None:
            raise StandInError("the stand-in is not running", fix="call start() first")
        state.csv_framing = framing

    def admin_connection(self) -> psycopg.Connection[Any]:
        """A superuser connection to the workgroup's database (for tests and the demo)."""
        assert self.pg is not None
        return psycopg.connect(self.pg.dsn(DATABASE), autocommit=True)

    def stop(self) -> None:
        redshift_data.activate(None)
        if self.sessions is not None:
            self.sessions.close_all()
            redshift_data_sessions.install(None)
            self.sessions = None
        if self.server is not None:
            try:
                self.server.stop()
            except Exception:  # stopping is best effort
                log.exception("stopping the server failed")
            self.server = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        if self.pg is not None:
            self.pg.stop()
            self.pg = None
        _reset_moto()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _expire_credentials(_spec: FaultSpec) -> dict[str, Any]:
    return {"expired_sessions": iam.expire_all_sessions()}


def _reset_moto() -> None:
    """Forget every account, user, role and bucket, so a next stand-in starts clean."""
    try:
        from moto.backends import get_backend
        from moto.core.base_backend import BackendDict

        for service in ("iam", "sts", "s3"):
            backends: BackendDict[Any] = get_backend(service)
            backends.reset()
        # IAM enforcement is process-wide in moto: turn it off again (moto's default).
        from moto import settings

        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    except Exception:
        log.exception("resetting moto failed")


@contextmanager
def running(options: StandInOptions | None = None) -> Iterator[StandIn]:
    stand_in = StandIn(options).start()
    try:
        yield stand_in
    finally:
        stand_in.stop()
