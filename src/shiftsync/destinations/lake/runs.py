"""Staged rows that arrive in key order, kept as runs: the lake stage's fast path.

UNLOAD writes one or more files per slice of the cluster, and a slice gives its rows in its
storage order, so a table stored sorted by its key arrives as a few runs, each in key order
(the stand-in deals blocks of rows to 2 slices: 2 runs, whatever the number of parts). Such
rows need no general sort: each run goes, as it arrives, to an Arrow IPC file in the stage's
folder (about a memory copy, every Arrow type exactly), and `merged` reads the runs back in
step and merges them into one key order, sorting only the keys of the few batches it holds.
That costs a fraction of inserting the rows into DuckDB and sorting them there
(docs/lake.md, "Sync time and memory").

A batch goes to the end of a run whose last key it follows: the run the previous batch went
to if it can, else the first run that can (the parts of several slices, listed in turns by
the manifest, so continue their slices' runs), else a new run. A batch that is not in order
itself (one that spans two parts) is sorted first, up to `MAX_SORTED_BATCHES`. `add` refuses a
batch that would open a run past `MAX_RUNS`, or one more such batch, or one whose key Arrow
cannot sort: the stage then moves the runs to DuckDB
(`in_runs` gives them back run after run) and sorts there, as for any load. Rows of equal keys
keep the order they came in within a run, and across runs the runs' order: the stage keeps
runs only for loads that keep every row (no "last written row wins").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

# More runs than this go to DuckDB: the merge holds one batch per run and sorts their keys
# together, so its memory and its sorting grow with the runs (16 × 8 Ki rows held at most).
MAX_RUNS: Final = 16
# Rows per IPC batch of a run file: what the merge holds of each run.
RUN_BATCH_ROWS: Final = 8 * 1024
# Batches not in key order themselves that are sorted here; the next one goes to DuckDB. A
# batch spanning two parts is rare (UNLOAD's reader never makes one); rows in no key order
# make every batch such, and would otherwise be sorted batch by batch up to MAX_RUNS runs
# before going to DuckDB anyway (+25 % CPU for 10^6 shuffled rows).
MAX_SORTED_BATCHES: Final = 2

_IDENTITY: list[pa.Array] = []


def _identity(count: int) -> pa.Array:
    """0, 1, … count-1 as uint64 (sort_indices' type), sliced from one cached array."""
    if not _IDENTITY or len(_IDENTITY[0]) < count:
        _IDENTITY[:] = [pa.array(range(max(count, 64 * 1024)), pa.uint64())]
    return _IDENTITY[0].slice(0, count)


@dataclass
class _Run:
    """One run's file, open for writing until the runs are read, and its last row's key."""

    path: Path
    sink: pa.NativeFile | None
    writer: pa.ipc.RecordBatchStreamWriter | None
    last: pa.RecordBatch | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.sink is not None:
            self.sink.close()
            self.sink = None


class SortedRuns:
    """The runs of one stage, in `folder`, ordered by `key` (ascending, NULLs last, as the
    stage's DuckDB sort orders them)."""

    def __init__(self, folder: Path, schema: pa.Schema, key: Sequence[str]) -> None:
        self._folder, self._schema, self._key = folder, schema, tuple(key)
        self._sort_keys = [(name, "ascending", "at_end") for name in self._key]
        self._runs: list[_Run] = []
        self._current: _Run | None = None
        self._sorted_batches = 0

    @property
    def key(self) -> tuple[str, ...]:
        return self._key

    def _ordered(self, keys: pa.Table) -> bool:
        indices = pc.sort_indices(keys, sort_keys=self._sort_keys)
        # sort_indices is stable: rows already in order (equal keys included) come back as is.
        return bool(indices.equals(_identity(len(indices))))

    def _follows(self, run: _Run, first: pa.RecordBatch) -> bool:
        return run.last is None or self._ordered(pa.Table.from_batches([run.last, first]))

    def add(self, batch: pa.RecordBatch) -> bool:
        """Stage `batch` at the end of a run; False (nothing staged) when it would make more
        than MAX_RUNS runs or its key is of a type Arrow cannot sort."""
        if batch.num_rows == 0:
            return True
        run = self._current
        if self._key:
            keys = batch.select(list(self._key))
            try:
                order = pc.sort_indices(keys, sort_keys=self._sort_keys)
                if not order.equals(_identity(len(order))):
                    if self._sorted_batches >= MAX_SORTED_BATCHES:
                        return False
                    self._sorted_batches += 1
                    batch, keys = batch.take(order), keys.take(order)
                first = keys.slice(0, 1)
                candidates = [run] if run is not None else []
                candidates += [r for r in self._runs if r is not run]
                run = next((r for r in candidates if self._follows(r, first)), None)
            except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid):
                return False  # a key type Arrow does not sort: DuckDB does
            if run is None and len(self._runs) >= MAX_RUNS:
                return False
        if run is None:
            run = self._open_run()
        if self._key:
            run.last = keys.slice(batch.num_rows - 1)
        assert run.writer is not None
        for start in range(0, batch.num_rows, RUN_BATCH_ROWS):
            run.writer.write_batch(batch.slice(start, RUN_BATCH_ROWS))
        self._current = run
        return True

    def _open_run(self) -> _Run:
        path = self._folder / f"run-{len(self._runs)}.arrows"
        sink = pa.OSFile(str(path), "wb")
        run = _Run(path, sink, pa.ipc.new_stream(sink, self._schema))
        self._runs.append(run)
        return run

    def _finish(self) -> list[Path]:
        for run in self._runs:
            run.close()
        return [run.path for run in self._runs]

    def _read(self, path: Path) -> Iterator[pa.RecordBatch]:
        with pa.OSFile(str(path), "rb") as source, pa.ipc.open_stream(source) as reader:
            yield from reader

    def in_runs(self) -> Iterator[pa.RecordBatch]:
        """Every staged row, run after run."""
        for path in self._finish():
            yield from self._read(path)

    def merged(self) -> Iterator[pa.RecordBatch]:
        """Every staged row, in key order (rows of equal keys in their runs' order)."""
        readers = [self._read(path) for path in self._finish()]
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
        for path in self._finish():
            path.unlink(missing_ok=True)
        self._runs = []
        self._current = None


__all__ = ["MAX_RUNS", "MAX_SORTED_BATCHES", "RUN_BATCH_ROWS", "SortedRuns"]
