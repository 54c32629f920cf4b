"""Deterministic playout simulation: drive a `JitterBuffer` with a production-time trace.

Does: generate production traces (lists of `(time_s, num_samples)` pushes) for steady, slower-than-real-time,
bursty and stalling producers, and replay a trace through a `JitterBuffer` with explicit times, returning what
the listener got (underruns, added latency, the audio, the target over time).
Does not: sleep or read a clock, model network delay after the buffer, or generate real speech (the audio is a
deterministic int16 ramp unless given, so tests can check order and padding).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from qwen3tts_realtime.audio._checks import require_number, require_positive_int
from qwen3tts_realtime.audio._jitter import JitterBuffer, JitterStats
from qwen3tts_realtime.errors import InvalidInputError

__all__ = [
    "PlayoutResult",
    "Trace",
    "bursty_trace",
    "simulate_playout",
    "slow_trace",
    "stall_trace",
    "steady_trace",
]

Trace = list[tuple[float, int]]
"""Pushes in time order: (time in seconds, number of samples produced at that time)."""


@dataclasses.dataclass(frozen=True)
class PlayoutResult:
    """What `simulate_playout` observed.

    Attributes:
        stats: the buffer's stats after the whole stream played out.
        output: every sample `pop_ready` handed out, concatenated (pace mode: with the zero-padded final
            frame).
        target_ms: (push time, target depth after that push), one entry per push.
        last_call_s: the time of the simulator's last call (everything has been handed out by then); a
            reused buffer's next stream must start at or after it.
    """

    stats: JitterStats
    output: np.ndarray
    target_ms: tuple[tuple[float, float], ...]
    last_call_s: float

    @property
    def underruns(self) -> int:
        """Number of playout gaps (see `JitterStats.underruns`)."""
        return self.stats.underruns

    @property
    def underrun_ms(self) -> float:
        """Total duration of the playout gaps."""
        return self.stats.underrun_ms

    @property
    def added_latency_ms(self) -> float | None:
        """Start time minus first push time."""
        return self.stats.added_latency_ms


def _chunk_sizes(audio_s: float, sample_rate: int, chunk_samples: int) -> list[int]:
    total = int(round(audio_s * sample_rate))
    sizes = [chunk_samples] * (total // chunk_samples)
    if total % chunk_samples:
        sizes.append(total % chunk_samples)
    return sizes


def _check_common(
    rate: float, audio_s: float, sample_rate: int, chunk_samples: int, start_s: float, where: str
) -> None:
    require_number(rate, name="rate", where=where, low=1e-3, high=1e3)
    require_number(audio_s, name="audio_s", where=where, low=1e-3, high=86400.0)
    require_positive_int(sample_rate, name="sample_rate", where=where)
    require_positive_int(chunk_samples, name="chunk_samples", where=where)
    require_number(start_s, name="start_s", where=where, low=0.0, high=1e9)


def steady_trace(
    *,
    rate: float,
    audio_s: float,
    sample_rate: int = 24000,
    chunk_samples: int = 2000,
    start_s: float = 0.0,
    jitter_ms: float = 0.0,
    seed: int = 0,
) -> Trace:
    """A producer running at a constant speed, chunk `i` pushed at `start_s + i * chunk_duration / rate`.

    Args:
        rate: audio seconds produced per wall-clock second (3.0 = three times real time).
        audio_s: total audio duration in seconds.
        sample_rate: samples per second.
        chunk_samples: samples per push (the last push holds the remainder); 2000 = one 12 Hz codec frame
            at 24 kHz.
        start_s: time of the first push (the time to first audio).
        jitter_ms: if > 0, each push is late by |N(0, jitter_ms)| (seeded; times stay non-decreasing).
        seed: seed of the jitter.

    Returns:
        The trace.

    Raises:
        InvalidInputError: an argument out of range.
    """
    _check_common(rate, audio_s, sample_rate, chunk_samples, start_s, "steady_trace")
    require_number(jitter_ms, name="jitter_ms", where="steady_trace", low=0.0, high=1e6)
    sizes = _chunk_sizes(audio_s, sample_rate, chunk_samples)
    times = start_s + np.arange(len(sizes)) * (chunk_samples / sample_rate / rate)
    if jitter_ms > 0.0:
        late = np.abs(np.random.default_rng(seed).normal(0.0, jitter_ms / 1000.0, len(sizes)))
        times = np.maximum.accumulate(times + late)
    return [(float(t), n) for t, n in zip(times, sizes, strict=True)]


def slow_trace(
    *,
    rate: float = 0.8,
    audio_s: float,
    sample_rate: int = 24000,
    chunk_samples: int = 2000,
    start_s: float = 0.0,
) -> Trace:
    """A steady producer slower than real time (`rate` < 1): underruns cannot all be avoided.

    Args:
        rate: audio seconds per wall-clock second, in (0, 1).
        audio_s, sample_rate, chunk_samples, start_s: as in `steady_trace`.

    Returns:
        The trace.

    Raises:
        InvalidInputError: `rate` not below 1, or another argument out of range.
    """
    if not isinstance(rate, int | float) or not 0.0 < rate < 1.0:
        raise InvalidInputError(f"slow_trace: rate must be in (0, 1) (slower than real time), got {rate!r}")
    return steady_trace(
        rate=rate, audio_s=audio_s, sample_rate=sample_rate, chunk_samples=chunk_samples, start_s=start_s
    )


def bursty_trace(
    *,
    rate: float,
    audio_s: float,
    sample_rate: int = 24000,
    chunk_samples: int = 2000,
    burst_chunks: tuple[int, int] = (2, 6),
    burst_speed: float = 4.0,
    start_s: float = 0.0,
    seed: int = 0,
) -> Trace:
    """A producer that delivers bursts of chunks quickly, then pauses; each burst with its pause averages
    `rate`.

    A burst of B chunks (B uniform in `burst_chunks`, seeded) is pushed at `burst_speed` times real time; the
    next burst starts `B * chunk_duration / rate` after this one started.

    Args:
        rate: average audio seconds per wall-clock second.
        audio_s, sample_rate, chunk_samples, start_s: as in `steady_trace`.
        burst_chunks: inclusive range of the chunks per burst.
        burst_speed: speed within a burst, >= rate.
        seed: seed of the burst sizes.

    Returns:
        The trace.

    Raises:
        InvalidInputError: an argument out of range.
    """
    where = "bursty_trace"
    _check_common(rate, audio_s, sample_rate, chunk_samples, start_s, where)
    require_number(burst_speed, name="burst_speed", where=where, low=rate, high=1e6)
    low, high = burst_chunks
    if not 1 <= low <= high:
        raise InvalidInputError(
            f"{where}: burst_chunks must be (low, high) with 1 <= low <= high, got {burst_chunks!r}"
        )
    rng = np.random.default_rng(seed)
    chunk_s = chunk_samples / sample_rate
    trace: Trace = []
    sizes = _chunk_sizes(audio_s, sample_rate, chunk_samples)
    burst_start = start_s
    i = 0
    while i < len(sizes):
        count = int(rng.integers(low, high + 1))
        for j, n in enumerate(sizes[i : i + count]):
            trace.append((burst_start + j * chunk_s / burst_speed, n))
        burst_start += count * chunk_s / rate
        i += count
    return trace


def stall_trace(
    *,
    rate: float,
    audio_s: float,
    stall_at_s: float,
    stall_s: float,
    sample_rate: int = 24000,
    chunk_samples: int = 2000,
    start_s: float = 0.0,
) -> Trace:
    """A steady producer that stops once: pushes due after `start_s + stall_at_s` come `stall_s` late.

    Args:
        rate: audio seconds per wall-clock second outside the stall.
        audio_s, sample_rate, chunk_samples, start_s: as in `steady_trace`.
        stall_at_s: when the stall begins, in seconds after the first push.
        stall_s: how long it lasts.

    Returns:
        The trace.

    Raises:
        InvalidInputError: an argument out of range.
    """
    require_number(stall_at_s, name="stall_at_s", where="stall_trace", low=0.0, high=1e9)
    require_number(stall_s, name="stall_s", where="stall_trace", low=0.0, high=1e9)
    trace = steady_trace(
        rate=rate, audio_s=audio_s, sample_rate=sample_rate, chunk_samples=chunk_samples, start_s=start_s
    )
    return [(t + stall_s if t > start_s + stall_at_s else t, n) for t, n in trace]


def _ramp(total: int) -> np.ndarray:
    """Sample i of the default audio is i modulo 2**16, as int16, so order and padding can be checked."""
    return (np.arange(total, dtype=np.int64) % 65536).astype(np.uint16).view(np.int16)


def simulate_playout(
    trace: Trace,
    jitter_buffer: JitterBuffer,
    *,
    audio: np.ndarray | None = None,
    poll_ms: float | None = None,
) -> PlayoutResult:
    """Replay `trace` through `jitter_buffer` and play the stream out to the end.

    Each push is followed by `pop_ready` at the same time; `end()` comes at the last push's time; then the
    buffer is polled until everything has played. With `poll_ms`, `pop_ready` is also called every `poll_ms`
    from the first push, like a sender's timer; the result does not depend on it (the model is exact).

    Args:
        trace: pushes as (time in seconds, samples), times non-decreasing and not before the buffer's last
            call.
        jitter_buffer: a fresh or `reset()` buffer; it is driven to the end of the stream.
        audio: the stream to cut into the pushes (1-D float32 or int16, at least as long as the trace's
            total); defaults to an int16 ramp (sample i = i mod 65536).
        poll_ms: optional extra polling period in milliseconds.

    Returns:
        The `PlayoutResult`.

    Raises:
        InvalidInputError: an empty or unordered trace, negative sample counts, or `audio` too short.
    """
    if not trace:
        raise InvalidInputError(
            "simulate_playout: the trace is empty; pass at least one (time_s, num_samples)"
        )
    times = [float(t) for t, _ in trace]
    sizes = [int(n) for _, n in trace]
    if any(not math.isfinite(t) for t in times) or any(b < a for a, b in zip(times, times[1:], strict=False)):
        raise InvalidInputError("simulate_playout: trace times must be finite and non-decreasing")
    if any(n < 0 for n in sizes):
        raise InvalidInputError("simulate_playout: trace sample counts must be >= 0")
    total = sum(sizes)
    if audio is None:
        audio = _ramp(total)
    elif audio.shape[0] < total:
        raise InvalidInputError(
            f"simulate_playout: audio has {audio.shape[0]} samples, the trace pushes {total}"
        )
    poll_s = None
    if poll_ms is not None:
        poll_s = require_number(poll_ms, name="poll_ms", where="simulate_playout", low=0.1, high=1e6) / 1000.0
    out: list[np.ndarray] = []
    timeline: list[tuple[float, float]] = []
    polls_done = 0

    def poll_until(t: float) -> None:
        nonlocal polls_done
        while poll_s is not None and times[0] + polls_done * poll_s < t:
            out.extend(jitter_buffer.pop_ready(now=times[0] + polls_done * poll_s))
            polls_done += 1

    offset = 0
    for t, n in zip(times, sizes, strict=True):
        poll_until(t)
        jitter_buffer.push(audio[offset : offset + n], now=t)
        offset += n
        timeline.append((t, jitter_buffer.stats().target_ms))
        out.extend(jitter_buffer.pop_ready(now=t))
    jitter_buffer.end(now=times[-1])
    out.extend(jitter_buffer.pop_ready(now=times[-1]))
    stats = jitter_buffer.stats()
    horizon = times[-1] + stats.buffered_ms / 1000.0  # the last frame is due by then
    poll_until(horizon)
    out.extend(jitter_buffer.pop_ready(now=horizon))
    while not jitter_buffer.stats().drained:  # only if float rounding left the last frame a hair late
        horizon += jitter_buffer.frame_ms / 1000.0
        out.extend(jitter_buffer.pop_ready(now=horizon))
    dtype = audio.dtype
    output = np.concatenate(out) if out else np.zeros(0, dtype=dtype)
    return PlayoutResult(
        stats=jitter_buffer.stats(), output=output, target_ms=tuple(timeline), last_call_s=horizon
    )
