"""A load into a lake table up to its commit, the same for every table format: incoming rows
conformed and staged (lake/stage.py), read back sorted and deduplicated in the stored types,
and the properties the one commit carries (lake/properties.py).

A format (iceberg/, delta/) subclasses `LakeLoad` and writes the commit; what goes into it is
decided here once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Final

import pyarrow as pa

from shiftsync.destinations.base import (
    KEYED_MODES,
    LoadMode,
    LoadSpec,
    conform_batch,
    conform_incoming,
    ensure_open,
    state_key_of,
    subschema,
)
from shiftsync.destinations.lake.properties import commit_properties, read_states
from shiftsync.destinations.lake.stage import LakeStage
from shiftsync.destinations.lake.tables import CommitProperties
from shiftsync.destinations.lake.types import Flavor, storage_schema, to_storage
from shiftsync.destinations.schema_change import SchemaPlan
from shiftsync.json_types import JsonValue

Errors = Callable[[str, str | None], contextlib.AbstractContextManager[None]]

# Keys a delete reads from the stage at a time.
KEY_BATCH_ROWS: Final = 64 * 1024


class LakeLoad:
    """The staged rows of one load into one lake table (see the module doc)."""

    def __init__(
        self,
        errors: Errors,
        spec: LoadSpec,
        plan: SchemaPlan,
        previous: CommitProperties | None,
        flavor: Flavor,
    ) -> None:
        self._errors, self._spec, self._plan, self._previous = errors, spec, plan, previous
        self._write_schema = subschema(plan.schema, plan.write_columns)
        self._stored = storage_schema(spec.target, plan.schema, flavor)
        # A load that keeps every row (no key to deduplicate or delete by) can be staged as
        # sorted runs when its rows come in key order (lake/runs.py).
        keeps_all = spec.mode not in KEYED_MODES
        runs_key = (spec.sort_key or spec.primary_key) if keeps_all else None
        self._stage = LakeStage(plan.schema, runs_key=runs_key)
        # Rows staged before the incoming ones (a rewrite stages the table's old rows first).
        self._old_rows = 0
        # Rows of the data files other processes wrote for this load (`add_files`).
        self._adopted_rows = 0
        self._done = False

    def write(self, batch: pa.RecordBatch) -> None:
        ensure_open(self._done, self._spec.target)
        if batch.num_rows == 0:
            return
        batch = conform_incoming(self._spec, batch, self._write_schema)
        batch = conform_batch(batch, self._plan.schema, missing_as_null=True)
        with self._errors("staging rows", self._spec.target):
            self._stage.add(batch)

    def written(self) -> int:
        """The rows this load writes: incoming keys for a merge or delete, else rows (those
        of other processes' data files included)."""
        if self._spec.mode in KEYED_MODES:
            return self._stage.keys(self._spec.primary_key, since=self._old_rows)
        return self._stage.rows - self._old_rows + self._adopted_rows

    def _workers_may_write(
        self, *, table_exists: bool, in_s3: bool, workers_reach_s3: Callable[[], bool]
    ) -> bool:
        """Whether other processes (Ray workers) may write this load's data files: only for a
        load that only adds files (replace, or append) to a new table or one whose schema
        does not change, on local (or shared) storage or in S3 written as the source
        connection's role."""
        if in_s3 and not workers_reach_s3():
            return False
        if self._spec.mode not in (LoadMode.REPLACE, LoadMode.APPEND):
            return False
        return not (table_exists and self._plan.changes)

    def properties(self, state: Mapping[str, JsonValue] | None, written: int) -> dict[str, str]:
        """What the commit carries: every previous state, this load's put under its key."""
        spec = self._spec
        states = read_states(spec.target, self._previous) if self._previous else {}
        return commit_properties(
            spec.target,
            self._plan.schema,
            states,
            state_key_of(spec),
            state,
            str(spec.mode),
            written,
            spec.identity,
        )

    def rows(self, *, latest: bool, batch_rows: int) -> pa.RecordBatchReader:
        """The staged rows in the stored types, sorted by the table's key (and the last row
        of each key only, when `latest`)."""
        spec = self._spec
        chunks = self._stage.chunks(
            sort_key=spec.sort_key or spec.primary_key,
            latest_per=spec.primary_key if latest else (),
            rows=batch_rows,
        )
        batches = (to_storage(b, self._stored) for chunk in chunks for b in chunk.to_batches())
        return pa.RecordBatchReader.from_batches(self._stored, batches)

    def keys(self, batch_rows: int = KEY_BATCH_ROWS) -> Iterator[pa.Table]:
        """The staged keys (each once), in the stored types, in tables of `batch_rows`."""
        key_schema = subschema(self._stored, self._spec.primary_key)
        chunks = self._stage.chunks(latest_per=self._spec.primary_key, rows=batch_rows)
        for chunk in chunks:
            stored = [
                to_storage(b, self._stored).select(key_schema.names) for b in chunk.to_batches()
            ]
            yield pa.Table.from_batches(stored, schema=key_schema)

    @property
    def deleting(self) -> bool:
        return self._spec.mode is LoadMode.DELETE

    def abort(self) -> None:
        if not self._done:
            self.finish()

    def finish(self) -> None:
        self._done = True
        self._stage.close()


__all__ = ["KEY_BATCH_ROWS", "LakeLoad"]
