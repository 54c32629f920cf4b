"""Streaming speaking-rate change with the pitch kept: WSOLA (waveform-similarity overlap-add) in numpy.

Does: play one mono float32 stream 0.5x to 2.0x as fast without changing its pitch, chunk in, chunk out.
The output depends only on the input samples, not on how they were chunked (bit for bit), and a whole stream
of `n` input samples yields exactly `round(n / rate)` output samples after `flush()`. Rate 1.0 is an exact
pass-through (each chunk comes back unchanged, no delay).
Does not: change pitch, change the rate in mid-stream, resample, or handle several channels.

Algorithm (Verhelst & Roelands 1993; notation of Driedger & Mueller 2016): output frame m is a Hann-windowed
input segment of `window_ms` centred near input position `m * Ha` (analysis hop Ha = rate * Hs),
overlap-added at output position `m * Hs` (synthesis hop Hs = window / 2, so the windows sum to one). The
segment is shifted by up to +-`tolerance_ms` to the position whose normalised cross-correlation with the
natural continuation of the previous segment is highest, which keeps the waveform (and the pitch) continuous.

Latency: output up to a given point needs input up to
`tolerance_ms + window_ms / 2 + max(1, rate) * window_ms / 2` past the matching input position, so at most
that much input is held back (`lookahead_ms`: 40 ms at rate <= 1, 55 ms at rate 2 with the defaults).
At the very end, the last ~`window_ms / 2` of output may fade slightly where frames reach past the input.
"""

from __future__ import annotations

import numpy as np

from qwen3tts_realtime.audio._checks import require_mono, require_number, require_positive_int
from qwen3tts_realtime.errors import InvalidInputError

__all__ = ["MAX_RATE", "MIN_RATE", "RateChanger"]

MIN_RATE = 0.5
MAX_RATE = 2.0
_EMPTY = np.zeros(0, dtype=np.float32)


class RateChanger:
    """Change the speaking rate of one stream, keeping the pitch (WSOLA).

    Example:
        >>> rc = RateChanger(rate=1.25, sample_rate=24000)       # 25 % faster
        >>> out = np.concatenate([rc.process(chunk) for chunk in chunks] + [rc.flush()])
        >>> len(out) == round(sum(map(len, chunks)) / 1.25)
        True
    """

    def __init__(
        self,
        rate: float,
        sample_rate: int = 24000,
        *,
        window_ms: float = 30.0,
        tolerance_ms: float = 10.0,
    ) -> None:
        """Create a rate changer for one stream (`flush()` makes it ready for the next).

        Args:
            rate: speed factor in [0.5, 2.0]; 2.0 is twice as fast (half the duration), 1.0 is unchanged.
            sample_rate: samples per second of the audio (any positive integer).
            window_ms: WSOLA window; 20-40 ms suits speech (it should span two pitch periods), in [5, 100].
            tolerance_ms: how far a segment may move to match the waveform; at least half the longest pitch
                period expected, in [0, 50].

        Raises:
            InvalidInputError: (a ValueError) rate outside [0.5, 2.0], or another argument out of range.
        """
        where = "RateChanger"
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not MIN_RATE <= float(rate) <= MAX_RATE
        ):
            raise InvalidInputError(
                f"{where}: rate={rate!r} is out of range; accepted: {MIN_RATE} to {MAX_RATE} "
                "(speed factor: 2.0 = twice as fast, 1.0 = unchanged)"
            )
        self._rate = float(rate)
        self._sample_rate = require_positive_int(sample_rate, name="sample_rate", where=where)
        window_ms = require_number(window_ms, name="window_ms", where=where, low=5.0, high=100.0)
        tolerance_ms = require_number(tolerance_ms, name="tolerance_ms", where=where, low=0.0, high=50.0)
        self._hop = max(1, int(round(window_ms * self._sample_rate / 2000.0)))  # synthesis hop Hs
        self._window_len = 2 * self._hop  # N
        self._tolerance = int(round(tolerance_ms * self._sample_rate / 1000.0))  # Delta
        self._analysis_hop = self._hop * self._rate  # Ha
        n = np.arange(self._window_len)
        # Periodic Hann: copies shifted by N/2 sum to exactly one.
        self._window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / self._window_len)
        # Input is handled in "padded" coordinates: Hs + Delta zeros come before the first sample, so that
        # frame m (centred on input m * Ha + delta) starts at padded index a_m + Delta + delta,
        # with a_m = round(m * Ha).
        self._pad_front = self._hop + self._tolerance
        self._reset()

    @property
    def rate(self) -> float:
        """The speed factor."""
        return self._rate

    @property
    def sample_rate(self) -> int:
        """Samples per second."""
        return self._sample_rate

    @property
    def lookahead_ms(self) -> float:
        """The most input not yet reflected in the output, in ms (see the module docstring); 0 at rate 1.0."""
        if self._rate == 1.0:
            return 0.0
        samples = self._tolerance + self._hop + max(self._hop, self._analysis_hop)
        return samples * 1000.0 / self._sample_rate

    def expected_output_samples(self, samples_in: int) -> int:
        """The exact output length of a whole stream of `samples_in` samples, flush included: round(n / rate).

        Args:
            samples_in: the stream's total input length in samples.

        Returns:
            `floor(samples_in / rate + 1/2)`.
        """
        return int(np.floor(samples_in / self._rate + 0.5))

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Time-stretch the next chunk of the stream.

        Args:
            chunk: 1-D float32 samples (any length, empty allowed).

        Returns:
            1-D float32 output samples finished so far (possibly none). At rate 1.0, a copy of `chunk`.

        Raises:
            InvalidInputError: `chunk` is not a 1-D float32 numpy array.
        """
        require_mono(chunk, accepted=(np.float32,), where="RateChanger.process")
        if self._rate == 1.0:
            return chunk.copy()
        if chunk.shape[0]:
            self._in = np.concatenate([self._in, chunk.astype(np.float64)])
            self._samples_in += chunk.shape[0]
        self._synthesise(self._pad_front + self._samples_in)
        return self._emit(self._final_out())

    def flush(self) -> np.ndarray:
        """End the stream: return the rest of the output and reset, ready for a new stream.

        Returns:
            1-D float32 samples completing the stream to `expected_output_samples(samples_in)`.
        """
        if self._rate == 1.0:
            return _EMPTY.copy()
        total = self.expected_output_samples(self._samples_in)
        # Past the end the input is zeros; frames are made until the output is final up to `total`.
        while self._final_out() < total:
            zeros = self._frame_needs(self._m) - (self._in_start + self._in.shape[0])
            if zeros > 0:
                self._in = np.concatenate([self._in, np.zeros(zeros)])
            self._synthesise(self._in_start + self._in.shape[0])
        tail = self._emit(total)
        self._reset()
        return tail

    # ---------------------------------------------------------------------------------------------- private

    def _reset(self) -> None:
        self._in = np.zeros(self._pad_front)  # padded input from padded index `_in_start`
        self._in_start = 0
        self._samples_in = 0
        self._m = 0  # next frame
        self._prev_start = 0  # padded start of the previous frame's segment
        self._acc = np.zeros(0)  # overlap-add accumulator from output (untrimmed) index `_acc_start`
        self._acc_start = 0
        self._emitted = 0  # output samples returned (trimmed: output index = untrimmed - Hs)

    def _analysis_pos(self, m: int) -> int:
        return int(np.floor(m * self._analysis_hop + 0.5))

    def _frame_needs(self, m: int) -> int:
        """Padded input end that frame m reads."""
        if m == 0:
            return self._tolerance + self._window_len
        search_end = self._analysis_pos(m) + 2 * self._tolerance + self._window_len
        return max(search_end, self._prev_start + self._hop + self._window_len)

    def _final_out(self) -> int:
        """Output samples no future frame changes: frames 0..m-1 make the output final up to (m-1) * Hs."""
        return max(0, (self._m - 1) * self._hop)

    def _synthesise(self, available: int) -> None:
        """Overlap-add every frame whose input lies below padded index `available`."""
        n, hop, tol = self._window_len, self._hop, self._tolerance
        frames: list[np.ndarray] = []
        first_m = self._m
        while self._frame_needs(self._m) <= available:
            x, base = self._in, self._in_start
            if self._m == 0:
                start = tol
            else:
                a = self._analysis_pos(self._m)
                template = x[self._prev_start + hop - base : self._prev_start + hop + n - base]
                region = x[a - base : a + 2 * tol + n - base]
                start = a + self._best_shift(region, template)
            frames.append(self._window * x[start - base : start + n - base])
            self._prev_start = start
            self._m += 1
        if not frames:
            return
        # Frame m covers untrimmed output [m * Hs, m * Hs + N).
        end = (self._m - 1) * hop + n
        grown = np.zeros(end - self._acc_start)
        grown[: self._acc.shape[0]] = self._acc
        for i, frame in enumerate(frames):
            pos = (first_m + i) * hop - self._acc_start
            grown[pos : pos + n] += frame
        self._acc = grown
        # Drop input that no future frame reads.
        keep_from = min(self._analysis_pos(self._m), self._prev_start + hop)
        if keep_from > self._in_start:
            self._in = self._in[keep_from - self._in_start :]
            self._in_start = keep_from

    def _best_shift(self, region: np.ndarray, template: np.ndarray) -> int:
        """Offset in `region` of the segment most similar to `template` (normalised cross-correlation)."""
        if self._tolerance == 0:
            return 0
        n = template.shape[0]
        corr = np.correlate(region, template, mode="valid")
        power = np.cumsum(np.concatenate([[0.0], region * region]))
        energy = power[n:] - power[:-n]
        score = corr / np.sqrt(np.maximum(energy, 1e-12 * n))
        return int(np.argmax(score))

    def _emit(self, upto: int) -> np.ndarray:
        """Return trimmed output [emitted, upto) and drop it from the accumulator."""
        if upto <= self._emitted:
            return _EMPTY.copy()
        lo = self._emitted + self._hop - self._acc_start
        hi = upto + self._hop - self._acc_start
        out = self._acc[lo:hi].astype(np.float32)
        self._acc = self._acc[hi:]
        self._acc_start += hi
        self._emitted = upto
        return out
