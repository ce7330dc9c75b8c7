"""Staged rows that arrive in key order, kept as runs: the lake stage's fast path.

UNLOAD writes one or more files per slice of the cluster, and a slice gives its rows in its
storage order, so a table stored sorted by its key arrives as a few runs, each in key order
(the stand-in deals blocks of rows to 2 slices: 2 runs). Such rows need no general sort:
each run goes, as it arrives, to an Arrow IPC file in the stage's folder (about a memory
copy, every Arrow type exactly), and `merged` reads the runs back in step and merges them
into one key order, sorting only the keys of the few batches it holds. That costs a fraction
of inserting the rows into DuckDB and sorting them there (docs/lake.md, "Sync time and
memory").

A batch that does not follow the current run starts a new one (sorted first if it is not in
order itself). `add` refuses a batch that would open a run past `MAX_RUNS`, or whose key Arrow
cannot sort: the stage then moves the runs to DuckDB (`in_order` gives them back in arrival
order, a batch sorted here in its sorted order) and sorts there, as for any load.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

# More runs than this go to DuckDB: the merge holds one batch per run and sorts their keys
# together, so its memory and its sorting grow with the runs.
MAX_RUNS: Final = 8
# Rows per IPC batch of a run file: what the merge holds of each run.
RUN_BATCH_ROWS: Final = 16 * 1024

_IDENTITY: list[pa.Array] = []


def _identity(count: int) -> pa.Array:
    """0, 1, … count-1 as uint64 (sort_indices' type), sliced from one cached array."""
    if not _IDENTITY or len(_IDENTITY[0]) < count:
        _IDENTITY[:] = [pa.array(range(max(count, RUN_BATCH_ROWS * MAX_RUNS)), pa.uint64())]
    return _IDENTITY[0].slice(0, count)


class SortedRuns:
    """The runs of one stage, in `folder`, ordered by `key` (ascending, NULLs last, as the
    stage's DuckDB sort orders them)."""

    def __init__(self, folder: Path, schema: pa.Schema, key: Sequence[str]) -> None:
        self._folder, self._schema, self._key = folder, schema, tuple(key)
        self._sort_keys = [(name, "ascending", "at_end") for name in self._key]
        self._paths: list[Path] = []
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._sink: pa.NativeFile | None = None
        self._last: pa.RecordBatch | None = None  # the last staged row's key

    @property
    def key(self) -> tuple[str, ...]:
        return self._key

    def _ordered(self, keys: pa.Table) -> bool:
        indices = pc.sort_indices(keys, sort_keys=self._sort_keys)
        # sort_indices is stable: rows already in order (equal keys included) come back as is.
        return bool(indices.equals(_identity(len(indices))))

    def add(self, batch: pa.RecordBatch) -> bool:
        """Stage `batch` in the current run or a new one; False (nothing staged) when it
        would make more than MAX_RUNS runs or its key is of a type Arrow cannot sort."""
        if batch.num_rows == 0:
            return True
        if self._key:
            keys = batch.select(list(self._key))
            try:
                following = self._last is not None and self._ordered(
                    pa.Table.from_batches([self._last, keys])
                )
                if not following:
                    if len(self._paths) >= MAX_RUNS:
                        return False
                    # A batch that is not in order itself (one that spans two of the source's
                    # runs) is sorted here and starts a run of its own.
                    order = pc.sort_indices(keys, sort_keys=self._sort_keys)
                    if not order.equals(_identity(len(order))):
                        batch, keys = batch.take(order), keys.take(order)
            except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid):
                return False  # a key type Arrow does not sort: DuckDB does
            if not following:
                self._close_run()
            self._last = keys.slice(batch.num_rows - 1)
        if self._writer is None:
            self._open_run()
        assert self._writer is not None
        for start in range(0, batch.num_rows, RUN_BATCH_ROWS):
            self._writer.write_batch(batch.slice(start, RUN_BATCH_ROWS))
        return True

    def _open_run(self) -> None:
        path = self._folder / f"run-{len(self._paths)}.arrows"
        self._paths.append(path)
        self._sink = pa.OSFile(str(path), "wb")
        self._writer = pa.ipc.new_stream(self._sink, self._schema)

    def _close_run(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _read(self, path: Path) -> Iterator[pa.RecordBatch]:
        with pa.OSFile(str(path), "rb") as source, pa.ipc.open_stream(source) as reader:
            yield from reader

    def in_order(self) -> Iterator[pa.RecordBatch]:
        """Every staged row in the order it was added (a batch sorted when added, in its
        sorted order: rows of equal keys still in the order they came)."""
        self._close_run()
        for path in self._paths:
            yield from self._read(path)

    def merged(self) -> Iterator[pa.RecordBatch]:
        """Every staged row, in key order (rows of equal keys in the order they were added)."""
        self._close_run()
        readers = [self._read(path) for path in self._paths]
        held: list[pa.RecordBatch | None] = [next(reader, None) for reader in readers]
        while True:
            live = [run for run, batch in enumerate(held) if batch is not None]
            if len(live) <= 1:
                for run in live:  # one run left: already in order
                    last = held[run]
                    assert last is not None
                    yield last
                    yield from readers[run]
                return
            batches = [b for b in held if b is not None]
            table = pa.Table.from_batches(batches, schema=self._schema)
            indices = pc.sort_indices(table.select(list(self._key)), sort_keys=self._sort_keys)
            # A run's rows still to come sort at or after its last held row, so every held row
            # up to the first (in key order) of the runs' last held rows is final. That row's
            # batch is then used up: each round takes at least one batch.
            ends, start = [], 0
            for batch in batches:
                start += batch.num_rows
                ends.append(start)
            cut = min(pc.index(indices, pa.scalar(end - 1, pa.uint64())).as_py() for end in ends)
            taken = indices.slice(0, cut + 1)
            yield from table.take(taken).combine_chunks().to_batches()
            begin = 0
            for run, batch, end in zip(live, batches, ends, strict=True):
                inside = pc.and_(pc.greater_equal(taken, begin), pc.less(taken, end))
                used = pc.sum(inside.cast(pa.int64())).as_py() or 0
                rest = batch.slice(used)
                held[run] = rest if rest.num_rows else next(readers[run], None)
                begin = end

    def close(self) -> None:
        """Delete the run files (again is harmless)."""
        self._close_run()
        for path in self._paths:
            path.unlink(missing_ok=True)
        self._paths = []
        self._last = None


__all__ = ["MAX_RUNS", "RUN_BATCH_ROWS", "SortedRuns"]
