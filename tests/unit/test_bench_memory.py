"""The RSS timeline of the bench (bench/memory.py): parsing /proc, when the peak came, and what
ran then."""

from __future__ import annotations

import gc
import sys
import threading
import weakref

from bench.memory import (
    RssSampler,
    Sample,
    activity,
    by_phase,
    describe_stack,
    peak_sample,
    read_status,
    summarize,
)

STATUS = """Name:\tpython
VmPeak:\t 1000 kB
VmHWM:\t  307200 kB
VmRSS:\t  204800 kB
RssAnon:\t  153600 kB
RssFile:\t   51200 kB
Threads:\t4
"""


def _sample(t: float, rss: float, main: str, others: tuple[str, ...] = ()) -> Sample:
    return Sample(t, rss, rss, rss / 2, rss / 2, 0.0, 0.0, 0.0, main, others)


def test_status_fields_are_read_in_megabytes() -> None:
    assert read_status(STATUS) == {
        "hwm_mb": 300.0,
        "rss_mb": 200.0,
        "anon_mb": 150.0,
        "file_mb": 50.0,
    }


def test_the_peak_is_the_first_sample_at_the_highest_rss() -> None:
    samples = [_sample(0.0, 100, "a | x"), _sample(0.1, 300, "b | x"), _sample(0.2, 300, "c | x")]
    peak = peak_sample(samples)
    assert peak is not None
    assert peak.t == 0.1
    assert peak_sample([]) is None


def test_a_waiting_main_thread_hands_the_activity_to_the_busy_worker() -> None:
    waiting = _sample(0.0, 1, "_run < run_sync | wait (threading.py)", ("add | add (stage.py)",))
    busy = _sample(0.0, 1, "commit < run | write (x.py)", ("add | add (stage.py)",))
    assert activity(waiting) == "worker: add"
    assert activity(busy) == "commit < run"


def test_phases_keep_their_first_and_last_time_and_highest_rss() -> None:
    samples = [
        _sample(0.0, 100, "read | x"),
        _sample(0.1, 180, "read | x"),
        _sample(0.2, 150, "write | x"),
        _sample(0.3, 120, "read | x"),
    ]
    assert by_phase(samples) == [("read", 0.0, 0.3, 180), ("write", 0.2, 0.2, 150)]


def test_a_stack_is_described_by_its_project_frames_then_its_innermost_frame() -> None:
    frame = sys._getframe()
    described = describe_stack(frame)
    chain, _, innermost = described.partition(" | ")
    assert innermost.startswith("test_a_stack_is_described_by")
    assert chain == "-"  # this test is not under a shiftsync/ folder


def test_the_sampler_records_this_process_and_its_threads() -> None:
    sampler = RssSampler(interval=0.001)
    sampler.start()
    sampler.mark("started")
    done = threading.Event()
    worker = threading.Thread(target=done.wait)
    worker.start()
    try:
        sampler.mark("worker running")
    finally:
        done.set()
        worker.join()
        sampler.stop()
    samples = sampler.samples
    assert samples
    assert all(s.rss_mb > 0 and s.hwm_mb >= s.rss_mb * 0.5 for s in samples)
    assert [label for _, label in sampler.marks] == ["started", "worker running"]
    text = summarize(sampler.document(), title="test")
    assert text.startswith("test\n")
    assert "sampled peak VmRSS" in text


def test_a_sample_keeps_no_thread_s_locals_alive() -> None:
    # The sampler's own frame held the dict of every thread's frames: a cycle that kept the
    # locals of functions long returned (the batches of a read) until a full collection.
    class Payload:
        pass

    refs: list[weakref.ref[Payload]] = []
    holding, release = threading.Event(), threading.Event()

    def work() -> None:
        payload = Payload()
        refs.append(weakref.ref(payload))
        holding.set()
        release.wait()

    sampler = RssSampler()
    worker = threading.Thread(target=work)
    gc.disable()
    try:
        worker.start()
        holding.wait()
        sampler._sample()  # what the sampler's thread does, here in this one
        release.set()
        worker.join()
        assert refs[0]() is None
    finally:
        gc.enable()
