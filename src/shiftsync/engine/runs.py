"""Run history: one JSON file per run in `.shiftsync/runs/`, plus an index for listing.

    .shiftsync/runs/<run_id>.json     the run: options, and per table the method, mode, rows,
                                       bytes, duration, retries, schema changes, verification,
                                       error
    .shiftsync/runs/index.json        one summary line per run, for `shiftsync runs`

Every file is replaced atomically (temp file + rename), so a reader or a killed run never
leaves half a file. A run's file is written when it starts (status `running`) and after each
table, so a run killed midway still shows what it finished; `effective_status` reports such a
run as `interrupted` once its process is gone. The index is a cache of the run files: when it
is missing or damaged it is rebuilt from them.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import fcntl
import json
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, TypedDict

from shiftsync.errors import ConfigError, StateError
from shiftsync.json_types import JsonObject, JsonValue
from shiftsync.workspace import atomic_write_text, private_mkdir

RECORD_VERSION: Final = 1
INDEX_FILE: Final = "index.json"
LOCK_FILE: Final = ".index.lock"
RUN_ID_RE: Final = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
# What `runs show` accepts: a run id or its start (no path, no glob characters).
_RUN_ID_PREFIX_RE: Final = re.compile(r"[0-9A-Za-z-]+")

# Runs older than this are deleted after each sync (`shiftsync runs prune` for another age).
DEFAULT_RETENTION: Final = timedelta(days=90)
_AGE_RE: Final = re.compile(r"(?P<count>\d{1,6})(?P<unit>[mhdw])")
_AGE_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

TableStatus = Literal["ok", "failed", "running", "planned"]
RunStatus = Literal["running", "ok", "partial", "failed", "interrupted"]

# A run's line in the index, as `shiftsync runs`, the scheduler and the console read it.
# Still a plain dict: cli/ and serve/ read typed fields out of it and also pass it on as a
# dict, which a TypedDict here would refuse until they change with it.
RunSummary: TypeAlias = dict[str, Any]


VerificationStatus = Literal["ok", "mismatch", "skipped"]


class MismatchJson(TypedDict):
    column: str | None
    measure: str
    source: str
    destination: str


class VerificationJson(TypedDict, total=False):
    """A table's verification in the run record (engine/verify.py VerificationResult)."""

    status: VerificationStatus
    source_rows: int | None
    destination_rows: int | None
    columns_checked: int
    mismatches: list[MismatchJson]
    note: str


class DeletesJson(TypedDict, total=False):
    """A table's delete pass in the run record (engine/deletes.py DeletePass)."""

    policy: str
    deleted: int
    statements: int
    bytes: int
    strategy: str
    seconds: float


class CostJson(TypedDict, total=False):
    """What Redshift spent on a run (engine/guardrails.py run_cost)."""

    statements: int
    describe_seconds: float
    budget_seconds: float | None
    refused_statements: int
    notes: list[str]
    compute_seconds: float
    elapsed_seconds: float
    source: str
    serverless_rpu_seconds: float | None
    serverless_charged_rpu_seconds: int | None


def new_run_id(now: datetime | None = None) -> str:
    """`20240131T235959Z-1a2b3c`: sorts by start time, unique within a second."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class TableRun:
    """What one run did to one table.

    Its worker thread writes it while the run's saves and the progress display read it: every
    write takes the table's own lock (`__setattr__`, `update`, `note`), and `to_json` copies it
    under that lock, so a saved record never holds half an update.
    """

    table: str
    target: str
    mode: str
    status: TableStatus = "planned"
    load: str | None = None
    method: str | None = None
    rows: int = 0
    bytes: int = 0
    duration_seconds: float = 0.0
    retries: int = 0
    # Data API statements the read ran (ExecuteStatement), for metrics and cost.
    statements: int = 0
    schema_changes: list[JsonObject] = field(default_factory=list)
    verification: VerificationJson | None = None
    deletes: DeletesJson | None = None  # the delete pass: engine/deletes.py DeletePass
    cursor_from: str | None = None
    cursor_to: str | None = None
    estimated_rows: int | None = None
    estimated_bytes: int | None = None
    error: str | None = None
    error_type: str | None = None
    fix: str | None = None
    notes: list[str] = field(default_factory=list)
    # A ranged read's checkpoint (redshift/ranged.py), kept until the table is committed.
    ranges: JsonObject | None = None
    _lock: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False
    )

    def __setattr__(self, name: str, value: object) -> None:
        lock = self.__dict__.get("_lock")
        if lock is None:  # the dataclass __init__ before _lock is set
            object.__setattr__(self, name, value)
            return
        with lock:
            object.__setattr__(self, name, value)

    def update(self, **changes: object) -> None:
        """Set several fields at once: no reader sees some of them changed and not the rest."""
        with self._lock:
            for name, value in changes.items():
                if name not in _TABLE_FIELDS:
                    raise AttributeError(f"TableRun has no field {name!r}")
                object.__setattr__(self, name, value)

    def note(self, *texts: str) -> None:
        with self._lock:
            self.notes.extend(texts)

    def to_json(self) -> JsonObject:
        with self._lock:
            return {name: copy.deepcopy(getattr(self, name)) for name in _TABLE_FIELDS}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> TableRun:
        run = cls(_text(data, "table"), _text(data, "target"), _text(data, "mode"))
        run.update(**{k: v for k, v in data.items() if k in _TABLE_FIELDS})
        return run


_TABLE_FIELDS: Final = tuple(f.name for f in fields(TableRun) if not f.name.startswith("_"))


@dataclass
class RunRecord:
    """One run of one sync."""

    run_id: str
    sync: str
    started_at: str
    status: RunStatus = "running"
    finished_at: str | None = None
    options: JsonObject = field(default_factory=dict)
    tables: list[TableRun] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    version: int = RECORD_VERSION
    # What Redshift spent on the run's statements (engine/cost.py); None before it is known.
    cost: CostJson | None = None

    def to_json(self) -> dict[str, Any]:
        # A plain dict: the API's run view (serve/views.py) edits its tables in place.
        return {
            f.name: (
                [table.to_json() for table in list(self.tables)]
                if f.name == "tables"
                else copy.deepcopy(getattr(self, f.name))
            )
            for f in fields(self)
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> RunRecord:
        record = cls(_text(data, "run_id"), _text(data, "sync"), _text(data, "started_at"))
        # The rest as the file has it (a record is written only by `to_json`).
        for name in _RECORD_FIELDS:
            if name in data and name != "tables":
                setattr(record, name, data[name])
        tables = data.get("tables", ())
        if not isinstance(tables, list | tuple):
            raise TypeError(f"tables is {type(tables).__name__}, not a list")
        record.tables = [TableRun.from_json(_object(table)) for table in tables]
        return record

    def finish(
        self, error: str | None = None, *, interrupted: bool = False, at: str | None = None
    ) -> None:
        """End the run: its status from its tables, `interrupted` when stopped (Ctrl-C).
        `at` is when it ended (default: now)."""
        self.finished_at = at or utc_now()
        self.error = error
        self.status = "interrupted" if interrupted else summarize_status(self.tables, error)

    @property
    def failed_tables(self) -> list[TableRun]:
        return [t for t in self.tables if t.status == "failed"]

    def summary(self) -> RunSummary:
        return {
            "run_id": self.run_id,
            "sync": self.sync,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "tables": len(self.tables),
            "failed": len(self.failed_tables),
            "rows": sum(t.rows for t in self.tables),
            "bytes": sum(t.bytes for t in self.tables),
            "compute_seconds": (self.cost or {}).get("compute_seconds"),
            "pid": self.pid,
            "host": self.host,
        }


def summarize_status(tables: Sequence[TableRun], error: str | None = None) -> RunStatus:
    """ok: no table failed; failed: every table failed (or the run itself did); partial: some.

    A dry run's tables stay `planned`, which is not a failure.
    """
    if error is not None:
        return "failed"
    failed = sum(1 for t in tables if t.status == "failed")
    if failed == 0:
        return "ok"
    return "failed" if failed == len(tables) else "partial"


_RECORD_FIELDS: Final = tuple(f.name for f in fields(RunRecord))


def _text(data: Mapping[str, JsonValue], key: str) -> str:
    """A required text field of a record; KeyError or TypeError (a damaged record)."""
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is {type(value).__name__}, not text")
    return value


def _object(value: JsonValue) -> JsonObject:
    if not isinstance(value, dict):
        raise TypeError(f"{type(value).__name__}, not an object")
    return value


def _started(summary: Mapping[str, JsonValue]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(summary.get("started_at")).replace("Z", "+00:00"))
    except ValueError:
        return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def effective_status(summary: Mapping[str, JsonValue]) -> str:
    """The status to show: a `running` run whose process on this host is gone was killed."""
    status = str(summary.get("status", "running"))
    if status != "running":
        return status
    pid = summary.get("pid")
    if summary.get("host") == socket.gethostname() and isinstance(pid, int):
        return "running" if _process_alive(pid) else "interrupted"
    return status


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w` as a timedelta; ConfigError otherwise."""
    found = _AGE_RE.fullmatch(text.strip())
    if found is None:
        raise ConfigError(
            f"--older-than {text!r} is not an age",
            fix="give a number and a unit: m (minutes), h (hours), d (days) or w (weeks), "
            "e.g. --older-than 30d",
        )
    return timedelta(**{_AGE_UNITS[found["unit"]]: int(found["count"])})


class RunStore:
    """The run history of one workspace."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer of the index at a time, across threads and processes."""
        with self._lock:
            private_mkdir(self.folder)
            descriptor = os.open(self.folder / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(descriptor, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def save(self, record: RunRecord) -> None:
        """Write the run's file and its index line, each atomically."""
        text = json.dumps(record.to_json(), indent=1, sort_keys=False) + "\n"
        try:
            with self._locked():
                atomic_write_text(self.path(record.run_id), text)
                index = self._read_index()
                if index is None:
                    index = self._rebuild()
                index[record.run_id] = record.summary()
                self._write_index(index)
        except OSError as error:
            raise StateError(
                f"cannot write the run history in {self.folder}: {error.strerror or error}",
                fix="check that the workspace's .shiftsync folder is writable",
            ) from error

    def _read_index(self) -> dict[str, JsonObject] | None:
        try:
            document = json.loads((self.folder / INDEX_FILE).read_text(encoding="utf-8"))
            runs = document["runs"]
            return {str(r["run_id"]): _object(r) for r in runs}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_index(self, index: Mapping[str, JsonObject]) -> None:
        runs = [index[k] for k in sorted(index)]
        document = {"version": RECORD_VERSION, "runs": runs}
        atomic_write_text(self.folder / INDEX_FILE, json.dumps(document, indent=1) + "\n")

    def _rebuild(self) -> dict[str, JsonObject]:
        index: dict[str, JsonObject] = {}
        for path in sorted(self.folder.glob("*.json")):
            if not RUN_ID_RE.fullmatch(path.stem):
                continue
            with contextlib.suppress(StateError):
                record = self._read(path)
                index[record.run_id] = record.summary()
        return index

    def _read(self, path: Path) -> RunRecord:
        try:
            return RunRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise StateError(
                f"the run record {path} cannot be read: {error}",
                fix="delete the file; the rest of the history is unaffected",
            ) from error

    def list(self, limit: int | None = None, sync: str | None = None) -> list[RunSummary]:
        """Run summaries, newest first, with `status` as `effective_status` shows it."""
        index = self._read_index()
        if index is None:
            if not self.folder.is_dir():
                return []
            with self._locked():
                index = self._rebuild()
                self._write_index(index)
        # Run ids carry whole seconds only; two runs started in the same second are told
        # apart by their millisecond start time.
        order = sorted(index, key=lambda k: (str(index[k].get("started_at", "")), k), reverse=True)
        runs = [dict(index[k]) for k in order]
        if sync is not None:
            runs = [r for r in runs if r.get("sync") == sync]
        for run in runs:
            run["status"] = effective_status(run)
        return runs if limit is None else runs[:limit]

    def prune(
        self, older_than: timedelta, *, now: datetime | None = None, dry_run: bool = False
    ) -> builtins.list[RunSummary]:
        """Delete the runs that started more than `older_than` ago; their summaries.

        A run still going (its process alive) is kept whatever its age.
        """
        cutoff = (now or datetime.now(UTC)) - older_than
        old: builtins.list[RunSummary] = []
        for run in self.list():
            started = _started(run)
            if run["status"] != "running" and started is not None and started < cutoff:
                old.append(run)
        if dry_run or not old:
            return old
        try:
            with self._locked():
                index = self._read_index()
                if index is None:
                    index = self._rebuild()
                for run in old:
                    self.path(str(run["run_id"])).unlink(missing_ok=True)
                    index.pop(str(run["run_id"]), None)
                self._write_index(index)
        except OSError as error:
            raise StateError(
                f"cannot prune the run history in {self.folder}: {error.strerror or error}",
                fix="check that the workspace's .shiftsync folder is writable",
            ) from error
        return old

    def load(self, run_id: str) -> RunRecord:
        """The run whose id is `run_id` or starts with it (unique prefix); `latest` works."""
        if run_id == "latest":
            runs = self.list(limit=1)
            if not runs:
                raise ConfigError("there is no run yet", fix="run `shiftsync sync` first")
            run_id = str(runs[0]["run_id"])
        if not _RUN_ID_PREFIX_RE.fullmatch(run_id):
            raise ConfigError(
                f"{run_id!r} is not a run id (like 20240131T235959Z-1a2b3c, or its start)",
                fix="list the runs with `shiftsync runs`, or say `latest`",
            )
        exact = self.path(run_id)
        if RUN_ID_RE.fullmatch(run_id) and exact.is_file():
            return self._read(exact)
        candidates = (
            sorted(
                p
                # _RUN_ID_PREFIX_RE leaves no glob character in run_id.
                for p in self.folder.glob(f"{run_id}*.json")
                if RUN_ID_RE.fullmatch(p.stem)
            )
            if self.folder.is_dir()
            else []
        )
        if len(candidates) == 1:
            return self._read(candidates[0])
        if not candidates:
            raise ConfigError(
                f"no run {run_id!r} in {self.folder}",
                fix="list the runs with `shiftsync runs`",
            )
        raise ConfigError(
            f"{run_id!r} matches {len(candidates)} runs",
            fix="give more characters of the run id",
        )


__all__ = [
    "DEFAULT_RETENTION",
    "RunRecord",
    "RunStore",
    "TableRun",
    "effective_status",
    "new_run_id",
    "parse_age",
    "summarize_status",
    "utc_now",
]
