"""Local scratch folders (merge stages, spooled parts, lake stages) that a killed run cannot
leave behind.

A run removes its scratch folders when a load commits or fails; a run killed with SIGKILL (or
a crash of the machine) never reaches that code. Each folder's name therefore carries the
process id that made it, `shiftsync-<kind>-<pid>-<random>`, and the next run deletes every
such folder of the same user whose process is gone (`remove_stale_scratch`), as it deletes what
a killed run staged in S3. A folder of a live process is left alone (a reused pid keeps a
stale folder until that process ends: the safe side).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Final

SCRATCH_KINDS: Final = ("merge", "parquet", "lake")
_NAME_RE: Final = re.compile(r"shiftsync-(?:merge|parquet|lake)-(?P<pid>\d+)-[^/]+")


def scratch_folder(kind: str) -> tempfile.TemporaryDirectory[str]:
    """A new temporary folder for `kind` (one of SCRATCH_KINDS), named after this process."""
    if kind not in SCRATCH_KINDS:
        raise ValueError(f"unknown scratch kind {kind!r}")
    return tempfile.TemporaryDirectory(prefix=f"shiftsync-{kind}-{os.getpid()}-")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def stale_scratch(folder: Path | None = None) -> list[Path]:
    """Scratch folders in `folder` (default: the temporary folder) of processes that ended."""
    where = Path(folder or tempfile.gettempdir())
    found: list[Path] = []
    try:
        entries = list(where.iterdir())
    except OSError:
        return found
    uid = os.getuid()
    for entry in entries:
        match = _NAME_RE.fullmatch(entry.name)
        if match is None:
            continue
        try:
            info = entry.lstat()
        except OSError:
            continue
        if info.st_uid != uid or not entry.is_dir() or entry.is_symlink():
            continue
        if not _process_alive(int(match["pid"])):
            found.append(entry)
    return sorted(found)


def remove_stale_scratch(folder: Path | None = None) -> list[Path]:
    """Delete the scratch folders of ended processes; the ones removed."""
    removed = []
    for path in stale_scratch(folder):
        with contextlib.suppress(OSError):
            shutil.rmtree(path)
            removed.append(path)
    return removed


__all__ = ["SCRATCH_KINDS", "remove_stale_scratch", "scratch_folder", "stale_scratch"]
