"""The product's rooms import one way, from the command line down to the errors.

cli → engine → redshift → aws → destinations → config → errors: DESIGN.md and the style guide
draw the arrows; this test keeps them. `preflight` (what `check` probes) sits above redshift,
whose SQL it sends. Each room may import the rooms below it, never one above (a cycle would
make a room impossible to read alone).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "shiftsync"

# Higher number = higher layer. Rooms on one level do not import each other.
LAYER = {
    "__main__": 90,
    "cli": 80,
    "serve": 70,
    "api": 70,
    "demo": 70,
    "engine": 60,
    "executors": 55,
    "preflight": 52,
    "redshift": 50,
    "aws": 40,
    "destinations": 30,
    "workspace": 25,
    "config": 20,
    "threads": 10,
    "file_mode": 10,
    "sql_quote": 10,
    "json_types": 10,
    "allocator": 0,
    "errors": 0,
}


def room_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".py")


def imported_rooms(path: Path) -> set[str]:
    rooms: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "shiftsync" and len(parts) > 1:
                rooms.add(parts[1])
    return rooms


PRODUCT = sorted(p for p in SRC.rglob("*.py") if room_of(p) not in {"local", "__init__"})


def test_every_room_has_a_layer() -> None:
    assert {room_of(p) for p in PRODUCT} - set(LAYER) == set()


@pytest.mark.parametrize("path", PRODUCT, ids=lambda p: str(p.relative_to(SRC)))
def test_a_module_imports_only_rooms_below_its_own(path: Path) -> None:
    own = room_of(path)
    upward = {
        room for room in imported_rooms(path) - {own, "local"} if LAYER.get(room, -1) >= LAYER[own]
    }
    assert upward == set(), f"{path.relative_to(SRC)} imports {sorted(upward)} (not below {own})"


OWN_PACKAGES = ("shiftsync", "tests", "bench")


def _private_imports(root: Path) -> list[str]:
    """`from <our module> import _name` anywhere under root: a private name used outside its
    module is a seam nobody promised to keep."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if node.module.split(".")[0] not in OWN_PACKAGES:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path}: from {node.module} import {alias.name}")
    return found


@pytest.mark.parametrize("folder", ["src", "tests", "bench"])
def test_no_private_name_is_imported_from_another_module(folder: str) -> None:
    assert _private_imports(SRC.parents[1] / folder) == []


def test_the_private_import_scan_finds_one(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from shiftsync.engine.sync import _run\n")
    (tmp_path / "b.py").write_text("from shiftsync.engine.sync import run_sync, __all__\n")
    assert _private_imports(tmp_path) == [
        f"{tmp_path / 'a.py'}: from shiftsync.engine.sync import _run"
    ]
