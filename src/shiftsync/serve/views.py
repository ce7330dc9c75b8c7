"""What the API and the console show, built from the configuration and the run history.

No view holds a secret: a PostgreSQL DSN, webhook URLs and signing secrets are left out
(the external ID and role ARNs are not secrets: the trust policy and the user's copy of the
guide name them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeVar

from shiftsync.aws.policy import POLICY_FORMATS, render_policy_bundle, schemas_read_by
from shiftsync.aws.principal import discover_principal
from shiftsync.config import (
    ConnectionConfig,
    DestinationConfig,
    DuckDBDestinationConfig,
    ParquetDestinationConfig,
    PostgresDestinationConfig,
    SyncConfig,
)
from shiftsync.engine.runs import RunRecord, RunStore
from shiftsync.engine.schedule import next_slot
from shiftsync.errors import ConfigError, ShiftsyncError
from shiftsync.json_types import JsonObject
from shiftsync.serve.bodies import ConnectionView, DestinationView, PoliciesView, SyncView
from shiftsync.serve.jobs import RunJob
from shiftsync.serve.problems import ApiError
from shiftsync.serve.state import ServeState
from shiftsync.workspace import Workspace

HISTORY_RUNS: Final = 30

T = TypeVar("T")


def connection_view(name: str, conn: ConnectionConfig, external_id: str) -> ConnectionView:
    unload = conn.unload
    return {
        "name": name,
        "type": conn.type,
        "region": conn.region,
        "workgroup": conn.workgroup,
        "cluster_identifier": conn.cluster_identifier,
        "database": conn.database,
        "role_arn": conn.role_arn,
        "external_id": external_id,
        "principal_arn": conn.principal_arn,
        "method": conn.method,
        "result_format": conn.result_format,
        "session_duration_seconds": conn.session_duration_seconds,
        "unload": None
        if unload is None
        else {
            "bucket": unload.bucket,
            "region": conn.unload_region,
            "prefix": unload.prefix,
            "kms_key_id": unload.kms_key_id,
            "iam_role_arn": unload.iam_role_arn,
        },
    }


def destination_view(name: str, destination: DestinationConfig) -> DestinationView:
    view: DestinationView = {"name": name, "type": destination.type}
    if isinstance(destination, DuckDBDestinationConfig | ParquetDestinationConfig):
        view["path"] = destination.path
    elif isinstance(destination, PostgresDestinationConfig):
        # The DSN may hold a password: only the schema is shown.
        view["schema"] = destination.db_schema
    return view


def policies_view(workspace: Workspace, name: str) -> PoliciesView:
    """Every format `shiftsync policy` prints, for one connection."""
    name, conn = workspace.config.connection(name)
    external_id = workspace.external_id
    principal, origin = discover_principal(name, conn)
    schemas, _ = schemas_read_by(workspace.config, name)  # the grants `policy` prints
    return {
        "connection": name,
        "principal_arn": principal,
        "principal_from": origin,
        "external_id": external_id,
        "formats": {
            fmt: render_policy_bundle(conn, principal, external_id, fmt, schemas)
            for fmt in POLICY_FORMATS
        },
    }


def sync_view(
    name: str, sync: SyncConfig, last: JsonObject | None, running: RunJob | None
) -> SyncView:
    next_at = None
    if sync.schedule:
        next_at = next_slot(sync.schedule, datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return {
        "name": name,
        "source": sync.source,
        "destination": sync.destination,
        "schedule": sync.schedule,
        "next_run_at": next_at,
        "tables": [t.include for t in sync.tables],
        "exclude": list(sync.exclude),
        "concurrency": sync.concurrency,
        "running_run_id": running.run_id if running and not running.done.is_set() else None,
        "last_run": last,
    }


def run_view(record: RunRecord, live: dict[str, tuple[int, int]] | None = None) -> JsonObject:
    """The run record as the API returns it, with rows read so far for tables still going."""
    data = record.to_json()
    data["status"] = _status(record)
    data.pop("pid", None)
    data.pop("host", None)
    for table in data["tables"]:
        if live and table["status"] in ("planned", "running") and table["table"] in live:
            # The record is written per finished table; the server knows which ones are going.
            table["status"] = "running"
            table["rows_read_so_far"], table["bytes_read_so_far"] = live[table["table"]]
    return data


def _status(record: RunRecord) -> str:
    from shiftsync.engine.runs import effective_status

    return effective_status(record.summary())


def pending_run_view(job: RunJob) -> JsonObject:
    """A run this server started whose record is not written yet (or never will be)."""
    return {
        "run_id": job.run_id,
        "sync": job.sync,
        "started_at": job.started_at,
        "status": "failed" if job.error else "running",
        "finished_at": None,
        "options": job.options.to_json(),
        "tables": [],
        "error": job.error["message"] if job.error else None,
        "fix": job.error["fix"] if job.error else None,
        "notes": [],
    }


@dataclass(frozen=True)
class TablePoint:
    run_id: str
    started_at: str
    rows: int
    seconds: float
    bytes: int
    status: str


def table_history(store: RunStore, sync: str, table: str) -> list[TablePoint]:
    """The table's rows and duration over the last runs of the sync, oldest first."""
    points: list[TablePoint] = []
    for summary in store.list(limit=HISTORY_RUNS, sync=sync):
        try:
            record = store.load(str(summary["run_id"]))
        except ShiftsyncError:  # an unreadable record is skipped, not fatal to the page
            continue
        for run in record.tables:
            if run.table == table and run.status in ("ok", "failed"):
                points.append(
                    TablePoint(
                        record.run_id,
                        record.started_at,
                        run.rows,
                        run.duration_seconds,
                        run.bytes,
                        run.status,
                    )
                )
    return sorted(points, key=lambda p: p.started_at)


def sync_views(state: ServeState, only: str | None = None) -> list[SyncView]:
    """Every sync (or `only` one) with its schedule, last run and running run."""
    workspace = state.workspace()
    store = state.store()
    out = []
    for name, sync in workspace.config.syncs.items():
        if only is not None and name != only:
            continue
        last = store.list(limit=1, sync=name)
        job = state.runs.get_for_sync(name)
        out.append(sync_view(name, sync, last[0] if last else None, job))
    return out


def run_detail(state: ServeState, run_id: str) -> JsonObject:
    """A run's record, or what this server knows of a run it started but has not recorded."""
    job: RunJob | None = state.runs.get(run_id)
    try:
        record = state.store().load(run_id)
    except ConfigError as error:
        if job is not None:
            return pending_run_view(job)
        raise ApiError("not_found", error.message, error.fix) from None
    view = run_view(record, dict(job.live) if job is not None else None)
    if job is not None and not job.done.is_set():
        # The record says finished a moment before the run lets go of its destination and
        # sends its alerts: it is done for clients only when all of that is.
        view["status"] = "running"
    return view


def _need(kind: str, entries: Mapping[str, T], name: str, choices: str) -> tuple[str, T]:
    """The entry `name` of a section of shiftsync.yaml, or a 404 that lists `choices`."""
    if name not in entries:
        raise ApiError(
            "not_found",
            f"shiftsync.yaml has no {kind} named {name!r}",
            f"use one of: {choices}",
        )
    return name, entries[name]


def need_sync(workspace: Workspace, name: str) -> tuple[str, SyncConfig]:
    syncs = workspace.config.syncs
    return _need("sync", syncs, name, ", ".join(syncs) or "none (add one under syncs:)")


def need_connection(workspace: Workspace, name: str) -> tuple[str, ConnectionConfig]:
    connections = workspace.config.connections
    return _need("connection", connections, name, ", ".join(connections))


__all__ = [
    "TablePoint",
    "connection_view",
    "destination_view",
    "need_connection",
    "need_sync",
    "pending_run_view",
    "policies_view",
    "run_detail",
    "run_view",
    "sync_view",
    "sync_views",
    "table_history",
]
