"""The checks of a table's `deletes` and `lookback` against the table as described.

One function, called by `sync --dry-run` (the configuration check) and by a run before it reads
anything, so that an option the table cannot support is refused with its reason and fix
before anything is read or written.
"""

from __future__ import annotations

from shiftsync.destinations.base import Destination
from shiftsync.engine.deletes import check_deletes, delete_key
from shiftsync.engine.lookback import Lookback, check_lookback, parse_lookback
from shiftsync.engine.selection import TableJob, TablePlan


def check_change_options(
    job: TableJob, kind: str, plan: TablePlan, destination: Destination | None = None
) -> Lookback | None:
    """Refuse a `deletes` or `lookback` the table (or the destination) cannot support; the
    parsed look-back. A destination says it can apply deletes with `supports_deletes`."""
    check_deletes(
        job.name,
        job.deletes,
        kind=kind,
        key=delete_key(plan),
        hashed=plan.hashed,
        destination_kind="" if destination is None else destination.kind,
        destination_supports=destination is None or destination.supports_deletes,
    )
    lookback = parse_lookback(job.lookback) if job.lookback else None
    if lookback is not None and plan.tracking is not None:
        check_lookback(job.name, lookback, plan.tracking, plan.primary_key)
    return lookback


__all__ = ["check_change_options"]
