"""A timeline of a process's resident memory: when it peaks, and what it was doing then.

`RssSampler` is a thread that reads /proc/self/status every few milliseconds (VmRSS, VmHWM,
RssAnon, RssFile), Arrow's allocated bytes, and what every thread is running (the innermost
frames of shiftsync, and the innermost frame of any library). `ru_maxrss` gives a run's peak;
this says when the peak came (reading and staging, or writing and committing) and which code
held the memory then. The summary is plain text, kept next to the bench results.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final

from bench.profiling import short_path

STATUS: Final = Path("/proc/self/status")
FIELDS: Final = {"VmRSS": "rss_mb", "VmHWM": "hwm_mb", "RssAnon": "anon_mb", "RssFile": "file_mb"}
INTERVAL_SECONDS: Final = 0.01
# Frames of these folders are not where a thread "is": it is in the caller that waits.
_IDLE: Final = ("threading.py", "queue.py", "concurrent/futures/", "selectors.py", "socket.py")
PROJECT_MARKER: Final = "/shiftsync/"


@dataclass(frozen=True)
class Sample:
    t: float
    rss_mb: float
    hwm_mb: float
    anon_mb: float
    file_mb: float
    arrow_mb: float
    # glibc malloc, every arena (mallinfo2): bytes handed out (mmapped blocks included), and
    # bytes freed but kept by the allocator (what it has not given back to the system).
    malloc_used_mb: float
    malloc_free_mb: float
    # The main thread's innermost shiftsync frames (innermost first), then its innermost frame.
    main: str
    # The other busy threads, one innermost location each.
    others: tuple[str, ...]


def read_status(text: str) -> dict[str, float]:
    """The memory fields of a /proc/PID/status text, in MB."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in FIELDS:
            values[FIELDS[name]] = int(rest.split()[0]) / 1024
    return values


def _location(frame: FrameType) -> str:
    return f"{frame.f_code.co_name} ({short_path(frame.f_code.co_filename)})"


def describe_stack(frame: FrameType | None, depth: int = 3) -> str:
    """The innermost `depth` shiftsync frames of a stack, then its innermost frame of all."""
    innermost = _location(frame) if frame is not None else "?"
    project: list[str] = []
    while frame is not None and len(project) < depth:
        if PROJECT_MARKER in frame.f_code.co_filename:
            project.append(frame.f_code.co_name)
        frame = frame.f_back
    chain = " < ".join(project) if project else "-"
    return f"{chain} | {innermost}"


def _busy(frame: FrameType) -> bool:
    return not any(part in frame.f_code.co_filename for part in _IDLE)


def _arrow_mb() -> float:
    # Not before pyarrow has finished importing (the sampler runs beside the import).
    allocated = getattr(sys.modules.get("pyarrow"), "total_allocated_bytes", None)
    return float(allocated()) / 2**20 if allocated is not None else 0.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo() -> Callable[[], tuple[float, float]]:
    """(used MB, free MB) of glibc's malloc, or zeros where there is no mallinfo2."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        call = libc.mallinfo2
    except (OSError, AttributeError):
        return lambda: (0.0, 0.0)
    call.restype = _MallInfo2

    def read() -> tuple[float, float]:
        info = call()
        return (info.uordblks + info.hblkhd) / 2**20, info.fordblks / 2**20

    return read


class RssSampler:
    """Samples this process from a daemon thread between `start()` and `stop()`."""

    def __init__(self, interval: float = INTERVAL_SECONDS, *, mallinfo: bool = False) -> None:
        self.interval = interval
        self.samples: list[Sample] = []
        self.marks: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._start = 0.0
        # Off by default: mallinfo2 locks every arena, and a thread that finds its arena locked
        # makes a new one, which changes the very fragmentation being measured.
        self._mallinfo = _mallinfo() if mallinfo else (lambda: (0.0, 0.0))

    def start(self) -> None:
        self._start = time.perf_counter()
        self._thread.start()

    def mark(self, label: str) -> None:
        self.marks.append((round(time.perf_counter() - self._start, 4), label))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        status = read_status(STATUS.read_text())
        frames = sys._current_frames()
        # This thread's own frame holds `frames`, which would hold it back: a cycle that keeps
        # every thread's frames, and so the locals of the functions they were in (batches,
        # buffers), alive until a full garbage collection. That raised the very peak measured
        # by 40-70 MB.
        del frames[threading.get_ident()]
        main_id = threading.main_thread().ident
        main = describe_stack(frames.pop(main_id or 0, None))
        others = tuple(sorted(describe_stack(f, depth=1) for f in frames.values() if _busy(f)))
        del frames
        used, free = self._mallinfo()
        self.samples.append(
            Sample(
                t=round(time.perf_counter() - self._start, 4),
                rss_mb=round(status.get("rss_mb", 0.0), 1),
                hwm_mb=round(status.get("hwm_mb", 0.0), 1),
                anon_mb=round(status.get("anon_mb", 0.0), 1),
                file_mb=round(status.get("file_mb", 0.0), 1),
                arrow_mb=round(_arrow_mb(), 1),
                malloc_used_mb=round(used, 1),
                malloc_free_mb=round(free, 1),
                main=main,
                others=others,
            )
        )

    def document(self) -> dict[str, Any]:
        return {"marks": self.marks, "samples": [asdict(s) for s in self.samples]}

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.document()))


def samples_of(document: dict[str, Any]) -> list[Sample]:
    return [Sample(**{**s, "others": tuple(s["others"])}) for s in document.get("samples", [])]


def peak_sample(samples: Sequence[Sample]) -> Sample | None:
    """The first sample at the run's highest VmRSS (the sampled peak)."""
    if not samples:
        return None
    top = max(s.rss_mb for s in samples)
    return next(s for s in samples if s.rss_mb == top)


def activity(sample: Sample) -> str:
    """What the process was doing: the main thread's shiftsync frames, or, while it waits on
    a worker (a sync runs its tables in threads), the first busy worker's."""
    main_chain, _, innermost = sample.main.partition(" | ")
    if innermost.startswith("wait (threading.py") and sample.others:
        return "worker: " + sample.others[0].split(" | ")[0]
    return main_chain


def by_phase(samples: Iterable[Sample]) -> list[tuple[str, float, float, float]]:
    """(activity, first seen s, last seen s, highest VmRSS during it), in order of first
    appearance."""
    phases: dict[str, list[float]] = {}
    for sample in samples:
        seen = phases.setdefault(activity(sample), [sample.t, sample.t, sample.rss_mb])
        seen[1] = sample.t
        seen[2] = max(seen[2], sample.rss_mb)
    return [(where, first, last, top) for where, (first, last, top) in phases.items()]


def summarize(document: dict[str, Any], *, every: float = 0.1, title: str = "") -> str:
    """The peak and what ran then, the highest RSS per activity, and a timeline every
    `every` seconds (the peak's sample included)."""
    samples = samples_of(document)
    lines = [title] if title else []
    if not samples:
        return "\n".join([*lines, "no samples"]) + "\n"
    peak = peak_sample(samples)
    assert peak is not None
    lines += [
        f"{len(samples)} samples over {samples[-1].t:.2f} s; sampled peak VmRSS "
        f"{peak.rss_mb:.1f} MB at {peak.t:.2f} s (VmHWM at the end {samples[-1].hwm_mb:.1f} MB)",
        f"at the peak: anon {peak.anon_mb:.1f} MB, file {peak.file_mb:.1f} MB; Arrow allocated "
        f"{peak.arrow_mb:.1f} MB; malloc in use {peak.malloc_used_mb:.1f} MB, free but kept "
        f"{peak.malloc_free_mb:.1f} MB",
        f"  main: {peak.main}",
        *(f"  other: {o}" for o in peak.others),
        "",
        "marks: " + ", ".join(f"{t:.2f} s {label}" for t, label in document.get("marks", [])),
        "",
        "activities (shiftsync frames, innermost first): first s, last s, max VmRSS MB",
    ]
    lines += [
        f"  {first:7.2f} {last:7.2f} {top:7.1f}  {where}"
        for where, first, last, top in by_phase(samples)
    ]
    lines += ["", "     t s   rss  anon  file arrow m.used m.free  activity"]
    next_t = 0.0
    for sample in samples:
        if sample.t >= next_t or sample is peak:
            lines.append(
                f"  {sample.t:6.2f} {sample.rss_mb:5.0f} {sample.anon_mb:5.0f} "
                f"{sample.file_mb:5.0f} {sample.arrow_mb:5.0f} {sample.malloc_used_mb:6.0f} "
                f"{sample.malloc_free_mb:6.0f}  {activity(sample)}"
                + ("   <- peak" if sample is peak else "")
            )
            next_t = sample.t + every
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.memory TIMELINE.json`: print its summary."""
    paths = list(argv if argv is not None else sys.argv[1:])
    for path in paths:
        print(summarize(json.loads(Path(path).read_text()), title=path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
