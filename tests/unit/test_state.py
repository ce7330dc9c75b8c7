from __future__ import annotations

from typing import Any

import pytest

from shiftsync.destinations.base import LoadMode
from shiftsync.engine.state import (
    NOTHING,
    STATE_VERSION,
    TableState,
    all_of,
    build_high_water_sql,
    full_refresh_window,
    incremental_window,
    max_expression,
    migrate_state,
    parse_state,
    state_key,
)
from shiftsync.errors import ConfigError, StateError
from shiftsync.json_types import JsonObject
from shiftsync.redshift.types import Column


def test_state_key_names_sync_schema_and_table() -> None:
    assert state_key("nightly", "public", "sales") == "nightly:public.sales"
    assert state_key("n", "Odd Schema", "Mixed Case") == "n:Odd Schema.Mixed Case"


def test_round_trip() -> None:
    state = TableState("incremental", "2008-12-31 00:00:00.000000", "saletime", "r1", "sales")
    document = state.to_json()
    assert document["version"] == STATE_VERSION
    assert document["target"] == "sales"
    assert parse_state("k", document) == state


def test_none_is_no_state() -> None:
    assert parse_state("k", None) is None


def test_cursor_for_same_field() -> None:
    state = TableState("incremental", "42", "id", "r")
    assert state.cursor_for("id") == "42"


def test_cursor_for_other_field_starts_over() -> None:
    state = TableState("incremental", "42", "id", "r")
    assert state.cursor_for("updated_at") is None


def test_cursor_after_full_refresh_starts_over() -> None:
    state = TableState("full_refresh", None, None, "r")
    assert state.cursor_for("id") is None


def test_migrates_version_0() -> None:
    old = {"cursor_value": "17", "cursor_field": "id"}
    migrated = migrate_state("k", old)
    assert migrated["version"] == STATE_VERSION
    assert migrated["cursor"] == "17"
    assert migrated["tracking_field"] == "id"
    assert migrated["mode"] == "incremental"
    parsed = parse_state("k", old)
    assert parsed is not None
    assert parsed.cursor_for("id") == "17"


def test_a_state_belongs_to_the_target_it_was_committed_with() -> None:
    state = TableState("incremental", "3", "id", "r", target="sales")
    assert state.belongs_to("sales")
    assert not state.belongs_to("sales_v2")


def test_version_1_names_no_target_and_is_taken_as_any_targets() -> None:
    # What shiftsync wrote before states named their target.
    old: JsonObject = {"version": 1, "mode": "incremental", "cursor": "3", "tracking_field": "id",
           "run_id": "r"}  # fmt: skip
    migrated = migrate_state("k", old)
    assert migrated == {**old, "version": 2, "target": None}
    parsed = parse_state("k", old)
    assert parsed == TableState("incremental", "3", "id", "r", target=None)
    assert parsed.belongs_to("sales")
    assert parsed.belongs_to("sales_v2")
    assert parsed.cursor_for("id") == "3"


def test_migrate_does_not_change_its_input() -> None:
    old: dict[str, Any] = {"cursor_value": "17", "cursor_field": "id"}
    migrate_state("k", old)
    assert old == {"cursor_value": "17", "cursor_field": "id"}


def test_current_version_is_unchanged() -> None:
    current = TableState("incremental", "1", "id", "r").to_json()
    assert migrate_state("k", current) == current


def test_newer_version_is_refused() -> None:
    with pytest.raises(StateError, match="newer") as caught:
        parse_state("sync:public.t", {"version": STATE_VERSION + 1, "cursor": "1"})
    assert "sync:public.t" in str(caught.value)
    assert caught.value.fix is not None


@pytest.mark.parametrize(
    "document",
    [
        {"version": "1", "mode": "incremental"},
        {"version": -1},
        {"version": True},
        {"version": 1, "mode": "sideways", "cursor": None, "run_id": ""},
        {"version": 1, "mode": "incremental", "cursor": 17, "tracking_field": "id", "run_id": ""},
        {"version": 1, "mode": "incremental", "cursor": "1", "tracking_field": 3, "run_id": ""},
        {"version": 1, "mode": "incremental", "cursor": "1", "tracking_field": "a", "run_id": 9},
        {
            "version": STATE_VERSION,
            "mode": "incremental",
            "cursor": "1",
            "tracking_field": "a",
            "run_id": "",
            "target": 7,
        },
    ],
)
def test_malformed_state_is_a_state_error(document: dict[str, Any]) -> None:
    with pytest.raises(StateError) as caught:
        parse_state("sync:public.t", document)
    assert "sync:public.t" in str(caught.value)


# --- the window of a run ----------------------------------------------------------------------

SALETIME = Column("saletime", "timestamp")


def test_first_run_replaces_with_every_row_up_to_high() -> None:
    window = incremental_window(
        SALETIME, has_key=True, low=None, high="2008-12-31 00:00:00.000000", at_or_above_low=None
    )
    assert window.load is LoadMode.REPLACE
    assert window.read
    # Rows whose tracking value is NULL are part of the table: a full load takes them.
    assert window.where == (
        '("saletime" <= \'2008-12-31 00:00:00.000000\'::timestamp OR "saletime" IS NULL)'
    )
    # Verification compares the whole selection, never the cursor's window.
    assert window.verify_where is None
    assert (window.cursor_from, window.cursor_to) == (None, "2008-12-31 00:00:00.000000")
    assert window.rows_estimate is None


def test_with_a_key_the_low_bound_is_inclusive_and_rows_merge() -> None:
    window = incremental_window(
        SALETIME, has_key=True, low="2008-01-01 00:00:00", high="2008-02-01 00:00:00",
        at_or_above_low=5,
    )  # fmt: skip
    assert window.load is LoadMode.MERGE
    assert window.where == (
        "\"saletime\" >= '2008-01-01 00:00:00'::timestamp AND "
        "\"saletime\" <= '2008-02-01 00:00:00'::timestamp"
    )
    assert window.verify_where is None
    assert (window.cursor_from, window.cursor_to) == ("2008-01-01 00:00:00", "2008-02-01 00:00:00")
    assert window.rows_estimate == 5


def test_without_a_key_the_low_bound_is_exclusive_and_rows_append() -> None:
    window = incremental_window(
        Column("id", "int8"), has_key=False, low="10", high="20", at_or_above_low=11
    )
    assert window.load is LoadMode.APPEND
    assert window.where == '"id" > 10 AND "id" <= 20'


def test_filter_applies_to_read_and_verification() -> None:
    window = incremental_window(
        Column("id", "int4"), has_key=True, low="1", high="9", at_or_above_low=3,
        filter_sql="qty > 0",
    )  # fmt: skip
    assert window.where == '(qty > 0) AND ("id" >= 1 AND "id" <= 9)'
    assert window.verify_where == "qty > 0"
    full = full_refresh_window("qty > 0")
    assert (full.load, full.read, full.where, full.verify_where) == (
        LoadMode.REPLACE, True, "qty > 0", "qty > 0",
    )  # fmt: skip
    assert full_refresh_window(None).where is None


def test_empty_table_on_first_run_reads_nothing_and_creates_the_table() -> None:
    window = incremental_window(SALETIME, has_key=True, low=None, high=None, at_or_above_low=None)
    assert window.load is LoadMode.REPLACE
    assert not window.read
    assert window.verify_where == NOTHING
    assert window.cursor_to is None


def test_maximum_below_the_cursor_keeps_the_cursor_and_reads_nothing() -> None:
    window = incremental_window(
        Column("id", "int4"), has_key=False, low="50", high="40", at_or_above_low=0
    )
    assert not window.read
    assert (window.cursor_from, window.cursor_to) == ("50", "50")
    assert window.verify_where is None
    assert "below the stored cursor" in window.notes[0]


def test_all_rows_deleted_keeps_the_cursor() -> None:
    window = incremental_window(
        Column("id", "int4"), has_key=True, low="50", high=None, at_or_above_low=0
    )
    assert not window.read
    assert window.cursor_to == "50"


def test_a_malformed_stored_cursor_is_refused_before_any_sql() -> None:
    with pytest.raises(ConfigError, match="not a valid int4"):
        incremental_window(
            Column("id", "int4"), has_key=True, low="1; DROP TABLE x", high="9",
            at_or_above_low=1,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (
            Column("t", "timestamptz"),
            "to_char(convert_timezone('UTC', max(\"t\")), 'YYYY-MM-DD HH24:MI:SS.US') || '+00'",
        ),
        (Column("t", "timestamp"), "to_char(max(\"t\"), 'YYYY-MM-DD HH24:MI:SS.US')"),
        (Column("d", "date"), "to_char(max(\"d\"), 'YYYY-MM-DD')"),
        (Column("s", "varchar"), 'max("s")'),
        (Column("s", "bpchar"), 'max("s")'),
        (Column("n", "numeric", precision=10, scale=2), 'cast(max("n") as varchar)'),
        (Column("i", "int8"), 'cast(max("i") as varchar)'),
    ],
)
def test_max_expression(column: Column, expected: str) -> None:
    assert max_expression(column) == expected


def test_high_water_sql_first_run_and_later() -> None:
    first = build_high_water_sql("public", "sales", SALETIME, None, None)
    assert first == (
        "SELECT to_char(max(\"saletime\"), 'YYYY-MM-DD HH24:MI:SS.US'), NULL, "
        'count(CASE WHEN "saletime" IS NULL THEN 1 END)\nFROM "public"."sales"'
    )
    later = build_high_water_sql("Odd Schema", "T", SALETIME, "2008-01-01 00:00:00", "qty > 0")
    assert later == (
        "SELECT to_char(max(\"saletime\"), 'YYYY-MM-DD HH24:MI:SS.US'), "
        "count(CASE WHEN \"saletime\" >= '2008-01-01 00:00:00'::timestamp THEN 1 END), "
        'count(CASE WHEN "saletime" IS NULL THEN 1 END)\n'
        'FROM "Odd Schema"."T"\n'
        "WHERE qty > 0"
    )


def test_all_of() -> None:
    assert all_of() is None
    assert all_of(None, "") is None
    assert all_of("a") == "a"
    assert all_of("a", None, "b") == "(a) AND (b)"


def test_timestamptz_cursor_text_is_read_back_as_an_instant() -> None:
    window = incremental_window(
        Column("t", "timestamptz"), has_key=True, low="2024-02-29 12:00:00.123456+00",
        high="2024-03-01 00:00:00.000000+00", at_or_above_low=1,
    )  # fmt: skip
    assert window.where is not None
    assert "'2024-02-29 12:00:00.123456+00'::timestamptz" in window.where


# --- rows whose tracking value is NULL ----------------------------------------------------------


def test_a_table_whose_every_tracking_value_is_null_is_still_copied_in_full() -> None:
    window = incremental_window(
        SALETIME, has_key=True, low=None, high=None, at_or_above_low=None, null_rows=4,
        filter_sql="qty > 0",
    )  # fmt: skip
    assert (window.load, window.read) == (LoadMode.REPLACE, True)
    assert window.where == '(qty > 0) AND ("saletime" IS NULL)'
    assert window.verify_where == "qty > 0"
    assert window.cursor_to is None


def test_null_tracked_rows_are_counted_as_a_warning_by_default() -> None:
    window = incremental_window(
        Column("id", "int4"), has_key=True, low="1", high="9", at_or_above_low=3, null_rows=2
    )
    assert window.where == '"id" >= 1 AND "id" <= 9'
    assert window.notes[0].startswith("warning: 2 row(s) have a NULL id")
    assert "null_tracking: carry" in window.notes[0]


def test_carry_merges_null_tracked_rows_on_every_run() -> None:
    window = incremental_window(
        Column("id", "int4"), has_key=True, low="1", high="9", at_or_above_low=3, null_rows=2,
        carry_nulls=True, filter_sql="qty > 0",
    )  # fmt: skip
    assert window.load is LoadMode.MERGE
    assert window.where == '(qty > 0) AND (("id" >= 1 AND "id" <= 9 OR "id" IS NULL))'
    assert window.rows_estimate == 5
    assert window.notes == ()


def test_carry_reads_null_tracked_rows_when_nothing_passed_the_cursor() -> None:
    window = incremental_window(
        Column("id", "int4"), has_key=True, low="9", high="9", at_or_above_low=0, null_rows=2,
        carry_nulls=True,
    )  # fmt: skip
    assert window.read
    assert window.where == '"id" IS NULL'
    assert (window.cursor_from, window.cursor_to) == ("9", "9")


def test_carry_without_a_key_only_warns() -> None:
    window = incremental_window(
        Column("id", "int4"), has_key=False, low="1", high="9", at_or_above_low=3, null_rows=2,
        carry_nulls=True,
    )  # fmt: skip
    assert window.where == '"id" > 1 AND "id" <= 9'
    assert window.notes[0].startswith("warning:")
