"""One stream's way out: engine audio (float32, 24 kHz) -> speaking rate -> output rate -> encoded bytes, and
the figures reported for it (first audio, generation time, xRT, underruns of a real-time listener).

Does not: talk HTTP or websockets, or touch the engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..audio import RateChanger, StreamResampler
from ._formats import make_encoder

__all__ = ["Renderer", "StreamFigures"]

ENGINE_RATE = 24000
FRAME_SAMPLES = 1920  # one 80 ms codec frame at 24 kHz


class Renderer:
    """Audio of one stream into the bytes of its response.

    Args:
        response_format, encoding, sample_rate: as validated by `_requests.py`.
        speed: speaking rate (1.0 passes the audio through untouched).
        streamed: bytes should leave as early as the format allows.
    """

    def __init__(
        self, response_format: str, encoding: str, sample_rate: int, speed: float, *, streamed: bool
    ) -> None:
        self._rate = RateChanger(speed, ENGINE_RATE)
        self._resampler = StreamResampler(ENGINE_RATE, sample_rate)
        self._encoder = make_encoder(response_format, encoding, sample_rate, streamed=streamed)
        self._sample_rate = sample_rate
        self.samples_out = 0

    @property
    def audio_s(self) -> float:
        """Seconds of audio rendered so far (after the speaking rate)."""
        return self.samples_out / self._sample_rate

    def push(self, audio: np.ndarray) -> bytes:
        out = self._resampler.process(self._rate.process(audio))
        self.samples_out += out.size
        return self._encoder.encode(out)

    def finish(self) -> bytes:
        """The held-back tail (speaking rate, resampler, encoder) and the end of the file."""
        tail = self._resampler.process(self._rate.flush())
        tail = np.concatenate([tail, self._resampler.flush()])
        self.samples_out += tail.size
        return self._encoder.encode(tail) + self._encoder.finish()


@dataclass
class StreamFigures:
    """What one stream did, for `/metrics`, response headers and the websocket `done` event.

    Underruns model a listener who starts playing at the first audio and plays in real time: each chunk that
    arrives after everything before it has played is one underrun, of that gap.
    """

    voice_cache: str | None  # "hit": the voice was warm (used before); "miss": prepared for it; None: no stream
    started: float = field(default_factory=time.perf_counter)
    first_audio: float | None = None
    last_audio: float | None = None
    frames: int = 0
    audio_s: float = 0.0
    underruns: int = 0
    underrun_s: float = 0.0
    _playout_end: float | None = None

    def add_chunk(self, num_frames: int, audio_s: float, now: float | None = None) -> None:
        """An engine chunk of `num_frames` left as `audio_s` seconds of output audio."""
        now = time.perf_counter() if now is None else now
        self.frames += num_frames
        if audio_s <= 0:
            return
        if self.first_audio is None:
            self.first_audio = now
        if self._playout_end is None:
            self._playout_end = now
        elif now > self._playout_end:
            self.underruns += 1
            self.underrun_s += now - self._playout_end
            self._playout_end = now
        self._playout_end += audio_s
        self.last_audio = now
        self.audio_s += audio_s

    @property
    def first_audio_s(self) -> float | None:
        return None if self.first_audio is None else self.first_audio - self.started

    @property
    def generation_s(self) -> float:
        """From the request to the last audio (or to now, before any)."""
        end = self.last_audio if self.last_audio is not None else time.perf_counter()
        return end - self.started

    @property
    def xrt(self) -> float | None:
        """Audio seconds per wall-clock second of generation (above 1: faster than real time)."""
        wall = self.generation_s
        return self.audio_s / wall if self.audio_s > 0 and wall > 0 else None

    def as_dict(self) -> dict[str, float | int | str | None]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "frames": self.frames,
            "audio_s": r(self.audio_s),
            "first_audio_s": r(self.first_audio_s),
            "generation_s": r(self.generation_s),
            "xrt": r(self.xrt),
            "underruns": self.underruns,
            "underrun_s": r(self.underrun_s),
            "voice_cache": self.voice_cache,
        }
