"""shiftsync: copy tables out of Amazon Redshift Serverless, securely and exactly."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from shiftsync.allocator import prefer_system_allocator
from shiftsync.errors import ShiftsyncError, SyncFailedError

prefer_system_allocator()

__version__ = "0.1.0"

if TYPE_CHECKING:
    import pyarrow as pa

    from shiftsync.api import run_sync as run_sync
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


def __getattr__(name: str) -> object:
    """`shiftsync.run_sync` is shiftsync.api's, imported on first use.

    Importing it here would load the engine's modules (pydantic among them) with every
    `import shiftsync`; PEP 562 defers that without a wrapper that restates its signature.
    """
    if name == "run_sync":
        from shiftsync.api import run_sync

        return run_sync
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ShiftsyncError", "SyncFailedError", "__version__", "read_table", "run_sync"]
