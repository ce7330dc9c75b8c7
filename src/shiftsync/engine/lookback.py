"""The look-back window of an incremental table: read again the rows just below the cursor.

A row whose tracking value was assigned before it committed (a long ETL transaction stamps
`updated_at` when it starts and commits after the next run fixed a higher mark) lands below
the stored cursor and would be skipped forever. `lookback: 2h` (timestamps, dates) or
`lookback: 1000` (integers, decimals) lowers the read's low bound by that much on every run;
the rows read again are merged by key, so reading them twice changes nothing.

Pure: no I/O. The stored cursor is text (see engine/state.py); the lowered bound is written
back in the same form, so `build_range_predicate` checks and quotes it as any cursor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final

from shiftsync.errors import ConfigError
from shiftsync.redshift.types import Column

_DURATION: Final = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_NUMBER_TYPES: Final = frozenset({"int2", "int4", "int8", "numeric"})
_TIME_TYPES: Final = frozenset({"date", "timestamp", "timestamptz"})
_STAMP: Final = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Lookback:
    """A parsed `lookback`: a duration (timestamps, dates) or an amount (numbers)."""

    text: str
    duration: timedelta | None = None
    amount: Decimal | None = None


def lookback_problem(value: object) -> str | None:
    """Why a `lookback` value is not one, or None (for the configuration's validator)."""
    try:
        parse_lookback(value)
    except ConfigError as error:
        return error.args[0] if error.args else str(error)
    return None


def parse_lookback(value: object) -> Lookback:
    """`2h`, `30m`, `90s`, `7d` (a duration) or a positive number such as `1000`."""
    if isinstance(value, bool):
        raise ConfigError(f"lookback {value!r} is not a duration or a number")
    if isinstance(value, int | Decimal) and value > 0:
        return Lookback(str(value), amount=Decimal(value))
    text = str(value).strip()
    match = _DURATION.match(text)
    if match and int(match[1]) > 0:
        return Lookback(text, duration=timedelta(**{_UNITS[match[2]]: int(match[1])}))
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal(0)
    if amount.is_finite() and amount > 0:
        return Lookback(text, amount=amount)
    raise ConfigError(
        f"lookback {value!r} is not a positive duration (such as 2h, 30m, 90s, 7d) or a "
        "positive number",
        fix="write lookback: 2h for a timestamp or date tracking_field, or a number such as "
        "lookback: 1000 for an integer one",
    )


def check_lookback(name: str, lookback: Lookback, tracking: Column, key: tuple[str, ...]) -> None:
    """Refuse, when the table is described, a look-back the table cannot use."""
    if not key:
        raise ConfigError(
            f"table {name}: lookback {lookback.text} reads rows again, and without a primary "
            "key they would be appended twice",
            fix=f"set primary_key: [<column>, ...] for {name} in shiftsync.yaml, or remove "
            "lookback",
        )
    kind = tracking.type_name
    if lookback.duration is not None and kind not in _TIME_TYPES:
        raise ConfigError(
            f"table {name}: lookback {lookback.text} is a duration, but tracking_field "
            f"{tracking.name!r} has type {kind}",
            fix="give lookback as a number (how far below the cursor to read again)",
        )
    if lookback.amount is not None and kind not in _NUMBER_TYPES:
        hint = "a duration such as 2h" if kind in _TIME_TYPES else "no lookback"
        raise ConfigError(
            f"table {name}: lookback {lookback.text} is a number, but tracking_field "
            f"{tracking.name!r} has type {kind}",
            fix=f"use {hint} for this tracking_field",
        )


def lowered_cursor(cursor: str, tracking: Column, lookback: Lookback) -> str:
    """The stored cursor moved back by the look-back, in the cursor's own text form."""
    kind = tracking.type_name
    if lookback.amount is not None:
        value = Decimal(cursor) - lookback.amount
        if kind in ("int2", "int4", "int8"):
            return str(int(value.to_integral_value(rounding="ROUND_FLOOR")))
        return format(value, "f")
    assert lookback.duration is not None
    if kind == "date":
        day = date.fromisoformat(cursor.strip())
        return (day - timedelta(days=-(-lookback.duration // timedelta(days=1)))).isoformat()
    text = cursor.strip()
    suffix = ""
    if kind == "timestamptz" and text.endswith("+00"):
        text, suffix = text[: -len("+00")], "+00"
    stamp = datetime.strptime(text if "." in text else text + ".0", _STAMP)
    return (stamp - lookback.duration).strftime(_STAMP) + suffix


__all__ = ["Lookback", "check_lookback", "lookback_problem", "lowered_cursor", "parse_lookback"]
