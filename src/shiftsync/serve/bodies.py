"""The request and answer bodies of the API (the console's forms fill the same models).

Answers built from plain dicts are TypedDicts: FastAPI checks them and the OpenAPI document
describes them. They come from `typing_extensions`, which pydantic needs on Python 3.11.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from typing_extensions import TypedDict

from shiftsync.config.validators import NAME_RE, Method
from shiftsync.json_types import JsonObject

# A JSON object a route answers as it is (a run record, a run's summary). The same shape as
# shiftsync.json_types.JsonObject, in pydantic's alias: FastAPI builds the answer's schema
# from the annotation, and pydantic cannot resolve the forward references of a plain alias.
ApiObject: TypeAlias = dict[str, JsonValue]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UnloadIn(_Body):
    bucket: str = Field(description="The S3 bucket UNLOAD stages Parquet files in.")
    region: str | None = Field(None, description="The bucket's region (default: the workgroup's).")


class ConnectionIn(_Body):
    """The product guide's form: workgroup, database, role ARN; optionally bucket and region."""

    name: str = Field(pattern=NAME_RE.pattern, description="The connection's name.")
    region: str = Field(description="The workgroup's AWS region.")
    workgroup: str
    database: str
    role_arn: str
    unload: UnloadIn | None = None

    def entry(self) -> JsonObject:
        entry: JsonObject = {
            "type": "redshift_serverless",
            "region": self.region,
            "workgroup": self.workgroup,
            "database": self.database,
            "role_arn": self.role_arn,
        }
        if self.unload is not None:
            unload: JsonObject = {"bucket": self.unload.bucket}
            if self.unload.region:
                unload["region"] = self.unload.region
            entry["unload"] = unload
        return entry


class SyncIn(_Body):
    name: str = Field(pattern=NAME_RE.pattern)
    source: str = Field(description="A connection's name.")
    destination: str = Field(description="A destination's name.")
    tables: list[str] = Field(min_length=1, description='"schema.table" patterns.')
    schedule: str | None = Field(None, description="A cron expression, UTC.")

    def entry(self) -> JsonObject:
        entry: JsonObject = {
            "source": self.source,
            "destination": self.destination,
            "tables": list(self.tables),
        }
        if self.schedule:
            entry["schedule"] = self.schedule
        return entry


class RunIn(_Body):
    sync: str = Field(description="The sync to run.")
    full_refresh: bool = False
    tables: list[str] = Field(default_factory=list)
    verify: bool = True


class RunOptionsIn(_Body):
    full_refresh: bool = False
    tables: list[str] = Field(default_factory=list)
    verify: bool = True


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable: clients branch on it (docs/serve.md lists them).")
    message: str = Field(description="What was wrong, naming the thing.")
    fix: str | None = Field(description="What to do about it.")


class ErrorBody(BaseModel):
    """Every error answer of the API has this shape."""

    error: ErrorDetail


class Started(BaseModel):
    run_id: str
    sync: str
    status: Literal["running"] = "running"
    url: str


class UnloadView(TypedDict):
    bucket: str
    region: str | None
    prefix: str
    kms_key_id: str | None
    iam_role_arn: str | None


class ConnectionView(TypedDict):
    """A connection as the API shows it (no secret: the external ID and ARNs are not)."""

    name: str
    type: str
    region: str
    workgroup: str | None  # one of the two is set
    cluster_identifier: str | None
    database: str
    role_arn: str
    external_id: str
    principal_arn: str | None
    method: Method
    result_format: Literal["csv", "json"]
    session_duration_seconds: int
    unload: UnloadView | None


class DestinationView(TypedDict):
    """A destination without its secrets: a file's path, or PostgreSQL's schema (not its DSN)."""

    name: str
    type: str
    path: NotRequired[str]
    schema: NotRequired[str]


class PoliciesView(TypedDict):
    connection: str
    principal_arn: str
    principal_from: str
    external_id: str
    formats: dict[str, str]


class SyncView(TypedDict):
    name: str
    source: str
    destination: str
    schedule: str | None
    next_run_at: str | None
    tables: list[str]
    exclude: list[str]
    concurrency: int
    running_run_id: str | None
    last_run: ApiObject | None


class CheckView(TypedDict):
    """A `shiftsync check` the server runs: its results so far (CheckResult.as_json each)."""

    check_id: str
    connection: str
    status: str
    started_at: str
    finished_at: str | None
    planned: list[str]
    results: list[dict[str, str | None]]
    error: dict[str, str | None] | None


__all__ = [
    "ApiObject",
    "CheckView",
    "ConnectionIn",
    "ConnectionView",
    "DestinationView",
    "ErrorBody",
    "ErrorDetail",
    "PoliciesView",
    "RunIn",
    "RunOptionsIn",
    "Started",
    "SyncIn",
    "SyncView",
    "UnloadIn",
    "UnloadView",
]
