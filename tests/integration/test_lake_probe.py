"""The check a lake sync runs before it reads writes and deletes one probe file where the
tables live; `shiftsync check` (`Probed.probe`) also writes a whole probe table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deltalake import write_deltalake

from shiftsync.destinations.base import Probed
from shiftsync.destinations.delta import DeltaDestination, DeltaSettings
from shiftsync.destinations.delta import destination as delta_destination


def test_a_delta_sync_checks_with_a_probe_file_and_shiftsync_check_with_a_probe_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables: list[str] = []

    def recorded(uri: Any, *args: Any, **kwargs: Any) -> Any:
        tables.append(str(uri))
        return write_deltalake(uri, *args, **kwargs)

    monkeypatch.setattr(delta_destination, "write_deltalake", recorded)
    root = tmp_path / "delta"
    destination = DeltaDestination(DeltaSettings(str(root)))
    destination.check()
    assert tables == []  # no Delta table written on every sync
    assert list(root.iterdir()) == []  # the probe file is gone
    assert isinstance(destination, Probed)
    destination.probe()
    assert len(tables) == 1
    assert Path(tables[0]).name.startswith("_shiftsync_probe_")
    assert list(root.iterdir()) == []  # the probe table is deleted
    destination.close()
