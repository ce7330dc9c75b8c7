"""The files one UNLOAD writes: per slice, cut at MAXFILESIZE, published to S3 when complete.

Rows arrive as CSV text in blocks. `ParquetFiles` parses each slice's text with pyarrow's C
parser into typed columns and writes it as row groups on a worker thread, so that reading from
PostgreSQL (Python, holding the GIL) overlaps parsing and compressing (C, without it). At most
two row groups wait for the worker, which keeps memory flat. `CsvFiles` writes the text as it
comes. Each finished file is handed to `publish`, which stores it in S3.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shiftsync.local.unload.grammar import MIB, UnloadCommand, UnloadError
from shiftsync.local.unload.output import (
    ColumnPlan,
    csv_header,
    data_key,
    effective_max_file_bytes,
)

# Row groups handed to the worker and not yet written (beyond these the reader waits).
_MAX_PENDING: Final = 2
# A Parquet footer's size: a fixed part, and per row group and column (a generous estimate).
_FOOTER_BYTES: Final = 1024
_GROUP_META_BYTES: Final = 160


@dataclass
class Part:
    key: str
    path: Path
    rows: int = 0


@dataclass
class _Slice:
    number: int
    part: int = 0
    text: bytearray = field(default_factory=bytearray)
    open_part: Part | None = None
    parquet: Any = None  # pyarrow.parquet.ParquetWriter
    sink: Any = None  # pyarrow NativeFile, or a Python binary file for CSV
    size: int = 0
    groups: int = 0


Publish = Callable[[Part], None]


class UnloadFiles:
    """What both formats share: slices, part numbering, the size limit and publishing."""

    def __init__(
        self,
        command: UnloadCommand,
        plans: Sequence[ColumnPlan],
        folder: Path,
        publish: Publish,
        *,
        slices: int,
        row_group_bytes: int,
    ) -> None:
        self.command = command
        self.plans = plans
        self.folder = folder
        self.publish = publish
        self.max_bytes = effective_max_file_bytes(command)
        self.slices = [_Slice(n) for n in range(slices if command.parallel else 1)]
        group = min(row_group_bytes, command.row_group_bytes or row_group_bytes)
        # Several row groups per file, so that a file passes MAXFILESIZE by little if at all.
        self.row_group_bytes = max(1, min(group, self.max_bytes // 4))
        self.rows = 0
        self._files = 0

    def _open(self, state: _Slice) -> Part:
        self._files += 1
        key = data_key(self.command, state.number, state.part)
        part = Part(key, self.folder / f"part-{self._files}")
        state.open_part = part
        state.size = state.groups = 0
        return part

    def _close_part(self, state: _Slice, *, publish: bool = True) -> None:
        part = state.open_part
        if part is None:
            return
        if state.parquet is not None:
            state.parquet.close()
            state.parquet = None
        if state.sink is not None:
            state.sink.close()
            state.sink = None
        state.open_part = None
        state.part += 1
        if publish:
            self.publish(part)

    def add_block(
        self, slice_number: int, block: bytearray, rows: int, ends: Sequence[int] = ()
    ) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Write what is left and publish the last file of each slice."""
        for state in self.slices:
            self._close_part(state)

    def close(self) -> None:
        """Release everything after a failure; nothing more is published."""
        for state in self.slices:
            self._close_part(state, publish=False)


class ParquetFiles(UnloadFiles):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = pa.schema([pa.field(p.name, p.arrow) for p in self.plans])
        names = [f"c{i}" for i in range(len(self.plans))]
        self._read_options = pacsv.ReadOptions(column_names=names, block_size=8 * MIB)
        self._parse_options = pacsv.ParseOptions(newlines_in_values=True)
        self._convert_options = pacsv.ConvertOptions(
            column_types={n: p.arrow for n, p in zip(names, self.plans, strict=True)},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        )
        # Compressed bytes per Arrow byte, learnt from the row groups written so far.
        self._arrow_bytes = 0
        self._file_bytes = 0
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unload-parquet")
        self._pending: deque[Future[None]] = deque()

    def add_block(
        self, slice_number: int, block: bytearray, rows: int, _ends: Sequence[int] = ()
    ) -> None:
        state = self.slices[slice_number]
        state.text += block
        self.rows += rows
        if len(state.text) >= self.row_group_bytes:
            self._submit(state)

    def _submit(self, state: _Slice) -> None:
        text, state.text = state.text, bytearray()
        while len(self._pending) >= _MAX_PENDING:
            self._pending.popleft().result()  # raises the worker's error here
        self._pending.append(self._worker.submit(self._write_text, state, text))

    def _drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def finish(self) -> None:
        for state in self.slices:
            if state.text:
                self._submit(state)
        self._drain()
        self._worker.shutdown()
        super().finish()

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._worker.shutdown(wait=True)
        self._pending.clear()
        super().close()

    # -- on the worker thread --------------------------------------------------------------
    def _write_text(self, state: _Slice, text: bytearray) -> None:
        try:
            table = pacsv.read_csv(
                pa.py_buffer(text),
                read_options=self._read_options,
                parse_options=self._parse_options,
                convert_options=self._convert_options,
            )
        except pa.ArrowInvalid as error:
            raise UnloadError(
                f"ERROR: UNLOAD could not write a value to Parquet: {error}"
            ) from error
        table = table.rename_columns([p.name for p in self.plans])
        # Blocks arrive whole, so the text may hold more than one row group's worth.
        group_rows = max(1, table.num_rows * self.row_group_bytes // len(text))
        for offset in range(0, table.num_rows, group_rows):
            self._write_group(state, table.slice(offset, group_rows))

    def _write_group(self, state: _Slice, group: pa.Table) -> None:
        ratio = self._file_bytes / self._arrow_bytes if self._arrow_bytes else 1.0
        # The footer grows with each row group (its column chunks' metadata and statistics).
        footer = _FOOTER_BYTES + _GROUP_META_BYTES * len(self.plans) * (state.groups + 1)
        expected = state.size + group.nbytes * ratio + footer
        if state.open_part is not None and expected > self.max_bytes:
            self._close_part(state)
        part = state.open_part or self._open(state)
        if state.parquet is None:
            state.sink = pa.OSFile(str(part.path), "wb")
            # Redshift writes Parquet 1.0 files with Snappy-compressed row groups.
            state.parquet = pq.ParquetWriter(
                state.sink, self.schema, compression="snappy", version="1.0"
            )
        before = state.sink.tell()
        state.parquet.write_table(group, row_group_size=max(group.num_rows, 1))
        state.size = state.sink.tell()
        state.groups += 1
        self._arrow_bytes += group.nbytes
        self._file_bytes += state.size - before
        part.rows += group.num_rows


class CsvFiles(UnloadFiles):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        header = csv_header(self.plans, self.command.delimiter) if self.command.header else b""
        self._header = header

    def add_block(
        self, slice_number: int, block: bytearray, rows: int, ends: Sequence[int] = ()
    ) -> None:
        """Append a block of rows; `ends` says where each row ends, to cut files between rows."""
        state = self.slices[slice_number]
        self.rows += rows
        used = state.size if state.open_part is not None else len(self._header)
        if used + len(block) <= self.max_bytes or not ends:
            self._write(state, memoryview(block), rows)
            return
        start = 0
        for end in ends:  # the block does not fit: go row by row
            self._write(state, memoryview(block)[start:end], 1)
            start = end

    def _write(self, state: _Slice, text: memoryview, rows: int) -> None:
        if state.open_part is not None and state.size + len(text) > self.max_bytes:
            self._close_part(state)
        part = state.open_part
        if part is None:
            part = self._open(state)
            state.sink = part.path.open("wb")
            state.sink.write(self._header)
            state.size = len(self._header)
        state.sink.write(text)
        state.size += len(text)
        part.rows += rows
