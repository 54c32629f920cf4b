"""Reference-audio loading (spec §7): the exact samples the official wrapper would hand to the model.

* Files are read as float32 with soundfile; `(samples, sample_rate)` arrays are cast to float32; [T, C]
  audio is averaged over channels; other rates go through soxr HQ and are then padded to librosa's length,
  ceil(T · 24000 / sr), as `librosa.resample(res_type="soxr_hq")` does.
* Every unusable input raises `AudioInputError` (a `ValueError`) naming what is wrong and what is accepted.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from qwen3tts_realtime.errors import AudioInputError
from qwen3tts_realtime.model.audio_input import load_reference_audio, resample


def _noise(num_samples: int, seed: int = 0, channels: int | None = None) -> np.ndarray:
    shape = (num_samples,) if channels is None else (num_samples, channels)
    return (np.random.default_rng(seed).standard_normal(shape) * 0.1).astype(np.float32)


def test_24k_file_is_read_unchanged(golden: Path) -> None:
    path = golden / "inputs" / "ref_24k.wav"
    expected, sr = sf.read(path, dtype="float32")
    assert sr == 24000
    wav = load_reference_audio(path)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert np.array_equal(wav, expected)
    assert np.array_equal(load_reference_audio(str(path)), expected)


def test_16k_file_is_resampled_with_soxr_hq(golden: Path) -> None:
    path = golden / "inputs" / "ref_16k.wav"
    raw, sr = sf.read(path, dtype="float32")
    assert sr == 16000
    wav = load_reference_audio(path)
    assert wav.dtype == np.float32
    assert wav.shape == (math.ceil(raw.shape[0] * 1.5),)
    assert np.array_equal(wav, soxr.resample(raw, 16000, 24000, quality="HQ"))


def test_resampled_length_is_librosas() -> None:
    """soxr may return one sample fewer than librosa's ceil(T · ratio) (147 samples at 22050 Hz: soxr gives
    160, librosa 161, its ratio 24000 / 22050 taken in floating point first); librosa zero-pads, so do we."""
    x = _noise(147, seed=1)
    from_soxr = soxr.resample(x, 22050, 24000, quality="HQ")
    assert from_soxr.shape == (160,)
    out = resample(x, 22050, 24000)
    assert out.shape == (161,) and out.dtype == np.float32
    assert np.array_equal(out[:160], from_soxr) and out[160] == 0.0
    # Same rate: returned as is.
    assert resample(x, 24000, 24000) is x


def test_array_with_sample_rate() -> None:
    x = _noise(16001, seed=2)
    wav = load_reference_audio((x.astype(np.float64), 16000))
    assert wav.dtype == np.float32 and wav.shape == (24002,)
    assert np.array_equal(wav, resample(x, 16000, 24000))
    assert np.array_equal(load_reference_audio((x, 24000)), x)
    assert np.array_equal(load_reference_audio((x, np.int64(24000))), x)
    assert np.array_equal(load_reference_audio((x, 24000.0)), x)


def test_multichannel_is_averaged(tmp_path: Path) -> None:
    stereo = _noise(4800, seed=3, channels=2)
    expected = stereo.mean(axis=-1)
    assert np.array_equal(load_reference_audio((stereo, 24000)), expected)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 24000, subtype="FLOAT")
    assert np.array_equal(load_reference_audio(path), expected)
    # A single-channel [T, 1] array is mono.
    assert np.array_equal(load_reference_audio((stereo[:, :1], 24000)), stereo[:, 0])


def test_integer_pcm_is_scaled_like_soundfile(tmp_path: Path) -> None:
    pcm = (np.random.default_rng(4).standard_normal(2400) * 3000).astype(np.int16)
    path = tmp_path / "pcm16.wav"
    sf.write(path, pcm, 24000, subtype="PCM_16")
    from_file = load_reference_audio(path)
    assert np.array_equal(load_reference_audio((pcm, 24000)), from_file)
    assert np.array_equal(from_file, pcm.astype(np.float32) / 32768)


def test_target_rate_is_honoured() -> None:
    x = _noise(24000, seed=5)
    assert load_reference_audio((x, 24000), target_sr=16000).shape == (16000,)


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (
            np.zeros(100, np.float32),
            r"bare numpy array of shape \(100,\) without its sample rate.*\(samples, sample_rate\)",
        ),
        ((np.zeros(0, np.float32), 24000), r"is empty \(shape \(0,\)\)"),
        ((np.zeros((0, 2), np.float32), 24000), r"is empty"),
        ((np.array([0.0, np.nan, 0.1], np.float32), 24000), "NaN or infinite"),
        ((np.array([0.0, np.inf, 0.1]), 24000), "NaN or infinite"),
        (
            (np.array(["a", "b"]), 24000),
            r"dtype <U1; samples must be floating point .* or signed integer PCM",
        ),
        ((np.array([1 + 1j, 0j]), 24000), "dtype complex128"),
        ((np.array([True, False]), 24000), "dtype bool"),
        ((np.array([1, 2], np.uint8), 24000), "dtype uint8"),
        (
            (np.zeros((10, 2, 2), np.float32), 24000),
            r"shape \(10, 2, 2\); samples must be \[T\] or \[T, channels\]",
        ),
        ((np.array(0.5, np.float32), 24000), r"shape \(\); samples must be"),
        ((np.zeros((2, 4800), np.float32), 24000), r"looks channel-first .* pass audio\.T"),
        ((np.zeros(100, np.float32), 0), "sample rate must be a positive integer in Hz, got 0"),
        ((np.zeros(100, np.float32), -16000), "got -16000"),
        ((np.zeros(100, np.float32), 16000.5), "got 16000.5"),
        ((np.zeros(100, np.float32), "16000"), r"got '16000' \(str\)"),
        ((np.zeros(100, np.float32), True), r"got True \(bool\)"),
        ((16000, np.zeros(100, np.float32)), r"\(sample_rate, samples\); pass \(samples, sample_rate\)"),
        (([0.0, 0.1], 24000), r"must be a numpy array, got list; convert with np\.asarray"),
        ((np.zeros(100, np.float32), 24000, "mono"), r"must be \(samples, sample_rate\), got 3 items"),
        (12345, r"type int is not supported; accepted: a path"),
    ],
)
def test_bad_input_raises_audio_input_error(audio: object, message: str) -> None:
    with pytest.raises(AudioInputError, match=message) as info:
        load_reference_audio(audio)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_missing_or_non_audio_file(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="does not exist or is not a file"):
        load_reference_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioInputError, match="does not exist or is not a file"):
        load_reference_audio(tmp_path)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 10)
    with pytest.raises(AudioInputError, match=r"cannot read .*notes\.wav.* as audio .*accepted: a path"):
        load_reference_audio(text)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 24000)
    with pytest.raises(AudioInputError, match=r"empty\.wav' is empty"):
        load_reference_audio(empty)


def test_bad_target_rate() -> None:
    with pytest.raises(AudioInputError, match="target_sr must be a positive integer in Hz, got 0"):
        load_reference_audio((np.zeros(100, np.float32), 24000), target_sr=0)
