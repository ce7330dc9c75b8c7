"""What a run cost, asked while the workgroup is still awake from the run's last statement.

Redshift Serverless bills per second while statements run, with a 60-second minimum each time
the workgroup works after being idle, and a query of a system view is billed like any other.
The cost statements (SYS_QUERY_HISTORY, SYS_SERVERLESS_USAGE: engine/guardrails.py) used to run
after every table was written and verified: after a big table's long write the workgroup had
gone idle, and the cost query alone woke it again.

So the run asks as soon as the last of its tables has run its last Redshift statement (its
read and verification profile, or its delete pass: `TableSync.end_reads`), in a thread of its
own while that table's rows are still written (the question is two statements, a second or
more on AWS, which the table's batches would otherwise wait for), before that table's
write is committed (after it, for a table with a delete pass; then only if the run's last
statement ended at most `AWAKE_SECONDS` before). Statements that still come after that (a
table copied again by `on_mismatch: full_refresh`) are asked about at the end only if the run's
last statement ended at most `AWAKE_SECONDS` before; past that, their DescribeStatement Duration
is counted instead and a note says why, as when the view cannot be read.

AWS documents the per-second billing and its 60-second minimum, but not how long after its
last statement a workgroup counts as idle; 30 seconds (half the minimum) is this module's
choice: that soon after the run's last statement the cost query most likely finds the
workgroup still at work, and later the Duration sum, exact enough, is cheaper than risking a
minute's charge for a few numbers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from shiftsync.engine.guardrails import run_cost, spend_figures
from shiftsync.engine.run_context import Source
from shiftsync.engine.runs import CostJson
from shiftsync.errors import ShiftsyncError
from shiftsync.redshift.data_api_results import Row

log = logging.getLogger("shiftsync.engine")

AWAKE_SECONDS: Final = 30.0
# What the early reading of the cost knew that the Durations of later statements cannot add to.
EARLY_FIGURES: Final = (
    "elapsed_seconds",
    "serverless_rpu_seconds",
    "serverless_charged_rpu_seconds",
)


class CostWatch:
    """Takes the run's cost once every table's Redshift statements are done (thread-safe)."""

    def __init__(
        self, source: Source, started: datetime, tables: Iterable[str], *, serverless: bool
    ) -> None:
        self.source = source
        self.started = started
        self.serverless = serverless
        self._waiting = set(tables)
        self._lock = threading.Lock()
        # The cost taken early, and how many statements (and their Duration) it covered.
        self._taken: tuple[CostJson, int, float] | None = None
        self._asking: threading.Thread | None = None

    def reads_done(self, table: str) -> None:
        """`table` runs no more Redshift statements (it failed, or its reads are done); the
        last one asks what the run cost, now, while the workgroup is awake."""
        with self._lock:
            if table not in self._waiting:
                return
            self._waiting.discard(table)
            if self._waiting or self._asking is not None:
                return
            idle = self.source.spend.idle_seconds()
            if idle is not None and idle > AWAKE_SECONDS:
                return  # after a long commit (a delete pass's table): `final` decides
            self._asking = threading.Thread(target=self._ask, name="shiftsync-cost", daemon=True)
            self._asking.start()

    def _ask(self) -> None:
        spend = self.source.spend
        before, _ = spend.totals()
        asked = 0

        def query(sql: str) -> list[Row]:
            nonlocal asked
            asked += 1
            return self.source.query_unbudgeted(sql)

        try:
            cost = run_cost(
                self.source,
                self.started,
                datetime.now(UTC),
                serverless=self.serverless,
                query=query,
            )
        except ShiftsyncError as error:  # a note at the end, never the table's failure
            log.info("what the run cost could not be read yet: %s", error)
            return
        # Anything else would print a thread's traceback; `final` asks again in the run's thread.
        except Exception:
            log.debug("the early cost question failed", exc_info=True)
            return
        statements, seconds = spend.totals()
        if statements != before + asked:
            return  # another statement ended meanwhile (a table copied again): `final` decides
        with self._lock:
            # The cost's own statements included: they are not the run's to count.
            self._taken = (cost, statements, seconds)

    def final(self, ended: datetime, now: float | None = None) -> CostJson:
        """The run's cost at its end: the one taken early if no statement ran since, else
        asked again while the workgroup is awake, else counted by Duration (with a note)."""
        if self._asking is not None:
            self._asking.join()
        spend = self.source.spend
        with self._lock:
            taken = self._taken
        if taken is not None and spend.statements == taken[1]:
            cost = taken[0].copy()
            cost["refused_statements"] = spend.refused
            return cost
        idle = spend.idle_seconds(now)
        if idle is None or idle <= AWAKE_SECONDS:
            return run_cost(self.source, self.started, ended, serverless=self.serverless)
        return asleep_cost(self.source, idle, taken)


def asleep_cost(source: Source, idle: float, taken: tuple[CostJson, int, float] | None) -> CostJson:
    """The run's cost without a statement: the workgroup has been idle for `idle` seconds,
    and a query now would wake it for a minute's charge. Statements after the early cost (all
    of them without one) count by their DescribeStatement Duration."""
    spend = source.spend
    cost = spend_figures(spend)
    notes = cost["notes"]
    why = (
        f"the run's last statement ended {idle:.0f} s before it did (more than "
        f"{AWAKE_SECONDS:g} s): the workgroup may be idle, and a query would wake it for "
        "60 s at least"
    )
    if taken is None:
        cost["compute_seconds"] = cost["describe_seconds"]
        cost["source"] = "describe_statement"
        notes.append(f"SYS_QUERY_HISTORY was not asked: {why}")
        return cost
    early, statements, seconds = taken
    later = spend.statements - statements
    cost["compute_seconds"] = round(early.get("compute_seconds", 0.0) + spend.seconds - seconds, 3)
    cost["source"] = str(early.get("source", "describe_statement"))
    for key in EARLY_FIGURES:
        if key in early:
            cost[key] = early[key]
    notes += early.get("notes", [])
    notes.append(
        f"{later} statement(s) ran after the cost was read and count by their Duration: {why}"
    )
    return cost


__all__ = ["AWAKE_SECONDS", "CostWatch", "asleep_cost"]
