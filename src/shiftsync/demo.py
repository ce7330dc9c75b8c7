"""What `shiftsync demo` sets up: a workspace pointed at a running stand-in, and new source rows.

The demo runs the product exactly as a user would against AWS; only the endpoints (the
standard `AWS_ENDPOINT_URL_*` variables) and the keys point at the local stand-in.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final

from shiftsync.config import CONFIG_FILE_NAME
from shiftsync.errors import ConfigError
from shiftsync.local.info import StandInInfo
from shiftsync.local.standin import LAKE_BUCKET
from shiftsync.workspace import DOT_DIR_NAME, Workspace, atomic_write_text

DEMO_SYNC: Final = "tickit"
# `shiftsync demo --lake`: sales and event into Iceberg tables in the stand-in's lake bucket.
LAKE_SYNC: Final = "tickit_lake"
LAKE_TABLES: Final = ("sales", "event")
DEMO_DATABASE_FILES: Final = ("demo.duckdb", "demo.duckdb.wal")

# The first line of every shiftsync.yaml the demo writes carries a digest of the rest: a file
# with that line intact is the demo's own and may be rewritten; any edit makes it the user's.
DEMO_HEADER: Final = "# Written by `shiftsync demo`"
# What the demo's folder holds until the stand-in is up and the real configuration is written.
PLACEHOLDER_BODY: Final = "# The stand-in did not start; run `shiftsync demo` again.\n"
_MAX_DEMO_CONFIG_BYTES: Final = 64 * 1024


def stamped(body: str) -> str:
    """body under the demo's first line, which carries the digest of body."""
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]
    return f"{DEMO_HEADER} [{digest}]; the demo rewrites this file only while unedited.\n{body}"


DEMO_QUERY: Final = """
SELECT e.eventname AS event, count(*) AS tickets_sold, sum(s.pricepaid) AS revenue
FROM sales s JOIN event e USING (eventid)
GROUP BY e.eventname
ORDER BY revenue DESC, event
LIMIT 5
"""


def demo_config(info: StandInInfo, *, lake: bool = False) -> str:
    """shiftsync.yaml for the stand-in: the same keys a real account uses. With `lake`, also
    an Iceberg destination in the stand-in's lake bucket and the sync that fills it."""
    lake_destination = lake_sync = ""
    if lake:
        lake_destination = f"""\
  lake:                         # Iceberg on S3, written as the connection's role; its catalog
    type: iceberg               # is the SQLite file iceberg_catalog.db in this folder
    warehouse: s3://{LAKE_BUCKET}/iceberg
"""
        tables = "".join(f"      - public.{name}\n" for name in LAKE_TABLES)
        lake_sync = f"""\
  {LAKE_SYNC}:
    source: warehouse
    destination: lake
    tables:
{tables}"""
    return stamped(f"""\
# To use a real account, change region, workgroup, database, role_arn and the bucket, run
# `shiftsync policy` and `shiftsync check` (docs/aws-setup.md).
connections:
  warehouse:
    type: redshift_serverless
    region: {info.region}
    workgroup: {info.workgroup}
    database: {info.database}
    role_arn: {info.role_arn}
    method: auto                # small tables through the Data API, big ones through UNLOAD
    unload:
      bucket: {info.bucket}
      prefix: shiftsync/

destinations:
  local:
    type: duckdb
    path: demo.duckdb
{lake_destination}
syncs:
  {DEMO_SYNC}:
    source: warehouse
    destination: local
    concurrency: 2
    tables:
      - include: "public.*"
        exclude: ["public.sales", "public.listing", "public.events_log"]
      - include: public.sales
        mode: incremental
        tracking_field: saletime
        primary_key: [salesid]
      - include: public.listing
        mode: incremental
        tracking_field: listtime
        primary_key: [listid]
{lake_sync}""")


def is_demo_config(path: Path) -> bool:
    """Whether path is a shiftsync.yaml the demo wrote and nobody edited since."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_DEMO_CONFIG_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if len(data) > _MAX_DEMO_CONFIG_BYTES or not text.startswith(DEMO_HEADER):
        return False
    return text == stamped(text.partition("\n")[2])


def check_demo_folder(folder: Path) -> None:
    """ConfigError unless `folder` is missing, holds no workspace, or is an earlier demo's.

    The demo rewrites shiftsync.yaml, deletes demo.duckdb and records runs in .shiftsync/: it
    must never do that to a user's workspace.
    """
    config_path = folder / CONFIG_FILE_NAME
    fix = (
        "pass --folder an empty (or new) folder, or one an earlier `shiftsync demo` wrote; "
        "the default is ./demo"
    )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--folder {folder} is a file, not a folder", fix=fix)
    if config_path.is_file() and is_demo_config(config_path):
        return
    if config_path.is_file() or config_path.is_symlink() or config_path.exists():
        raise ConfigError(
            f"--folder {folder} holds a {CONFIG_FILE_NAME} that `shiftsync demo` did not write "
            "(or that was edited since): the demo would replace it, delete the folder's "
            "demo.duckdb and add its runs to the workspace's history",
            fix=fix,
        )
    for name in (DOT_DIR_NAME, *DEMO_DATABASE_FILES):
        taken = folder / name
        if taken.exists() or taken.is_symlink():
            raise ConfigError(
                f"--folder {folder} holds {name} but no {CONFIG_FILE_NAME} of the demo: the "
                f"demo would {'delete' if name != DOT_DIR_NAME else 'write into'} it",
                fix=fix,
            )


def start_workspace(folder: Path) -> Workspace:
    """The demo's workspace before the stand-in runs: its external ID, a placeholder config."""
    check_demo_folder(folder)
    return Workspace.init(folder, config_text=stamped(PLACEHOLDER_BODY))


def prepare_workspace(folder: Path, info: StandInInfo, *, lake: bool = False) -> Workspace:
    """A fresh workspace in `folder` whose external ID the stand-in's role trusts."""
    check_demo_folder(folder)
    for stale in DEMO_DATABASE_FILES:
        (folder / stale).unlink(missing_ok=True)
    workspace = Workspace.init(folder, config_text=stamped(PLACEHOLDER_BODY))
    atomic_write_text(workspace.config_path, demo_config(info, lake=lake))
    return workspace


def point_environment_at(info: StandInInfo) -> None:
    """Set the standard AWS variables of this process to the stand-in's platform identity."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(info.environment())


NEW_SALES_SQL: Final = """
INSERT INTO public.sales (salesid, listid, sellerid, buyerid, eventid, dateid, qtysold,
                          pricepaid, commission, saletime)
SELECT s.salesid + m.top, s.listid, s.sellerid, s.buyerid, s.eventid, s.dateid, s.qtysold,
       s.pricepaid, s.commission, m.latest + (s.salesid %% 3600) * interval '1 second'
FROM public.sales s,
     (SELECT max(salesid) AS top, max(saletime) + interval '1 day' AS latest
      FROM public.sales) m
WHERE s.salesid <= %s
"""


def lake_answer(workspace: Workspace) -> list[tuple[object, ...]]:
    """DEMO_QUERY answered by DuckDB over the lake sync's Iceberg tables, read through their
    catalog as the connection's role (the identity that wrote them)."""
    import duckdb

    from shiftsync.destinations.registry import DestinationContext, create_destination
    from shiftsync.redshift.source import RedshiftSource

    source = RedshiftSource.from_workspace(workspace)
    _, config = workspace.config.destination("lake")
    context = DestinationContext(
        folder=workspace.folder, connection_credentials=source.connection_credentials()
    )
    destination = create_destination(config, context)
    try:
        tables = {name: destination.read_table(name) for name in LAKE_TABLES}
    finally:
        destination.close()
    with duckdb.connect() as db:
        for name, table in tables.items():
            db.register(name, table)
        return db.execute(DEMO_QUERY).fetchall()
