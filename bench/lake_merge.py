"""What a merge of a few keys rewrites in an Iceberg or Delta table written by shiftsync.

    .venv/bin/python -m bench.lake_merge --rows 1000000 --changed 1000 --file-mb 1 4 16 64

Builds a `sales`-shaped table of ROWS rows (full refresh of rows given in ORDER, written
sorted by key, files of at most FILE_MB of Arrow data) in a temporary folder, then merges
CHANGED rows twice: keys that arrive clustered (the newest ids, as incremental syncs see
them) and keys spread uniformly over the table. Reports, per file size: data files, table
bytes, the bytes each merge rewrote (Iceberg: the snapshot's removed-files-size; Delta: the
sizes of the files the commit removed) and its share of the table, the seconds of each step
and the process's peak RSS after the full refresh (the rows are generated batch by batch, so
the RSS is the destination's). No stand-in: only the destination is measured. `--out DIR`
also writes the results to DIR/lake-merge-YYYY-MM-DD-HHMM.json.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.table.snapshots import Snapshot

from shiftsync.destinations.base import LoadMode, LoadSpec
from shiftsync.destinations.delta import DeltaDestination, DeltaSettings
from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings

SCHEMA = pa.schema(
    [
        ("salesid", pa.int64()),
        ("listid", pa.int32()),
        ("sellerid", pa.int32()),
        ("buyerid", pa.int32()),
        ("eventid", pa.int32()),
        ("dateid", pa.int16()),
        ("qtysold", pa.int16()),
        ("pricepaid", pa.decimal128(8, 2)),
        ("commission", pa.decimal128(8, 2)),
        ("saletime", pa.timestamp("us")),
    ]
)
BATCH = 100_000
# Multiplier of the shuffle, a prime: ids come as (i * SHUFFLE) mod rows + 1, a permutation of
# 1..rows for any rows count below it (UNLOAD's parts arrive in no key order).
SHUFFLE = 2_654_435_761


def sales(ids: list[int], seed: int) -> pa.RecordBatch:
    rng = random.Random(seed)
    n = len(ids)
    return pa.RecordBatch.from_pydict(
        {
            "salesid": ids,
            "listid": [rng.randrange(1, 200_000) for _ in range(n)],
            "sellerid": [rng.randrange(1, 50_000) for _ in range(n)],
            "buyerid": [rng.randrange(1, 50_000) for _ in range(n)],
            "eventid": [rng.randrange(1, 9_000) for _ in range(n)],
            "dateid": [rng.randrange(1827, 2191) for _ in range(n)],
            "qtysold": [rng.randrange(1, 9) for _ in range(n)],
            "pricepaid": [Decimal(rng.randrange(100, 1_000_000)) / 100 for _ in range(n)],
            "commission": [Decimal(rng.randrange(10, 150_000)) / 100 for _ in range(n)],
            "saletime": pa.array([1_200_000_000_000_000 + i * 1_000_000 for i in ids]).cast(
                pa.timestamp("us")
            ),
        },
        schema=SCHEMA,
    )


def shuffled(rows: int) -> Iterator[pa.RecordBatch]:
    """`rows` sales with ids 1..rows in shuffled order, made one batch at a time."""
    for start in range(0, rows, BATCH):
        ids = [(i * SHUFFLE) % rows + 1 for i in range(start, min(start + BATCH, rows))]
        yield sales(ids, start)


def sliced(rows: int, slices: int = 2, block: int = 1_000) -> Iterator[pa.RecordBatch]:
    """`rows` sales as UNLOAD gives a table stored in key order: blocks of `block` rows dealt
    to `slices` slices in turn, each slice's rows (in key order) read after the other's, in
    batches of at most BATCH rows (the stand-in's UNLOAD; the lake stage's sorted runs)."""
    for first in range(slices):
        ids: list[int] = []
        for start in range(first * block, rows, slices * block):
            ids.extend(range(start + 1, min(start + block, rows) + 1))
            if len(ids) >= BATCH:
                yield sales(ids[:BATCH], first * rows + start)
                ids = ids[BATCH:]
        if ids:
            yield sales(ids, first * rows + rows)


ORDERS = {"shuffled": shuffled, "slices": sliced}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def load(
    destination: Any, mode: LoadMode, batches: Iterable[pa.RecordBatch], cursor: str = "full"
) -> float:
    spec = LoadSpec("sales", SCHEMA, mode, primary_key=("salesid",), sort_key=("salesid",))
    started = time.perf_counter()
    running = destination.start_load(spec)
    for batch in batches:
        running.write(batch)
    running.commit({"cursor": cursor})
    return time.perf_counter() - started


def iceberg_sizes(destination: IcebergDestination) -> tuple[int, int, int]:
    """(data files, table bytes, bytes the last snapshot removed) of the current table."""
    table = destination.catalog().load_table(destination.identifier("sales"))
    current = table.current_snapshot()
    assert current is not None
    assert current.summary is not None
    summary = current.summary.additional_properties
    removed = 0
    snapshot: Snapshot | None = current
    last = summary.get("shiftsync.cursor")
    # The merge is a delete snapshot (rewrites) and then an append, in one commit: the
    # snapshots of that commit carry its cursor.
    while snapshot is not None and snapshot.summary is not None:
        if snapshot.summary.additional_properties.get("shiftsync.cursor") != last:
            break
        removed += int(snapshot.summary.additional_properties.get("removed-files-size", 0))
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return int(summary["total-data-files"]), int(summary["total-files-size"]), removed


def _delta_files(table: Any) -> dict[str, int]:
    actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
    return dict(zip(actions["path"], actions["size_bytes"], strict=True))


def delta_sizes(destination: DeltaDestination) -> tuple[int, int, int]:
    from deltalake import DeltaTable

    table = DeltaTable(destination.uri("sales"))
    now = _delta_files(table)
    if table.version() == 0:
        return len(now), sum(now.values()), 0
    before = _delta_files(DeltaTable(destination.uri("sales"), version=table.version() - 1))
    removed = sum(size for path, size in before.items() if path not in now)
    return len(now), sum(now.values()), removed


def run(
    kind: str,
    rows: int,
    changed: int,
    file_mb: int,
    folder: Path,
    merges: Iterable[str] = ("clustered", "spread"),
    order: str = "shuffled",
) -> dict[str, Any]:
    size = file_mb * 1024 * 1024
    destination: Any
    if kind == "iceberg":
        destination = IcebergDestination(
            IcebergSettings(
                "sql",
                warehouse=str(folder / "wh"),
                uri=f"sqlite:///{folder / 'catalog.db'}",
                target_file_size_bytes=size,
            )
        )
        sizes = iceberg_sizes
    else:
        destination = DeltaDestination(
            DeltaSettings(str(folder / "delta"), target_file_size_bytes=size)
        )
        sizes = delta_sizes  # type: ignore[assignment]
    result: dict[str, Any] = {"kind": kind, "rows": rows, "file_mb": file_mb, "order": order}
    refresh = load(destination, LoadMode.REPLACE, ORDERS[order](rows))
    result["full_refresh_s"] = round(refresh, 2)
    result["peak_rss_mb_after_refresh"] = peak_rss_mb()
    files, total, _ = sizes(destination)
    result.update(files=files, table_bytes=total)
    spread = random.Random(2).sample(range(1, rows + 1), changed)
    clustered = list(range(rows - changed + 1, rows + 1))
    chosen = [(n, k) for n, k in (("clustered", clustered), ("spread", spread)) if n in merges]
    for name, keys in chosen:
        _, total, _ = sizes(destination)
        seconds = load(destination, LoadMode.MERGE, [sales(keys, 99)], cursor=name)
        _, _, removed = sizes(destination)
        result[name] = {
            "merge_s": round(seconds, 2),
            "rewritten_bytes": removed,
            "rewritten_share": round(removed / total, 4),
        }
    destination.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lake_merge", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=1_000)
    parser.add_argument("--file-mb", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--kinds", nargs="+", default=["iceberg", "delta"])
    parser.add_argument(
        "--merges", nargs="+", choices=["clustered", "spread"], default=["clustered", "spread"]
    )
    parser.add_argument(
        "--order",
        choices=sorted(ORDERS),
        default="shuffled",
        help="the full refresh's row order: shuffled (no key order) or slices (2 runs in key "
        "order, as UNLOAD gives a table stored sorted by its key)",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON in this folder")
    args = parser.parse_args(argv)
    results = []
    for kind in args.kinds:
        for file_mb in args.file_mb:
            with tempfile.TemporaryDirectory(prefix="shiftsync-lake-bench-") as folder:
                result = run(
                    kind, args.rows, args.changed, file_mb, Path(folder), args.merges, args.order
                )
            print(json.dumps(result), flush=True)
            results.append(result)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / time.strftime("lake-merge-%Y-%m-%d-%H%M.json", time.gmtime())
        arguments = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        path.write_text(json.dumps({"arguments": arguments, "results": results}, indent=2) + "\n")
        print(f"written {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
