"""Which syncs are due, by their `schedule:` cron expressions (UTC). Pure but for the clock.

A sync is due when the latest time its expression names, at or before now, is later than the
start of its last recorded run (or when it never ran and that time is after the scheduler
started). A scheduler that was down does not replay every missed slot: one run catches up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter


@dataclass(frozen=True)
class Slot:
    sync: str
    due_at: datetime


def previous_slot(expression: str, now: datetime) -> datetime:
    """The latest time the expression names at or before `now` (UTC)."""
    # Slots fall on whole seconds and croniter's get_prev is strictly before its start: start
    # one second after `now` cut to its second, so that `now` counts but the next slot does not.
    start = now.replace(microsecond=0)
    probe = croniter(expression, start)
    probe.set_current(start.timestamp() + 1)
    slot: datetime = probe.get_prev(datetime)
    return slot.astimezone(UTC)


def next_slot(expression: str, after: datetime) -> datetime:
    """The first time the expression names strictly after `after` (UTC)."""
    slot: datetime = croniter(expression, after).get_next(datetime)
    return slot.astimezone(UTC)


def due_syncs(
    schedules: Mapping[str, str],
    last_started: Mapping[str, datetime | None],
    now: datetime,
    since: datetime,
) -> list[Slot]:
    """The syncs to run now, oldest due slot first.

    `since` is when the scheduler started: a sync that never ran waits for its first slot
    after that, rather than running at once for a slot long past.
    """
    due: list[Slot] = []
    for sync, expression in schedules.items():
        slot = previous_slot(expression, now)
        last = last_started.get(sync)
        floor = last if last is not None else since
        if slot > floor or (last is None and slot == floor):
            due.append(Slot(sync, slot))
    return sorted(due, key=lambda s: (s.due_at, s.sync))


def next_wakeup(schedules: Mapping[str, str], now: datetime) -> datetime | None:
    """When the next slot of any sync comes."""
    slots = [next_slot(expression, now) for expression in schedules.values()]
    return min(slots) if slots else None
