from __future__ import annotations

import stat
from pathlib import Path

from shiftsync.engine.departed import departed, note, read_known, write_known


def test_departed_tables_are_the_known_ones_not_selected() -> None:
    known = {"public.a": "a", "public.b": "b", "s.c": "s_c"}
    assert departed(known, ["public.a"]) == {"public.b": "b", "s.c": "s_c"}
    assert departed({}, ["public.a"]) == {}


def test_the_note_names_both_tables_and_says_nothing_was_dropped() -> None:
    text = note("public.b", "b")
    assert "public.b" in text
    assert "'b'" in text
    assert "left as it was" in text


def test_known_tables_round_trip_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "main.tables.json"
    write_known(path, {"public.b": "b", "public.a": "a"})
    assert read_known(path) == {"public.a": "a", "public.b": "b"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_missing_or_damaged_file_knows_no_table(tmp_path: Path) -> None:
    assert read_known(tmp_path / "none.json") == {}
    damaged = tmp_path / "bad.json"
    damaged.write_text("[1, 2")
    assert read_known(damaged) == {}
    damaged.write_text('{"public.a": 3, "public.b": "b"}')
    assert read_known(damaged) == {"public.b": "b"}
