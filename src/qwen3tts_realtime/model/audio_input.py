"""Reference audio for voice cloning: a file or `(array, sample_rate)` → float32 mono at 24 kHz (spec §7).

The samples are exactly the ones the official wrapper hands to its speech tokenizer and speaker encoder:
files are decoded as float32 (the official `librosa.load(sr=None)` decodes with soundfile too), channels are
averaged, and other rates are resampled like `librosa.resample`'s default (`soxr_hq`): soxr in HQ quality,
then zero-padded or cut to ceil(T · target_sr / sr) samples (`librosa.util.fix_length`; soxr alone may
return a sample fewer).

What this module does not do: trim silence, normalise loudness or cap the duration; golden parity needs the
exact samples. URLs and base64 strings (accepted by the official wrapper) are not read here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioInputError

__all__ = ["AudioInput", "load_reference_audio", "resample"]

AudioInput = str | os.PathLike[str] | tuple[np.ndarray, int]

_ACCEPTED = (
    "accepted: a path to an audio file soundfile can read (WAV, FLAC, OGG, MP3, ...) or a tuple "
    "(samples, sample_rate) with samples a float or signed-integer numpy array of shape [T] or [T, channels]"
)


def load_reference_audio(audio: AudioInput, target_sr: int = 24000) -> np.ndarray:
    """Read, downmix and resample reference audio.

    Args:
        audio: a path to an audio file, or `(samples, sample_rate)` where `samples` is a numpy array of
            shape `[T]` or `[T, channels]` (soundfile's layout; transpose channel-first audio). Float samples
            are taken as they are (full scale ±1); signed-integer PCM is scaled by 1 / 2^(bits−1) as
            soundfile does.
        target_sr: the output sample rate in Hz.

    Returns:
        `[T']` float32 mono waveform at `target_sr`.

    Raises:
        AudioInputError: the file is missing or not audio; the array is empty, has the wrong number of
            dimensions, a non-numeric dtype, or NaN/inf samples; a bare array without a sample rate; a
            sample rate that is not a positive integer.
    """
    target_sr = _sample_rate(target_sr, "target_sr")
    if isinstance(audio, str | os.PathLike):
        samples, sample_rate = _read_file(Path(audio))
        where = f"audio file {os.fspath(audio)!r}"
    elif isinstance(audio, tuple):
        samples, sample_rate = _unpack_pair(audio)
        where = "reference audio array"
    elif isinstance(audio, np.ndarray):
        raise AudioInputError(
            f"got a bare numpy array of shape {audio.shape} without its sample rate; pass "
            f"(samples, sample_rate), e.g. (audio, 16000); {_ACCEPTED}"
        )
    else:
        raise AudioInputError(f"reference audio of type {type(audio).__name__} is not supported; {_ACCEPTED}")
    mono = _to_mono_float32(samples, where)
    return resample(mono, sample_rate, target_sr)


def resample(wav: np.ndarray, sample_rate: int, target_sr: int) -> np.ndarray:
    """`librosa.resample(wav, orig_sr=sample_rate, target_sr=target_sr)` with its default `soxr_hq`.

    Args:
        wav: `[T]` float32 waveform.
        sample_rate: its rate in Hz.
        target_sr: the wanted rate in Hz.

    Returns:
        `[ceil(T · target_sr / sample_rate)]` float32 waveform (`wav` itself when the rates are equal).
    """
    if sample_rate == target_sr:
        return wav
    # librosa's length, float ratio first (so 147 samples at 22050 Hz → 161, not 160).
    num_samples = int(np.ceil(wav.shape[0] * (float(target_sr) / sample_rate)))
    out = soxr.resample(wav, sample_rate, target_sr, quality="HQ").astype(np.float32, copy=False)
    if out.shape[0] >= num_samples:
        return out[:num_samples]
    return np.pad(out, (0, num_samples - out.shape[0]))


def _sample_rate(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise AudioInputError(
            f"{name} must be a positive integer in Hz, got {value!r} ({type(value).__name__})"
        )
    if not float(value).is_integer() or value <= 0:
        raise AudioInputError(f"{name} must be a positive integer in Hz, got {value!r}")
    return int(value)


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    if not path.is_file():
        raise AudioInputError(f"reference audio file {os.fspath(path)!r} does not exist or is not a file")
    try:
        samples, sample_rate = sf.read(path, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as e:
        raise AudioInputError(
            f"cannot read {os.fspath(path)!r} as audio ({e}); {_ACCEPTED}; convert other formats to WAV first"
        ) from e
    return samples, int(sample_rate)


def _unpack_pair(pair: tuple) -> tuple[np.ndarray, int]:
    if len(pair) != 2:
        raise AudioInputError(f"reference audio tuple must be (samples, sample_rate), got {len(pair)} items")
    samples, sample_rate = pair
    if isinstance(sample_rate, np.ndarray) and not isinstance(samples, np.ndarray):
        raise AudioInputError(
            "reference audio tuple is (sample_rate, samples); pass (samples, sample_rate) instead, "
            "i.e. swap the two items"
        )
    if not isinstance(samples, np.ndarray):
        raise AudioInputError(
            f"reference audio samples must be a numpy array, got {type(samples).__name__}; convert with "
            f"np.asarray(...) (or tensor.cpu().numpy()); {_ACCEPTED}"
        )
    return samples, _sample_rate(sample_rate, "sample rate")


def _to_mono_float32(samples: np.ndarray, where: str) -> np.ndarray:
    kind = samples.dtype.kind
    if kind == "f":
        wav = samples.astype(np.float32, copy=False)
    elif kind == "i":
        wav = (samples / float(2 ** (8 * samples.dtype.itemsize - 1))).astype(np.float32)
    else:
        raise AudioInputError(
            f"{where} has dtype {samples.dtype}; samples must be floating point (full scale ±1) or signed "
            "integer PCM (e.g. int16)"
        )
    if wav.ndim not in (1, 2):
        raise AudioInputError(f"{where} has shape {wav.shape}; samples must be [T] or [T, channels]")
    if wav.size == 0:
        raise AudioInputError(f"{where} is empty (shape {wav.shape}); pass a reference clip of a few seconds")
    if wav.ndim == 2:
        if wav.shape[1] > wav.shape[0]:
            raise AudioInputError(
                f"{where} has shape {wav.shape}, which looks channel-first ({wav.shape[0]} channels?); "
                "samples must be [T] or [T, channels] (soundfile's layout): pass audio.T"
            )
        # Downmix after the float32 cast, as the official wrapper does.
        wav = wav.mean(axis=-1)
    if not np.isfinite(wav).all():
        raise AudioInputError(f"{where} contains NaN or infinite samples; pass finite samples in [-1, 1]")
    return np.ascontiguousarray(wav)
