"""Reference preparation on synthetic clips (tone + silence + noise): silence trimmed, long clips cut at a
pause, level normalised without clipping, the same samples every time; and every unusable clip refused with a
`ValueError` that says what is wrong and what to do."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from qwen3tts_realtime import ReferencePreprocessing, VoiceLibrary
from qwen3tts_realtime.model.audio_input import load_reference_audio
from qwen3tts_realtime.voices.preprocess import prepare_reference

from .conftest import quiet, speechlike

SR = 24000


def _db(x: float) -> float:
    return 20 * np.log10(x)


def test_edge_silence_is_trimmed_keeping_50_ms():
    clip = np.concatenate([quiet(0.5), speechlike(3.0), quiet(0.7)])

    prepared = prepare_reference((clip, SR), ReferencePreprocessing(normalize=False))

    assert prepared.seconds == pytest.approx(3.0 + 2 * 0.05, abs=0.011)
    assert prepared.trimmed_seconds == pytest.approx(1.2 - 0.1, abs=0.011)
    assert prepared.cut_seconds == 0 and prepared.gain_db == 0


def test_a_long_clip_is_cut_at_the_pause_before_15_s():
    clip = np.concatenate([speechlike(13.0, seed=2), quiet(0.6), speechlike(6.4, seed=3)])  # pause at 13 s

    prepared = prepare_reference((clip, SR), ReferencePreprocessing(normalize=False))

    assert 13.0 <= prepared.seconds <= 13.05 + 1e-9  # the speech before the pause, + at most 50 ms of it
    assert prepared.cut_seconds == pytest.approx(20.0 - prepared.seconds)
    np.testing.assert_array_equal(prepared.samples, clip[: prepared.samples.shape[0]])


def test_without_a_pause_the_cut_is_at_the_quietest_moment_within_the_limit():
    prepared = prepare_reference((speechlike(20.0), SR), ReferencePreprocessing(trim_silence=False))
    assert 12.0 <= prepared.seconds <= 15.0


def test_normalisation_reaches_minus_20_dbfs_rms_and_never_clips():
    soft = prepare_reference((0.01 * speechlike(3.0), SR), ReferencePreprocessing())
    rms = float(np.sqrt(np.mean(soft.samples.astype(np.float64) ** 2)))
    assert _db(rms) == pytest.approx(-20.0, abs=0.01) and soft.gain_db > 30

    spiky = speechlike(3.0, level=0.05)
    spiky[SR] = 0.99  # a click: lifting the RMS to -20 dBFS would clip it
    capped = prepare_reference((spiky, SR), ReferencePreprocessing())
    assert _db(np.abs(capped.samples).max()) <= -1.0 + 1e-4
    assert _db(np.sqrt(np.mean(capped.samples.astype(np.float64) ** 2))) < -20.0


def test_preparation_is_deterministic_and_switchable(tmp_path):
    clip = np.concatenate([quiet(0.3), speechlike(18.0), quiet(0.3)])
    path = tmp_path / "clip.flac"
    sf.write(path, np.stack([clip, 0.5 * clip], axis=1), SR)  # stereo FLAC: any soundfile format, downmixed

    first = prepare_reference(path, ReferencePreprocessing())
    second = prepare_reference(path, ReferencePreprocessing())
    untouched = prepare_reference(path, ReferencePreprocessing.disabled())

    assert first.samples.tobytes() == second.samples.tobytes()
    assert first.samples.dtype == np.float32 and first.seconds <= 15.0
    np.testing.assert_array_equal(untouched.samples, load_reference_audio(path, SR))


def test_other_sample_rates_are_resampled_to_24_khz():
    clip_16k = speechlike(2.0, sample_rate=16000)
    prepared = prepare_reference((clip_16k, 16000), ReferencePreprocessing.disabled())
    np.testing.assert_array_equal(prepared.samples, load_reference_audio((clip_16k, 16000), SR))
    assert prepared.samples.shape[0] == 48000


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        ("not-audio.txt", "cannot read .* as audio"),
        ((np.zeros(0, np.float32), SR), "is empty"),
        ((np.zeros(3 * SR, np.float32), SR), "is silent \\(digital silence\\)"),
        ((quiet(3.0), SR), "is silent \\(peak -6\\d dBFS\\)"),
        ((np.concatenate([quiet(1.0), speechlike(0.5), quiet(1.0)]), SR), "0.60 s of sound after trimming"),
        ((speechlike(61.0), SR), "61.0 s long; the longest accepted is 60 s"),
        ((np.full(SR, np.nan, np.float32), SR), "NaN or infinite"),
        ((speechlike(2.0, sample_rate=4000), 4000), "sample rate of 4000 Hz; at least 8000 Hz"),
        ((speechlike(2.0), "24000"), "sample rate must be a positive integer"),
    ],
    ids=["not audio", "empty", "silence", "near silence", "short", "long", "nan", "4 kHz", "bad rate"],
)
def test_unusable_clips_are_refused_with_a_clear_value_error(audio, message, tmp_path):
    if audio == "not-audio.txt":
        audio = tmp_path / audio
        audio.write_text("this is not audio")
    with pytest.raises(ValueError, match=message):
        prepare_reference(audio, ReferencePreprocessing())


def test_the_library_refuses_unusable_clips_before_any_model_work(base_tts, voice_dir, work):
    lib = VoiceLibrary(base_tts, voice_dir)
    with pytest.raises(ValueError, match="is silent"):
        lib.clone("anna", (np.zeros(2 * SR, np.float32), SR), ref_text="Hi.")
    with pytest.raises(ValueError, match="at least 1 s"):
        lib.clone("anna", (speechlike(0.5), SR), x_vector_only=True)
    assert work["encode"] == work["embed"] == 0 and lib.list() == []


def test_options_are_validated():
    for bad in (0.5, 61, "15", True):
        with pytest.raises(ValueError, match="max_seconds"):
            ReferencePreprocessing(max_seconds=bad)
