"""The nine actions of the Data API integration, each proven by a real call, then SELECT.

Every Data API call on the workgroup also makes the Data API call
redshift-serverless:GetCredentials for the caller, after the action's own permission check: an
AccessDeniedException that names GetCredentials fails that check, not the action's. On a
provisioned cluster the log-in action is the auth mode's (`credentials_action`):
GetClusterCredentialsWithIAM, GetClusterCredentials, or the secret's GetSecretValue; a secret
is also read here, to prove it holds a username and password (never shown).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final, Literal, NotRequired, TypedDict

from shiftsync.aws.policy import (
    credentials_action,
    credentials_resources,
    data_api_resource,
    database_grants,
)
from shiftsync.config import DataApiTarget, table_name_for_config
from shiftsync.preflight.checks import (
    CANCEL,
    DATA_API_CHECKS,
    DESCRIBE_STATEMENT,
    DESCRIBE_TABLE,
    EXECUTE,
    GET_CREDENTIALS,
    GET_RESULT,
    LIST_DATABASES,
    LIST_SCHEMAS,
    LIST_TABLES,
    READABLE_KINDS,
    TABLE_PRIVILEGES,
    CheckResult,
    Context,
    Outcome,
    grant_fix,
    is_permission_error,
    mentions_get_credentials,
    schema_patterns,
    selected_tables,
    short_list,
    syncs_reading,
)
from shiftsync.redshift.sql import qualified

if TYPE_CHECKING:
    from mypy_boto3_redshift_data.type_defs import (
        DescribeStatementResponseTypeDef,
        ExecuteStatementOutputTypeDef,
    )

STATEMENT_TIMEOUT_SECONDS: Final = 120.0
PRIVILEGE_WORKERS: Final = 8
TERMINAL_STATUSES: Final = frozenset({"FINISHED", "FAILED", "ABORTED"})
OWN_STATEMENT_CONDITION: Final = (
    " with Condition StringEquals redshift-data:statement-owner-iam-userid ${aws:userid}"
)


class Page(TypedDict):
    NextToken: NotRequired[str]


class Statements:
    """Submit statements through the Data API and wait for them to end."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.session.client("redshift-data")
        self.common: DataApiTarget = ctx.conn.data_api_target()

    def submit(self, sql: str) -> Outcome[ExecuteStatementOutputTypeDef]:
        return self.ctx.call(self.client.execute_statement, Sql=sql, **self.common)

    def wait(self, statement_id: str) -> Outcome[DescribeStatementResponseTypeDef]:
        """Poll DescribeStatement until the statement ends (or the deadline passes)."""
        deadline = time.monotonic() + STATEMENT_TIMEOUT_SECONDS
        delay = 0.02
        while True:
            outcome = self.ctx.call(self.client.describe_statement, Id=statement_id)
            if not outcome.ok or outcome.value["Status"] in TERMINAL_STATUSES:
                return outcome
            if time.monotonic() > deadline:
                self.ctx.call(self.client.cancel_statement, Id=statement_id)
                return Outcome(
                    code="Timeout", message=f"still running after {STATEMENT_TIMEOUT_SECONDS:.0f} s"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def run(
        self, sql: str
    ) -> tuple[Outcome[ExecuteStatementOutputTypeDef], Outcome[DescribeStatementResponseTypeDef]]:
        """Submit and wait: (ExecuteStatement's outcome, the last DescribeStatement's)."""
        submitted = self.submit(sql)
        if not submitted.ok:
            return submitted, Outcome()
        return submitted, self.wait(submitted.value["Id"])


def _next(token: str | None) -> Page:
    return {"NextToken": token} if token else {}


class DataApiChecks:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.statements = Statements(ctx)
        self.client = self.statements.client
        self.common = self.statements.common
        self.results: dict[str, CheckResult] = {}
        self.credentials: Literal["ok", "denied", "unknown"] = "unknown"
        self.stopped: str | None = None  # why no further workgroup call is made
        self.login = credentials_action(ctx.conn)  # redshift-serverless:GetCredentials, ...
        self.secret_problem: CheckResult | None = None

    def run(self) -> None:
        if self.ctx.conn.auth_mode == "cluster_secret":
            self.secret_problem = self.read_secret()
        for action, call in (
            (LIST_DATABASES, self.list_databases),
            (LIST_SCHEMAS, self.list_schemas),
            (LIST_TABLES, self.list_tables),
            (DESCRIBE_TABLE, self.describe_table),
        ):
            self.results[action] = self.workgroup_call(action, call)
        self.statement_checks()
        self.results[TABLE_PRIVILEGES] = self.table_privileges()
        self.results[GET_CREDENTIALS] = self.secret_problem or self.get_credentials()
        for name in DATA_API_CHECKS:
            result = self.results[name]
            if name == GET_CREDENTIALS:
                result = CheckResult(self.login, result.status, result.detail, result.fix)
            self.ctx.add(result)

    def login_fix(self) -> str:
        resources = " and ".join(credentials_resources(self.ctx.conn))
        return grant_fix(self.login, resources)

    def read_secret(self) -> CheckResult | None:
        """A failing check when the secret cannot be read or is not a Redshift secret (a JSON
        object with username and password), else None; its username becomes ctx.secret_user."""
        arn = self.ctx.conn.secret_arn or ""
        client = self.ctx.session.client("secretsmanager")
        outcome = self.ctx.call(client.get_secret_value, SecretId=arn)
        if outcome.denied:
            self.credentials = "denied"
            self.stopped = f"{self.login} was refused"
            return CheckResult(
                GET_CREDENTIALS,
                "fail",
                f"{self.login} on {arn} was refused: {outcome.describe()}",
                self.login_fix() + ": the Data API reads the secret as the role",
            )
        if not outcome.ok:
            self.stopped = f"secret {arn} cannot be read"
            return CheckResult(
                GET_CREDENTIALS,
                "fail",
                f"secret {arn} cannot be read: {outcome.describe()}",
                f"check connections.{self.ctx.connection_name}.secret_arn: the secret must exist "
                f"in {self.ctx.conn.region}",
            )
        try:
            document = json.loads(str(outcome.value.get("SecretString") or ""))
        except ValueError:
            document = None
        user = document.get("username") if isinstance(document, dict) else None
        password = document.get("password") if isinstance(document, dict) else None
        if not (isinstance(user, str) and user and isinstance(password, str) and password):
            self.stopped = f"secret {arn} is not a Redshift secret"
            return CheckResult(
                GET_CREDENTIALS,
                "fail",
                f"secret {arn} is not a Redshift secret: it needs a JSON object with username "
                "and password (its values are not shown)",
                'store {"username": "<database user>", "password": "<its password>"} in the '
                "secret (Secrets Manager: Credentials for Amazon Redshift data warehouse), or set "
                f"connections.{self.ctx.connection_name}.secret_arn to such a secret",
            )
        self.ctx.secret_user = user
        return None

    # -- judging ------------------------------------------------------------------------------
    def action_fix(self, action: str) -> str:
        if action in (DESCRIBE_STATEMENT, GET_RESULT, CANCEL):
            return grant_fix(action, '"*"', OWN_STATEMENT_CONDITION)
        return grant_fix(action, data_api_resource(self.ctx.conn))

    def refused(self, action: str, outcome: Outcome[object]) -> CheckResult:
        return CheckResult(
            action, "fail", f"{action} was refused: {outcome.describe()}", self.action_fix(action)
        )

    def judge(self, action: str, outcome: Outcome[object], passed: str) -> CheckResult:
        """A workgroup call's verdict for its action (and what it shows of GetCredentials)."""
        if outcome.ok:
            self.credentials = "ok"
            return CheckResult(action, "pass", passed)
        if outcome.denied and mentions_get_credentials(outcome.message, self.login):
            self.credentials = "denied"
            self.stopped = f"{self.login} was refused"
            return CheckResult(action, "skip", f"not reached: {self.stopped}")
        if outcome.denied:
            return self.refused(action, outcome)
        self.stopped = f"{action} failed"
        conn = self.ctx.conn
        return CheckResult(
            action,
            "fail",
            f"{action} failed: {outcome.describe()}",
            f"check connections.{self.ctx.connection_name}: {conn.target_label} and "
            f"database {conn.database} must exist in {conn.region}",
        )

    def workgroup_call(
        self, action: str, call: Callable[[], tuple[Outcome[object], str]]
    ) -> CheckResult:
        if self.stopped is not None:
            return CheckResult(action, "skip", f"not reached: {self.stopped}")
        outcome, passed = call()
        return self.judge(action, outcome, passed)

    def get_credentials(self) -> CheckResult:
        if self.credentials == "ok":
            return CheckResult(
                GET_CREDENTIALS, "pass", f"the Data API logged in as {self.ctx.db_user}"
            )
        if self.credentials == "denied":
            return CheckResult(
                GET_CREDENTIALS,
                "fail",
                f"the Data API was refused {self.login} for {self.ctx.conn.role_arn}",
                self.login_fix() + ": the Data API calls it to log the role in as its database "
                "user",
            )
        return CheckResult(
            GET_CREDENTIALS,
            "skip",
            f"not reached: no Data API call on the {self.ctx.conn.target_label} got past its "
            "own permission check",
        )

    # -- catalog calls: (outcome, what a pass says) -------------------------------------------
    def list_databases(self) -> tuple[Outcome[object], str]:
        database = self.ctx.conn.database
        names: list[str] = []
        token: str | None = None
        while True:
            page = self.ctx.call(self.client.list_databases, **self.common, **_next(token))
            if not page.ok:
                return page, ""
            names += page.value.get("Databases", [])
            token = page.value.get("NextToken")
            if database in names or not token:
                break
        if database not in names:
            missing: Outcome[object] = Outcome(
                code="DatabaseNotFound",
                message=f"{database} is not among the databases listed: {short_list(names)}",
            )
            return missing, ""
        return page, f"database {database} is listed"

    def list_schemas(self) -> tuple[Outcome[object], str]:
        outcome = self.ctx.call(self.client.list_schemas, **self.common, MaxResults=100)
        if not outcome.ok:
            return outcome, ""
        more = "+" if outcome.value.get("NextToken") else ""
        return outcome, f"listed {len(outcome.value.get('Schemas', []))}{more} schemas"

    def list_tables(self) -> tuple[Outcome[object], str]:
        syncs = syncs_reading(self.ctx.config, self.ctx.connection_name)
        listed: list[tuple[str, str]] = []
        for pattern in schema_patterns(syncs.values()) or ["%"]:
            token: str | None = None
            while True:
                page = self.ctx.call(
                    self.client.list_tables,
                    **self.common,
                    SchemaPattern=pattern,
                    TablePattern="%",
                    **_next(token),
                )
                if not page.ok:
                    return page, ""
                listed += [
                    (table["schema"], table["name"])
                    for table in page.value.get("Tables", [])
                    if table.get("type") in READABLE_KINDS
                ]
                token = page.value.get("NextToken")
                # Without syncs one page proves the permission.
                if not token or not syncs:
                    break
        if not syncs:
            self.ctx.tables = listed[:1]
            return page, f"listed tables (no sync reads connection {self.ctx.connection_name})"
        self.ctx.tables = selected_tables(listed, syncs.values())
        readers = (
            f"sync {next(iter(syncs))} reads"
            if len(syncs) == 1
            else f"syncs {', '.join(syncs)} read"
        )
        return page, f"listed {len(listed)} tables; {readers} {len(self.ctx.tables)} of them"

    def describe_table(self) -> tuple[Outcome[object], str]:
        if self.ctx.tables:
            schema, table = self.ctx.tables[0]
            outcome = self.ctx.call(
                self.client.describe_table, **self.common, Schema=schema, Table=table
            )
            columns = len(outcome.value.get("ColumnList", [])) if outcome.ok else 0
            return outcome, f"described {schema}.{table} ({columns} columns)"
        outcome = self.ctx.call(
            self.client.describe_table, **self.common, Schema="public", MaxResults=1
        )
        return outcome, "described schema public"

    # -- statements ---------------------------------------------------------------------------
    def statement_checks(self) -> None:
        if self.stopped is not None:
            for action in (EXECUTE, DESCRIBE_STATEMENT, GET_RESULT, CANCEL):
                self.results[action] = CheckResult(action, "skip", f"not reached: {self.stopped}")
            return
        submitted = self.statements.submit("select 1")
        self.results[EXECUTE] = self.judge(EXECUTE, submitted, "submitted select 1")
        if not submitted.ok:
            reason = f"not reached: {self.stopped or EXECUTE + ' failed'}"
            for action in (DESCRIBE_STATEMENT, GET_RESULT, CANCEL):
                self.results[action] = CheckResult(action, "skip", reason)
            return
        statement_id = submitted.value["Id"]
        self.results[DESCRIBE_STATEMENT] = self.describe_statement(statement_id)
        self.results[GET_RESULT] = self.get_result(statement_id)
        self.results[CANCEL] = self.cancel()

    def describe_statement(self, statement_id: str) -> CheckResult:
        outcome = self.statements.wait(statement_id)
        if outcome.denied:
            return self.refused(DESCRIBE_STATEMENT, outcome)
        if not outcome.ok:
            return CheckResult(DESCRIBE_STATEMENT, "fail", outcome.describe())
        status, error = outcome.value["Status"], str(outcome.value.get("Error", ""))
        if status == "FINISHED":
            self.ctx.statements_run = True
            return CheckResult(DESCRIBE_STATEMENT, "pass", "select 1 FINISHED")
        # DescribeStatement worked; the statement itself failed in Redshift.
        if mentions_get_credentials(error, self.login):
            self.credentials = "denied"
            self.results[EXECUTE] = CheckResult(
                EXECUTE, "skip", f"not reached: {self.login} was refused"
            )
        else:
            self.results[EXECUTE] = CheckResult(
                EXECUTE,
                "fail",
                f"select 1 ended {status} in Redshift: {error}",
                f"run select 1 in database {self.ctx.conn.database} as an admin: the error "
                "says what the workgroup lacks",
            )
        return CheckResult(DESCRIBE_STATEMENT, "pass", f"select 1 ended {status}")

    def get_result(self, statement_id: str) -> CheckResult:
        # Read even when DescribeStatement was refused: the permission is separate, and
        # `select 1` ends within a moment.
        deadline = time.monotonic() + 10
        while True:
            outcome = self.ctx.call(self.client.get_statement_result, Id=statement_id)
            not_ready = outcome.code == "ResourceNotFoundException"
            if not not_ready or self.ctx.statements_run or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if outcome.denied:
            return self.refused(GET_RESULT, outcome)
        if not outcome.ok:
            return CheckResult(GET_RESULT, "skip", f"not reached: {outcome.describe()}")
        records = outcome.value.get("Records")
        if records != [[{"longValue": 1}]]:
            return CheckResult(GET_RESULT, "warn", f"select 1 returned {records!r}")
        return CheckResult(GET_RESULT, "pass", "read the result of select 1")

    def cancel(self) -> CheckResult:
        # No statement portable between Redshift and the stand-in runs long for sure (Redshift
        # has no pg_sleep): cancel a fresh `select 1` and take "already FINISHED" as proof that
        # the call was allowed.
        submitted = self.statements.submit("select 1")
        if not submitted.ok:
            return CheckResult(CANCEL, "skip", f"not reached: {submitted.describe()}")
        outcome = self.ctx.call(self.client.cancel_statement, Id=submitted.value["Id"])
        if outcome.ok:
            return CheckResult(CANCEL, "pass", "cancelled a running statement")
        if outcome.code == "ValidationException":
            return CheckResult(CANCEL, "pass", "allowed (the statement had already ended)")
        if outcome.denied:
            return self.refused(CANCEL, outcome)
        return CheckResult(CANCEL, "warn", f"{CANCEL} answered {outcome.describe()}")

    # -- SELECT privilege ---------------------------------------------------------------------
    def table_privileges(self) -> CheckResult:
        ctx = self.ctx
        syncs = syncs_reading(ctx.config, ctx.connection_name)
        if not ctx.statements_run:
            return CheckResult(
                TABLE_PRIVILEGES, "skip", "not reached: statements cannot be run and awaited"
            )
        if not syncs:
            return CheckResult(
                TABLE_PRIVILEGES,
                "warn",
                f"no sync reads connection {ctx.connection_name}: table privileges not checked",
                f"add a sync with source: {ctx.connection_name} under syncs:",
            )
        if self.results[LIST_TABLES].status != "pass":
            return CheckResult(TABLE_PRIVILEGES, "skip", f"not reached: {LIST_TABLES} failed")
        if not ctx.tables:
            return CheckResult(
                TABLE_PRIVILEGES,
                "warn",
                f"sync {', '.join(syncs)}: no table of database {ctx.conn.database} is selected",
                'check the tables: patterns ("schema.table", case-sensitive, * and ?) and that '
                f"USAGE on the schemas is granted to {ctx.db_user}",
            )
        with ThreadPoolExecutor(max_workers=PRIVILEGE_WORKERS) as pool:
            errors = dict(zip(ctx.tables, pool.map(self.select_error, ctx.tables), strict=True))
        refused = [(s, t) for (s, t), e in errors.items() if e and is_permission_error(e)]
        denied = [table_name_for_config(s, t) for s, t in refused]
        broken = [
            f"{table_name_for_config(s, t)} ({e})"
            for (s, t), e in errors.items()
            if e and (s, t) not in refused
        ]
        if denied:
            schemas = sorted({schema for schema, _ in refused})
            grants = "\n".join(f"{grant};" for grant in database_grants(ctx.conn, schemas))
            return CheckResult(
                TABLE_PRIVILEGES,
                "fail",
                f"{ctx.db_user} cannot read {len(denied)} of {len(ctx.tables)} tables: "
                f"{short_list(denied)} (permission denied)",
                f"as a database admin, run in database {ctx.conn.database}:\n{grants}",
            )
        if broken:
            return CheckResult(
                TABLE_PRIVILEGES,
                "fail",
                f"{len(broken)} tables could not be read: {short_list(broken)}",
                "fix these tables, or leave them out of the sync (syncs.<name>.exclude)",
            )
        return CheckResult(
            TABLE_PRIVILEGES,
            "pass",
            f"{ctx.db_user} can SELECT from all {len(ctx.tables)} tables the syncs read",
        )

    def select_error(self, table: tuple[str, str]) -> str | None:
        """The error of `SELECT * FROM table LIMIT 0`, or None when it runs."""
        submitted, ended = self.statements.run(f"SELECT * FROM {qualified(*table)} LIMIT 0")
        if not submitted.ok:
            return submitted.describe()
        if not ended.ok:
            return ended.describe()
        if ended.value["Status"] != "FINISHED":
            return str(ended.value.get("Error") or ended.value["Status"])
        return None
