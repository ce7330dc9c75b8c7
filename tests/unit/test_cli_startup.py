"""The command line starts without the heavy libraries; the commands load them when they run."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "boto3",
    "botocore",
    "pyarrow",
    "duckdb",
    "psycopg",
    "moto",
    # `shiftsync serve` and alerts: loaded by the commands that use them only.
    "fastapi",
    "uvicorn",
    "prometheus_client",
    "apprise",
)


def test_loading_the_command_line_loads_no_heavy_library() -> None:
    probe = (
        "import sys, shiftsync.cli\n"
        f"print(','.join(name for name in {HEAVY!r} if name in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
