from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shiftsync.engine.schedule import Slot, due_syncs, next_slot, next_wakeup, previous_slot


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_previous_slot_includes_the_current_minute() -> None:
    assert previous_slot("30 2 * * *", at("2026-01-05 02:30:00")) == at("2026-01-05 02:30:00")
    assert previous_slot("30 2 * * *", at("2026-01-05 02:29:59")) == at("2026-01-04 02:30:00")


def test_the_last_second_before_a_slot_is_not_the_slot() -> None:
    just_before = at("2026-01-05 02:29:59.500000")
    assert previous_slot("30 2 * * *", just_before) == at("2026-01-04 02:30:00")
    assert previous_slot("30 2 * * *", at("2026-01-05 02:30:00.250000")) == at(
        "2026-01-05 02:30:00"
    )
    # A run started just before the slot does not count for it; a run at the slot does.
    since = at("2026-01-01 00:00:00")
    schedules = {"nightly": "30 2 * * *"}
    assert due_syncs(schedules, {"nightly": just_before}, at("2026-01-05 02:30:00.2"), since) == [
        Slot("nightly", at("2026-01-05 02:30:00"))
    ]


def test_next_slot_is_strictly_after() -> None:
    assert next_slot("*/15 * * * *", at("2026-01-05 10:15:00")) == at("2026-01-05 10:30:00")
    assert next_slot("0 0 * * MON", at("2026-01-05 00:00:00")) == at("2026-01-12 00:00:00")


def test_a_sync_is_due_once_per_slot() -> None:
    schedules = {"nightly": "0 3 * * *"}
    since = at("2026-01-01 00:00:00")
    now = at("2026-01-05 03:00:20")
    assert due_syncs(schedules, {"nightly": at("2026-01-04 03:00:01")}, now, since) == [
        Slot("nightly", at("2026-01-05 03:00:00"))
    ]
    # Already run for this slot: not due again until the next one.
    assert due_syncs(schedules, {"nightly": at("2026-01-05 03:00:05")}, now, since) == []


def test_missed_slots_are_caught_up_by_one_run() -> None:
    schedules = {"hourly": "0 * * * *"}
    last = at("2026-01-05 01:00:02")
    now = at("2026-01-05 07:30:00")
    due = due_syncs(schedules, {"hourly": last}, now, since=at("2026-01-05 00:00:00"))
    assert due == [Slot("hourly", at("2026-01-05 07:00:00"))]


def test_a_sync_that_never_ran_waits_for_its_first_slot_after_start() -> None:
    schedules = {"nightly": "0 3 * * *"}
    started = at("2026-01-05 10:00:00")
    assert due_syncs(schedules, {}, started + timedelta(hours=1), started) == []
    first = at("2026-01-06 03:00:00")
    assert due_syncs(schedules, {}, first, started) == [Slot("nightly", first)]


def test_due_syncs_come_oldest_slot_first() -> None:
    schedules = {"b": "0 * * * *", "a": "30 * * * *"}
    last = {"a": at("2026-01-05 08:30:01"), "b": at("2026-01-05 08:00:01")}
    due = due_syncs(schedules, last, at("2026-01-05 09:45:00"), at("2026-01-05 00:00:00"))
    assert [s.sync for s in due] == ["b", "a"]


def test_next_wakeup_is_the_earliest_slot() -> None:
    schedules = {"a": "0 * * * *", "b": "*/20 * * * *"}
    assert next_wakeup(schedules, at("2026-01-05 09:05:00")) == at("2026-01-05 09:20:00")
    assert next_wakeup({}, at("2026-01-05 09:05:00")) is None
