"""The benchmark's peers (awswrangler, dlt, Sling) in a virtualenv of their own.

dlt and awswrangler pin their own versions of libraries shiftsync also uses (awswrangler
3.17.1 wants pyarrow below 26), so the peers never go into the project's .venv: `python -m
bench.peers --install` (run by `make bench`) makes `.bench-peers/` at the top of the
repository with the versions below. dlt and Sling read the stand-in's PostgreSQL directly (no
Data API, no S3): the path a user with a network route to a provisioned cluster would take;
awswrangler reads through the Data API as the same assumed role as shiftsync. Each runs as a
child process of the measuring client, whose wall time, CPU and peak RSS are the child's
(getrusage RUSAGE_CHILDREN).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
# SHIFTSYNC_BENCH_PEERS puts the virtualenv elsewhere (a shared cache, a faster disk).
PEERS_DIR: Final = Path(os.environ.get("SHIFTSYNC_BENCH_PEERS") or REPO / ".bench-peers")
# The versions measured in the issue; dlt brings its own SQLAlchemy, pyarrow and DuckDB.
# pyarrow is the newest awswrangler 3.17.1 accepts.
REQUIREMENTS: Final = (
    "dlt[duckdb]==1.31.0",
    "sqlalchemy==2.1.9",
    "pyarrow==25.0.1",
    "connectorx==0.4.6",
    "psycopg2-binary==2.9.13",
    "sling-linux-amd64==1.4.11",
    "awswrangler==3.17.1",
)
STAMP: Final = "requirements.txt"

# Run by the peers' interpreter: argv = dsn schema table backend duckdb_file work_dir.
DLT_SCRIPT: Final = """
import sys
import dlt
import duckdb
from dlt.sources.sql_database import sql_table

dsn, schema, table, backend, out, work = sys.argv[1:7]
source = sql_table(
    credentials=dsn.replace("postgresql://", "postgresql+psycopg2://", 1),
    table=table,
    schema=schema,
    backend=backend,
)
pipeline = dlt.pipeline(
    pipeline_name="bench",
    destination=dlt.destinations.duckdb(out),
    dataset_name="peer",
    pipelines_dir=work,
)
pipeline.run(source, write_disposition="replace")
with duckdb.connect(out, read_only=True) as connection:
    quoted = '"' + table.replace('"', '""') + '"'
    (rows,) = connection.execute(f"SELECT count(*) FROM peer.{quoted}").fetchone()
print(f"PEER_ROWS {rows}")
"""

# Run by the peers' interpreter: argv = workgroup database sql. The assumed role's temporary
# credentials, the region and the stand-in's endpoints come in the environment.
AWSWRANGLER_SCRIPT: Final = """
import sys
import awswrangler as wr
import boto3

workgroup, database, sql = sys.argv[1:4]
connection = wr.data_api.redshift.connect(
    workgroup_name=workgroup, database=database, boto3_session=boto3.Session()
)
frame = wr.data_api.redshift.read_sql_query(sql, con=connection)
print(f"PEER_ROWS {len(frame)}")
print(f"PEER_DATAFRAME_BYTES {int(frame.memory_usage(deep=True).sum())}")
"""


def python_of(folder: Path = PEERS_DIR) -> Path:
    return folder / "bin" / "python"


def sling_binary(folder: Path = PEERS_DIR) -> Path:
    """The Sling executable inside the `sling-linux-amd64` wheel."""
    found = sorted(folder.glob("lib/python*/site-packages/sling_linux_amd64/bin/sling-linux-amd64"))
    if not found:
        raise PeersMissing(folder)
    return found[0]


class PeersMissing(RuntimeError):
    def __init__(self, folder: Path) -> None:
        super().__init__(
            f"the peers' virtualenv {folder} is missing or incomplete: run "
            "`python -m bench.peers --install` (`make bench` does)"
        )


def installed(folder: Path = PEERS_DIR) -> bool:
    stamp = folder / STAMP
    return (
        python_of(folder).exists()
        and stamp.exists()
        and stamp.read_text().splitlines() == list(REQUIREMENTS)
    )


def install(folder: Path = PEERS_DIR) -> None:
    """Make the peers' virtualenv unless it already holds these requirements."""
    if installed(folder):
        return
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    subprocess.run(
        [str(python_of(folder)), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True
    )
    (folder / STAMP).write_text("\n".join(REQUIREMENTS) + "\n")


def peer_versions(folder: Path = PEERS_DIR) -> str:
    """The peers' pinned requirements as the report prints them, or "not installed"."""
    return ", ".join(REQUIREMENTS) if installed(folder) else "not installed"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The benchmark's peers (awswrangler, dlt, Sling).")
    parser.add_argument("--install", action="store_true", help="make .bench-peers/ if needed")
    parser.add_argument("--dir", type=Path, default=PEERS_DIR, help="the virtualenv's folder")
    args = parser.parse_args(argv)
    if args.install:
        install(args.dir)
    print(f"peers: {'installed' if installed(args.dir) else 'missing'} in {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
