"""Arrow's allocator for the whole process: the C library's, unless the user chose one, with
the C library's arenas bounded.

Arrow's default allocator on Linux (mimalloc) keeps the pages a thread freed for that thread's
next allocations. shiftsync reads in worker threads (S3 parts, Data API pages) and a lake commit
writes data files in pyiceberg's worker threads, so each stage of a load kept its peak for the
rest of the run: a 10^6-row sync into Iceberg peaked at about 420 MB where its buffers need
about 300 MB. The C library returns large blocks when they are freed (bench/README.md has
the figures). Arrow reads ARROW_DEFAULT_MEMORY_POOL once, when its default pool is first
used, so this runs when `shiftsync` is imported, before anything imports pyarrow; a process
that imported pyarrow first keeps the allocator it already has.

glibc gives each new thread an arena of its own, up to 8 per core, and an arena keeps the
blocks freed into it for its next allocations: the read's threads, the stage's and the
commit's each kept some 5–10 MB of buffers no one used again. Two arenas make threads reuse
what another freed (10^6 `sales` rows: 11 MB lower peak into DuckDB, 19 MB into Iceberg;
bench/README.md). A MALLOC_ARENA_MAX the user set is glibc's to apply, and is kept.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

ARROW_POOL_VARIABLE: Final = "ARROW_DEFAULT_MEMORY_POOL"
ARENA_VARIABLE: Final = "MALLOC_ARENA_MAX"
ARENAS: Final = 2
# mallopt's parameter number for the arena cap (glibc's malloc.h).
_M_ARENA_MAX: Final = -8


def prefer_system_allocator() -> None:
    """Set Arrow's default pool to the C library's, unless the environment names one; bound
    glibc's arenas to ARENAS, unless the environment does."""
    os.environ.setdefault(ARROW_POOL_VARIABLE, "system")
    if ARENA_VARIABLE not in os.environ:
        bound_arenas(ARENAS)


def bound_arenas(arenas: int) -> bool:
    """Cap the arenas glibc's malloc makes for new threads; False where the C library is not
    glibc (musl, macOS), which has no such cap."""
    try:
        # The process's own symbols: the C library it runs on, without looking for a file.
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 — only glibc has it
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
