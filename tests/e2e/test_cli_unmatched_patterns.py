"""A pattern that matches no table is visible: a typo in `tables:` used to copy nothing and
end "ok" without a word.

Each such `tables` pattern is warned about on every run (and dry run), naming the sync and the
pattern with a fix; a sync whose whole selection is empty is a configuration error (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from shiftsync.local.standin import StandInInfo
from tests.support import Cli, standin_connection, write_external_id


def workspace(folder: Path, info: StandInInfo, sync: dict[str, Any]) -> Path:
    config = {
        "connections": {"warehouse": standin_connection(info)},
        "destinations": {"local": {"type": "duckdb", "path": "out.duckdb"}},
        "syncs": {"nightly": {"source": "warehouse", "destination": "local", **sync}},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shiftsync.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_external_id(folder, info.external_id)
    return folder


def test_a_pattern_that_matches_no_table_is_warned_about_on_every_run(
    cli: Cli, tmp_path: Path, info: StandInInfo
) -> None:
    folder = workspace(
        tmp_path / "ws",
        info,
        {"tables": ["public.category", "public.slaes*"], "exclude": ["nope.*"]},
    )
    for attempt in (1, 2):
        ran = cli("sync", "nightly", "-w", str(folder))
        assert ran.code == 0, f"run {attempt}: {ran}"
        warnings = [line for line in ran.err.splitlines() if line.startswith("warning: ")]
        assert warnings == [
            "warning: sync nightly: tables pattern 'public.slaes*' matches no table of the "
            "source; fix: correct it in shiftsync.yaml (`shiftsync discover` lists the tables "
            "the role can see)",
        ], ran.err  # an exclude pattern that matches nothing may guard a future table: no warning
    # The run record keeps them, and --json and a dry run say them too.
    shown = json.loads(cli("runs", "show", "latest", "--json", "-w", str(folder)).out)
    assert [n for n in shown["notes"] if "public.slaes*" in n]
    ran = cli("sync", "nightly", "--json", "-w", str(folder))
    assert any("public.slaes*" in note for note in json.loads(ran.out)["notes"])
    assert "warning: sync nightly: tables pattern 'public.slaes*'" in ran.err
    planned = cli("sync", "nightly", "--dry-run", "-w", str(folder))
    assert planned.code == 0, planned
    assert "warning: sync nightly: tables pattern 'public.slaes*'" in planned.err


def test_a_sync_that_selects_nothing_fails_with_exit_2_naming_its_patterns(
    cli: Cli, tmp_path: Path, info: StandInInfo
) -> None:
    folder = workspace(tmp_path / "ws", info, {"tables": ["public.slaes*", "pubilc.*"]})
    ran = cli("sync", "nightly", "-w", str(folder))
    assert ran.code == 2, ran
    assert (
        "error: sync nightly selects no table of the source: no table matches "
        "'public.slaes*', 'pubilc.*'"
    ) in ran.err
    assert "fix: " in ran.err
    assert "shiftsync discover" in ran.err
    assert "Traceback" not in ran.err
