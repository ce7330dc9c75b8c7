"""Arrow's allocator: the C library's when shiftsync is imported first, unless the user chose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shiftsync.allocator import ARROW_POOL_VARIABLE

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
