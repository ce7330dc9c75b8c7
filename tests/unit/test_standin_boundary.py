"""The product never imports the stand-in, and the stand-in's code is grouped by service.

Issue 14: a reader finds the IAM rules, the Data API, UNLOAD, faults and seeds each in one
folder; shiftsync's own layers must work without `shiftsync.local` (the `standin` extra).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "shiftsync"
LOCAL = SRC / "local"

# The commands that start the stand-in: `shiftsync local …` and `shiftsync demo`.
STAND_IN_COMMANDS = {"cli/local.py", "cli/demo.py", "demo.py"}


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def product_files() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if LOCAL not in p.parents]


def test_no_product_module_imports_the_stand_in() -> None:
    offenders = {
        str(path.relative_to(SRC)): sorted(
            m for m in imported_modules(path) if m.startswith("shiftsync.local")
        )
        for path in product_files()
        if str(path.relative_to(SRC)) not in STAND_IN_COMMANDS
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_the_stand_in_commands_import_it_only_where_it_is_needed() -> None:
    # cli/local.py imports the stand-in inside a function, so `shiftsync --help` works
    # without moto; a module-level import there would break every command.
    tree = ast.parse((SRC / "cli" / "local.py").read_text(encoding="utf-8"))
    top_level = {
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert not any(name.startswith("shiftsync.local") for name in top_level)


def test_the_stand_in_is_grouped_by_service() -> None:
    folders = {p.name for p in LOCAL.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders >= {"iam", "data_api", "unload", "faults", "seed", "dialect"}
    loose = sorted(p.name for p in LOCAL.glob("*.py"))
    # What stays at the top is the stand-in as a whole: its process, server, front door,
    # the PostgreSQL it runs on, and what it tells its clients.
    assert loose == [
        "__init__.py",
        "front_rules.py",
        "info.py",
        "postgres.py",
        "server.py",
        "standin.py",
    ]


def test_each_service_folder_holds_its_modules() -> None:
    expected = {
        "iam": {"evaluation.py"},
        "data_api": {"plugin.py", "auth.py", "request.py", "sessions.py", "statements.py"},
        "unload": {"grammar.py", "access.py", "execute.py", "files.py", "output.py"},
        "faults": {"kinds.py", "hooks.py", "http.py", "wire.py"},
        "seed": {"seeding.py", "tickit.py", "types.py", "odd.py", "sql.py"},
    }
    for folder, modules in expected.items():
        present = {p.name for p in (LOCAL / folder).glob("*.py")}
        assert modules <= present, folder
