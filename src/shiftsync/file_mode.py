"""The mode of the files shiftsync creates: owner-only unless the user says otherwise.

Local destination files hold warehouse rows (the DuckDB file and its write-ahead log, Parquet
files, temporary merge databases, staged extracts) and run records name tables and errors; a
default umask of 022 would make them all world-readable. The `shiftsync` command therefore
creates every file with mode SHIFTSYNC_FILE_MODE (default 0600; folders get the same bits plus
search, e.g. 0700), by setting the process umask for the command's run. Files under
`.shiftsync/` are always 0600 whatever this says (see workspace.py).

From Python, call `file_mode_umask()` yourself (or set the process umask): a library does not
change a process-wide setting behind its caller's back.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from typing import Final

from shiftsync.errors import ConfigError

FILE_MODE_ENV: Final = "SHIFTSYNC_FILE_MODE"
DEFAULT_FILE_MODE: Final = 0o600
_MODE_RE: Final = re.compile(r"0?[0-7]{3}")


def file_mode(environ: Mapping[str, str] | None = None) -> int:
    """The mode files are created with: SHIFTSYNC_FILE_MODE (octal), default 0600."""
    raw = (os.environ if environ is None else environ).get(FILE_MODE_ENV, "").strip()
    if not raw:
        return DEFAULT_FILE_MODE
    if not _MODE_RE.fullmatch(raw):
        raise ConfigError(
            f"{FILE_MODE_ENV}={raw!r} is not a file mode",
            fix=f"set {FILE_MODE_ENV} to an octal mode such as 0600 (owner only, the default), "
            f"0640 (and the group) or 0644 (everyone may read), or unset it",
        )
    mode = int(raw, 8)
    if not mode & 0o600 == 0o600:
        raise ConfigError(
            f"{FILE_MODE_ENV}={raw} does not let the owner read and write the files it creates",
            fix=f"keep the owner's read and write bits: {FILE_MODE_ENV}=0600 or wider",
        )
    return mode


def umask_for(mode: int) -> int:
    """The umask under which open(..., 0o666) creates files with `mode`, and mkdir folders
    with the same bits plus search (x) for whoever may read."""
    folder_bits = mode | (mode & 0o444) >> 2
    return 0o777 & ~folder_bits


@contextlib.contextmanager
def file_mode_umask(environ: Mapping[str, str] | None = None) -> Iterator[int]:
    """Create files with the configured mode inside the block; the umask is restored after."""
    mode = file_mode(environ)
    previous = os.umask(umask_for(mode))
    try:
        yield mode
    finally:
        os.umask(previous)


__all__ = ["DEFAULT_FILE_MODE", "FILE_MODE_ENV", "file_mode", "file_mode_umask", "umask_for"]
