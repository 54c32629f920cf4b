"""Reference-clip preparation for the voice library: validate, trim, cap the length, normalise the level.

    prepared = prepare_reference("anna.wav", ReferencePreprocessing())
    prepared.samples            # float32 mono at 24 kHz, what the speech tokenizer and speaker encoder get

Steps, in order (each switchable through `ReferencePreprocessing`):
1. decode any format soundfile reads, average the channels, resample to 24 kHz with soxr HQ
   (`model.audio_input.load_reference_audio`, the samples the official wrapper would get);
2. validate: not empty, finite, a source rate of at least 8 kHz, not silent, at most 60 s;
3. trim leading and trailing silence (10 ms frames more than 40 dB below the loudest frame), keeping 50 ms;
4. cut a clip longer than `max_seconds` at its quietest 20 ms in the 3 s before the limit (a pause), then trim
   the silence this leaves at the end;
5. require at least 1 s of sound;
6. scale so the RMS level is near -20 dBFS without the peak going above -1 dBFS (never clips).

Everything is plain numpy on fixed frame grids, so the same input always gives the same samples (the content
key of a cloned voice hashes them). What this module does not do: denoise, detect speech, or check the
transcript against the audio.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from ..errors import AudioInputError, InvalidInputError
from ..model.audio_input import AudioInput, load_reference_audio

__all__ = ["ReferencePreprocessing", "PreparedReference", "prepare_reference", "SAMPLE_RATE"]

SAMPLE_RATE = 24000  # what the speech tokenizer and the speaker encoder take
MIN_SOURCE_RATE = 8000  # below this the speaker encoder's mel bands above 4 kHz would be empty
MIN_SECONDS = 1.0
MAX_INPUT_SECONDS = 60.0
SILENT_PEAK = 10 ** (-60 / 20)  # a clip whose loudest sample is below -60 dBFS holds no usable voice
TRIM_BELOW_DB = 40.0
TRIM_FRAME = 240  # 10 ms
TRIM_KEEP = 1200  # 50 ms kept around the sound, so onsets and decays survive
CUT_WINDOW_S = 3.0
CUT_FRAME, CUT_HOP = 480, 240  # 20 ms energy windows every 10 ms
PEAK_CEILING = 10 ** (-1 / 20)
TARGET_RMS = 10 ** (-20 / 20)


@dataclass(frozen=True)
class ReferencePreprocessing:
    """How a reference clip is prepared before cloning. Part of a cloned voice's content key.

    Attributes:
        trim_silence: cut leading and trailing silence.
        max_seconds: cut longer clips at a pause before this length; None keeps the whole clip (up to 60 s).
        normalize: bring the level to about -20 dBFS RMS, peak at most -1 dBFS.
    """

    trim_silence: bool = True
    max_seconds: float | None = 15.0
    normalize: bool = True

    def __post_init__(self) -> None:
        m = self.max_seconds
        if m is not None and (isinstance(m, bool) or not isinstance(m, int | float) or not
                              MIN_SECONDS <= m <= MAX_INPUT_SECONDS):
            raise InvalidInputError(
                f"max_seconds={m!r}; it must be None or a number of seconds from {MIN_SECONDS:g} to "
                f"{MAX_INPUT_SECONDS:g} (15 is a good length for cloning)"
            )

    @classmethod
    def disabled(cls) -> ReferencePreprocessing:
        """No trimming, cutting or normalising: the samples `Qwen3TTS.clone_voice` uses (golden parity)."""
        return cls(trim_silence=False, max_seconds=None, normalize=False)

    def as_dict(self) -> dict[str, bool | float | None]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PreparedReference:
    """A validated, prepared reference clip.

    Attributes:
        samples: [T] float32 mono at 24 kHz.
        input_seconds: the decoded clip's length, before trimming and cutting.
        trimmed_seconds: silence removed from the edges.
        cut_seconds: audio removed after the pause the clip was cut at (0 when not cut).
        gain_db: the level change applied by normalisation (0 when off).
    """

    samples: np.ndarray
    input_seconds: float
    trimmed_seconds: float = 0.0
    cut_seconds: float = 0.0
    gain_db: float = 0.0

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / SAMPLE_RATE


def prepare_reference(audio: AudioInput, options: ReferencePreprocessing) -> PreparedReference:
    """Decode, validate and prepare one reference clip (see the module docstring for the steps).

    Args:
        audio: a path to an audio file, or `(samples, sample_rate)` with samples [T] or [T, channels].
        options: which steps to run.

    Returns:
        The prepared clip and what was done to it.

    Raises:
        AudioInputError: not audio, empty, NaN/inf, a source rate below 8 kHz, silent, longer than 60 s,
            or shorter than 1 s (after trimming).
    """
    wav = load_reference_audio(audio, SAMPLE_RATE)
    if isinstance(audio, str | os.PathLike):
        where, source_rate = f"reference audio {os.fspath(audio)!r}", sf.info(os.fspath(audio)).samplerate
    else:
        where, source_rate = "reference audio", int(audio[1])
    if source_rate < MIN_SOURCE_RATE:
        raise AudioInputError(
            f"{where} has a sample rate of {source_rate} Hz; at least {MIN_SOURCE_RATE} Hz is needed "
            "(16 kHz or more is best): record or export it at a higher rate"
        )
    input_seconds = wav.shape[0] / SAMPLE_RATE
    if input_seconds > MAX_INPUT_SECONDS:
        raise AudioInputError(
            f"{where} is {input_seconds:.1f} s long; the longest accepted is {MAX_INPUT_SECONDS:g} s "
            f"(clips over {options.max_seconds or 15:g} s are cut at a pause): cut it to the 5-15 s to clone"
        )
    peak = float(np.max(np.abs(wav)))
    if peak < SILENT_PEAK:
        level = "digital silence" if peak == 0 else f"peak {20 * math.log10(peak):.0f} dBFS"
        raise AudioInputError(
            f"{where} is silent ({level}); pass a recording of the voice speaking for 5-15 s"
        )
    threshold = float(_frame_rms(wav, TRIM_FRAME, TRIM_FRAME).max()) * 10 ** (-TRIM_BELOW_DB / 20)
    trimmed = cut = 0
    if options.trim_silence:
        before = wav.shape[0]
        wav = _trim(wav, threshold, start=True, end=True)
        trimmed = before - wav.shape[0]
    if options.max_seconds is not None and wav.shape[0] > round(options.max_seconds * SAMPLE_RATE):
        before = wav.shape[0]
        wav = wav[: _pause_before(wav, round(options.max_seconds * SAMPLE_RATE))]
        if options.trim_silence:
            wav = _trim(wav, threshold, start=False, end=True)
        cut = before - wav.shape[0]
    if wav.shape[0] < MIN_SECONDS * SAMPLE_RATE:
        after = " after trimming silence" if options.trim_silence else ""
        raise AudioInputError(
            f"{where} holds {wav.shape[0] / SAMPLE_RATE:.2f} s of sound{after}; at least {MIN_SECONDS:g} s "
            "is needed (5-15 s of clear speech clones best)"
        )
    gain_db = 0.0
    if options.normalize:
        wav, gain_db = _normalize(wav)
    return PreparedReference(
        samples=np.ascontiguousarray(wav, dtype=np.float32),
        input_seconds=input_seconds,
        trimmed_seconds=trimmed / SAMPLE_RATE,
        cut_seconds=cut / SAMPLE_RATE,
        gain_db=gain_db,
    )


def _frame_rms(wav: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """RMS of `frame`-sample windows every `hop` samples (the last window zero-padded), in float64."""
    num = max(1, -(-(wav.shape[0] - frame) // hop) + 1)
    padded = np.zeros((num - 1) * hop + frame, dtype=np.float64)
    padded[: wav.shape[0]] = wav
    energy = np.concatenate([[0.0], np.cumsum(padded * padded)])
    starts = np.arange(num) * hop
    return np.sqrt((energy[starts + frame] - energy[starts]).clip(min=0.0) / frame)


def _trim(wav: np.ndarray, threshold: float, *, start: bool, end: bool) -> np.ndarray:
    loud = np.flatnonzero(_frame_rms(wav, TRIM_FRAME, TRIM_FRAME) >= threshold)
    if loud.size == 0:
        return wav[:0]
    first = max(0, int(loud[0]) * TRIM_FRAME - TRIM_KEEP) if start else 0
    last = min(wav.shape[0], (int(loud[-1]) + 1) * TRIM_FRAME + TRIM_KEEP) if end else wav.shape[0]
    return wav[first:last]


def _pause_before(wav: np.ndarray, limit: int) -> int:
    """The sample to cut at: the centre of the quietest 20 ms window in the 3 s before `limit` (the latest
    one on ties, to keep as much voice as possible)."""
    window_start = max(0, limit - round(CUT_WINDOW_S * SAMPLE_RATE))
    rms = _frame_rms(wav[window_start:limit], CUT_FRAME, CUT_HOP)
    rms = rms[: max(1, (limit - window_start - CUT_FRAME) // CUT_HOP + 1)]  # windows wholly before the limit
    best = rms.shape[0] - 1 - int(np.argmin(rms[::-1]))
    return window_start + best * CUT_HOP + CUT_FRAME // 2


def _normalize(wav: np.ndarray) -> tuple[np.ndarray, float]:
    x = wav.astype(np.float64)
    rms = float(np.sqrt(np.mean(x * x)))
    peak = float(np.max(np.abs(x)))
    gain = min(TARGET_RMS / rms, PEAK_CEILING / peak)
    out = (x * gain).astype(np.float32)
    return out, 20 * math.log10(gain)
