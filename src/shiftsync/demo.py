"""What `shiftsync demo` sets up: a workspace pointed at a running stand-in, and new source rows.

The demo runs the product exactly as a user would against AWS; only the endpoints (the
standard `AWS_ENDPOINT_URL_*` variables) and the keys point at the local stand-in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from shiftsync.local.standin import StandInInfo
from shiftsync.workspace import Workspace, atomic_write_text

# About a million rows of TICKIT sales (172,456 x 5.8).
DEMO_SCALE: Final = 5.8
DEMO_SYNC: Final = "tickit"

DEMO_QUERY: Final = """
SELECT e.eventname AS event, count(*) AS tickets_sold, sum(s.pricepaid) AS revenue
FROM sales s JOIN event e USING (eventid)
GROUP BY e.eventname
ORDER BY revenue DESC, event
LIMIT 5
"""


def demo_config(info: StandInInfo) -> str:
    """shiftsync.yaml for the stand-in: the same keys a real account uses."""
    return f"""\
# Written by `shiftsync demo`. To use a real account, change region, workgroup, database,
# role_arn and the bucket, run `shiftsync policy` and `shiftsync check` (docs/aws-setup.md).
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
"""


def prepare_workspace(folder: Path, info: StandInInfo) -> Workspace:
    """A fresh workspace in `folder` whose external ID the stand-in's role trusts."""
    for stale in ("demo.duckdb", "demo.duckdb.wal"):
        (folder / stale).unlink(missing_ok=True)
    workspace = Workspace.init(folder)
    atomic_write_text(workspace.config_path, demo_config(info))
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
