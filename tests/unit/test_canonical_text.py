"""The canonical text of hashed values, pinned: changing it changes every hash already written."""

from __future__ import annotations

import datetime as dt
import random
import struct
from decimal import Decimal

import pyarrow as pa
import pytest

from shiftsync.engine.canonical_text import canonical_texts, float_text
from shiftsync.engine.selection import hash_values
from shiftsync.errors import SourceError

GOLDEN_SALT = "0f" * 32

# (array, the canonical texts): written by hand from the rules in docs/syncs.md.
CASES = [
    (pa.array([0, -2, 32767, None], pa.int16()), ["0", "-2", "32767", None]),
    (pa.array([-(2**63), 2**63 - 1], pa.int64()), ["-9223372036854775808", "9223372036854775807"]),
    (
        pa.array([Decimal("1.50"), Decimal("-0.01"), Decimal("0.00"), None], pa.decimal128(10, 2)),
        ["1.50", "-0.01", "0.00", None],
    ),
    (pa.array([Decimal("5"), Decimal("-7")], pa.decimal128(38, 0)), ["5", "-7"]),
    (
        pa.array([Decimal("-12345678901234567890123456789012345.678")], pa.decimal128(38, 3)),
        ["-12345678901234567890123456789012345.678"],
    ),
    (pa.array([True, False, None]), ["true", "false", None]),
    (
        pa.array([1.5, 0.1, 1e20, 1e-7, 1e-6, 9999999999.0, 1e10, 123456789.125, -0.0, 0.0]),
        [
            "1.5",
            "0.1",
            "1e+20",
            "1e-7",
            "0.000001",
            "9999999999",
            "1e+10",
            "123456789.125",
            "-0",
            "0",
        ],
    ),
    (
        pa.array([float("nan"), float("inf"), float("-inf"), 5e-324, 1.7976931348623157e308]),
        ["nan", "inf", "-inf", "5e-324", "1.7976931348623157e+308"],
    ),
    (
        pa.array([0.1, 123456789.0, 1746485.75, 3.4e38, 1.5e-7], pa.float32()),
        ["0.1", "123456790", "1746485.8", "3.4e+38", "1.5e-7"],
    ),
    (
        pa.array([dt.date(2020, 1, 2), dt.date(1, 1, 1), dt.date(9999, 12, 31)]),
        ["2020-01-02", "0001-01-01", "9999-12-31"],
    ),
    (
        pa.array([0, -1, 86_400 * 10**6 * 10_000_000 + 5], pa.timestamp("us")),
        ["1970-01-01 00:00:00.000000", "1969-12-31 23:59:59.999999", "29349-01-26 00:00:00.000005"],
    ),
    (
        pa.array([dt.datetime(2024, 2, 29, 23, 59, 59, 999_999)], pa.timestamp("us", tz="UTC")),
        ["2024-02-29 23:59:59.999999Z"],
    ),
    (pa.array([0, 86_399_999_999], pa.time64("us")), ["00:00:00.000000", "23:59:59.999999"]),
    (pa.array(["a b", "", "CHAR  ", "é€😀"]), ["a b", "", "CHAR  ", "é€😀"]),
    (pa.array(['{"a": 1}'], pa.json_(pa.string())), ['{"a": 1}']),
    (pa.array([b"\x00\xff", b""]), ["00ff", ""]),
]


@pytest.mark.parametrize(("array", "texts"), CASES, ids=lambda v: str(getattr(v, "type", "")))
def test_canonical_text_of_each_type(array: pa.Array, texts: list[str | None]) -> None:
    assert canonical_texts(array) == texts


def test_golden_hashes_do_not_move() -> None:
    # Fixed digests: a library upgrade or a rule change that alters any of them changes every
    # hash a destination holds, and must come with a migration note.
    values = pa.array(["alice@example.com", None])
    assert hash_values(values, GOLDEN_SALT).to_pylist() == [
        "6f85c4dcd4444db668db67972e093ddb631da6a4faf41fafefa71929860f7c60",
        None,
    ]
    assert hash_values(pa.array([Decimal("1.50")], pa.decimal128(10, 2)), GOLDEN_SALT)[
        0
    ].as_py() == ("8214d54551f47a12bf0e2bb4815a03eb888d813ff2c6294f0152b8557634255f")
    stamp = pa.array([dt.datetime(2024, 2, 29, 12, 0)], pa.timestamp("us", tz="UTC"))
    assert hash_values(stamp, GOLDEN_SALT)[0].as_py() == (
        "b230548b4459532306defc7cccdd3fe5d396b961d5490ec2c488c6670a7cdd6f"
    )


def test_float32_shortest_form_reads_back_and_is_shortest() -> None:
    rng = random.Random(7)
    for _ in range(5_000):
        bits = struct.pack("<I", rng.getrandbits(32))
        (value,) = struct.unpack("<f", bits)
        if value != value or value in (float("inf"), float("-inf")):
            continue
        text = float_text(value, single=True)
        assert struct.pack("<f", float(text)) == bits or value == 0


def test_a_type_without_rules_is_refused() -> None:
    with pytest.raises(SourceError, match="no canonical text"):
        canonical_texts(pa.array([[1]], pa.list_(pa.int8())))
