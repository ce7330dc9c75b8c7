"""What the file-sink tests share (Parquet, Iceberg, Delta): a load's sink as a Ray task
carries it, and batches written through it as tasks would."""

from __future__ import annotations

import pickle
from typing import TypeVar

import pyarrow as pa

from shiftsync.destinations.file_sink import FileSink, WrittenFile

Sink = TypeVar("Sink", bound=FileSink)


def carried(sink: FileSink | None, kind: type[Sink]) -> Sink:
    """The sink a load offered, after crossing the cluster pickled (our own object)."""
    assert sink is not None
    copied = pickle.loads(pickle.dumps(sink))  # noqa: S301
    assert isinstance(copied, kind)
    return copied


def written_by_tasks(sink: FileSink, *parts: list[pa.RecordBatch]) -> list[WrittenFile]:
    """Each list of batches written as one task would, through the sink; the reports pickled
    back as a task's are."""
    files: list[WrittenFile] = []
    for index, batches in enumerate(parts):
        writer = sink.writer(f"w{index:04d}")
        for batch in batches:
            writer.write(batch)
        files.extend(pickle.loads(pickle.dumps(writer.close())))  # noqa: S301
    return files
