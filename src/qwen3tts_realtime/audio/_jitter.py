"""An adaptive playout (jitter) buffer between a bursty audio producer and a real-time listener.

Does: model the listener's playout clock, decide when the first audio may start, and (in "pace" mode) hand out
fixed-size frames when their playout time has come; adapt the buffering target to the measured production;
count underruns and the latency it adds. Time is a float in seconds passed by the caller (`now=`), so the
behaviour is deterministic and testable; it defaults to `time.monotonic()`.
Does not: sleep, run a thread or timer, resample, mix, or time-stretch (see `RateChanger`). The caller pushes
audio as it is produced and polls `pop_ready()` (in pace mode at least once per `frame_ms`).

The model (all of it exact given the push times; it does not depend on how often `pop_ready` is polled):

* Playout starts at a push (or `end()`) at which the buffered audio reaches the *target depth* (at least one
  whole frame in pace mode, one sample in start mode); from then on the listener consumes audio in real time.
  `added_latency_ms` is start time minus first push time.
* Pace mode: frame k (samples k*F .. k*F+F-1, F = frame size) plays at `start + k * frame_ms`. A frame that is
  not complete at its playout time is an underrun: playout stops and restarts at the push at which the
  buffered audio again reaches the (raised) target. The gap counts toward `underrun_ms`.
* Start mode (for transports that buffer themselves, e.g. Pipecat's output transport): only the start is
  decided here; afterwards every push is released at once. The listener's clock is still modelled: a push
  that arrives after everything released so far has played is an underrun of that gap.
* An underrun is counted when playout resumes; silence after which no more audio comes (end of stream) is not.

Target depth adaptation: after every push the buffer measures, over all stretches of the stream, the depth
that would have been needed to cover it without running dry,
`need_n = gap_n + max(0, need_(n-1) - audio_(n-1))`
(gap_n: time since the previous push; audio_(n-1): duration of the previous push). It grows by
`gap - audio` per push while production is slower than real time, jumps with a stall or a burst gap, and stays
at one push interval when production is comfortably faster. The target is the peak of `need`, clamped to
[min_target_ms, max_target_ms]. After an underrun the target also rises to at least the target in force plus
one frame. The peak holds for `hold_s` after its last rise (a stable period), then decays with half-life
`decay_half_life_s` toward the current `need`. The target is re-evaluated at each push.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
from collections import deque
from typing import Literal

import numpy as np

from qwen3tts_realtime.audio._checks import require_mono, require_number, require_positive_int
from qwen3tts_realtime.errors import InvalidInputError

__all__ = ["JitterBuffer", "JitterStats", "PlayoutMode"]

PlayoutMode = Literal["pace", "start"]
_MODES: tuple[str, ...] = ("pace", "start")
_ACCEPTED_DTYPES = (np.float32, np.int16)
# Tolerance when comparing times, so that float rounding in caller-computed times (k * 0.02 vs 0.06) never
# turns an on-time frame into an underrun.
_EPS_S = 1e-9


@dataclasses.dataclass(frozen=True)
class JitterStats:
    """A snapshot of a `JitterBuffer` (see `JitterBuffer.stats()`).

    Attributes:
        mode: "pace" or "start".
        sample_rate: samples per second of the audio.
        frame_ms: frame duration in pace mode.
        started: playout has started.
        ended: `end()` was called.
        drained: ended and every sample has been handed out.
        added_latency_ms: start time minus first push time; None before the start.
        underruns: playout gaps that ended with more audio (count).
        underrun_ms: their total duration.
        target_ms: the current target depth.
        buffered_ms: audio pushed but not yet handed out by `pop_ready` (pace mode: with the partial frame).
        frames_out: arrays handed out by `pop_ready` (pace mode: frames; start mode: pushed chunks).
        samples_in: samples pushed.
        samples_out: samples handed out, zero padding of the final frame included.
        production_rate: audio seconds produced per wall-clock second after the first push (None until a push
            at a later time than the first); above 1.0 is faster than real time.
    """

    mode: str
    sample_rate: int
    frame_ms: float
    started: bool
    ended: bool
    drained: bool
    added_latency_ms: float | None
    underruns: int
    underrun_ms: float
    target_ms: float
    buffered_ms: float
    frames_out: int
    samples_in: int
    samples_out: int
    production_rate: float | None


class JitterBuffer:
    """Adaptive playout buffer: decides when audio may start and paces it out in real time.

    Audio is 1-D float32 or int16 (numpy); the first push of a stream fixes the dtype, later pushes must
    match, and frames come out in that dtype.

    Example (pace mode, a websocket or SIP sender):
        >>> jb = JitterBuffer(sample_rate=24000, frame_ms=20)
        >>> jb.push(chunk, now=t)                  # whenever the model produced audio
        >>> for frame in jb.pop_ready(now=t):      # every <= 20 ms, from the sender's loop
        ...     send(frame)                        # 480 samples each
        >>> jb.end(now=t)                          # the final partial frame is zero-padded to 480 samples

    Example (start mode, a transport that buffers itself):
        >>> jb = JitterBuffer(sample_rate=24000, mode="start")
        >>> jb.push(chunk, now=t); chunks = jb.pop_ready(now=t)   # empty until the start, then everything
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        frame_ms: float = 20.0,
        *,
        mode: PlayoutMode = "pace",
        min_target_ms: float = 0.0,
        max_target_ms: float = 1000.0,
        initial_target_ms: float | None = None,
        hold_s: float = 2.0,
        decay_half_life_s: float = 4.0,
    ) -> None:
        """Create a buffer for one stream (use `reset()` to reuse it, with what it learned, for the next).

        Args:
            sample_rate: samples per second of the pushed audio (any positive integer).
            frame_ms: frame duration in pace mode; `sample_rate * frame_ms / 1000` must be a whole number.
            mode: "pace" (fixed frames at their playout time) or "start" (start decision only).
            min_target_ms: lower bound of the target depth (0 = start on the first whole frame).
            max_target_ms: upper bound of the target depth, in [min_target_ms, 60000].
            initial_target_ms: target before anything was measured; defaults to `min_target_ms`, i.e. no
                added delay unless the stream shows it is needed.
            hold_s: how long a raised target holds before it decays (a stable period), >= 0.
            decay_half_life_s: half-life of the decay after the hold, > 0.

        Raises:
            InvalidInputError: (a ValueError) an argument out of range; the message names it and the range.
        """
        where = "JitterBuffer"
        self._sample_rate = require_positive_int(sample_rate, name="sample_rate", where=where)
        self._frame_ms = require_number(frame_ms, name="frame_ms", where=where, low=1e-3, high=1000.0)
        frame_samples = self._sample_rate * self._frame_ms / 1000.0
        if abs(frame_samples - round(frame_samples)) > 1e-6 or round(frame_samples) < 1:
            raise InvalidInputError(
                f"{where}: frame_ms={frame_ms!r} at sample_rate={sample_rate} is {frame_samples:g} samples; "
                "choose frame_ms so that sample_rate * frame_ms / 1000 is a whole number (e.g. 10 or 20)"
            )
        self._frame_samples = int(round(frame_samples))
        if mode not in _MODES:
            raise InvalidInputError(f"{where}: mode={mode!r} is not one of {', '.join(map(repr, _MODES))}")
        self._mode: str = mode
        self._min_target_ms = require_number(
            min_target_ms, name="min_target_ms", where=where, low=0.0, high=60000.0
        )
        self._max_target_ms = require_number(
            max_target_ms, name="max_target_ms", where=where, low=self._min_target_ms, high=60000.0
        )
        if initial_target_ms is None:
            initial_target_ms = self._min_target_ms
        initial = require_number(
            initial_target_ms, name="initial_target_ms", where=where, low=0.0, high=60000.0
        )
        self._hold_s = require_number(hold_s, name="hold_s", where=where, low=0.0, high=3600.0)
        self._half_life_s = require_number(
            decay_half_life_s, name="decay_half_life_s", where=where, low=1e-3, high=3600.0
        )
        # Learned state, kept across reset(): the peak of the needed depth and when it last rose.
        self._peak_ms = initial
        self._peak_at_s: float | None = None
        self._last_now: float | None = None
        self._reset_stream()

    # ----------------------------------------------------------------------------------------------- public

    @property
    def sample_rate(self) -> int:
        """Samples per second."""
        return self._sample_rate

    @property
    def frame_ms(self) -> float:
        """Frame duration in pace mode."""
        return self._frame_ms

    @property
    def frame_samples(self) -> int:
        """Samples per frame in pace mode."""
        return self._frame_samples

    @property
    def mode(self) -> str:
        """The playout mode, "pace" or "start"."""
        return self._mode

    def push(self, audio: np.ndarray, now: float | None = None) -> None:
        """Add produced audio.

        Args:
            audio: 1-D float32 or int16 samples (the dtype of the stream's first push; empty is allowed).
            now: the time of the push in seconds (same clock as every other call, non-decreasing);
                defaults to `time.monotonic()`.

        Raises:
            InvalidInputError: (a ValueError) bad array, a dtype other than the stream's, `now` going
                backwards, or a push after `end()`.
        """
        t = self._clock(now, "push")
        require_mono(audio, accepted=_ACCEPTED_DTYPES, where="JitterBuffer.push")
        if self._ended:
            raise InvalidInputError(
                "JitterBuffer.push: the stream has ended (end() was called); call reset() first"
            )
        if self._dtype is None:
            self._dtype = audio.dtype
        elif audio.dtype != self._dtype:
            raise InvalidInputError(
                f"JitterBuffer.push: this stream is {self._dtype.name} (its first push), "
                f"got {audio.dtype.name}; "
                f"convert with x.astype(np.{self._dtype.name})"
            )
        self._advance(t)
        n = audio.shape[0]
        if n == 0:
            return
        self._measure(t, n)
        self._samples_in += n
        self._pending.append(audio.copy())
        self._pending_samples += n
        if self._mode == "start" and self._state == "playing":
            self._release_start_mode(t)
        else:
            self._maybe_start(t)
        self._advance(t)

    def pop_ready(self, now: float | None = None) -> list[np.ndarray]:
        """Hand out the audio whose playout time has come.

        Args:
            now: the time in seconds; defaults to `time.monotonic()`.

        Returns:
            Pace mode: the frames (each `frame_samples` long, the stream's dtype) whose playout time is
            <= now, in order; empty before the start, while rebuffering, and between frames. Start mode:
            nothing before the start, then every pushed chunk not yet handed out, as pushed.

        Raises:
            InvalidInputError: `now` goes backwards.
        """
        t = self._clock(now, "pop_ready")
        self._advance(t)
        ready, self._ready = self._ready, []
        self._frames_out += len(ready)
        self._samples_out += sum(frame.shape[0] for frame in ready)
        return ready

    def end(self, now: float | None = None) -> None:
        """Mark the end of the input; playout starts (or resumes) with whatever is buffered.

        In pace mode the final partial frame is zero-padded to `frame_samples` (transports need constant-size
        frames); `pop_ready` hands it out at its playout time. In start mode nothing is padded.

        Args:
            now: the time in seconds; defaults to `time.monotonic()`.

        Raises:
            InvalidInputError: `now` goes backwards.
        """
        t = self._clock(now, "end")
        self._advance(t)
        if self._ended:
            return
        self._ended = True
        partial = self._pending_samples % self._frame_samples
        if self._mode == "pace" and partial:
            pad = self._frame_samples - partial
            self._pending.append(np.zeros(pad, dtype=self._dtype))
            self._pending_samples += pad
        self._maybe_start(t)
        self._advance(t)

    def stats(self) -> JitterStats:
        """A snapshot of the counters and the target, as of the last call that passed a time."""
        if (
            self._first_push_s is not None
            and self._last_push_s is not None
            and self._last_push_s > self._first_push_s
        ):
            rate: float | None = (
                (self._samples_in - self._first_push_samples)
                / self._sample_rate
                / (self._last_push_s - self._first_push_s)
            )
        else:
            rate = None
        buffered = self._pending_samples + sum(frame.shape[0] for frame in self._ready)
        return JitterStats(
            mode=self._mode,
            sample_rate=self._sample_rate,
            frame_ms=self._frame_ms,
            started=self._start_s is not None,
            ended=self._ended,
            drained=self._ended and buffered == 0,
            added_latency_ms=None if self._start_s is None else (self._start_s - self._first_push_s) * 1000.0,
            underruns=self._underruns,
            underrun_ms=self._underrun_s * 1000.0,
            target_ms=self._target_ms,
            buffered_ms=buffered * 1000.0 / self._sample_rate,
            frames_out=self._frames_out,
            samples_in=self._samples_in,
            samples_out=self._samples_out,
            production_rate=rate,
        )

    def reset(self) -> None:
        """Start a new stream: drop buffered audio and counters; keep the learned target (still decaying).

        Times passed to the new stream must continue the same clock (not go back before the last call).
        """
        self._reset_stream()

    # ---------------------------------------------------------------------------------------------- private

    def _reset_stream(self) -> None:
        self._dtype: np.dtype | None = None
        self._pending: deque[np.ndarray] = deque()
        self._pending_samples = 0
        self._ready: list[np.ndarray] = []
        self._ended = False
        # "waiting" (before the start), "playing", "rebuffering" (after an underrun, pace mode).
        self._state = "waiting"
        self._start_s: float | None = None
        self._first_push_s: float | None = None
        self._first_push_samples = 0
        self._last_push_s: float | None = None
        self._last_push_audio_s = 0.0
        self._need_s = 0.0
        self._samples_in = 0
        self._samples_out = 0
        self._frames_out = 0
        self._underruns = 0
        self._underrun_s = 0.0
        self._underrun_from_s = 0.0
        self._target_at_underrun_ms = 0.0
        # Pace mode clock: frame `_next_frame` plays at _anchor_s + (_next_frame - _anchor_frame) * frame.
        self._anchor_s = 0.0
        self._anchor_frame = 0
        self._next_frame = 0
        # Start mode clock: when everything handed out so far has played.
        self._play_end_s = 0.0
        self._target_ms = self._clamp(self._peak_ms)

    def _clock(self, now: float | None, where: str) -> float:
        t = time.monotonic() if now is None else now
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t):
            raise InvalidInputError(
                f"JitterBuffer.{where}: now must be a finite float (seconds), got {now!r}"
            )
        t = float(t)
        if self._last_now is not None and t < self._last_now:
            raise InvalidInputError(
                f"JitterBuffer.{where}: now={t!r} is earlier than the previous call's {self._last_now!r}; "
                "pass times from one non-decreasing clock (e.g. time.monotonic())"
            )
        self._last_now = t
        return t

    def _clamp(self, value_ms: float) -> float:
        return min(self._max_target_ms, max(self._min_target_ms, value_ms))

    def _peak_now(self, t: float) -> float:
        if self._peak_at_s is None:
            return self._peak_ms
        decaying_s = t - self._peak_at_s - self._hold_s
        if decaying_s <= 0.0:
            return self._peak_ms
        return self._peak_ms * 0.5 ** (decaying_s / self._half_life_s)

    def _raise_peak(self, value_ms: float, t: float) -> None:
        if self._peak_at_s is None or value_ms >= self._peak_now(t):
            self._peak_ms = value_ms
            self._peak_at_s = t
        self._target_ms = self._clamp(self._peak_now(t))

    def _measure(self, t: float, n: int) -> None:
        """Update the needed-depth statistic and the target with a push of `n` samples at `t`."""
        audio_s = n / self._sample_rate
        if self._last_push_s is None:
            self._first_push_s = t
            self._first_push_samples = n
            if self._peak_at_s is None:
                self._peak_at_s = t
            self._need_s = 0.0
        else:
            self._need_s = (t - self._last_push_s) + max(0.0, self._need_s - self._last_push_audio_s)
        self._last_push_s = t
        self._last_push_audio_s = audio_s
        self._raise_peak(self._need_s * 1000.0, t)

    def _depth_ready_ms(self) -> float:
        """Audio that can play now: whole frames in pace mode (all once ended), all samples in start mode."""
        if self._mode == "pace" and not self._ended:
            usable = self._pending_samples - self._pending_samples % self._frame_samples
        else:
            usable = self._pending_samples
        return usable * 1000.0 / self._sample_rate

    def _maybe_start(self, t: float) -> None:
        if self._state == "playing":
            return
        depth_ms = self._depth_ready_ms()
        if depth_ms <= 0.0:
            if self._ended and self._state == "rebuffering":
                self._state = "playing"  # nothing more will come: the gap was the end, not an underrun
            return
        if not self._ended and depth_ms + _EPS_S * 1000.0 < self._target_ms:
            return
        if self._state == "rebuffering":
            self._underruns += 1
            self._underrun_s += t - self._underrun_from_s
            self._raise_peak(self._target_at_underrun_ms + self._frame_ms, t)
        elif self._start_s is None:
            self._start_s = t
        self._state = "playing"
        if self._mode == "pace":
            self._anchor_s = t
            self._anchor_frame = self._next_frame
        else:
            self._play_end_s = t
            self._release_start_mode(t)

    def _release_start_mode(self, t: float) -> None:
        """Start mode, playing: hand out everything pending and model the listener's buffer."""
        if t > self._play_end_s + _EPS_S:
            self._underruns += 1
            self._underrun_s += t - self._play_end_s
            self._raise_peak(self._target_ms + self._frame_ms, t)
            self._play_end_s = t
        self._play_end_s += self._pending_samples / self._sample_rate
        self._ready.extend(self._pending)
        self._pending.clear()
        self._pending_samples = 0

    def _advance(self, t: float) -> None:
        """Pace mode: move every frame whose playout time is <= t to the ready list, detecting underruns."""
        if self._mode != "pace":
            return
        frame_s = self._frame_ms / 1000.0
        while self._state == "playing":
            due_s = self._anchor_s + (self._next_frame - self._anchor_frame) * frame_s
            if due_s > t + _EPS_S:
                return
            if self._pending_samples >= self._frame_samples:
                self._ready.append(self._take_frame())
                self._next_frame += 1
            elif self._ended or due_s >= t - _EPS_S:
                return  # drained, or due right now and the audio may still arrive at this instant
            else:
                self._state = "rebuffering"
                self._underrun_from_s = due_s
                self._target_at_underrun_ms = self._target_ms

    def _take_frame(self) -> np.ndarray:
        need = self._frame_samples
        parts: list[np.ndarray] = []
        while need:
            head = self._pending[0]
            if head.shape[0] <= need:
                parts.append(self._pending.popleft())
                need -= head.shape[0]
            else:
                parts.append(head[:need])
                self._pending[0] = head[need:]
                need = 0
        self._pending_samples -= self._frame_samples
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)
