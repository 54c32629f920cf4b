"""Stateful streaming resampling of mono float32 audio on soxr.

Does: convert one continuous stream between any two of 8000, 16000, 22050, 24000, 44100 and 48000 Hz with
`soxr.ResampleStream` (HQ quality), chunk in, chunk out; the result is the same whatever the chunking, and
the total output length after `flush()` is exact (see `StreamResampler.expected_output_samples`).
Same rate in and out is an exact pass-through.
Does not: mix channels, convert sample formats (see `to_pcm16`), or resample several streams with one
object (make one `StreamResampler` per stream; `flush()` makes it ready for the next one).
"""

from __future__ import annotations

import logging

import numpy as np
import soxr

from qwen3tts_realtime.audio._checks import require_mono
from qwen3tts_realtime.errors import InvalidInputError

__all__ = ["SUPPORTED_SAMPLE_RATES", "StreamResampler"]

logger = logging.getLogger("qwen3tts_realtime.audio")

SUPPORTED_SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 22050, 24000, 44100, 48000)
"""The sample rates `StreamResampler` converts between, in Hz."""

_QUALITY = "HQ"
_EMPTY = np.zeros(0, dtype=np.float32)


def _check_rate(value: object, name: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or int(value) not in SUPPORTED_SAMPLE_RATES
    ):
        accepted = ", ".join(str(r) for r in SUPPORTED_SAMPLE_RATES)
        raise InvalidInputError(
            f"StreamResampler: {name}={value!r} is not supported; accepted sample rates (Hz): {accepted}"
        )
    return int(value)


class StreamResampler:
    """Resample one mono float32 stream, chunk by chunk, keeping the filter state between chunks.

    Example:
        >>> r = StreamResampler(24000, 8000)
        >>> out = np.concatenate([r.process(chunk) for chunk in chunks] + [r.flush()])

    Output length: after `flush()` the stream has produced exactly
    `expected_output_samples(total_in)` = round-half-up(total_in * out_rate / in_rate) samples, computed in
    integers. soxr itself computes that length in floating point and comes out one sample short on some exact
    ties (e.g. 240 samples 24000 -> 22050 Hz); `flush()` then appends one zero sample to the filter tail.

    Latency: soxr holds back a few milliseconds (the HQ filter's group delay) until later input or `flush()`.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        """Create a resampler for one stream.

        Args:
            in_rate: input sample rate in Hz, one of `SUPPORTED_SAMPLE_RATES`.
            out_rate: output sample rate in Hz, one of `SUPPORTED_SAMPLE_RATES`.

        Raises:
            InvalidInputError: (a ValueError) a rate outside `SUPPORTED_SAMPLE_RATES`; the message lists them.
        """
        self._in_rate = _check_rate(in_rate, "in_rate")
        self._out_rate = _check_rate(out_rate, "out_rate")
        self._stream: soxr.ResampleStream | None = None
        if self._in_rate != self._out_rate:
            self._stream = soxr.ResampleStream(
                self._in_rate, self._out_rate, 1, dtype="float32", quality=_QUALITY
            )
        self._samples_in = 0
        self._samples_out = 0

    @property
    def in_rate(self) -> int:
        """Input sample rate in Hz."""
        return self._in_rate

    @property
    def out_rate(self) -> int:
        """Output sample rate in Hz."""
        return self._out_rate

    @property
    def samples_in(self) -> int:
        """Input samples received since the stream began (reset by `flush()`)."""
        return self._samples_in

    @property
    def samples_out(self) -> int:
        """Output samples returned since the stream began (reset by `flush()`)."""
        return self._samples_out

    def expected_output_samples(self, samples_in: int) -> int:
        """The exact output length of a whole stream of `samples_in` input samples, flush included.

        Args:
            samples_in: the stream's total input length in samples.

        Returns:
            `floor(samples_in * out_rate / in_rate + 1/2)`, computed in integers.
        """
        return (2 * samples_in * self._out_rate + self._in_rate) // (2 * self._in_rate)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Resample the next chunk of the stream.

        Args:
            chunk: 1-D float32 samples at `in_rate` (any length, empty allowed).

        Returns:
            1-D float32 samples at `out_rate`: as many as soxr can finish now (possibly none). With equal
            rates, a copy of `chunk`.

        Raises:
            InvalidInputError: `chunk` is not a 1-D float32 numpy array.
        """
        require_mono(chunk, accepted=(np.float32,), where="StreamResampler.process")
        self._samples_in += chunk.shape[0]
        if self._stream is None:
            out = chunk.copy()
        else:
            out = self._stream.resample_chunk(np.ascontiguousarray(chunk))
        self._samples_out += out.shape[0]
        return out

    def flush(self) -> np.ndarray:
        """End the stream: return the held-back tail and reset, ready for a new stream.

        Returns:
            1-D float32 samples at `out_rate` completing the stream to `expected_output_samples(samples_in)`.
        """
        if self._stream is None:
            tail = _EMPTY.copy()
        else:
            tail = self._stream.resample_chunk(_EMPTY, last=True)
            missing = self.expected_output_samples(self._samples_in) - (self._samples_out + tail.shape[0])
            if missing > 0:
                tail = np.concatenate([tail, np.zeros(missing, dtype=np.float32)])
            elif missing < 0:
                already_over = -(tail.shape[0] + missing)
                if already_over > 0:
                    logger.warning(
                        "StreamResampler %d->%d Hz: %d samples more than expected were already returned",
                        self._in_rate,
                        self._out_rate,
                        already_over,
                    )
                tail = tail[: max(0, tail.shape[0] + missing)]
            self._stream.clear()
        self._samples_in = 0
        self._samples_out = 0
        return tail
