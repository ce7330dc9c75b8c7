"""Arrow's allocator for the whole process: the C library's, unless the user chose one.

Arrow's default allocator on Linux (mimalloc) keeps the pages a thread freed for that thread's
next allocations. shiftsync reads in worker threads (S3 parts, Data API pages) and a lake commit
writes data files in pyiceberg's worker threads, so each stage of a load kept its peak for the
rest of the run: a 10^6-row sync into Iceberg peaked at about 420 MB where its buffers need
about 300 MB. The C library returns large blocks when they are freed (bench/README.md has
the figures). Arrow reads ARROW_DEFAULT_MEMORY_POOL once, when its default pool is first
used, so this runs when `shiftsync` is imported, before anything imports pyarrow; a process
that imported pyarrow first keeps the allocator it already has.
"""

from __future__ import annotations

import os
from typing import Final

ARROW_POOL_VARIABLE: Final = "ARROW_DEFAULT_MEMORY_POOL"


def prefer_system_allocator() -> None:
    """Set Arrow's default pool to the C library's, unless the environment names one."""
    os.environ.setdefault(ARROW_POOL_VARIABLE, "system")
