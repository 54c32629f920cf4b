"""Speaker encoder and its mel front end (spec §5).

* The Slaney filterbank is the closed form of `librosa.filters.mel` (Slaney mel scale, area normalisation):
  checked entry by entry against the formula written out independently here, and against a few numbers
  printed by librosa itself.
* On the golden tiny Base checkpoint, `embed(ref_24k.wav)` matches the official `extract_speaker_embedding`
  within 1e-4 (the official float32 run differs from its own float64 re-run by 1.1e-5), in float32 and
  float64.
* Module keys and shapes are those of the published checkpoints; too-short audio is refused with a clear
  error.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from qwen3tts_realtime.errors import AudioInputError
from qwen3tts_realtime.model.config import Qwen3TTSConfig, load_json
from qwen3tts_realtime.model.mel import (
    slaney_hz_to_mel,
    slaney_mel_filterbank,
    slaney_mel_to_hz,
    speaker_mel,
)
from qwen3tts_realtime.model.speaker_encoder import SpeakerEncoder
from tests.golden import golden_cases, load_golden_output

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "qwen3tts_realtime" / "configs"
KEYS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "checkpoint-keys"


@pytest.fixture(scope="module")
def tiny_speaker_encoder(golden: Path) -> SpeakerEncoder:
    """The tiny Base checkpoint's speaker encoder, bf16 weights upcast to float32 (as the official run)."""
    config = Qwen3TTSConfig.from_dict(load_json(golden / "tiny" / "base" / "config.json"))
    prefix = "speaker_encoder."
    state = {
        k[len(prefix) :]: v.float()
        for k, v in load_file(str(golden / "tiny" / "base" / "model.safetensors")).items()
        if k.startswith(prefix)
    }
    encoder = SpeakerEncoder(config.speaker_encoder)
    encoder.load_state_dict(state, strict=True)
    return encoder.eval()


# --- Slaney filterbank ------------------------------------------------------------------------------------


def _formula_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """The filterbank straight from its definition, one band and one bin at a time, in Python floats."""

    def hz_to_mel(f: float) -> float:
        return f * 3 / 200 if f < 1000 else 15 + math.log(f / 1000) * 27 / math.log(6.4)

    def mel_to_hz(m: float) -> float:
        return m * 200 / 3 if m < 15 else 1000 * math.exp((m - 15) * math.log(6.4) / 27)

    lo, hi = hz_to_mel(fmin), hz_to_mel(fmax)
    edges = [mel_to_hz(lo + (hi - lo) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    out = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_fft // 2 + 1):
            f = k * sr / n_fft
            if left < f < right:
                tri = (f - left) / (centre - left) if f <= centre else (right - f) / (right - centre)
                out[m, k] = tri * 2 / (right - left)
    return out


def test_slaney_mel_scale_is_linear_below_1khz_and_logarithmic_above() -> None:
    hz = torch.tensor([0.0, 200 / 3, 500.0, 1000.0, 6400.0, 12000.0], dtype=torch.float64)
    mel = slaney_hz_to_mel(hz)
    assert mel[:4].tolist() == pytest.approx([0.0, 1.0, 7.5, 15.0], abs=1e-12)
    assert mel[4].item() == pytest.approx(15 + 27, abs=1e-12)  # 6.4 × 1 kHz is 27 mels above 1 kHz
    assert torch.allclose(slaney_mel_to_hz(mel), hz, rtol=1e-14, atol=1e-12)


def test_filterbank_matches_its_closed_form() -> None:
    fb = slaney_mel_filterbank(24000, 1024, 128, 0.0, 12000.0)
    assert fb.shape == (128, 513) and fb.dtype == torch.float32
    expected = _formula_filterbank(24000, 1024, 128, 0.0, 12000.0)
    assert np.abs(fb.double().numpy() - expected).max() <= 1e-7 * expected.max()
    # Zero outside each triangle: the DC bin (0 Hz = left edge of band 0) and Nyquist (12 kHz = right edge of
    # band 127) get no weight; every band has weight somewhere.
    assert (fb[:, 0] == 0).all() and (fb[:, -1] == 0).all()
    assert ((fb > 0).sum(dim=1) >= 1).all()
    assert (fb >= 0).all()


def test_filterbank_area_normalisation() -> None:
    """Each triangle is scaled to unit area over Hz (weights × 2 / band width). On a fine FFT grid (0.37 Hz
    bins) the Riemann sum of every band's weights times the bin width is that area; the 1024-point grid of
    the real front end samples the narrow low bands too coarsely for this check, but keeps their 2 / width
    peak."""
    sr = 24000
    fine = slaney_mel_filterbank(sr, 2**16, 128, 0.0, 12000.0).double()
    area = fine.sum(dim=1) * (sr / 2**16)
    assert torch.allclose(area, torch.ones(128, dtype=torch.float64), atol=2e-3)
    fb = slaney_mel_filterbank(sr, 1024, 128, 0.0, 12000.0).double()
    top_mel = slaney_hz_to_mel(torch.tensor(12000.0, dtype=torch.float64))
    edges = slaney_mel_to_hz(torch.linspace(0, top_mel.item(), 130, dtype=torch.float64))
    assert (fb.max(dim=1).values <= 2 / (edges[2:] - edges[:-2]) + 1e-9).all()


def test_filterbank_matches_librosa_reference_values() -> None:
    # Printed by librosa 0.11.0 (`pip install librosa` in a throwaway venv), float32 values as repr(float):
    #   fb = librosa.filters.mel(sr=24000, n_fft=1024, n_mels=128, fmin=0, fmax=12000)
    #   fb[0, 1:3], fb[1, 2:4], fb[40, 46:48], fb[127, 485:488], fb.sum(); nonzero bins of band 127: 485..511
    fb = slaney_mel_filterbank(24000, 1024, 128, 0.0, 12000.0)
    expected = {
        (0, 1): 0.03355042636394501,
        (0, 2): 0.00856908317655325,
        (1, 2): 0.029265886172652245,
        (1, 3): 0.012853624299168587,
        (40, 46): 0.019902607426047325,
        (40, 47): 0.02084614336490631,
        (127, 485): 3.851602741633542e-05,
        (127, 486): 0.00027299943030811846,
        (127, 487): 0.0005074829095974565,
    }
    for (m, k), value in expected.items():
        assert fb[m, k].item() == value, (m, k)
    assert torch.nonzero(fb[127]).flatten().tolist() == list(range(485, 512))
    assert fb.sum().item() == pytest.approx(5.459415435791016, rel=1e-6)


# --- mel front end ------------------------------------------------------------------------------------------


def test_speaker_mel_frames_and_dtype() -> None:
    wav = torch.randn(2, 24000 + 100, generator=torch.Generator().manual_seed(0)) * 0.1
    mel = speaker_mel(wav)
    assert mel.shape == (2, (24000 + 100) // 256, 128) and mel.dtype == torch.float32
    mel64 = speaker_mel(wav.double())
    assert mel64.dtype == torch.float64
    assert torch.allclose(mel64.float(), mel, atol=1e-4)
    # Silence sits at the log floor, log(1e-5) (the 1e-9 inside the magnitude is below it).
    assert torch.allclose(speaker_mel(torch.zeros(1, 2048)), torch.full((1, 8, 128), math.log(1e-5)))


# --- speaker encoder -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["0.6B-Base", "1.7B-Base"])
def test_state_dict_matches_the_published_checkpoint(model: str) -> None:
    config = Qwen3TTSConfig.from_dict(load_json(CONFIGS / model / "config.json"))
    keys_file = KEYS / f"model_{model}.keys.tsv"
    if not keys_file.exists():
        pytest.skip(f"{keys_file} not found")
    prefix = "speaker_encoder."
    expected = {}
    for line in keys_file.read_text().splitlines():
        key, shape = line.split("\t")
        if key.startswith(prefix):
            expected[key[len(prefix) :]] = tuple(int(x) for x in shape.strip("()").split(",") if x.strip())
    with torch.device("meta"):
        encoder = SpeakerEncoder(config.speaker_encoder)
    assert {k: tuple(v.shape) for k, v in encoder.state_dict().items()} == expected
    assert len(expected) == 76


def _golden_embedding_case() -> dict:
    cases = [c for c in golden_cases("speaker_embedding") if c["name"] == "speaker_embedding_ref_24k"]
    if not cases:
        pytest.skip("golden case speaker_embedding_ref_24k not found")
    return cases[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_embedding_matches_official(
    golden: Path, tiny_speaker_encoder: SpeakerEncoder, dtype: torch.dtype
) -> None:
    case = _golden_embedding_case()
    wav, sr = sf.read(golden / case["call"]["audio"], dtype="float32")
    assert sr == case["call"]["sample_rate"] == 24000
    expected = load_golden_output(case)["embedding"]
    encoder = copy.deepcopy(tiny_speaker_encoder).to(dtype)
    embedding = encoder.embed(torch.from_numpy(wav))
    assert embedding.shape == expected.shape == (64,) and embedding.dtype == dtype
    assert (embedding.double() - expected.double()).abs().max().item() <= 1e-4


def test_forward_is_batched(tiny_speaker_encoder: SpeakerEncoder) -> None:
    wav = torch.randn(2, 4000, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        batch = tiny_speaker_encoder(speaker_mel(wav))
        single = torch.stack([tiny_speaker_encoder.embed(w) for w in wav])
    assert batch.shape == (2, 64)
    assert torch.allclose(batch, single, atol=1e-5)


def test_too_short_or_not_mono_audio_is_refused(tiny_speaker_encoder: SpeakerEncoder) -> None:
    assert tiny_speaker_encoder.min_num_frames == 5  # k3 dilation 4 reflect-pads 4 frames per side
    tiny_speaker_encoder.embed(torch.zeros(1280))
    with pytest.raises(AudioInputError, match="1279 samples is too short.*at least 1280 samples"):
        tiny_speaker_encoder.embed(torch.zeros(1279))
    with pytest.raises(AudioInputError, match=r"shape \[T\], got shape \(1, 4000\)"):
        tiny_speaker_encoder.embed(torch.zeros(1, 4000))
