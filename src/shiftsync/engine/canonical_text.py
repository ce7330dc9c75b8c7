"""The canonical text of a value: the input of a hashed column's SHA-256.

Defined here, type by type, from the values themselves: a library's cast-to-text may change
between releases, and every hash a destination holds would silently change with it. The rules
reproduce what pyarrow 20's cast gave when hashing started, so existing hashes stay valid;
tests/unit/test_canonical_text.py pins them with golden values.

| Arrow type        | text                                                                  |
|-------------------|-----------------------------------------------------------------------|
| integers          | decimal digits, `-` for negatives                                     |
| decimal(p, s)     | digits with exactly `s` fraction digits (`1.50`, `-0.01`, `5`)        |
| float, double     | the shortest digits that read back to the same value; plain notation  |
|                   | when the decimal exponent is in -6..9, else `d.ddde+NN` / `d.ddde-NN`; |
|                   | `nan`, `inf`, `-inf`, `-0`                                            |
| bool              | `true` / `false`                                                      |
| date              | `YYYY-MM-DD`                                                          |
| timestamp (µs)    | `YYYY-MM-DD HH:MM:SS.ffffff`, with a final `Z` when it is an instant  |
| time (µs)         | `HH:MM:SS.ffffff`                                                     |
| text, JSON        | the text as it is                                                     |
| binary            | lowercase hex                                                         |
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Final

import pyarrow as pa

from shiftsync.errors import SourceError

_MICROS_PER_DAY: Final = 86_400_000_000
# The decimal exponents that are written in plain notation (1e-6 .. 9999999999).
_PLAIN_EXPONENTS: Final = range(-6, 10)


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01, proleptic Gregorian.

    Howard Hinnant's algorithm: exact for every year, where `datetime.date` stops at 9999.
    """
    z = days + 719_468
    era = (z if z >= 0 else z - 146_096) // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


def date_text(days: int) -> str:
    year, month, day = _civil_from_days(days)
    return f"{year:04d}-{month:02d}-{day:02d}"


def time_text(micros: int) -> str:
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour:02d}:{minute:02d}:{second:02d}.{fraction:06d}"


def timestamp_text(micros: int, *, instant: bool) -> str:
    days, of_day = divmod(micros, _MICROS_PER_DAY)
    text = f"{date_text(days)} {time_text(of_day)}"
    return text + "Z" if instant else text


def decimal_text(value: Decimal, scale: int) -> str:
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise SourceError(f"a DECIMAL value is not a number: {value}")
    unscaled = int("".join(map(str, digits)) or "0")
    # pyarrow hands decimals over at the column's scale; re-scale anything else exactly.
    shift = exponent + scale
    unscaled = unscaled * 10**shift if shift >= 0 else unscaled // 10**-shift
    whole, fraction = divmod(unscaled, 10**scale)
    text = f"{whole}.{fraction:0{scale}d}" if scale else str(whole)
    return "-" + text if sign and unscaled else text


def _digits_and_exponent(text: str) -> tuple[str, int]:
    """'1.2345e+03' or '123.45' → ('12345', 2): significant digits and the decimal exponent."""
    mantissa, _, exp = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exponent = int(exp or "0") + len(whole) - 1 - (len(whole + fraction) - len(digits))
    return digits.rstrip("0") or "0", exponent


def _packs_to(candidate: Decimal, target: bytes) -> bool:
    try:
        return candidate > 0 and struct.pack("<f", float(candidate)) == target
    except OverflowError:  # past float32's largest finite value
        return False


def _shortest_single(value: float) -> str:
    """The shortest decimal that reads back as the same float32, the closest if several."""
    target = struct.pack("<f", value)
    exact = Decimal(value)
    for precision in range(1, 10):
        nearest = Decimal(f"{value:.{precision - 1}e}")
        step = Decimal(1).scaleb(nearest.adjusted() - precision + 1)
        fits = [c for c in (nearest, nearest - step, nearest + step) if _packs_to(c, target)]
        if fits:
            # Ties go to the correctly rounded (half-even) form, listed first.
            return f"{min(fits, key=lambda c: abs(c - exact)):e}"
    raise AssertionError(f"no float32 shortest form for {value!r}")  # pragma: no cover


def float_text(value: float, *, single: bool = False) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    # repr() is the shortest round-trip form of a double (part of the language, not a library).
    shortest = _shortest_single(abs(value)) if single else repr(abs(value))
    digits, exponent = _digits_and_exponent(shortest)
    if exponent in _PLAIN_EXPONENTS:
        if exponent < 0:
            return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
        whole = digits[: exponent + 1].ljust(exponent + 1, "0")
        fraction = digits[exponent + 1 :]
        return f"{sign}{whole}.{fraction}" if fraction else sign + whole
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"


def _texts_of(
    array: pa.Array, render: Callable[[int], str], as_type: pa.DataType
) -> list[str | None]:
    return [None if v is None else render(v) for v in array.cast(as_type).to_pylist()]


def canonical_texts(array: pa.Array) -> list[str | None]:
    """Each value's canonical text (the table above); NULL stays None."""
    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return list(array.to_pylist())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return [None if v is None else v.hex() for v in array.to_pylist()]
    if pa.types.is_integer(kind):
        return [None if v is None else str(v) for v in array.to_pylist()]
    if pa.types.is_boolean(kind):
        return [None if v is None else ("true" if v else "false") for v in array.to_pylist()]
    if pa.types.is_decimal(kind):
        return [None if v is None else decimal_text(v, kind.scale) for v in array.to_pylist()]
    if pa.types.is_floating(kind):
        single = pa.types.is_float32(kind)
        return [None if v is None else float_text(v, single=single) for v in array.to_pylist()]
    if pa.types.is_date32(kind):
        return _texts_of(array, date_text, pa.int32())
    if pa.types.is_timestamp(kind) and kind.unit == "us":
        instant = kind.tz is not None
        return _texts_of(array, lambda v: timestamp_text(v, instant=instant), pa.int64())
    if pa.types.is_time64(kind) and kind.unit == "us":
        return _texts_of(array, time_text, pa.int64())
    raise SourceError(
        f"values of Arrow type {kind} have no canonical text to hash",
        fix="remove the column from `columns.hash`, or report the type as a shiftsync bug",
    )


__all__ = [
    "canonical_texts",
    "date_text",
    "decimal_text",
    "float_text",
    "time_text",
    "timestamp_text",
]
