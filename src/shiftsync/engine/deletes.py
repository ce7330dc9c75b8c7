"""The delete pass of a table: which destination keys are gone from the source, then delete them
(`deletes: hard`) or mark them (`deletes: soft`), in one transaction with the table's state.

Cheapest first, the warehouse doing the work (SQL in redshift/deletes_sql.py, the destination's
side in engine/deletes_digest.py):

1. one statement: the source's key count and key checksum; equal to the destination's → done;
2. one statement: count and checksum per hash bucket (about `BUCKET_KEYS` keys each). A bucket
   that holds one key more in the destination, whose checksum differs by exactly one
   destination key's hash value, names that key: resolved without reading any key;
3. the key texts of the buckets still unresolved, and an anti-join with the destination's;
   unresolved buckets holding too many keys are split again first (bisection, `SPLIT` ways);
4. past `FULL_READ_SHARE` of the table, one key-only read of the whole table instead (UNLOAD
   or the Data API, the table's read method) and one anti-join.

The source side is the whole selection (the `filter`, never the cursor): a row updated after
this run's high-water mark is still in the source and must not look deleted. A key in the
source but not in the destination (a row past the mark) is not a delete, so only destination
keys missing from the source are acted on.

The pass runs after the table's load committed; it commits its deletes with the same state. A
pass that fails or is killed leaves the destination as the load left it, and the next run
finds the same keys again.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from shiftsync.destinations.base import DELETED_AT_COLUMN, Destination, LoadMode, LoadSpec
from shiftsync.engine.deletes_digest import KeySet, Summary
from shiftsync.engine.pause import debug_pause
from shiftsync.engine.runs import DeletesJson
from shiftsync.engine.selection import TablePlan
from shiftsync.engine.state import Window
from shiftsync.errors import ConfigError
from shiftsync.json_types import JsonValue
from shiftsync.redshift.catalog import TableInfo
from shiftsync.redshift.data_api_results import Row, field_int
from shiftsync.redshift.deletes_sql import (
    MAX_BUCKETS,
    build_bucket_keys_sql,
    build_bucket_sql,
    build_key_summary_sql,
    key_problem,
)
from shiftsync.redshift.types import Column
from shiftsync.sql_quote import quote_standard

Policy = Literal["ignore", "hard", "soft"]

BUCKET_KEYS: Final = 1024  # keys per bucket at the first split
MIN_BUCKETS: Final = 16
SPLIT: Final = 64  # a bucket split again becomes this many
KEYS_PER_FETCH: Final = 65_536  # at most this many keys are listed by one statement
MAX_LISTED_BUCKETS: Final = 4_096  # keeps the statement's text well under the Data API's limit
FULL_READ_SHARE: Final = 0.05  # past this share of the keys, read them all at once
DELETED_AT_TYPE: Final = pa.timestamp("us", tz="UTC")

Query = Callable[[str], list[Row]]
# Reads every source key once: (the keys, bytes received, statements run).
ReadKeys = Callable[[], tuple[pa.Table, int, int]]


@dataclass
class DeletePass:
    """What one delete pass did, for the run record."""

    policy: str
    deleted: int = 0
    statements: int = 0
    bytes: int = 0
    strategy: str = "summary"
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)

    def to_json(self) -> DeletesJson:
        return {
            "policy": self.policy,
            "deleted": self.deleted,
            "statements": self.statements,
            "bytes": self.bytes,
            "strategy": self.strategy,
            "seconds": round(self.seconds, 3),
        }


def deleted_at_field() -> pa.Field:
    return pa.field(DELETED_AT_COLUMN, DELETED_AT_TYPE, True)


def check_deletes(
    name: str,
    policy: Policy,
    *,
    kind: str,
    key: Sequence[Column],
    hashed: Iterable[str],
    destination_kind: str = "",
    destination_supports: bool = True,
) -> None:
    """Refuse, before anything is read, a `deletes` the table cannot support."""
    if policy == "ignore":
        return
    if not destination_supports:
        raise ConfigError(
            f"table {name}: deletes: {policy} is not supported by {destination_kind or 'this'} "
            "destinations yet",
            fix=f"set deletes: ignore for {name}",
        )
    if kind == "VIEW":
        raise ConfigError(
            f"table {name}: deletes: {policy} on a view: a view's rows are computed again by "
            "each statement, so a key missing from one is no proof that a row was deleted",
            fix=f"set deletes: ignore for {name}, or sync the table the view reads",
        )
    if not key:
        raise ConfigError(
            f"table {name}: deletes: {policy} needs a primary key to tell which rows are gone, "
            "and the table has none",
            fix=f"set primary_key: [<column>, ...] for {name} in shiftsync.yaml, or deletes: "
            "ignore",
        )
    hashed_keys = sorted(set(hashed) & {c.name for c in key})
    if hashed_keys:
        raise ConfigError(
            f"table {name}: deletes: {policy}, but key column {hashed_keys[0]!r} is hashed, so "
            "the destination's keys cannot be matched with the source's",
            fix=f"remove {hashed_keys[0]!r} from columns.hash, or set deletes: ignore",
        )
    for column in key:
        problem = key_problem(column)
        if problem is not None:
            raise ConfigError(
                f"table {name}: deletes: {policy}: {problem}",
                fix="set primary_key to columns of those types, or deletes: ignore",
            )


def delete_key(plan: TablePlan) -> tuple[Column, ...]:
    """The key columns (source names and types) deletes are detected by."""
    by_name = {c.name: c for c in plan.columns}
    return tuple(by_name[name] for name in plan.primary_key if name in by_name)


def soft_window(window: Window, policy: str, present: pa.Schema | None) -> Window:
    """Under `deletes: soft` a replace would drop the rows marked deleted: merge instead."""
    if policy == "soft" and window.load is LoadMode.REPLACE and present is not None:
        return dataclasses.replace(window, load=LoadMode.MERGE)
    return window


def deletes_wanted(policy: str, load: LoadMode) -> bool:
    """Whether a delete pass follows the load (a replace already dropped vanished rows)."""
    return policy != "ignore" and load is not LoadMode.REPLACE


def bucket_count(keys: int, missing: int = 0) -> int:
    """The first split: a power of two giving about `BUCKET_KEYS` keys per bucket, and at
    least four buckets per missing key, so that most gone keys are alone in their bucket (and
    resolved from the checksums alone)."""
    buckets = MIN_BUCKETS
    while (buckets * BUCKET_KEYS < keys or buckets < 4 * missing) and buckets < MAX_BUCKETS:
        buckets *= 2
    return buckets


def _result_bytes(rows: Sequence[Row]) -> int:
    """About the bytes a result moved: each value's text and a separator."""
    return sum(len(str(v)) + 1 for row in rows for v in row)


@dataclass
class _Counter:
    report: DeletePass
    query: Query

    def __call__(self, sql: str, step: str) -> list[Row]:
        rows = self.query(sql)
        self.report.statements += 1
        self.report.bytes += _result_bytes(rows)
        self.report.steps.append(step)
        return rows


def _summary(row: Row, offset: int = 0) -> Summary:
    count, total = row[offset], row[offset + 1]
    return Summary(int(count or 0), int(total or 0))


def find_deleted(
    query: Query,
    read_keys: ReadKeys,
    *,
    schema: str,
    table: str,
    key: Sequence[Column],
    where: str | None,
    window: str | None,
    destination: KeySet,
    report: DeletePass,
    keys_per_fetch: int = KEYS_PER_FETCH,
) -> list[str]:
    """The texts of the destination's keys that the source no longer has."""
    ask = _Counter(report, query)
    mine = destination.summary()
    if mine.count == 0:
        return []
    row = ask(build_key_summary_sql(schema, table, key, where, window=window), "summary")[0]
    everything = _summary(row)
    if everything == mine or (window is not None and _summary(row, 2) == mine):
        return []
    missing = mine.count - everything.count
    if missing > FULL_READ_SHARE * mine.count:
        return _full_read(read_keys, key, destination, report)
    buckets = bucket_count(max(mine.count, everything.count), missing)
    if buckets > max(mine.count, everything.count):  # more buckets than keys: list the keys
        return _full_read(read_keys, key, destination, report)
    report.strategy = "buckets"
    deleted: list[str] = []
    within: list[int] = []
    coarser = 0
    while True:
        sql = build_bucket_sql(
            schema, table, key, where, buckets=buckets, within=within, within_buckets=coarser
        )
        theirs = {field_int(r[0]): _summary(r, 1) for r in ask(sql, f"buckets/{buckets}")}
        ours = destination.buckets(buckets, within, coarser)
        unresolved: list[int] = []
        for bucket, summary in ours.items():
            other = theirs.get(bucket, Summary(0, 0))
            if other == summary:
                continue
            if summary.count - other.count == 1:
                single = destination.single_key(buckets, bucket, summary.checksum - other.checksum)
                if single is not None:
                    deleted.append(single)
                    continue
            unresolved.append(bucket)
        if not unresolved:
            return deleted
        listed = sum(max(ours[b].count, theirs.get(b, Summary(0, 0)).count) for b in unresolved)
        if listed > FULL_READ_SHARE * mine.count * 4 or len(unresolved) > MAX_LISTED_BUCKETS:
            return _full_read(read_keys, key, destination, report)
        if listed <= keys_per_fetch or buckets * SPLIT > MAX_BUCKETS:
            break
        within, coarser, buckets = unresolved, buckets, buckets * SPLIT
    report.strategy = "keys"
    sql = build_bucket_keys_sql(schema, table, key, where, buckets=buckets, within=unresolved)
    present = {str(r[0]) for r in ask(sql, "keys")}
    gone = destination.texts(buckets, unresolved) - present
    return [*deleted, *sorted(gone)]


def _full_read(
    read_keys: ReadKeys,
    key: Sequence[Column],
    destination: KeySet,
    report: DeletePass,
) -> list[str]:
    report.strategy = "full_read"
    keys, received, statements = read_keys()
    report.statements += statements
    report.bytes += received
    report.steps.append("full_read")
    with KeySet(keys, [(c, c.name) for c in key]) as source:
        return destination.anti_join(source)


# --- the destination's keys, and applying the result ------------------------------------------


def live_rows(table: pa.Table) -> pa.Table:
    """The rows not marked deleted (all of them when the table has no mark column)."""
    if DELETED_AT_COLUMN not in table.schema.names:
        return table
    return table.filter(pc.is_null(table.column(DELETED_AT_COLUMN)))


def rows_with_keys(table: pa.Table, keys: pa.Table, names: Sequence[str]) -> pa.Table:
    """The rows of `table` whose key (`names`) is one of `keys`' rows.

    Only the key columns go through DuckDB (as row positions): the other columns keep their
    Arrow types exactly, whatever DuckDB would make of them.
    """
    positions = table.select(list(names)).append_column(
        "_shiftsync_row", pa.array(range(table.num_rows), pa.int64())
    )
    using = ", ".join(quote_standard(n) for n in names)
    with duckdb.connect() as db:
        db.register("t", positions)
        db.register("wanted", keys.select(list(names)))
        rows = db.execute(
            f"SELECT _shiftsync_row FROM t SEMI JOIN wanted USING ({using}) ORDER BY 1"
        ).fetchall()
    return table.take(pa.array([r[0] for r in rows], pa.int64()))


def apply_deletes(
    destination: Destination,
    *,
    target: str,
    state_key: str,
    key_targets: Sequence[str],
    schema: pa.Schema,
    read_rows: Callable[[], pa.Table],
    deleted_keys: pa.Table,
    policy: Policy,
    state: Mapping[str, JsonValue],
    now: datetime | None = None,
    table_name: str = "",
    stop: threading.Event | None = None,
) -> int:
    """Delete (hard) or mark (soft) the rows of `deleted_keys`, with the state, in one commit.

    `schema` is the destination table's; `read_rows` reads its rows (soft only: the marked
    rows are merged back whole).
    """
    if deleted_keys.num_rows == 0:
        return 0
    # The table keeps the stamp of the load it belongs to, so its cursor stays valid.
    identity = str(state.get("table_id") or "")
    if policy == "soft" and DELETED_AT_COLUMN not in schema.names:
        raise ConfigError(
            f"table {target!r}: deletes: soft needs the column {DELETED_AT_COLUMN}, which the "
            "destination table does not have (schema_changes keeps it from being added)",
            fix="set schema_changes: evolve for this sync, or run once with --full-refresh",
        )
    if policy == "hard":
        key_schema = pa.schema([schema.field(n) for n in key_targets])
        spec = LoadSpec(
            target=target,
            schema=key_schema,
            mode=LoadMode.DELETE,
            primary_key=tuple(key_targets),
            state_key=state_key,
            identity=identity,
        )
        batches = deleted_keys.select(list(key_targets)).cast(key_schema).to_batches()
    else:
        rows = rows_with_keys(live_rows(read_rows()), deleted_keys, key_targets)
        stamp = pa.array([now or datetime.now(UTC)] * rows.num_rows, DELETED_AT_TYPE)
        index = rows.schema.get_field_index(DELETED_AT_COLUMN)
        rows = rows.set_column(index, deleted_at_field(), stamp)
        spec = LoadSpec(
            target=target,
            schema=rows.schema,
            mode=LoadMode.MERGE,
            primary_key=tuple(key_targets),
            state_key=state_key,
            identity=identity,
        )
        batches = rows.to_batches()
    load = destination.start_load(spec)
    try:
        for batch in batches:
            load.write(batch)
        debug_pause("before_delete_commit", table_name or target, stop=stop)
        load.commit(state)
    except BaseException:
        load.abort()
        raise
    return int(deleted_keys.num_rows)


def read_columns(destination: Destination, target: str, names: Sequence[str]) -> pa.Table:
    """Some columns of a destination table: only those read when the destination can."""
    return destination.read_table(target, columns=list(names))


def run_delete_pass(
    *,
    info: TableInfo,
    policy: Policy,
    key: Sequence[Column],
    key_targets: Sequence[str],
    target: str,
    state_key: str,
    state: Mapping[str, JsonValue],
    where: str | None,
    window: str | None,
    query: Query,
    read_source_keys: ReadKeys,
    destination: Destination,
    stop: threading.Event | None = None,
) -> DeletePass:
    """Find the destination's rows gone from the source and delete or mark them."""
    started = time.monotonic()
    report = DeletePass(policy=policy)
    present = destination.table_schema(target)
    if present is None:
        return report
    names = [*key_targets, *([DELETED_AT_COLUMN] if DELETED_AT_COLUMN in present.names else [])]
    live = live_rows(read_columns(destination, target, names))
    with KeySet(live, list(zip(key, key_targets, strict=True))) as keys:
        texts = find_deleted(
            query,
            read_source_keys,
            schema=info.ref.schema,
            table=info.ref.name,
            key=key,
            where=where,
            window=window,
            destination=keys,
            report=report,
        )
        deleted_keys = keys.rows_of(texts)
    report.deleted = apply_deletes(
        destination,
        target=target,
        state_key=state_key,
        key_targets=key_targets,
        schema=present,
        read_rows=lambda: destination.read_table(target),
        deleted_keys=deleted_keys,
        policy=policy,
        state=state,
        table_name=f"{info.ref.schema}.{info.ref.name}",
        stop=stop,
    )
    report.seconds = time.monotonic() - started
    return report


__all__ = [
    "DeletePass",
    "apply_deletes",
    "bucket_count",
    "check_deletes",
    "deleted_at_field",
    "find_deleted",
    "live_rows",
    "run_delete_pass",
]
