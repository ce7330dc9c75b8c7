"""The request and answer bodies of the API (the console's forms fill the same models)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shiftsync.config.validators import NAME_RE


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

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": "redshift_serverless",
            "region": self.region,
            "workgroup": self.workgroup,
            "database": self.database,
            "role_arn": self.role_arn,
        }
        if self.unload is not None:
            entry["unload"] = {"bucket": self.unload.bucket}
            if self.unload.region:
                entry["unload"]["region"] = self.unload.region
        return entry


class SyncIn(_Body):
    name: str = Field(pattern=NAME_RE.pattern)
    source: str = Field(description="A connection's name.")
    destination: str = Field(description="A destination's name.")
    tables: list[str] = Field(min_length=1, description='"schema.table" patterns.')
    schedule: str | None = Field(None, description="A cron expression, UTC.")

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
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


__all__ = [
    "ConnectionIn",
    "ErrorBody",
    "ErrorDetail",
    "RunIn",
    "RunOptionsIn",
    "Started",
    "SyncIn",
    "UnloadIn",
]
