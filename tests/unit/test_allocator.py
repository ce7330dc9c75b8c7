"""Arrow's allocator: the C library's when shiftsync is imported first, unless the user chose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shiftsync.allocator import ARENA_VARIABLE, ARENAS, ARROW_POOL_VARIABLE

SRC = Path(__file__).resolve().parents[2] / "src"
PROGRAM = "import shiftsync, pyarrow; print(pyarrow.default_memory_pool().backend_name)"


def _backend(**overrides: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != ARROW_POOL_VARIABLE}
    env["PYTHONPATH"] = str(SRC)
    env.update(overrides)
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_shiftsync_makes_arrow_use_the_c_library_allocator() -> None:
    assert _backend() == "system"


def test_a_pool_the_user_named_is_kept() -> None:
    assert _backend(**{ARROW_POOL_VARIABLE: "mimalloc"}) == "mimalloc"


# Six threads at once each take memory from malloc; glibc's malloc_stats lists one "Arena N:"
# per arena on stderr.
ARENAS_PROGRAM = """
import ctypes, sys, threading
if sys.argv[1] == "shiftsync":
    import shiftsync
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
barrier = threading.Barrier(6)
def take():
    block = libc.malloc(100_000)
    barrier.wait()
    libc.free(block)
threads = [threading.Thread(target=take) for _ in range(6)]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
libc.malloc_stats()
"""


def _arenas(importing: str, **overrides: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != ARENA_VARIABLE}
    env["PYTHONPATH"] = str(SRC)
    env.update(overrides)
    done = subprocess.run(
        [sys.executable, "-c", ARENAS_PROGRAM, importing],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(1 for line in done.stderr.splitlines() if line.startswith("Arena "))


def test_shiftsync_bounds_the_c_librarys_arenas() -> None:
    assert _arenas("nothing") > ARENAS, "without shiftsync, each thread takes an arena"
    assert _arenas("shiftsync") == ARENAS


def test_an_arena_cap_the_user_set_is_kept() -> None:
    assert _arenas("shiftsync", **{ARENA_VARIABLE: "4"}) == 4
