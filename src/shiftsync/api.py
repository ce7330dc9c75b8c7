"""`shiftsync.run_sync`: a sync run from Python, for orchestrators (Airflow, Dagster, cron).

The same run as `shiftsync sync`, recorded in the workspace's run history. It returns the run
record; what goes wrong raises from the one error tree of `shiftsync.errors`:

- before any table runs (a wrong configuration, an unknown sync, a refused role): the error
  itself, `ConfigError` (exit code 2), `AccessError` (3), `SourceError`, ...;
- after, when some table failed: `SyncFailedError` with the record as `.record` (unless
  `raise_on_failure=False`, which returns the record with status `failed` or `partial`).

Each ShiftsyncError has `.message`, `.fix` and `.exit_code`. Logs go to the `shiftsync`
logger (configure Python's logging to see them); nothing is printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shiftsync.engine.observer import SyncObserver, SyncOptions
from shiftsync.engine.runs import RunRecord
from shiftsync.errors import SyncFailedError
from shiftsync.workspace import Workspace


def locate_workspace(
    workspace: Workspace | Path | str | None,
    config: Path | str | None = None,
    environment: str | None = None,
) -> Workspace:
    """A Workspace from what a caller gave: one, a folder, its shiftsync.yaml, or `config`."""
    if isinstance(workspace, Workspace):
        return workspace
    return Workspace.locate(
        Path(workspace) if workspace is not None else None,
        config=Path(config) if config is not None else None,
        environment=environment,
    )


def run_sync(
    sync: str | None = None,
    *,
    workspace: Workspace | Path | str | None = None,
    config: Path | str | None = None,
    environment: str | None = None,
    tables: Sequence[str] = (),
    full_refresh: bool = False,
    dry_run: bool = False,
    verify: bool = True,
    raise_on_failure: bool = True,
    observer: SyncObserver | None = None,
) -> RunRecord:
    """Run one sync of a workspace (as `shiftsync sync` does) and return its run record.

    `sync` names a sync of the configuration (None: the only one). The workspace is
    `workspace` (a Workspace, its folder or its shiftsync.yaml), or the folder of `config` (a
    configuration file of any name), else $SHIFTSYNC_CONFIG or the current folder and those
    above; `environment` (else $SHIFTSYNC_ENV) merges its overlay. `tables` limits the run
    ("schema.table" or "table", * and ? as wildcards). `observer` hears each table start,
    progress and end (engine/observer.py).

    Raises SyncFailedError (with `.record`) when some table failed, unless
    `raise_on_failure` is False; any other ShiftsyncError when the run could not start.
    """
    # Imported here: the engine loads boto3, pyarrow and DuckDB, which `import shiftsync`
    # must not.
    from shiftsync.engine.sync import run_sync as run

    found = locate_workspace(workspace, config, environment)
    options = SyncOptions(
        tables=tuple(tables), full_refresh=full_refresh, dry_run=dry_run, verify=verify
    )
    record = run(found, sync, options, observer=observer)
    if raise_on_failure and record.status not in ("ok",) and not dry_run:
        failed = record.failed_tables
        first = failed[0] if failed else None
        detail = f": {first.table}: {first.error}" if first is not None else ""
        raise SyncFailedError(
            f"sync {record.sync}, run {record.run_id}: {record.status}, "
            f"{len(failed)} of {len(record.tables)} tables failed{detail}",
            record=record,
            fix=(first.fix if first is not None and first.fix else None)
            or f"see `shiftsync runs show {record.run_id}` in {found.folder}",
        )
    return record


__all__ = ["locate_workspace", "run_sync"]
