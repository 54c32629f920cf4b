"""JitterBuffer: exact hand-made traces, then simulated producers (steady, bursty, stalling, slow)."""

from __future__ import annotations

import dataclasses

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

SAMPLE_RATE = 24000
FRAME = 480  # 20 ms at 24 kHz


def ramp(total: int) -> np.ndarray:
    """The simulator's default audio: sample i is i mod 65536, as int16."""
    return (np.arange(total) % 65536).astype(np.uint16).view(np.int16)


# ------------------------------------------------------------------------------------- hand-made, exact


def test_pace_mode_hand_made_trace_exact_stats() -> None:
    # 8 kHz with 250 ms frames (2000 samples) keeps every time an exact binary fraction.
    jb = JitterBuffer(sample_rate=8000, frame_ms=250, max_target_ms=2000)

    jb.push(np.full(1000, 1, dtype=np.int16), now=1.0)  # half a frame: nothing can play yet
    assert jb.pop_ready(now=1.0) == []
    assert jb.stats().started is False

    jb.push(np.full(4000, 2, dtype=np.int16), now=1.25)  # 2 whole frames >= target (one 250 ms gap seen)
    frames = jb.pop_ready(now=1.25)
    assert [f.shape[0] for f in frames] == [2000]
    assert frames[0][:1000].tolist() == [1] * 1000 and frames[0][1000:].tolist() == [2] * 1000
    assert jb.stats().added_latency_ms == 250.0
    assert jb.stats().target_ms == 250.0
    assert len(jb.pop_ready(now=1.5)) == 1  # frame 1 plays at 1.25 + 0.25

    # Frame 2 is due at 1.75 but only 1000 of its samples exist: playout stops (counted when it resumes).
    assert jb.pop_ready(now=2.0) == []
    assert jb.stats().underruns == 0

    jb.push(np.full(3000, 3, dtype=np.int16), now=2.25)  # a 1 s gap was seen: target 1000 ms, have 500 ms
    assert jb.pop_ready(now=2.25) == []
    assert jb.stats().target_ms == 1000.0

    jb.push(np.full(6500, 4, dtype=np.int16), now=2.5)  # 5 whole frames = 1250 ms >= 1000 ms: resume
    assert len(jb.pop_ready(now=2.5)) == 1
    stats = jb.stats()
    assert (stats.underruns, stats.underrun_ms) == (1, 750.0)  # silent from 1.75 to 2.5

    jb.end(now=2.5)  # 500 samples left over: zero-padded to a whole frame
    assert len(jb.pop_ready(now=3.0)) == 2  # frames at 2.75 and 3.0
    last = jb.pop_ready(now=10.0)
    assert len(last) == 3
    assert last[-1][:500].tolist() == [4] * 500 and last[-1][500:].tolist() == [0] * 1500

    assert jb.stats() == dataclasses.replace(
        stats,
        ended=True,
        drained=True,
        buffered_ms=0.0,
        frames_out=8,
        samples_out=16000,
    )
    assert (stats.samples_in, stats.added_latency_ms, stats.target_ms) == (14500, 250.0, 1000.0)
    assert stats.production_rate == 1.125  # 13500 samples in 1.5 s after the first push


def test_start_mode_hand_made_trace_exact_stats() -> None:
    jb = JitterBuffer(sample_rate=8000, frame_ms=250, mode="start")

    jb.push(np.full(1000, 0.5, dtype=np.float32), now=1.0)  # start at once; plays until 1.125
    assert [c.shape[0] for c in jb.pop_ready(now=1.0)] == [1000]

    jb.push(np.full(2000, 0.5, dtype=np.float32), now=1.5)  # 375 ms late: an underrun; plays until 1.75
    jb.push(np.full(4000, 0.5, dtype=np.float32), now=1.75)  # just in time
    jb.push(np.full(100, 0.5, dtype=np.float32), now=1.75)
    assert [c.shape[0] for c in jb.pop_ready(now=1.75)] == [2000, 4000, 100]  # as pushed, all at once
    jb.end(now=1.75)
    assert jb.pop_ready(now=5.0) == []

    stats = jb.stats()
    assert (stats.started, stats.ended, stats.drained) == (True, True, True)
    assert (stats.underruns, stats.underrun_ms, stats.added_latency_ms) == (1, 375.0, 0.0)
    assert (stats.frames_out, stats.samples_in, stats.samples_out) == (4, 7100, 7100)
    assert stats.target_ms == 750.0  # the 500 ms gap plus the 250 ms already buffered before it


def test_push_arriving_exactly_at_the_playout_time_is_in_time() -> None:
    jb = JitterBuffer(sample_rate=8000, frame_ms=250)
    jb.push(np.zeros(2000, dtype=np.int16), now=0.0)
    assert len(jb.pop_ready(now=0.25)) == 1  # frame 1 is due now; its audio may still arrive now

    jb.push(np.zeros(2000, dtype=np.int16), now=0.25)

    assert len(jb.pop_ready(now=0.25)) == 1
    assert jb.stats().underruns == 0


# ------------------------------------------------------------------------------------ simulated producers


@pytest.mark.parametrize("mode", ["pace", "start"])
def test_three_times_real_time_plays_at_once_without_underruns(mode: str) -> None:
    trace = steady_trace(rate=3.0, audio_s=10.0, start_s=0.35)

    result = simulate_playout(trace, JitterBuffer(sample_rate=SAMPLE_RATE, frame_ms=20, mode=mode))

    assert result.underruns == 0
    assert result.underrun_ms == 0.0
    assert result.added_latency_ms == 0.0
    assert np.array_equal(result.output, ramp(240_000))
    assert result.stats.frames_out == (500 if mode == "pace" else 120)


def test_pace_mode_frames_are_whole_and_the_last_one_is_zero_padded() -> None:
    trace = steady_trace(rate=3.0, audio_s=1.01, chunk_samples=1999)  # 24240 samples: 50 frames + 240

    result = simulate_playout(trace, JitterBuffer(sample_rate=SAMPLE_RATE, frame_ms=20))

    assert result.stats.frames_out == 51
    assert result.stats.samples_out == 51 * FRAME
    assert np.array_equal(result.output[:24240], ramp(24240))
    assert not result.output[24240:].any()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("mode", ["pace", "start"])
def test_bursty_producer_at_1_3x_has_no_underruns_and_bounded_latency(mode: str, seed: int) -> None:
    trace = bursty_trace(rate=1.3, audio_s=10.0, burst_chunks=(2, 6), burst_speed=4.0, seed=seed)

    result = simulate_playout(trace, JitterBuffer(sample_rate=SAMPLE_RATE, mode=mode))

    assert result.underruns == 0
    assert result.added_latency_ms is not None and result.added_latency_ms <= 100.0
    assert 1.29 < result.stats.production_rate < 1.34
    # The burst gaps are measured: the target settles around the longest of them.
    assert 250.0 < result.stats.target_ms < 300.0


@pytest.mark.parametrize("mode", ["pace", "start"])
def test_target_rises_after_a_stall_and_decays_during_stable_production(mode: str) -> None:
    trace = stall_trace(rate=1.5, audio_s=20.0, stall_at_s=0.5, stall_s=0.6)
    stall_end_s = next(t for t, _ in trace if t > 0.6)

    result = simulate_playout(trace, JitterBuffer(sample_rate=SAMPLE_RATE, mode=mode, hold_s=2.0))

    assert result.underruns == 1
    before = [target for t, target in result.target_ms if t < stall_end_s]
    after = [target for t, target in result.target_ms if t >= stall_end_s]
    assert max(before) < 60.0  # one push interval at 1.5x: 55.6 ms
    assert max(after) > 600.0  # the stall
    held = [target for t, target in result.target_ms if stall_end_s <= t <= stall_end_s + 2.0]
    assert min(held) == max(after)  # held for hold_s ...
    assert result.stats.target_ms < max(after) / 4  # ... then decayed (half-life 4 s)
    assert all(a >= b for a, b in zip(after, after[1:], strict=False))  # never rose again


def test_rebuffering_after_a_stall_prevents_a_second_underrun() -> None:
    # Two 600 ms stalls, 1.3 s apart. The adaptive buffer rebuffers to the depth the first one needed, so
    # the second goes unheard; a buffer that cannot adapt (max_target_ms=0) runs dry twice.
    trace = stall_trace(rate=1.5, audio_s=10.0, stall_at_s=0.5, stall_s=0.6)
    second_at = trace[25][0]
    trace = [(t + 0.6 if t > second_at else t, n) for t, n in trace]

    adaptive = simulate_playout(trace, JitterBuffer(sample_rate=SAMPLE_RATE))
    fixed = simulate_playout(trace, JitterBuffer(sample_rate=SAMPLE_RATE, max_target_ms=0))

    assert (adaptive.underruns, fixed.underruns) == (1, 2)


def test_slower_than_real_time_converges_to_few_long_rebuffers() -> None:
    trace = slow_trace(rate=0.8, audio_s=20.0)
    jb = JitterBuffer(sample_rate=SAMPLE_RATE, max_target_ms=1000)

    result = simulate_playout(trace, jb)

    # 20 s of audio take 25 s to make: at least that silence is unavoidable ...
    last_t, last_n = trace[-1]
    unavoidable_ms = (last_t + last_n / SAMPLE_RATE) * 1000 - 20_000
    assert result.underrun_ms + result.added_latency_ms >= unavoidable_ms - 20.0
    # ... but it comes in a few long gaps, not one per chunk, once the target reached its maximum.
    assert result.underruns <= 8
    assert result.stats.target_ms == 1000.0
    assert np.array_equal(result.output, ramp(480_000))


@pytest.mark.parametrize("mode", ["pace", "start"])
def test_results_do_not_depend_on_how_often_pop_ready_is_polled(mode: str) -> None:
    trace = steady_trace(rate=1.1, audio_s=5.0, jitter_ms=30.0, seed=7)

    runs = [
        simulate_playout(trace, JitterBuffer(sample_rate=SAMPLE_RATE, mode=mode), poll_ms=poll_ms)
        for poll_ms in (None, 20.0, 3.0)
    ]

    assert runs[0].stats.underruns > 0  # a jittery 1.1x producer does run dry early on
    assert runs[0].stats == runs[1].stats == runs[2].stats
    assert np.array_equal(runs[0].output, runs[1].output) and np.array_equal(runs[0].output, runs[2].output)


def test_reset_keeps_the_learned_target_which_decays_with_time() -> None:
    jb = JitterBuffer(sample_rate=SAMPLE_RATE)
    first = simulate_playout(stall_trace(rate=1.5, audio_s=5.0, stall_at_s=0.5, stall_s=0.6), jb)
    assert first.underruns == 1

    jb.reset()
    soon = simulate_playout(steady_trace(rate=3.0, audio_s=2.0, start_s=first.last_call_s + 0.5), jb)
    jb.reset()
    much_later = simulate_playout(steady_trace(rate=3.0, audio_s=2.0, start_s=soon.last_call_s + 60.0), jb)

    assert soon.added_latency_ms > 50.0  # waits for the depth it learned it may need
    assert soon.underruns == 0 and soon.stats.samples_in == 48_000
    assert much_later.added_latency_ms == 0.0  # forgotten after a long stable period


def test_min_target_delays_the_start() -> None:
    trace = steady_trace(rate=2.0, audio_s=2.0, chunk_samples=2400)  # 100 ms chunks every 50 ms

    result = simulate_playout(trace, JitterBuffer(sample_rate=SAMPLE_RATE, min_target_ms=200))

    assert result.added_latency_ms == 50.0  # 200 ms buffered at the second push
    assert result.stats.target_ms == 200.0


def test_int16_and_float32_streams_keep_their_dtype() -> None:
    for dtype in (np.int16, np.float32):
        jb = JitterBuffer(sample_rate=SAMPLE_RATE)
        jb.push(np.zeros(FRAME, dtype=dtype), now=0.0)
        assert jb.pop_ready(now=0.0)[0].dtype == dtype


def test_default_clock_is_monotonic() -> None:
    jb = JitterBuffer(sample_rate=SAMPLE_RATE, mode="start")
    jb.push(np.zeros(FRAME, dtype=np.float32))

    assert [f.shape[0] for f in jb.pop_ready()] == [FRAME]


def test_stats_are_frozen() -> None:
    stats = JitterBuffer().stats()

    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.underruns = 3  # type: ignore[misc]


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "fast"}, "mode='fast' is not one of 'pace', 'start'"),
        ({"sample_rate": 22050, "frame_ms": 10}, "220.5 samples"),
        ({"sample_rate": 0}, "sample_rate must be a positive integer"),
        ({"frame_ms": 0}, r"frame_ms must be in"),
        ({"min_target_ms": 500, "max_target_ms": 100}, r"max_target_ms must be in \[500.0"),
        ({"decay_half_life_s": 0}, "decay_half_life_s"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JitterBuffer(**kwargs)


def test_bad_pushes_are_rejected() -> None:
    jb = JitterBuffer(sample_rate=SAMPLE_RATE)
    with pytest.raises(ValueError, match="float32 or int16, got float64"):
        jb.push(np.zeros(10), now=0.0)
    with pytest.raises(ValueError, match=r"1-D \(mono\)"):
        jb.push(np.zeros((10, 2), dtype=np.int16), now=0.0)

    jb.push(np.zeros(10, dtype=np.int16), now=1.0)
    with pytest.raises(ValueError, match="this stream is int16"):
        jb.push(np.zeros(10, dtype=np.float32), now=1.0)
    with pytest.raises(ValueError, match="now=0.5 is earlier than"):
        jb.pop_ready(now=0.5)

    jb.end(now=2.0)
    with pytest.raises(ValueError, match="the stream has ended"):
        jb.push(np.zeros(10, dtype=np.int16), now=2.0)
