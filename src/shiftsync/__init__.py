"""shiftsync: copy tables out of Amazon Redshift Serverless, securely and exactly."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from shiftsync.errors import ShiftsyncError, SyncFailedError

__version__ = "0.1.0"

if TYPE_CHECKING:
    import pyarrow as pa

    from shiftsync.engine.observer import SyncObserver
    from shiftsync.engine.runs import RunRecord
    from shiftsync.redshift.catalog import TableRef
    from shiftsync.workspace import Workspace


def read_table(
    workspace: Workspace | Path | str | None,
    table: str | TableRef,
    connection: str | None = None,
    method: Literal["auto", "data_api", "unload"] = "auto",
    *,
    columns: Sequence[str] | None = None,
    where: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Read one Redshift table as Arrow record batches (see docs/python-api.md).

    `workspace` is a Workspace, a workspace folder or its shiftsync.yaml (None: the current
    folder or the nearest one above it); `table` is `schema.table` or a TableRef;
    `connection` names one in shiftsync.yaml (None: the only one). The table is described now;
    its rows are read as the iterator is consumed, and anything staged in S3 is deleted when
    it ends or is closed.
    """
    # Imported here so that `import shiftsync` stays light (no boto3, no pyarrow).
    from shiftsync.redshift.source import read_table as read

    return read(workspace, table, connection, method, columns=columns, where=where)


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
    """Run one sync and return its run record (see docs/python-api.md, "Running a sync").

    Raises `SyncFailedError` (with `.record`) when some table failed, unless
    `raise_on_failure=False`; any other `ShiftsyncError` when the run could not start.
    """
    from shiftsync.api import run_sync as run

    return run(
        sync,
        workspace=workspace,
        config=config,
        environment=environment,
        tables=tables,
        full_refresh=full_refresh,
        dry_run=dry_run,
        verify=verify,
        raise_on_failure=raise_on_failure,
        observer=observer,
    )


__all__ = ["ShiftsyncError", "SyncFailedError", "__version__", "read_table", "run_sync"]
