"""Cost guardrails of a sync: its run window, its compute budget, and what a run spent.

- `only_between: HH:MM-HH:MM` (UTC): outside the window a run is refused before it starts
  (OutsideWindowError, exit code 5); nothing is read, written or recorded.
- `max_compute_seconds`: the source stops starting statements once its statements have run
  that long (redshift/spend.py); tables not finished fail with a BudgetError.
- Once the tables' Redshift statements are done (engine/cost_watch.py: while the workgroup is
  still awake), `run_cost` asks SYS_QUERY_HISTORY what the run's statements cost (by
  query id), and SYS_SERVERLESS_USAGE what the workgroup was charged meanwhile where the role
  may read it (superusers only on AWS); the run record keeps both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

from shiftsync.config import SyncConfig
from shiftsync.config.validators import parse_window
from shiftsync.engine.run_context import Source
from shiftsync.engine.runs import CostJson
from shiftsync.errors import OutsideWindowError, ShiftsyncError
from shiftsync.redshift.data_api_results import Row, field_int
from shiftsync.redshift.spend import Spend

log = logging.getLogger("shiftsync.engine")

# Query ids per SYS_QUERY_HISTORY statement: well inside the Data API's 100 KB of SQL.
IDS_PER_QUERY: Final = 2000


def inside_window(window: str, now: datetime) -> bool:
    start, end = parse_window(window)
    minute = now.astimezone(UTC).hour * 60 + now.astimezone(UTC).minute
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def check_window(sync_name: str, sync: SyncConfig, now: datetime | None = None) -> None:
    """OutsideWindowError when the sync may not run now."""
    window = sync.only_between
    if window is None:
        return
    now = now or datetime.now(UTC)
    if inside_window(window, now):
        return
    raise OutsideWindowError(
        f"sync {sync_name} may run only between {window.replace('-', ' and ')} UTC "
        f"(only_between), and it is {now.astimezone(UTC):%H:%M} UTC now: nothing was run",
        fix=f"run it inside the window, or change syncs.{sync_name}.only_between in shiftsync.yaml",
    )


def history_sql(query_ids: Sequence[int]) -> str:
    """The run's statements in SYS_QUERY_HISTORY (ids are integers: nothing to quote)."""
    listed = ", ".join(str(int(i)) for i in query_ids)
    return (
        "SELECT query_id, execution_time, elapsed_time\n"
        f"FROM sys_query_history\nWHERE query_id IN ({listed})"
    )


def usage_sql(started: datetime, ended: datetime) -> str:
    """The workgroup's usage over the run's minutes (timestamps as literals of our making)."""
    low = started.astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None)
    high = ended.astimezone(UTC).replace(tzinfo=None)
    return (
        "SELECT sum(compute_seconds), sum(charged_seconds)\nFROM sys_serverless_usage\n"
        f"WHERE end_time > '{low:%Y-%m-%d %H:%M:%S}' AND start_time <= '{high:%Y-%m-%d %H:%M:%S}'"
    )


def spend_figures(spend: Spend) -> CostJson:
    """What is known of the run's statements without asking Redshift: their count and
    DescribeStatement Duration, the budget and the statements it refused."""
    return {
        "statements": spend.statements,
        "describe_seconds": round(spend.seconds, 3),
        "budget_seconds": spend.budget_seconds,
        "refused_statements": spend.refused,
        "notes": [],
    }


def run_cost(
    source: Source,
    started: datetime,
    ended: datetime,
    *,
    serverless: bool = True,
    query: Callable[[str], list[Row]] | None = None,
) -> CostJson:
    """What Redshift spent on the run's statements (and, `serverless`, what the workgroup was
    charged: a provisioned cluster has no SYS_SERVERLESS_USAGE); `query` asks the views
    (the source's `query_unbudgeted` by default)."""
    spend = source.spend
    query = query or source.query_unbudgeted
    cost = spend_figures(spend)
    notes = cost["notes"]
    ids = list(spend.query_ids)
    found: set[int] = set()
    execution = elapsed = 0
    try:
        for first in range(0, len(ids), IDS_PER_QUERY):
            for row in query(history_sql(ids[first : first + IDS_PER_QUERY])):
                found.add(field_int(row[0]))
                execution += field_int(row[1] or 0)
                elapsed += field_int(row[2] or 0)
        # The view fills with a delay: a statement it does not hold yet counts by its Duration.
        missing = [i for i in ids if i not in found]
        later = sum(spend.durations.get(i, 0) for i in missing) / 1e9
        cost["compute_seconds"] = round(execution / 1e6 + later, 3)
        cost["elapsed_seconds"] = round(elapsed / 1e6 + later, 3)
        cost["source"] = "sys_query_history"
        if missing:
            notes.append(
                f"SYS_QUERY_HISTORY holds {len(ids) - len(missing)} of the run's {len(ids)} "
                f"statements yet (it fills with a delay): the other {len(missing)} count by "
                "their Duration"
            )
    except ShiftsyncError as error:
        log.info("SYS_QUERY_HISTORY could not be read: %s", error)
        cost["compute_seconds"] = cost["describe_seconds"]
        cost["source"] = "describe_statement"
        notes.append(f"SYS_QUERY_HISTORY could not be read ({error.message})")
    if not serverless:
        return cost
    try:
        used, charged = query(usage_sql(started, ended))[0]
        cost["serverless_rpu_seconds"] = None if used is None else float(used)
        cost["serverless_charged_rpu_seconds"] = None if charged is None else field_int(charged)
    except ShiftsyncError as error:
        notes.append(
            f"the workgroup's usage (SYS_SERVERLESS_USAGE) is for superusers only: {error.message}"
        )
    return cost


__all__ = [
    "check_window",
    "history_sql",
    "inside_window",
    "run_cost",
    "spend_figures",
    "usage_sql",
]
