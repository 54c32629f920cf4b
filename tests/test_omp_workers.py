"""Idle threads give their OpenMP workers back (engine/omp.py): the loading thread, a thread that cloned or generated
offline, and the engine thread between streams hold no worker pool that would throttle the engine's parallel
regions (libgomp stops spinning once pools hold more threads than there are cores)."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest
import torch

from qwen3tts_realtime import Qwen3TTS, SamplingParams
from qwen3tts_realtime.model.omp import release_omp_workers

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not release_omp_workers(), reason="GNU OpenMP (torch's Linux wheels) only"
)


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def settles_at(expected: int, timeout_s: float = 5.0) -> bool:
    """Released workers exit asynchronously: wait (briefly) for the count to reach `expected`."""
    deadline = time.monotonic() + timeout_s
    while thread_count() != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread_count() == expected


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def parallel_work() -> None:
    a = torch.randn(512, 512)
    for _ in range(3):
        a = (a @ a).tanh()


def test_a_thread_that_computed_releases_its_workers(two_threads):
    release_omp_workers()
    assert settles_at(baseline := thread_count())
    parallel_work()
    assert thread_count() > baseline  # this thread now owns a worker pool
    assert release_omp_workers()
    assert settles_at(baseline)
    parallel_work()  # and computing again simply builds a new pool
    release_omp_workers()


def test_model_calls_and_the_idle_engine_leave_no_worker_pools(golden, two_threads):
    release_omp_workers()
    baseline = thread_count()
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")
    assert settles_at(baseline)
    tts.tokenizer.encode("Hello there.")  # the Rust tokenizer starts its own (idle, non-OpenMP) threads once
    baseline = thread_count()
    voice = tts.speaker("ryan")
    tts.generate("Hello there.", voice=voice, max_new_frames=6, sampling=SamplingParams.greedy())
    assert settles_at(baseline)

    def on_another_thread() -> None:
        tts.generate("Hello there.", voice=voice, max_new_frames=6, sampling=SamplingParams.greedy())

    worker = threading.Thread(target=on_another_thread)
    worker.start()
    worker.join()
    assert settles_at(baseline)

    with tts.open_stream("Hello there.", voice=voice, max_new_frames=6, sampling=SamplingParams.greedy()) as stream:
        assert len(list(stream)) > 0
    # the engine thread itself, without workers, waiting for the next stream, and its text-feed thread (tokenizing
    # pushed text, no OpenMP)
    assert settles_at(baseline + 2)
    tts.close()
    assert settles_at(baseline)
