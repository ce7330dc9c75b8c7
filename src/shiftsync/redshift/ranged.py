"""Reading a big table as several UNLOADs over key ranges, resumable from a checkpoint.

A table whose size estimate passes the connection's `unload.range_mb` is cut into key ranges
by its sort or primary key (the bounds come from one MIN/MAX statement); each range is its own
UNLOAD, staged under its own prefix in the table's range area

    <unload.prefix>ranges/<schema>.<table>/<area id>/r<range>-<attempt>_…

and checkpointed as soon as its UNLOAD has finished (the caller's `RangeCheckpoint` keeps it in
the run record). A later run of the same read (same select, same key) resumes: the ranges whose
manifest is still there are read from their staged files, only the others are UNLOADed again.
The staged files are kept when the read fails or is stopped, so that the next run can resume;
the caller deletes the area once the table is committed (`delete_range_area`), and a later read
of the table with another select deletes an area it cannot use. What no run comes back for is
left to `shiftsync cleanup` (a day).

The ranges may be read here, one after the other (`read_ranged`), or each elsewhere (the Ray
executor's tasks): the caller plans them (`start_ranged`, `range_reads`), each reader stages
its range (`stage_range`) and reports where, and the caller alone records it in the checkpoint
(`RangedProgress.finished`) and deletes what unfinished ranges left (`delete_unfinished`).

The first range is open below and the last open above, and NULL keys have their own range, so
every row falls in exactly one range however the table changed between the bounds and a
resumed run's UNLOADs.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

import pyarrow as pa

from shiftsync.config import UnloadConfig
from shiftsync.errors import SourceError
from shiftsync.json_types import JsonObject, JsonValue
from shiftsync.redshift.catalog import TableInfo, TableRef
from shiftsync.redshift.data_api_results import query_rows
from shiftsync.redshift.plan import KeyRange, split_range
from shiftsync.redshift.sql import build_select_sql, quote_ident, range_predicate
from shiftsync.redshift.stats import ReadStats
from shiftsync.redshift.types import Column
from shiftsync.redshift.unload import Manifest, UnloadReader
from shiftsync.redshift.unload_manifest import StagingLocation, path_component

# More ranges than this cost more in statements (and wake-ups) than they save in a resume.
MAX_RANGES: Final = 64
AREA_FOLDER: Final = "ranges/"
PROGRESS_VERSION: Final = 1


class RangeCheckpoint(Protocol):
    """Where a ranged read keeps its progress (the engine: the table's entry in the run record)."""

    def resume(self) -> Mapping[str, JsonValue] | None:
        """The progress an earlier run of this table left (`RangedProgress.to_json`), if any."""

    def save(self, progress: Mapping[str, JsonValue]) -> None:
        """Keep the progress now: the run may be killed at any moment after."""


# ------------------------------------------------------------------ planning (pure)


def range_count(estimated_bytes: int | None, range_mb: float | None) -> int:
    """How many key ranges a table of this size is read in (1: one UNLOAD, as for any table
    at or below the threshold, or of unknown size)."""
    if not estimated_bytes or not range_mb or range_mb <= 0:
        return 1
    range_bytes = range_mb * 1024 * 1024
    if estimated_bytes <= range_bytes:
        return 1
    return min(MAX_RANGES, math.ceil(estimated_bytes / range_bytes))


def plan_ranges(low: str | None, high: str | None, parts: int, key: Column) -> list[KeyRange]:
    """[low, high] of the key cut into at most `parts` ranges, the first open below and the
    last open above, plus a range for NULL keys when the column can hold them."""
    ranges: list[KeyRange] = []
    if low is not None and high is not None:
        cut = split_range(low, high, parts, key.type_name, scale=key.scale)
        ranges = [
            KeyRange(
                None if i == 0 else part.low,
                None if i == len(cut) - 1 else part.high,
                part.high_inclusive,
            )
            for i, part in enumerate(cut)
        ]
    else:
        # No key value yet (an empty table): one range takes whatever is there by the UNLOAD.
        ranges = [KeyRange(None, None)]
    if key.nullable:
        ranges.append(KeyRange(None, None, is_null=True))
    return ranges


def read_fingerprint(select_sql: str, key: str) -> str:
    """What makes two ranged reads the same read: the select (columns, filter) and the key."""
    return hashlib.sha256(f"{key}\n{select_sql}".encode()).hexdigest()[:32]


def area_root(unload: UnloadConfig, ref: TableRef) -> str:
    """The key prefix under which every range area of the table lies."""
    return f"{unload.prefix}{AREA_FOLDER}{path_component(ref.schema)}.{path_component(ref.name)}/"


@dataclass
class RangedProgress:
    """A ranged read's checkpoint: its ranges and, per finished range, where its files are."""

    fingerprint: str
    area: str
    key: str
    ranges: list[KeyRange]
    # range index -> (staging name prefix, rows) of its finished UNLOAD
    done: dict[int, tuple[str, int]] = field(default_factory=dict)

    def to_json(self) -> JsonObject:
        return {
            "version": PROGRESS_VERSION,
            "fingerprint": self.fingerprint,
            "area": self.area,
            "key": self.key,
            "ranges": [
                {
                    "low": r.low,
                    "high": r.high,
                    "high_inclusive": r.high_inclusive,
                    "is_null": r.is_null,
                }
                for r in self.ranges
            ],
            "done": {
                str(i): {"prefix": prefix, "rows": rows}
                for i, (prefix, rows) in sorted(self.done.items())
            },
        }

    def finished(self, index: int, prefix: str, rows: int) -> bool:
        """Range `index` is staged under `prefix`; True when that is news to the checkpoint."""
        if self.done.get(index) == (prefix, rows):
            return False
        self.done[index] = (prefix, rows)
        return True

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue] | None) -> RangedProgress | None:
        """The progress in `data`; None when there is none or it is not of this version (a
        damaged record is not worth failing a run for: the read starts over)."""
        if not data or data.get("version") != PROGRESS_VERSION:
            return None
        try:
            ranges = [
                KeyRange(
                    _optional_text(r["low"]),
                    _optional_text(r["high"]),
                    bool(r["high_inclusive"]),
                    bool(r["is_null"]),
                )
                for r in _objects(data["ranges"])
            ]
            done = {int(i): _done_range(entry) for i, entry in _object(data["done"]).items()}
            progress = cls(
                str(data["fingerprint"]), str(data["area"]), str(data["key"]), ranges, done
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        if not ranges or any(not 0 <= i < len(ranges) for i in done):
            return None
        if any(not prefix.startswith(progress.area) for prefix, _ in done.values()):
            return None
        return progress


def _object(value: JsonValue) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise TypeError(value)
    return value


def _objects(value: JsonValue) -> list[dict[str, JsonValue]]:
    if not isinstance(value, list):
        raise TypeError(value)
    return [_object(item) for item in value]


def _done_range(value: JsonValue) -> tuple[str, int]:
    entry = _object(value)
    return str(entry["prefix"]), _whole(entry["rows"])


def _whole(value: JsonValue) -> int:
    if not isinstance(value, int | float | str):
        raise TypeError(value)
    return int(value)


def _optional_text(value: JsonValue) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def usable(previous: RangedProgress | None, fingerprint: str, root: str) -> RangedProgress | None:
    """The earlier progress if this read can resume it: same read, inside the table's area."""
    if previous is None or previous.fingerprint != fingerprint:
        return None
    if not previous.area.startswith(root) or previous.area == root:
        return None
    return previous


# ------------------------------------------------------------------ the ranges' reads


@dataclass(frozen=True)
class RangeRead:
    """One key range of a ranged read, as whoever reads it needs it (plain values: it travels
    to a Ray worker as it is)."""

    index: int
    select: str
    # Where its UNLOAD stages if it runs (a fresh name in the read's area).
    prefix: str
    # Where an earlier run's finished UNLOAD of the range staged, and its rows.
    staged: tuple[str, int] | None = None


@dataclass(frozen=True)
class StagedRange:
    """A range whose files are staged: where (for the checkpoint) and its manifest."""

    index: int
    prefix: str
    rows: int
    manifest: Manifest


@dataclass(frozen=True)
class RangedSelect:
    """What a ranged read selects: the table, its columns and filter, the key it is cut by
    and into how many ranges at most."""

    info: TableInfo
    columns: Sequence[Column]
    where: str | None
    key: Column
    parts: int

    def narrowed(self, condition: str) -> str:
        """The read's filter and a range's `condition`, both."""
        return f"({self.where}) AND {condition}" if self.where else condition

    def select(self, condition: str | None = None) -> str:
        """The read's UNLOAD select, narrowed to `condition` (a range's) when given."""
        where = self.where if condition is None else self.narrowed(condition)
        ref = self.info.ref
        return build_select_sql(ref.schema, ref.name, self.columns, method="unload", where=where)


def range_reads(
    state: RangedProgress,
    read: RangedSelect,
    name: Callable[[], str] = lambda: uuid.uuid4().hex[:8],
) -> list[RangeRead]:
    """Each range of `state` as it is to be read: its SELECT (the read's `where` and the
    range's condition), a fresh staging prefix, and the staged files of a finished range."""
    reads = []
    for index, key_range in enumerate(state.ranges):
        select = read.select(range_predicate(read.key, key_range))
        prefix = f"{state.area}r{index}-{name()}_"
        reads.append(RangeRead(index, select, prefix, state.done.get(index)))
    return reads


def unfinished_keys(keys: Sequence[str], state: RangedProgress) -> list[str]:
    """The keys of the read's area that no finished range of `state` holds (what an UNLOAD
    that failed or was stopped left): kept keys are only those under a checkpointed prefix."""
    kept = tuple(prefix for prefix, _ in state.done.values())
    return [k for k in keys if k.startswith(state.area) and not k.startswith(kept)]


def start_ranged(
    reader: UnloadReader, read: RangedSelect, checkpoint: RangeCheckpoint, stats: ReadStats
) -> RangedProgress:
    """The read's progress, saved: the earlier run's if this read can resume it, else new
    ranges from one bounds statement (an earlier area it cannot use is deleted)."""
    unload = _unload(reader, str(read.info.ref))
    fingerprint = read_fingerprint(read.select(), read.key.name)
    root = area_root(unload, read.info.ref)
    previous = RangedProgress.from_json(checkpoint.resume())
    state = usable(previous, fingerprint, root)
    if state is None:
        if previous is not None and previous.area.startswith(root) and previous.area != root:
            # Another read of the table (other columns, filter or key): its files are useless.
            delete_range_area(reader, unload, previous.area, stats)
        low, high = _bounds(reader, read.info, read.key, read.where, stats)
        state = RangedProgress(
            fingerprint,
            f"{root}{uuid.uuid4().hex[:12]}/",
            read.key.name,
            plan_ranges(low, high, read.parts, read.key),
        )
    else:
        stats.note(
            f"resumed a ranged read: {len(state.done)} of {len(state.ranges)} key range(s) "
            "already staged"
        )
    checkpoint.save(state.to_json())
    return state


def stage_range(reader: UnloadReader, part: RangeRead, table: str, stats: ReadStats) -> StagedRange:
    """The range's staged files: an earlier run's while they are still there, else those of
    its UNLOAD, run now. The files are left where they are (the checkpoint names them)."""
    unload = _unload(reader, table)
    if part.staged is not None:
        prefix, rows = part.staged
        manifest = reader.staged_manifest(StagingLocation(unload.bucket, prefix), table, stats)
        if manifest is None and rows == 0:
            # An UNLOAD of no rows may write no file at all.
            return StagedRange(part.index, prefix, 0, Manifest((), 0, 0, ()))
        if manifest is not None:
            return StagedRange(part.index, prefix, rows, manifest)
        stats.note(f"key range {part.index}: its staged files are gone, UNLOAD runs again")
    location = StagingLocation(unload.bucket, part.prefix)
    manifest, _ = reader.unload_to(part.select, location, table=table, stats=stats)
    return StagedRange(part.index, part.prefix, manifest_rows(manifest), manifest)


def read_ranged(
    reader: UnloadReader,
    read: RangedSelect,
    checkpoint: RangeCheckpoint,
    stats: ReadStats,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The table's rows, range after range (see the module docstring)."""
    table = str(read.info.ref)
    state = start_ranged(reader, read, checkpoint, stats)
    for part in range_reads(state, read):
        stats.add(chunks=1)
        staged = stage_range(reader, part, table, stats)
        if state.finished(staged.index, staged.prefix, staged.rows):
            checkpoint.save(state.to_json())
        yield from reader.stream(staged.manifest, read.columns, table, stats, progress)


def range_conditions(reader: UnloadReader, read: RangedSelect, stats: ReadStats) -> list[str]:
    """The WHERE condition of each key range of the read (bounds from one statement), each
    joined to its `where`: for readers that run each range elsewhere (the Ray executor's
    workers), without a checkpoint."""
    low, high = _bounds(reader, read.info, read.key, read.where, stats)
    conditions = [
        range_predicate(read.key, r) for r in plan_ranges(low, high, read.parts, read.key)
    ]
    where = read.where
    return [f"({where}) AND {c}" if where else c for c in conditions]


def manifest_rows(manifest: Manifest) -> int:
    if manifest.record_count is not None:
        return manifest.record_count
    return sum(entry.record_count or 0 for entry in manifest.entries)


def _bounds(
    reader: UnloadReader, info: TableInfo, key: Column, where: str | None, stats: ReadStats
) -> tuple[str | None, str | None]:
    quoted = quote_ident(key.name)
    sql = f"SELECT min({quoted}), max({quoted})\nFROM {info.ref.sql}" + (
        f"\nWHERE {where}" if where else ""
    )
    rows = query_rows(reader.api, sql, what=f"table {info.ref} (key range)", stats=stats)
    low, high = rows[0] if rows else (None, None)
    return (None if low is None else str(low), None if high is None else str(high))


def _unload(reader: UnloadReader, table: str) -> UnloadConfig:
    unload = reader.api.connection.unload
    if unload is None:
        raise SourceError(
            f"table {table}: a ranged read needs unload: in the connection",
            fix="add unload: {bucket: <staging bucket>} to the connection",
        )
    return unload


def delete_unfinished(
    reader: UnloadReader, unload: UnloadConfig, state: RangedProgress, stats: ReadStats
) -> int:
    """Delete what the read's area holds beyond its checkpointed ranges (ranges that failed
    or were stopped); the finished ranges stay for the run that resumes. How many objects."""
    listed = reader.bucket.list(unload.bucket, state.area, stats=stats)
    keys = unfinished_keys([str(item["Key"]) for item in listed], state)
    return reader.bucket.delete(unload.bucket, keys, stats=stats) if keys else 0


def delete_range_area(
    reader: UnloadReader, unload: UnloadConfig, area: str, stats: ReadStats
) -> int:
    """Delete a range area's staged files; refuses a prefix outside the range areas."""
    if not area.startswith(f"{unload.prefix}{AREA_FOLDER}") or not area.endswith("/"):
        raise SourceError(
            f"{area!r} is not a range area under {unload.prefix}{AREA_FOLDER}",
            fix="report this: the run record's ranged read was changed by hand",
        )
    return reader.bucket.delete_prefix(unload.bucket, area, stats=stats)


__all__ = [
    "MAX_RANGES",
    "RangeCheckpoint",
    "RangeRead",
    "RangedProgress",
    "RangedSelect",
    "StagedRange",
    "area_root",
    "delete_range_area",
    "delete_unfinished",
    "plan_ranges",
    "range_conditions",
    "range_count",
    "range_reads",
    "read_fingerprint",
    "read_ranged",
    "stage_range",
    "start_ranged",
    "unfinished_keys",
    "usable",
]
