"""plan_schema and widest_type: how an incoming Arrow schema lands in an existing table."""

from __future__ import annotations

import pyarrow as pa
import pytest

from shiftsync.destinations.schema_change import (
    SchemaChange,
    normalize_type,
    plan_schema,
    widest_type,
)
from shiftsync.errors import DestinationError

REDSHIFT = b"shiftsync.redshift_type"
INSTANT = pa.timestamp("us", tz="UTC")
WIDER = (("id", pa.int64()), ("a", pa.string()))


def schema(*columns: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, data_type) for name, data_type in columns])


def types_of(plan_schema_: pa.Schema) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in plan_schema_]


# --- widest_type ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (pa.int16(), pa.int16(), pa.int16()),
        (pa.int16(), pa.int32(), pa.int32()),
        (pa.int16(), pa.int64(), pa.int64()),
        (pa.int32(), pa.int64(), pa.int64()),
        (pa.int64(), pa.int32(), pa.int64()),
        (pa.int64(), pa.int16(), pa.int64()),
        (pa.float32(), pa.float64(), pa.float64()),
        (pa.float64(), pa.float32(), pa.float64()),
        (pa.decimal128(10, 2), pa.decimal128(12, 2), pa.decimal128(12, 2)),
        (pa.decimal128(10, 2), pa.decimal128(10, 4), pa.decimal128(12, 4)),
        (pa.decimal128(38, 10), pa.decimal128(18, 2), pa.decimal128(38, 10)),
        (pa.decimal128(5, 0), pa.decimal128(3, 3), pa.decimal128(8, 3)),
        (pa.string(), pa.large_string(), pa.string()),
        (pa.binary(), pa.large_binary(), pa.binary()),
        (INSTANT, pa.timestamp("us", tz="Europe/Paris"), INSTANT),
        (pa.json_(pa.string()), pa.json_(pa.string()), pa.json_(pa.string())),
        (pa.month_day_nano_interval(), pa.month_day_nano_interval(), pa.month_day_nano_interval()),
    ],
)  # fmt: skip
def test_widest_type_holds_both(old: pa.DataType, new: pa.DataType, expected: pa.DataType) -> None:
    assert widest_type(old, new) == expected


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (pa.string(), pa.int64()),
        (pa.int64(), pa.string()),
        (pa.int64(), pa.float64()),
        (pa.float64(), pa.int32()),
        (pa.int32(), pa.decimal128(38, 0)),
        (pa.decimal128(38, 10), pa.decimal128(38, 12)),  # 28 integer digits + 12 scale > 38
        (pa.timestamp("us"), pa.timestamp("us", tz="UTC")),
        (pa.date32(), pa.timestamp("us")),
        (pa.bool_(), pa.int16()),
        (pa.string(), pa.json_(pa.string())),
        (pa.binary(), pa.string()),
        (pa.time64("us"), pa.month_day_nano_interval()),
    ],
)
def test_widest_type_refuses_lossy_pairs(old: pa.DataType, new: pa.DataType) -> None:
    assert widest_type(old, new) is None


def test_normalize_type_folds_large_types_and_zones() -> None:
    assert normalize_type(pa.large_string()) == pa.string()
    assert normalize_type(pa.large_binary()) == pa.binary()
    assert normalize_type(pa.timestamp("us", tz="+02:00")) == pa.timestamp("us", tz="UTC")
    assert normalize_type(pa.timestamp("us")) == pa.timestamp("us")
    assert normalize_type(pa.decimal128(38, 10)) == pa.decimal128(38, 10)


# --- a new table ------------------------------------------------------------------------------


def test_new_table_takes_the_incoming_schema_nullable() -> None:
    incoming = pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("name", pa.large_string(), metadata={REDSHIFT: b"varchar(20)"}),
            pa.field("at", pa.timestamp("us", tz="Asia/Tokyo")),
        ]
    )
    plan = plan_schema("t", None, incoming, "evolve")
    assert types_of(plan.schema) == [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
    ]
    assert all(f.nullable for f in plan.schema)
    assert plan.schema.field("name").metadata == {REDSHIFT: b"varchar(20)"}
    assert plan.write_columns == ("id", "name", "at")
    assert plan.changes == ()


@pytest.mark.parametrize("policy", ["evolve", "freeze", "fail"])
def test_a_new_table_is_never_a_change(policy: str) -> None:
    incoming = schema(("a", pa.int32()))
    plan = plan_schema("t", None, incoming, policy)  # type: ignore[arg-type]
    assert plan.changes == ()


@pytest.mark.parametrize("policy", ["evolve", "freeze", "fail"])
def test_same_schema_changes_nothing(policy: str) -> None:
    existing = schema(("id", pa.int64()), ("v", pa.decimal128(38, 10)))
    plan = plan_schema("t", existing, existing, policy)  # type: ignore[arg-type]
    assert plan.changes == ()
    assert types_of(plan.schema) == types_of(existing)
    assert plan.write_columns == ("id", "v")


@pytest.mark.parametrize("policy", ["evolve", "freeze", "fail"])
def test_narrower_incoming_types_fit_without_a_change(policy: str) -> None:
    existing = schema(("id", pa.int64()), ("v", pa.decimal128(38, 10)), ("f", pa.float64()))
    incoming = schema(("id", pa.int16()), ("v", pa.decimal128(18, 2)), ("f", pa.float32()))
    plan = plan_schema("t", existing, incoming, policy)  # type: ignore[arg-type]
    assert plan.changes == ()
    assert types_of(plan.schema) == types_of(existing)


# --- evolve -----------------------------------------------------------------------------------


def test_evolve_adds_a_new_column_at_the_end() -> None:
    existing = schema(("id", pa.int64()), ("a", pa.string()))
    incoming = schema(("new", pa.bool_()), ("id", pa.int64()), ("a", pa.string()))
    plan = plan_schema("t", existing, incoming, "evolve")
    assert plan.schema.names == ["id", "a", "new"]
    assert plan.changes == (SchemaChange("add_column", "new", None, "bool"),)
    assert plan.write_columns == ("new", "id", "a")


def test_evolve_widens_integers_and_reports_both_types() -> None:
    existing = schema(("id", pa.int32()), ("small", pa.int16()))
    incoming = schema(("id", pa.int64()), ("small", pa.int32()))
    plan = plan_schema("t", existing, incoming, "evolve")
    assert types_of(plan.schema) == [("id", pa.int64()), ("small", pa.int32())]
    assert plan.changes == (
        SchemaChange("widen", "id", "int32", "int64"),
        SchemaChange("widen", "small", "int16", "int32"),
    )


def test_evolve_widens_a_decimal_to_hold_both_sides() -> None:
    existing = schema(("v", pa.decimal128(10, 2)))
    incoming = schema(("v", pa.decimal128(10, 4)))
    plan = plan_schema("t", existing, incoming, "evolve")
    assert plan.schema.field("v").type == pa.decimal128(12, 4)
    assert plan.changes == (SchemaChange("widen", "v", "decimal128(10, 2)", "decimal128(12, 4)"),)


def test_evolve_keeps_a_dropped_column() -> None:
    existing = schema(("id", pa.int64()), ("gone", pa.date32()), ("a", pa.string()))
    incoming = schema(("id", pa.int64()), ("a", pa.string()))
    plan = plan_schema("t", existing, incoming, "evolve")
    assert types_of(plan.schema) == types_of(existing)
    assert plan.write_columns == ("id", "a")
    assert plan.changes == (SchemaChange("keep_dropped", "gone", "date32[day]", None),)


def test_evolve_applies_every_kind_at_once_in_table_order() -> None:
    existing = schema(("id", pa.int32()), ("gone", pa.int16()), ("f", pa.float32()))
    incoming = schema(("id", pa.int64()), ("f", pa.float64()), ("new", pa.string()))
    plan = plan_schema("t", existing, incoming, "evolve")
    assert types_of(plan.schema) == [
        ("id", pa.int64()),
        ("gone", pa.int16()),
        ("f", pa.float64()),
        ("new", pa.string()),
    ]
    assert [c.kind for c in plan.changes] == ["widen", "keep_dropped", "widen", "add_column"]


def test_incoming_field_metadata_wins_for_existing_columns() -> None:
    existing = schema(("id", pa.int64()))
    incoming = pa.schema([pa.field("id", pa.int64(), metadata={REDSHIFT: b"bigint"})])
    plan = plan_schema("t", existing, incoming, "evolve")
    assert plan.schema.field("id").metadata == {REDSHIFT: b"bigint"}


def test_timezone_names_are_not_a_change() -> None:
    existing = schema(("at", pa.timestamp("us", tz="UTC")))
    incoming = schema(("at", pa.timestamp("us", tz="America/New_York")))
    assert plan_schema("t", existing, incoming, "fail").changes == ()


@pytest.mark.parametrize("policy", ["evolve", "freeze", "fail"])
def test_incompatible_change_names_table_column_and_types(policy: str) -> None:
    existing = schema(("id", pa.int64()), ("code", pa.string()))
    incoming = schema(("id", pa.int64()), ("code", pa.int64()))
    with pytest.raises(DestinationError) as caught:
        plan_schema("orders", existing, incoming, policy)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "'orders'" in message
    assert "'code'" in message
    assert "string" in message
    assert "int64" in message
    assert caught.value.fix


def test_decimal_that_cannot_hold_both_sides_is_incompatible() -> None:
    existing = schema(("v", pa.decimal128(38, 10)))
    incoming = schema(("v", pa.decimal128(38, 12)))
    with pytest.raises(DestinationError, match=r"decimal128\(38, 10\) to decimal128\(38, 12\)"):
        plan_schema("t", existing, incoming, "evolve")


def test_timestamp_becoming_timestamptz_is_incompatible() -> None:
    existing = schema(("at", pa.timestamp("us")))
    incoming = schema(("at", pa.timestamp("us", tz="UTC")))
    with pytest.raises(DestinationError, match="'at'"):
        plan_schema("t", existing, incoming, "evolve")


def test_duplicate_incoming_column_is_refused() -> None:
    incoming = schema(("a", pa.int64()), ("a", pa.string()))
    with pytest.raises(DestinationError, match="'a' twice"):
        plan_schema("t", None, incoming, "evolve")


# --- freeze -----------------------------------------------------------------------------------


def test_freeze_keeps_the_target_schema_and_skips_new_columns() -> None:
    existing = schema(("id", pa.int64()), ("a", pa.string()))
    incoming = schema(("id", pa.int64()), ("extra", pa.bool_()), ("a", pa.string()))
    plan = plan_schema("t", existing, incoming, "freeze")
    assert plan.schema.equals(existing)
    assert plan.write_columns == ("id", "a")
    assert plan.changes == (SchemaChange("ignore_column", "extra", None, "bool"),)


def test_freeze_keeps_a_dropped_column() -> None:
    existing = schema(("id", pa.int64()), ("gone", pa.string()))
    incoming = schema(("id", pa.int64()))
    plan = plan_schema("t", existing, incoming, "freeze")
    assert plan.schema.equals(existing)
    assert plan.changes == (SchemaChange("keep_dropped", "gone", "string", None),)


def test_freeze_refuses_to_widen() -> None:
    existing = schema(("id", pa.int32()))
    incoming = schema(("id", pa.int64()))
    with pytest.raises(DestinationError, match="'id' widened from int32 to int64") as caught:
        plan_schema("t", existing, incoming, "freeze")
    assert "evolve" in (caught.value.fix or "")


# --- fail -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("incoming", "named"),
    [
        (schema(*WIDER, ("extra", pa.bool_())), "new column 'extra'"),
        (schema(("id", pa.int64())), "column 'a' (string) is missing"),
        (schema(*WIDER), None),
    ],
)  # fmt: skip
def test_fail_refuses_any_change_and_names_it(incoming: pa.Schema, named: str | None) -> None:
    existing = schema(("id", pa.int32()), ("a", pa.string()))
    with pytest.raises(DestinationError) as caught:
        plan_schema("events", existing, incoming, "fail")
    message = str(caught.value)
    assert "'events'" in message
    assert "widened from int32 to int64" in message
    if named:
        assert named in message


def test_describe_names_each_kind() -> None:
    assert SchemaChange("add_column", "x", None, "int64").describe() == "new column 'x' (int64)"
    assert "not written" in SchemaChange("ignore_column", "x", None, "int64").describe()
    assert "missing" in SchemaChange("keep_dropped", "x", "int64", None).describe()
    assert "from int16 to int32" in SchemaChange("widen", "x", "int16", "int32").describe()


# --- recreate (replace loads) -------------------------------------------------------------------


def test_recreate_takes_new_types_and_drops_and_renames_columns() -> None:
    existing = schema(("id", pa.int64()), ("code", pa.string()), ("city", pa.string()))
    incoming = schema(("id", pa.int32()), ("code", pa.int64()), ("town", pa.string()))
    plan = plan_schema("orders", existing, incoming, "recreate")
    assert types_of(plan.schema) == types_of(incoming)
    assert plan.write_columns == ("id", "code", "town")
    assert [(c.kind, c.column, c.old_type, c.new_type) for c in plan.changes] == [
        ("retype", "id", "int64", "int32"),
        ("retype", "code", "string", "int64"),
        ("drop_column", "city", "string", None),
        ("add_column", "town", None, "string"),
    ]
    assert "recreated as int64" in plan.changes[1].describe()
    assert "dropped" in plan.changes[2].describe()


def test_recreate_of_the_same_schema_changes_nothing() -> None:
    existing = schema(("id", pa.int64()), ("at", pa.timestamp("us", tz="UTC")))
    incoming = schema(("id", pa.int64()), ("at", pa.timestamp("us", tz="Europe/Paris")))
    assert plan_schema("t", existing, incoming, "recreate").changes == ()


def test_recreate_is_refused_for_a_load_that_does_not_replace() -> None:
    from shiftsync.destinations.base import LoadMode, LoadSpec, validate_spec

    incoming = schema(("id", pa.int64()))
    validate_spec(LoadSpec("t", incoming, LoadMode.REPLACE, schema_changes="recreate"))
    with pytest.raises(DestinationError, match="recreate"):
        validate_spec(LoadSpec("t", incoming, LoadMode.APPEND, schema_changes="recreate"))


def test_the_engine_recreates_only_replaced_tables() -> None:
    from shiftsync.destinations.base import LoadMode
    from shiftsync.engine.table_sync import load_policy

    assert load_policy("recreate", LoadMode.REPLACE) == "recreate"
    assert load_policy("recreate", LoadMode.MERGE) == "evolve"
    assert load_policy("freeze", LoadMode.MERGE) == "freeze"
