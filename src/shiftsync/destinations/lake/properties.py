"""What every shiftsync commit of a lake table carries, next to its data. Pure.

Iceberg keeps these in the snapshot's summary properties, Delta in the commit's custom
metadata; either way they are written by the same atomic commit as the data, so a cursor
never runs ahead of (or behind) the rows it describes:

    shiftsync.state         JSON {state key: state}: every sync state of this table
    shiftsync.arrow_schema  the exact Arrow schema of the table (base64 Arrow IPC)
    shiftsync.run_id        the run that committed (from the state, when it has one)
    shiftsync.cursor        that run's high-water mark, as text (when it has one)
    shiftsync.mode          replace, merge or append
    shiftsync.rows_written  the rows this load wrote (after deduplication by key)
    shiftsync.identity      the stamp of the load (LoadSpec.identity), when it has one: a
                            state's cursor holds only while the table's stamp is its own

The state of a table is the one of its newest shiftsync commit: a commit of another engine
(compaction, a manual delete) carries none, so readers walk back to the newest that does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

import pyarrow as pa

from shiftsync.destinations.base import decode_state, encode_state
from shiftsync.destinations.parquet_layout import decode_schema, encode_schema
from shiftsync.errors import DestinationError
from shiftsync.json_types import JsonObject, JsonValue

STATE: Final = "shiftsync.state"
ARROW_SCHEMA: Final = "shiftsync.arrow_schema"
RUN_ID: Final = "shiftsync.run_id"
CURSOR: Final = "shiftsync.cursor"
MODE: Final = "shiftsync.mode"
ROWS_WRITTEN: Final = "shiftsync.rows_written"
IDENTITY: Final = "shiftsync.identity"


def commit_properties(
    target: str,
    schema: pa.Schema,
    states: Mapping[str, Mapping[str, JsonValue]],
    state_key: str,
    state: Mapping[str, JsonValue] | None,
    mode: str,
    rows_written: int,
    identity: str = "",
) -> dict[str, str]:
    """The properties of a commit: the previous `states` with `state` put under `state_key`."""
    merged = {key: dict(value) for key, value in states.items()}
    if state is not None:
        merged[state_key] = json.loads(encode_state(target, state))
    properties = {
        STATE: json.dumps(merged, sort_keys=True, separators=(",", ":")),
        ARROW_SCHEMA: encode_schema(schema),
        MODE: mode,
        ROWS_WRITTEN: str(rows_written),
    }
    if identity:
        properties[IDENTITY] = identity
    if state is not None:
        for key, name in ((RUN_ID, "run_id"), (CURSOR, "cursor")):
            value = state.get(name)
            if value is not None:
                properties[key] = str(value)
    return properties


def is_shiftsync_commit(properties: Mapping[str, object]) -> bool:
    return STATE in properties and ARROW_SCHEMA in properties


def read_states(where: str, properties: Mapping[str, object]) -> dict[str, JsonObject]:
    """Every state kept in a commit's properties."""
    document = decode_state(where, str(properties[STATE]))
    return {str(key): decode_state(where, json.dumps(value)) for key, value in document.items()}


def read_schema(where: str, properties: Mapping[str, object]) -> pa.Schema:
    try:
        return decode_schema(str(properties[ARROW_SCHEMA]))
    except (ValueError, pa.ArrowException) as exc:
        raise DestinationError(
            f"{where}: the Arrow schema kept with the last shiftsync commit does not decode: {exc}",
            fix="run this table once with `shiftsync sync --full-refresh` to rewrite it",
        ) from exc
