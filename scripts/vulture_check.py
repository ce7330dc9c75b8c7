"""`make lint`'s dead-code check: vulture with pyproject.toml's [tool.vulture] settings, less
the keys of TypedDicts (and NamedTuples), which code reads by subscripting with a string that
vulture cannot tie to the class. Everything else it reports fails the check; names that stay
for a reason are justified in vulture_whitelist.py.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from vulture.config import make_config  # type: ignore[import-untyped]
from vulture.core import Vulture  # type: ignore[import-untyped]

RECORD_BASES = {"TypedDict", "NamedTuple"}


def record_bodies(path: Path) -> list[range]:
    """The line ranges of a file's TypedDict and NamedTuple class bodies."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
            }
            if bases & RECORD_BASES:
                found.append(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return found


def main() -> int:
    config = make_config()
    vulture = Vulture(
        ignore_names=config["ignore_names"], ignore_decorators=config["ignore_decorators"]
    )
    vulture.scavenge(config["paths"], exclude=config["exclude"])
    bodies: dict[Path, list[range]] = {}
    reported = 0
    for item in vulture.get_unused_code(min_confidence=config["min_confidence"]):
        path = Path(item.filename)
        if path not in bodies:
            bodies[path] = record_bodies(path)
        if item.typ == "variable" and any(item.first_lineno in r for r in bodies[path]):
            continue
        print(item.get_report())
        reported += 1
    return 3 if reported else 0


if __name__ == "__main__":
    sys.exit(main())
