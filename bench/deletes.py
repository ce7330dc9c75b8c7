"""Delete detection on the stand-in: what a delete pass costs, in statements, bytes and seconds.

    python -m bench.deletes                 # 10^6 rows (make bench)
    python -m bench.deletes --rows 100000   # smaller, for a shared machine

One stand-in in this process (seeded small), one table `public.bench_deletes` of `--rows` rows
(bigint key, a text, a timestamp tracking field), synced incrementally with `deletes: hard`
into a DuckDB file. Then three cases, each one `run_sync`, read from the run record's
`deletes` entry:

- no change: target 1 statement and a result under 1 KB;
- 37 rows deleted: target at most 3 statements and under 1% of the table's key bytes;
- 10% deleted (read with UNLOAD): target no worse than one key-only UNLOAD (the pass's
  statements beside it are the small summary).

"Key bytes" is the table's keys as text (what a key listing moves). Results go to
bench/results/deletes-YYYY-MM-DD-HHMM.md and .json. Exit 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.report import write_checked
from bench.workspaces import standin_connection
from bench.workspaces import write_workspace as write_config
from shiftsync.engine.sync import run_sync
from shiftsync.local.standin import ROLE_NAME, StandIn, StandInOptions
from shiftsync.workspace import Workspace

TABLE = "bench_deletes"
RESULTS = Path(__file__).resolve().parent / "results"
DB_USER = f"IAMR:{ROLE_NAME}"


def create_table(admin: psycopg.Connection[Any], rows: int) -> int:
    """The table, granted to the role; returns its key bytes (the keys as text)."""
    table = sql.Identifier("public", TABLE)
    admin.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    admin.execute(
        sql.SQL(
            "CREATE TABLE {} (id bigint PRIMARY KEY, name varchar(32), updated_at timestamp)"
        ).format(table)
    )
    admin.execute(
        sql.SQL(
            "INSERT INTO {} SELECT i, 'row ' || i, TIMESTAMP '2026-01-01' + i * interval '1 second'"
            " FROM generate_series(1, %s) AS g(i)"
        ).format(table),
        (rows,),
    )
    admin.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(DB_USER)))
    admin.execute(sql.SQL("ANALYZE {}").format(table))
    row = admin.execute(
        sql.SQL("SELECT sum(octet_length(id::text)) FROM {}").format(table)
    ).fetchone()
    assert row is not None
    return int(row[0])


def write_workspace(folder: Path, standin: StandIn, method: str) -> Workspace:
    config = {
        "connections": {
            "warehouse": standin_connection(standin.info, unload={"bucket": standin.info.bucket})
        },
        "destinations": {"dest": {"type": "duckdb", "path": "out.duckdb"}},
        "syncs": {
            "main": {
                "source": "warehouse",
                "destination": "dest",
                "tables": [
                    {
                        "include": f"public.{TABLE}",
                        "mode": "incremental",
                        "tracking_field": "updated_at",
                        "method": method,
                        "deletes": "hard",
                    }
                ],
            }
        },
    }
    return write_config(folder, standin.info, config)


def delete_random(admin: psycopg.Connection[Any], count: int, seed: int) -> None:
    """Delete `count` rows picked at random (repeatably) among those still there."""
    table = sql.Identifier("public", TABLE)
    cursor = admin.execute(sql.SQL("SELECT id FROM {}").format(table))
    ids = [row[0] for row in cursor.fetchall()]
    picked = random.Random(seed).sample(ids, count)
    deleted = admin.execute(sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(table), (picked,))
    assert deleted.rowcount == count


def measure(workspace: Workspace, name: str) -> dict[str, Any]:
    started = time.monotonic()
    record = run_sync(workspace, "main")
    wall = time.monotonic() - started
    (table,) = record.tables
    if record.status != "ok" or table.deletes is None:
        raise SystemExit(f"case {name}: the run failed: {table.error}")
    return {"case": name, "run_seconds": round(wall, 2), **table.deletes}


def run(rows: int) -> dict[str, Any]:
    saved = dict(os.environ)
    standin = StandIn(StandInOptions(seed="tickit", scale=0.01)).start()
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ.update(standin.info.environment())
    try:
        with standin.admin_connection() as admin, tempfile.TemporaryDirectory() as folder:
            key_bytes = create_table(admin, rows)
            workspace = write_workspace(Path(folder), standin, "data_api")
            first = run_sync(workspace, "main")
            if first.status != "ok":
                raise SystemExit(f"the first sync failed: {first.tables[0].error}")
            cases = [measure(workspace, "no change")]
            delete_random(admin, 37, seed=1)
            cases.append(measure(workspace, "37 deleted"))
            delete_random(admin, rows // 10, seed=2)
            workspace = write_workspace(Path(folder), standin, "unload")
            cases.append(measure(workspace, "10% deleted (unload)"))
    finally:
        standin.stop()
        os.environ.clear()
        os.environ.update(saved)
    return {"rows": rows, "key_bytes": key_bytes, "cases": cases}


def checks(result: dict[str, Any]) -> list[tuple[str, bool]]:
    quiet, few, many = result["cases"]
    key_bytes = result["key_bytes"]
    return [
        ("no change: 1 statement", quiet["statements"] == 1),
        ("no change: result under 1 KB", quiet["bytes"] < 1024),
        ("37 deleted: at most 3 statements", few["statements"] <= 3),
        ("37 deleted: under 1% of key bytes", few["bytes"] < key_bytes / 100),
        ("37 deleted: found all", few["deleted"] == 37),
        ("10%: one key-only read and the summary", many["statements"] <= 2),
        ("10%: found all", many["deleted"] == result["rows"] // 10),
    ]


def report(result: dict[str, Any]) -> str:
    lines = [
        f"# Delete detection, {result['rows']:,} rows ({result['key_bytes']:,} key bytes)",
        "",
        "| case | deleted | strategy | statements | bytes | % of key bytes | pass s | run s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in result["cases"]:
        share = 100 * case["bytes"] / result["key_bytes"]
        lines.append(
            f"| {case['case']} | {case['deleted']:,} | {case['strategy']} | "
            f"{case['statements']} | {case['bytes']:,} | {share:.3f} | {case['seconds']} | "
            f"{case['run_seconds']} |"
        )
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {name} | {'yes' if ok else 'NO'} |" for name, ok in checks(result)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deletes", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    args = parser.parse_args(argv)
    result = run(args.rows)
    checked = [ok for _, ok in checks(result)]
    return write_checked(args.out, "deletes", report(result), result, checked)


if __name__ == "__main__":
    raise SystemExit(main())
