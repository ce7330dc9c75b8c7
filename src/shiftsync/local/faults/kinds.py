"""Faults the stand-in can inject while it runs: what each kind takes, and which call it hits.

A fault is a JSON object `{"kind": …, "times": N, …}`. `parse_fault` checks it field by field
(an unknown field or kind is refused, naming the field), and `FaultRegistry` keeps the faults,
hands the first matching one to whoever asks at each injection point (`take`), and counts how
often each fired; a fault that has fired `times` times stops matching but stays listed, so
tests can read its count. The effects themselves live in faults/hooks.py.
"""

from __future__ import annotations

import itertools
import random as random_module
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

Point = Literal["http", "operation", "statement", "immediate"]

SERVICES: Final = ("redshift-data", "s3", "sts")
MAX_TIMES: Final = 1_000_000
MAX_SECONDS: Final = 3600.0

REDSHIFT_DATA_OPERATIONS: Final = frozenset(
    {
        "ExecuteStatement",
        "BatchExecuteStatement",
        "DescribeStatement",
        "GetStatementResult",
        "GetStatementResultV2",
        "CancelStatement",
        "ListDatabases",
        "ListSchemas",
        "ListTables",
        "DescribeTable",
        "ListStatements",
    }
)
# Operations whose resource is the workgroup (the rest act on statements: resource "*"); IAM
# authorises them against the workgroup ARN, and a paused workgroup refuses them.
WORKGROUP_OPERATIONS: Final = frozenset(
    {
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ListDatabases",
        "ListSchemas",
        "ListTables",
        "DescribeTable",
    }
)
S3_OPERATIONS: Final = frozenset(
    {
        "GetObject",
        "HeadObject",
        "GetObjectAttributes",
        "PutObject",
        "CopyObject",
        "DeleteObject",
        "DeleteObjects",
        "ListObjects",
        "ListObjectsV2",
        "HeadBucket",
        "CreateBucket",
        "DeleteBucket",
        "ListBuckets",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
    }
)
STS_OPERATIONS: Final = frozenset({"AssumeRole", "GetCallerIdentity", "GetSessionToken"})
OPERATIONS: Final[dict[str, frozenset[str]]] = {
    "redshift-data": REDSHIFT_DATA_OPERATIONS,
    "s3": S3_OPERATIONS,
    "sts": STS_OPERATIONS,
}

# The fields each kind takes besides `kind` and `times`.
KIND_FIELDS: Final[dict[str, frozenset[str]]] = {
    "throttle": frozenset({"service", "operation", "key"}),
    "server_error": frozenset({"service", "operation", "key"}),
    "drop_connection": frozenset(
        {"service", "operation", "key", "status", "after_processing", "cut"}
    ),
    "active_statements": frozenset({"operation"}),
    "pause_workgroup": frozenset({"operation"}),
    "s3_vanish": frozenset({"operation", "key", "delete"}),
    "delay": frozenset({"sql", "seconds", "min_seconds", "max_seconds"}),
    "fail_statement": frozenset({"sql", "message"}),
    "abort_statement": frozenset({"sql", "after_seconds"}),
    "expire_credentials": frozenset(),
}
KINDS: Final = tuple(KIND_FIELDS)
# Kinds that act once, when added, instead of waiting for a call to hit.
IMMEDIATE_KINDS: Final = frozenset({"expire_credentials"})
# Operations a kind hits when the fault names none.
DEFAULT_OPERATIONS: Final[dict[str, frozenset[str]]] = {
    "active_statements": frozenset({"ExecuteStatement", "BatchExecuteStatement"}),
    "pause_workgroup": WORKGROUP_OPERATIONS,
    "s3_vanish": frozenset({"GetObject"}),
}
# Where a dropped connection is cut: in the status line (the client gets no response at all), or
# after the headers, halfway through the body (the client reads a short body).
CUTS: Final = ("head", "body")
DEFAULT_FAILURE_MESSAGE: Final = "ERROR: statement failed by a shiftsync stand-in fault"


class FaultSpecError(ValueError):
    """A fault request is wrong; `field` names the offending field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    times: int = 1
    service: str | None = None
    operation: str | None = None
    key: str | None = None
    sql: str | None = None
    message: str | None = None
    seconds: float | None = None
    min_seconds: float | None = None
    max_seconds: float | None = None
    after_seconds: float | None = None
    status: int | None = None
    after_processing: bool | None = None
    cut: str | None = None
    delete: bool | None = None

    @property
    def point(self) -> Point:
        if self.kind in IMMEDIATE_KINDS:
            return "immediate"
        if self.kind in ("delay", "fail_statement", "abort_statement"):
            return "statement"
        if self.kind in ("active_statements", "pause_workgroup"):
            return "operation"
        if self.kind in ("throttle", "server_error") and self.service == "redshift-data":
            return "operation"
        return "http"

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _number(payload: Mapping[str, Any], name: str, *, low: float, high: float) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultSpecError(name, f"{name} must be a number of seconds")
    if not low <= value <= high:
        raise FaultSpecError(name, f"{name} must be from {low:g} to {high:g}")
    return float(value)


def _text(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise FaultSpecError(name, f"{name} must be a non-empty string")
    return value


def _pattern(payload: Mapping[str, Any], name: str) -> str | None:
    value = _text(payload, name)
    if value is not None:
        try:
            re.compile(value)
        except re.error as error:
            raise FaultSpecError(
                name, f"{name} is not a valid regular expression: {error}"
            ) from None
    return value


def _flag(payload: Mapping[str, Any], name: str) -> bool | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise FaultSpecError(name, f"{name} must be true or false")
    return value


def parse_fault(payload: Any) -> FaultSpec:
    """Check a fault request; raises FaultSpecError naming the first wrong field."""
    if not isinstance(payload, Mapping):
        raise FaultSpecError("body", "a fault must be a JSON object")
    kind = payload.get("kind")
    if kind is None:
        raise FaultSpecError("kind", f"kind is required: one of {', '.join(KINDS)}")
    if not isinstance(kind, str) or kind not in KIND_FIELDS:
        raise FaultSpecError("kind", f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    allowed = KIND_FIELDS[kind] | {"kind", "times"}
    for name in payload:
        if name not in allowed:
            others = ", ".join(sorted(allowed - {"kind"}))
            raise FaultSpecError(
                str(name), f"unknown field {name!r} for kind {kind!r} (it takes: {others})"
            )
    times = payload.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_TIMES:
        raise FaultSpecError("times", f"times must be a whole number from 1 to {MAX_TIMES}")
    if kind in IMMEDIATE_KINDS and times != 1:
        raise FaultSpecError("times", f"{kind} acts once, when it is added: leave times out")
    service = _service(payload, kind)
    operation = _text(payload, "operation")
    if operation is not None and operation not in OPERATIONS[service or "redshift-data"]:
        known = ", ".join(sorted(OPERATIONS[service or "redshift-data"]))
        raise FaultSpecError(
            "operation", f"unknown {service or 'redshift-data'} operation {operation!r}: {known}"
        )
    key = _pattern(payload, "key")
    if key is not None and service != "s3":
        raise FaultSpecError("key", "key (a regular expression of S3 keys) needs service 's3'")
    spec = FaultSpec(
        kind=kind,
        times=times,
        service=service,
        operation=operation,
        key=key,
        sql=_pattern(payload, "sql"),
        message=_text(payload, "message"),
        seconds=_number(payload, "seconds", low=0, high=MAX_SECONDS),
        min_seconds=_number(payload, "min_seconds", low=0, high=MAX_SECONDS),
        max_seconds=_number(payload, "max_seconds", low=0, high=MAX_SECONDS),
        after_seconds=_number(payload, "after_seconds", low=0, high=MAX_SECONDS),
        status=_status(payload),
        after_processing=_flag(payload, "after_processing"),
        cut=_cut(payload),
        delete=_flag(payload, "delete"),
    )
    if kind == "delay":
        _check_delay(spec)
    return spec


def _service(payload: Mapping[str, Any], kind: str) -> str | None:
    if kind == "s3_vanish":
        return "s3"
    if kind in ("active_statements", "pause_workgroup"):
        return "redshift-data"
    if "service" not in KIND_FIELDS[kind]:
        return None
    service = payload.get("service", "redshift-data")
    if service not in SERVICES:
        raise FaultSpecError("service", f"service must be one of {', '.join(SERVICES)}")
    return str(service)


def _status(payload: Mapping[str, Any]) -> int | None:
    status = payload.get("status")
    if status is None:
        return None
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise FaultSpecError("status", "status must be an HTTP status from 200 to 599")
    return status


def _cut(payload: Mapping[str, Any]) -> str | None:
    cut = payload.get("cut")
    if cut is not None and cut not in CUTS:
        raise FaultSpecError("cut", f"cut must be one of {', '.join(CUTS)}")
    return cut if cut is None else str(cut)


def _check_delay(spec: FaultSpec) -> None:
    ranged = spec.min_seconds is not None or spec.max_seconds is not None
    if spec.seconds is not None and ranged:
        raise FaultSpecError("seconds", "give seconds, or min_seconds and max_seconds, not both")
    if spec.seconds is None and not ranged:
        raise FaultSpecError("seconds", "a delay needs seconds, or min_seconds and max_seconds")
    if ranged:
        if spec.min_seconds is None:
            raise FaultSpecError("min_seconds", "min_seconds is required with max_seconds")
        if spec.max_seconds is None:
            raise FaultSpecError("max_seconds", "max_seconds is required with min_seconds")
        if spec.min_seconds > spec.max_seconds:
            raise FaultSpecError("max_seconds", "max_seconds must not be below min_seconds")


@dataclass
class Fault:
    id: str
    spec: FaultSpec
    fired: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    # Set when the fault first fires: tests wait on it instead of sleeping.
    fired_event: threading.Event = field(default_factory=threading.Event, repr=False)
    _key: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _sql: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.spec.key is not None:
            self._key = re.compile(self.spec.key)
        if self.spec.sql is not None:
            self._sql = re.compile(self.spec.sql, re.IGNORECASE | re.DOTALL)

    @property
    def remaining(self) -> int:
        return max(self.spec.times - self.fired, 0)

    def matches(
        self,
        point: Point,
        service: str | None,
        operation: str | None,
        key: str | None,
        sql: str | None,
    ) -> bool:
        spec = self.spec
        if not self.remaining or spec.point != point:
            return False
        if spec.service is not None and service != spec.service:
            return False
        wanted = {spec.operation} if spec.operation else DEFAULT_OPERATIONS.get(spec.kind)
        if wanted is not None and operation not in wanted:
            return False
        if self._key is not None and (key is None or not self._key.search(key)):
            return False
        return self._sql is None or (sql is not None and self._sql.search(sql) is not None)

    def as_json(self) -> dict[str, Any]:
        listed = {"id": self.id, **self.spec.as_json()}
        listed.update(fired=self.fired, remaining=self.remaining, active=self.remaining > 0)
        if self.detail:
            listed["detail"] = self.detail
        return listed


Action = Callable[[FaultSpec], Mapping[str, Any] | None]


class FaultRegistry:
    """The stand-in's faults; safe to use from the server's threads and the statement workers."""

    def __init__(
        self,
        actions: Mapping[str, Action] | None = None,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self._actions = dict(actions or {})
        self._random = random
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def add(self, kind: str, **fields: Any) -> str:
        """Add a fault from Python: `registry.add("throttle", operation="ExecuteStatement")`."""
        return self.add_payload({"kind": kind, **fields})

    def add_payload(self, payload: Any) -> str:
        return self.add_spec(parse_fault(payload))

    def add_spec(self, spec: FaultSpec) -> str:
        with self._lock:
            fault = Fault(f"fault-{next(self._ids)}", spec)
            self._faults.append(fault)
        if spec.point == "immediate":
            action = self._actions.get(spec.kind)
            if action is None:
                raise FaultSpecError("kind", f"{spec.kind} cannot act in this stand-in")
            detail = action(spec)
            with self._lock:
                fault.fired = 1
                fault.detail = dict(detail or {})
        return fault.id

    def armed(self, point: Point) -> bool:
        """Whether any fault could still fire at this point (a cheap test for hot paths)."""
        with self._lock:
            return any(f.remaining and f.spec.point == point for f in self._faults)

    def wants_service(self, point: Point, service: str) -> bool:
        with self._lock:
            return any(
                f.remaining and f.spec.point == point and f.spec.service in (None, service)
                for f in self._faults
            )

    def take(
        self,
        point: Point,
        *,
        service: str | None = None,
        operation: str | None = None,
        key: str | None = None,
        sql: str | None = None,
    ) -> Fault | None:
        """The first fault that matches this call, counted as fired (or None)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(point, service, operation, key, sql):
                    fault.fired += 1
                    fault.fired_event.set()
                    return fault
        return None

    def wait_fired(self, fault_id: str, timeout: float) -> bool:
        """Block until the fault has fired once (True), or `timeout` seconds pass (False)."""
        with self._lock:
            fault = next((f for f in self._faults if f.id == fault_id), None)
        if fault is None:
            raise KeyError(fault_id)
        return fault.fired_event.wait(timeout)

    def delay_seconds(self, fault: Fault) -> float:
        spec = fault.spec
        if spec.seconds is not None:
            return spec.seconds
        low, high = spec.min_seconds or 0.0, spec.max_seconds or 0.0
        return low + (high - low) * self._random()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {f.id: f.fired for f in self._faults}

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_json() for f in self._faults]

    def clear(self) -> int:
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
            return count
