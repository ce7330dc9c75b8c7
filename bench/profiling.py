"""Summaries of py-spy profiles: where the samples of every thread went, as a short text.

`py-spy record --format raw` writes one line per distinct stack, `frame;frame;… count`, every
thread included (pyinstrument sees only the main thread, and shiftsync reads and writes in
worker threads). `summarize_collapsed` turns that into the top functions by samples taken in
the function itself (self) and in it or below (total), leaving out imports.

py-spy is a development tool (`pip install py-spy`), not a dependency of the benchmarks.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Stacks in the import machinery are start-up, not the work measured.
IMPORT_FRAME: Final = "_find_and_load"
_FRAME: Final = re.compile(r"^(?P<function>.+?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Frame:
    function: str
    file: str

    @property
    def key(self) -> str:
        if not self.function:
            # py-spy's sample of a thread with no Python frame (DuckDB's or Arrow's own threads).
            return "(native thread, no Python frame)"
        return f"{self.function} ({short_path(self.file)})"


def short_path(path: str) -> str:
    """`…/site-packages/botocore/parsers.py` → `botocore/parsers.py`."""
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3" and "/" in tail else tail
    return path


def parse_frame(text: str) -> Frame:
    found = _FRAME.match(text.strip())
    if found is None:
        return Frame(text.strip(), "")
    return Frame(found["function"], found["file"])


def parse_collapsed(lines: Iterable[str]) -> list[tuple[list[Frame], int]]:
    """Stacks (outermost frame first) with their sample counts."""
    stacks = []
    for line in lines:
        line = line.rstrip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        stacks.append(([parse_frame(f) for f in stack.split(";")], int(count)))
    return stacks


@dataclass(frozen=True)
class ProfileSummary:
    samples: int
    self_counts: list[tuple[str, int]]
    total_counts: list[tuple[str, int]]

    def text(self, rate: int) -> str:
        lines = [f"{self.samples} samples at {rate}/s (~{self.samples / rate:.2f} s busy)"]
        for title, counts in (("self", self.self_counts), ("total", self.total_counts)):
            lines.append(f"top by {title}:")
            for key, count in counts:
                share = 100 * count / self.samples if self.samples else 0.0
                lines.append(f"  {share:5.1f}%  {count:6d}  {key}")
        return "\n".join(lines) + "\n"


def summarize_collapsed(
    stacks: Sequence[tuple[list[Frame], int]], *, top: int = 25
) -> ProfileSummary:
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    samples = 0
    for frames, count in stacks:
        if any(frame.function == IMPORT_FRAME for frame in frames) or not frames:
            continue
        samples += count
        self_counts[frames[-1].key] += count
        for key in {frame.key for frame in frames}:
            total_counts[key] += count
    return ProfileSummary(samples, self_counts.most_common(top), total_counts.most_common(top))


def py_spy() -> str | None:
    """The py-spy program next to this Python, or on PATH."""
    import sys

    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")
