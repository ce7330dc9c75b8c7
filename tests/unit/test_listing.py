"""Which ListTables patterns a sync needs: pure, no I/O."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shiftsync.config import NamePattern, SyncConfig
from shiftsync.engine.listing import (
    EVERYTHING,
    MAX_PATTERNS,
    like_pattern,
    listing_patterns,
    misses_a_named_table,
)


def sync(*tables: Any, exclude: tuple[str, ...] = ()) -> SyncConfig:
    return SyncConfig.model_validate(
        {"source": "rs", "destination": "dest", "tables": list(tables), "exclude": list(exclude)}
    )


def like_matches(pattern: str, name: str) -> bool:
    """SQL LIKE without an escape character, for checking that a pattern covers its glob."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


@pytest.mark.parametrize(
    ("glob", "like"),
    [
        ("sales", "sales"),
        ("sal*", "sal%"),
        ("s?les", "s_les"),
        ("*", "%"),
        ("sales_2024", "sales_2024"),
        ("t[0-9]", "t[0-9]"),  # only * and ? are wildcards: [ is itself
        ("back\\slash", "%"),
    ],
)
def test_like_pattern(glob: str, like: str) -> None:
    assert like_pattern(glob) == like


@pytest.mark.parametrize(
    ("glob", "names"),
    [
        ("sal*", ["sales", "sal", "salary_2024"]),
        ("s?les", ["sales", "sXles"]),
        ("sales_2024", ["sales_2024"]),
        ("t[1]", ["t[1]"]),
        ("a%b", ["a%b"]),
    ],
)
def test_a_like_pattern_matches_everything_its_glob_matches(glob: str, names: list[str]) -> None:
    for name in names:
        assert NamePattern(glob, literal=False).matches(name)
        assert like_matches(like_pattern(glob), name), (glob, name)


def test_exact_tables_and_globs_become_one_pattern_each() -> None:
    chosen = sync("public.venue", {"include": "sales.ord*"}, "public.venue", "public.event")
    assert listing_patterns(chosen) == [("public", "event"), ("public", "venue"), ("sales", "ord%")]


def test_a_match_all_pattern_or_many_patterns_list_everything() -> None:
    assert listing_patterns(sync("public.venue", "*.*")) == [EVERYTHING]
    many = [f"public.t{i}" for i in range(MAX_PATTERNS + 1)]
    assert listing_patterns(sync(*many)) == [EVERYTHING]
    assert len(listing_patterns(sync(*many[:MAX_PATTERNS]))) == MAX_PATTERNS


def test_excludes_do_not_widen_the_listing() -> None:
    assert listing_patterns(sync("public.*", exclude=("public.tmp*",))) == [("public", "%")]


def test_a_named_table_missing_from_the_listing_is_noticed() -> None:
    chosen = sync("public.venue", "public.sal*")
    assert not misses_a_named_table(chosen, [("public", "venue")])
    assert misses_a_named_table(chosen, [("public", "sales")])
    assert not misses_a_named_table(sync("public.sal*"), [])
