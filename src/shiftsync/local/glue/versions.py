"""Glue's optimistic lock on a table: UpdateTable with a `VersionId` that is no longer the
table's current version is refused with `ConcurrentModificationException`.

pyiceberg's GlueCatalog commits by reading the table (GetTable), then UpdateTable with the
VersionId it read, and retries on that error; the lock is what keeps two writers from both
committing on the same metadata. moto 5.2.5 ignores VersionId, so the check and the update
run here under one lock (moto serves requests on several threads).
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core.exceptions import JsonRESTError

_lock = threading.Lock()
_installed = False


def stale_version(requested: str | None, current: str) -> bool:
    """Whether an UpdateTable naming `requested` must be refused (pure)."""
    return requested is not None and requested != current


def install() -> None:
    """Patch moto's Glue UpdateTable once per process."""
    global _installed
    if _installed:
        return
    from moto.glue.responses import GlueResponse

    original = GlueResponse.update_table

    def update_table(self: GlueResponse) -> Any:
        database_name = str(self.parameters.get("DatabaseName") or "")
        table_input = self.parameters.get("TableInput") or {}
        requested = self.parameters.get("VersionId")
        with _lock:
            table = self.glue_backend.get_table(database_name, str(table_input.get("Name", "")))
            if stale_version(requested, str(table._current_version)):
                # AWS's wording is unverified; the error type is in botocore's model.
                error = JsonRESTError(
                    "ConcurrentModificationException",
                    f"Update table failed: version {requested} is not the table's current "
                    f"version {table._current_version}",
                )
                error.code = 400
                raise error
            return original(self)

    GlueResponse.update_table = update_table  # type: ignore[method-assign]
    _installed = True
