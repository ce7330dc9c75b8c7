"""Key values as pyiceberg literals: every key type of the type contract, as Arrow gives it to
Python, so that predicates are built from values, never from text to parse."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias

from pyiceberg.expressions.literals import literal

if TYPE_CHECKING:
    from pyiceberg.typedef import LiteralValue

KeyValue: TypeAlias = bool | int | str | bytes | Decimal | dt.date | dt.datetime


def iceberg_literal(value: KeyValue) -> LiteralValue:
    """An Iceberg literal of a key value (one call per type: `literal` is typed per type)."""
    if isinstance(value, bool):
        return literal(value)
    if isinstance(value, int):
        return literal(value)
    if isinstance(value, str):
        return literal(value)
    if isinstance(value, bytes):
        return literal(value)
    if isinstance(value, Decimal):
        return literal(value)
    if isinstance(value, dt.datetime):
        return literal(value)
    return literal(value)


__all__ = ["KeyValue", "iceberg_literal"]
