"""The audio path of one utterance: engine chunks in, 16-bit PCM at the pipeline's rate out, with word times.

    engine float32 24 kHz -> RateChanger (speed) -> StreamResampler (pipeline rate) -> JitterBuffer (start)
    -> to_pcm16 -> bytes for TTSAudioRawFrame;   WordTimer (text + audio released) -> word start times

Does: hold back the first audio until the playout-start decision says the stream will not starve (Pipecat's
output transport paces the audio itself, so only the start is decided here), and release word times only for
audio that was released. Does not: know Pipecat frames or the engine (`_service.py` does).
"""

from __future__ import annotations

import numpy as np

from ...audio import JitterBuffer, RateChanger, StreamResampler, to_pcm16
from ...text.word_timing import WordTimer

__all__ = ["UtteranceAudio"]


class UtteranceAudio:
    """Audio and word times of one engine stream.

    Args:
        in_rate: the engine's sample rate.
        out_rate: the pipeline's audio output rate.
        speed: speaking rate (RateChanger; 1.0 passes the audio through untouched).
        start_target_ms: the playout buffer's starting target, learned from earlier utterances.
        offset_s: where this utterance starts in its audio context (the sentences before it), for word times.
    """

    def __init__(
        self, *, in_rate: int, out_rate: int, speed: float, start_target_ms: float, offset_s: float
    ) -> None:
        self._rate = RateChanger(speed, in_rate)
        self._resampler = StreamResampler(in_rate, out_rate)
        self._jitter = JitterBuffer(out_rate, mode="start", initial_target_ms=start_target_ms)
        self._timer = WordTimer()
        self._out_rate = out_rate
        self._offset_s = offset_s

    @property
    def audio_s(self) -> float:
        """Seconds of audio released so far."""
        return self._timer.audio_s

    @property
    def target_ms(self) -> float:
        """The playout buffer's current target (to start the next utterance with)."""
        return self._jitter.stats().target_ms

    def add_text(self, text: str) -> None:
        """Text of this utterance, as it arrives (for word times)."""
        self._timer.add_text(text)

    def push(self, audio: np.ndarray) -> list[bytes]:
        """An engine chunk in; the PCM that may play now out (nothing before the playout start)."""
        self._jitter.push(self._resampler.process(self._rate.process(audio)))
        return self._release()

    def end(self) -> list[bytes]:
        """The engine stream ended: everything still held, flushed."""
        tail = self._resampler.process(self._rate.flush())
        self._jitter.push(np.concatenate([tail, self._resampler.flush()]))
        self._jitter.end()
        pcm = self._release()
        self._timer.finish()
        return pcm

    def words(self) -> list[tuple[str, float]]:
        """Words whose audio has been released: (word, start in seconds from the audio context's start)."""
        return [(w.word, self._offset_s + w.start_s) for w in self._timer.ready()]

    def _release(self) -> list[bytes]:
        out = []
        for chunk in self._jitter.pop_ready():
            if chunk.shape[0]:
                self._timer.add_audio(chunk.shape[0] / self._out_rate)
                out.append(to_pcm16(chunk).tobytes())
        return out
