"""The look-back window: parsing, checks against the table, and the lowered cursor (pure)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shiftsync.config import TableSelection
from shiftsync.engine.lookback import check_lookback, lowered_cursor, parse_lookback
from shiftsync.errors import ConfigError
from shiftsync.redshift.types import Column

TS = Column("updated_at", "timestamp")
TSTZ = Column("updated_at", "timestamptz")
DAY = Column("day", "date")
ID = Column("id", "int8")
AMOUNT = Column("amount", "numeric", precision=12, scale=2)
TEXT = Column("code", "varchar")


@pytest.mark.parametrize(
    ("value", "duration", "amount"),
    [
        ("2h", timedelta(hours=2), None),
        ("30m", timedelta(minutes=30), None),
        ("90s", timedelta(seconds=90), None),
        ("7d", timedelta(days=7), None),
        (1000, None, Decimal(1000)),
        ("0.5", None, Decimal("0.5")),
    ],
)
def test_parse(value: Any, duration: timedelta | None, amount: Decimal | None) -> None:
    parsed = parse_lookback(value)
    assert (parsed.duration, parsed.amount) == (duration, amount)


@pytest.mark.parametrize("value", ["0h", "-1", "2 weeks", "", True, 0, "abc", "nan"])
def test_parse_refuses_what_is_not_a_positive_window(value: Any) -> None:
    with pytest.raises(ConfigError, match="lookback"):
        parse_lookback(value)


@pytest.mark.parametrize(
    ("cursor", "column", "lookback", "lowered"),
    [
        ("2024-01-31 01:00:00.000000", TS, "2h", "2024-01-30 23:00:00.000000"),
        ("2024-01-31 01:00:00.000450+00", TSTZ, "30m", "2024-01-31 00:30:00.000450+00"),
        ("2024-03-01", DAY, "1d", "2024-02-29"),
        ("2024-03-01", DAY, "2h", "2024-02-29"),  # a part of a day reads the whole day again
        ("1000", ID, "1000", "0"),
        ("5", ID, "10", "-5"),
        ("12.50", AMOUNT, "0.75", "11.75"),
    ],
)
def test_lowered_cursor_keeps_the_cursor_form(
    cursor: str, column: Column, lookback: str, lowered: str
) -> None:
    assert lowered_cursor(cursor, column, parse_lookback(lookback)) == lowered


def test_no_key_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match="appended twice") as raised:
        check_lookback("public.log", parse_lookback("1h"), TS, ())
    assert "primary_key" in (raised.value.fix or "")


@pytest.mark.parametrize(
    ("lookback", "column", "message"),
    [
        ("2h", ID, "is a duration"),
        ("100", TS, "is a number"),
        ("100", TEXT, "is a number"),
        ("1h", TEXT, "is a duration"),
    ],
)
def test_a_window_of_the_wrong_kind_is_refused(lookback: str, column: Column, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_lookback("public.t", parse_lookback(lookback), column, ("id",))


def test_configuration_accepts_lookback_only_on_incremental_entries() -> None:
    entry = TableSelection.model_validate(
        {"include": "public.t", "mode": "incremental", "tracking_field": "u", "lookback": "2h"}
    )
    assert entry.lookback == "2h"
    with pytest.raises(ValueError, match="mode is not incremental"):
        TableSelection.model_validate({"include": "public.t", "lookback": "2h"})
    with pytest.raises(ValueError, match="not a positive duration"):
        TableSelection.model_validate(
            {"include": "public.t", "mode": "incremental", "tracking_field": "u", "lookback": "0"}
        )


def test_configuration_knows_deletes() -> None:
    entry = TableSelection.model_validate({"include": "public.t", "deletes": "soft"})
    assert entry.deletes == "soft"
    with pytest.raises(ValueError, match="deletes"):
        TableSelection.model_validate({"include": "public.t", "deletes": "purge"})
