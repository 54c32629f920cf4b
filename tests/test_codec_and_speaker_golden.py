"""`tts.codec.encode/decode` and `tts.speaker_embedding` equal the official implementation (golden cases)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from qwen3tts_realtime import Qwen3TTS
from tests.golden import golden_cases, load_golden_output

AUDIO_TOL = 2e-4
EMBEDDING_TOL = 1e-4


@pytest.fixture(scope="module")
def tts(golden) -> Qwen3TTS:
    return Qwen3TTS.from_pretrained(golden / "tiny" / "base", device="cpu", dtype="float32")


def test_what_the_checkpoint_is(tts):
    assert (tts.model_type, tts.model_size) == ("base", "0b6")
    assert tts.languages[0] == "auto" and "english" in tts.languages and "chinese" in tts.languages
    assert tts.speakers == []
    assert tts.sample_rate == 24000


@pytest.mark.parametrize("case", golden_cases("codec_encode"), ids=lambda c: c["name"])
def test_encode_from_a_path_matches_official(tts, golden, case):
    codes = tts.codec.encode(str(golden / case["call"]["audio"]))
    assert codes.dtype == torch.int64
    assert torch.equal(codes, load_golden_output(case)["codes"])


@pytest.mark.parametrize("case", golden_cases("codec_encode"), ids=lambda c: c["name"])
def test_encode_from_samples_matches_official(tts, golden, case):
    samples, sample_rate = sf.read(golden / case["call"]["audio"], dtype="float32")
    codes = tts.codec.encode((samples, sample_rate))
    assert torch.equal(codes, load_golden_output(case)["codes"])


@pytest.mark.parametrize("case", golden_cases("codec_decode"), ids=lambda c: c["name"])
def test_decode_is_the_exact_full_decode(tts, case):
    expected = load_golden_output(case)
    audio = tts.codec.decode(expected["codes"])
    assert audio.dtype == np.float32
    assert audio.shape == (expected["codes"].shape[0] * 1920,)
    assert np.abs(audio - expected["audio"].numpy()).max() <= AUDIO_TOL


def test_long_decode_differs_from_official_windowing_only_past_300_frames(tts):
    """The official wrapper decodes in 300-frame windows with 25 frames of context, which is not exact;
    ours is. Both agree on the first window."""
    case = next(c for c in golden_cases("codec_decode") if c["name"] == "codec_decode_long")
    expected = load_golden_output(case)
    audio = tts.codec.decode(expected["codes"])
    chunked = expected["audio_official_chunked"].numpy()
    first = 300 * 1920
    assert np.abs(audio[:first] - chunked[:first]).max() <= AUDIO_TOL
    assert np.abs(audio[first:] - chunked[first:]).max() > 1e-2


@pytest.mark.parametrize("case", golden_cases("speaker_embedding"), ids=lambda c: c["name"])
def test_speaker_embedding_matches_official(tts, golden, case):
    emb = tts.speaker_embedding(str(golden / case["call"]["audio"]))
    expected = load_golden_output(case)["embedding"]
    assert emb.shape == expected.shape == (64,)
    assert (emb - expected).abs().max() <= EMBEDDING_TOL


def test_float64_keeps_codes_and_embedding(golden):
    tts64 = Qwen3TTS.from_pretrained(golden / "tiny" / "base", dtype="float64")
    for case in golden_cases("codec_encode"):
        assert torch.equal(tts64.codec.encode(str(golden / case["call"]["audio"])), load_golden_output(case)["codes"])
    case = golden_cases("speaker_embedding")[0]
    emb = tts64.speaker_embedding(str(golden / case["call"]["audio"]))
    assert (emb - load_golden_output(case)["embedding"]).abs().max() <= EMBEDDING_TOL
