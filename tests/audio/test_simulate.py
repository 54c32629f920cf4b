"""Production-trace generators and the playout simulator's own contract."""

from __future__ import annotations

import numpy as np
import pytest

from qwen3tts_realtime.audio import (
    JitterBuffer,
    bursty_trace,
    simulate_playout,
    slow_trace,
    stall_trace,
    steady_trace,
)


def test_steady_trace_pushes_each_chunk_when_it_is_produced() -> None:
    trace = steady_trace(rate=2.0, audio_s=0.25, sample_rate=8000, chunk_samples=800, start_s=0.5)

    # 2000 samples: 2 chunks of 800 and the remaining 400; each 100 ms chunk takes 50 ms to produce.
    assert trace == [(0.5, 800), (0.55, 800), (0.6, 400)]


def test_steady_trace_jitter_is_seeded_late_and_ordered() -> None:
    plain = steady_trace(rate=1.5, audio_s=3.0)
    jittery = steady_trace(rate=1.5, audio_s=3.0, jitter_ms=20.0, seed=4)

    assert jittery == steady_trace(rate=1.5, audio_s=3.0, jitter_ms=20.0, seed=4)
    assert [n for _, n in jittery] == [n for _, n in plain]
    assert all(tj >= tp for (tj, _), (tp, _) in zip(jittery, plain, strict=True))
    assert all(b[0] >= a[0] for a, b in zip(jittery, jittery[1:], strict=False))


def test_bursty_trace_averages_the_rate_over_each_burst() -> None:
    trace = bursty_trace(rate=1.3, audio_s=20.0, sample_rate=24000, chunk_samples=2000, seed=5)
    chunk_s = 2000 / 24000

    gaps = np.diff([t for t, _ in trace])
    assert np.isclose(gaps.min(), chunk_s / 4.0)  # within a burst: 4x real time
    assert gaps.max() > chunk_s  # between bursts: a pause longer than a chunk
    assert sum(n for _, n in trace) == 480_000
    # Each burst starts when the audio before it, produced at 1.3x real time, would have been complete.
    audio_before = np.cumsum([0] + [n for _, n in trace[:-1]]) / 24000
    starts = [0] + [i + 1 for i, gap in enumerate(gaps) if gap > chunk_s]
    assert len(starts) > 20
    assert all(np.isclose(trace[i][0], audio_before[i] / 1.3) for i in starts)


def test_stall_trace_delays_everything_after_the_stall() -> None:
    steady = steady_trace(rate=1.0, audio_s=1.0, sample_rate=8000, chunk_samples=800)
    stalled = stall_trace(
        rate=1.0, audio_s=1.0, stall_at_s=0.25, stall_s=2.0, sample_rate=8000, chunk_samples=800
    )

    assert [t for t, _ in stalled] == [t if t <= 0.25 else t + 2.0 for t, _ in steady]


def test_slow_trace_must_be_slower_than_real_time() -> None:
    assert slow_trace(rate=0.5, audio_s=1.0) == steady_trace(rate=0.5, audio_s=1.0)
    with pytest.raises(ValueError, match=r"rate must be in \(0, 1\)"):
        slow_trace(rate=1.2, audio_s=1.0)


def test_simulation_can_carry_caller_audio() -> None:
    audio = np.linspace(-1, 1, 4800, dtype=np.float32)
    trace = steady_trace(rate=2.0, audio_s=0.2)

    result = simulate_playout(trace, JitterBuffer(mode="start"), audio=audio)

    assert np.array_equal(result.output, audio)


@pytest.mark.parametrize(
    ("trace", "message"),
    [
        ([], "the trace is empty"),
        ([(1.0, 10), (0.5, 10)], "non-decreasing"),
        ([(0.0, -1)], ">= 0"),
    ],
)
def test_bad_traces_are_rejected(trace: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate_playout(trace, JitterBuffer())
