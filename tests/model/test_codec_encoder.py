"""Speech-tokenizer encoder (spec §6.1): reference waveform → codes [ceil(T / 1920), 16].

* Golden: on the tiny Base checkpoint's speech tokenizer, the codes of `ref_24k.wav` (40 frames) and of
  `ref_16k.wav` resampled to 24 kHz like the official librosa `soxr_hq` (33 frames) equal the official
  `Qwen3TTSTokenizer.encode` codes exactly, in float32 and float64.
* The module holds only Mimi's encoder half, with the checkpoint's key names and shapes (tiny and published).
* Frame count is ceil(T / 1920) (the official trim), attention is SDPA, codes are causal in whole frames, and
  the codebook centroid cache follows new weights.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from qwen3tts_realtime.errors import AudioInputError
from qwen3tts_realtime.model.audio_input import load_reference_audio
from qwen3tts_realtime.model.codec_encoder import CodecEncoder
from qwen3tts_realtime.model.config import SpeechTokenizerConfig, load_json
from tests.golden import golden_cases, load_golden_output

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "qwen3tts_realtime" / "configs"
KEYS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "checkpoint-keys"


def _tiny_state(golden: Path) -> dict[str, torch.Tensor]:
    prefix = "encoder."
    state = load_file(str(golden / "tiny" / "base" / "speech_tokenizer" / "model.safetensors"))
    return {k[len(prefix) :]: v.float() for k, v in state.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def tiny_codec_encoder(golden: Path) -> CodecEncoder:
    """The tiny Base checkpoint's speech-tokenizer encoder (float32, as the official run)."""
    config = SpeechTokenizerConfig.from_dict(
        load_json(golden / "tiny" / "base" / "speech_tokenizer" / "config.json")
    )
    encoder = CodecEncoder(config)
    encoder.load_state_dict(_tiny_state(golden), strict=True)
    return encoder.eval()


def test_state_dict_matches_the_published_checkpoint() -> None:
    keys_file = KEYS / "speech_tokenizer.keys.tsv"
    if not keys_file.exists():
        pytest.skip(f"{keys_file} not found")
    expected = {}
    for line in keys_file.read_text().splitlines():
        key, shape = line.split("\t")
        if key.startswith("encoder."):
            expected[key[len("encoder.") :]] = tuple(
                int(x) for x in shape.strip("()").split(",") if x.strip()
            )
    config = SpeechTokenizerConfig.from_dict(load_json(CONFIGS / "speech_tokenizer" / "config.json"))
    encoder = CodecEncoder(config)
    assert {k: tuple(v.shape) for k, v in encoder.state_dict().items()} == expected
    assert len(expected) == 225
    # Only the encoder half exists: no decoder, decoder_transformer or upsample.
    assert {name for name, _ in encoder.named_children()} == {
        "encoder",
        "encoder_transformer",
        "downsample",
        "quantizer",
    }


def test_state_dict_matches_the_tiny_checkpoint(golden: Path, tiny_codec_encoder: CodecEncoder) -> None:
    state = _tiny_state(golden)
    assert set(tiny_codec_encoder.state_dict()) == set(state)
    assert all(
        k.split(".")[0] in {"encoder", "encoder_transformer", "downsample", "quantizer"} for k in state
    )


def test_attention_is_sdpa(tiny_codec_encoder: CodecEncoder) -> None:
    """The official run used the transformers default, SDPA (with a full causal mask): transformers 4.57 has a
    class per implementation, 5.x one class that dispatches on the config."""
    attention = tiny_codec_encoder.encoder_transformer.layers[0].self_attn
    assert type(attention).__name__ in ("MimiSdpaAttention", "MimiAttention")
    assert attention.config._attn_implementation == "sdpa"


def _golden_case(name: str) -> dict:
    cases = [c for c in golden_cases("codec_encode") if c["name"] == name]
    if not cases:
        pytest.skip(f"golden case {name} not found")
    return cases[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("name", "frames"), [("codec_encode_ref_24k", 40), ("codec_encode_ref_16k", 33)])
def test_codes_match_official(
    golden: Path, tiny_codec_encoder: CodecEncoder, name: str, frames: int, dtype: torch.dtype
) -> None:
    case = _golden_case(name)
    path = golden / case["call"]["audio"]
    assert sf.info(str(path)).samplerate == case["call"]["sample_rate"]
    wav = load_reference_audio(path, 24000)  # the 16 kHz clip goes through soxr HQ like librosa's soxr_hq
    expected = load_golden_output(case)["codes"]
    encoder = copy.deepcopy(tiny_codec_encoder).to(dtype)
    codes = encoder.encode(torch.from_numpy(wav))
    assert codes.dtype == torch.int64
    assert codes.shape == expected.shape == (frames, 16)
    assert torch.equal(codes, expected)


@pytest.mark.parametrize(("num_samples", "frames"), [(24000, 13), (9601, 6), (9600, 5), (100, 1), (1, 1)])
def test_frame_count_is_ceil_of_samples_over_1920(
    tiny_codec_encoder: CodecEncoder, num_samples: int, frames: int
) -> None:
    wav = torch.randn(num_samples, generator=torch.Generator().manual_seed(num_samples)) * 0.1
    codes = tiny_codec_encoder.encode(wav)
    assert codes.shape == (frames, 16)
    assert tiny_codec_encoder.num_frames(num_samples) == frames
    assert ((codes >= 0) & (codes < 2048)).all()


def test_codes_are_causal_in_whole_frames(tiny_codec_encoder: CodecEncoder) -> None:
    """Audio after a frame boundary does not change the codes before it: every convolution is causal, the
    transformer attends only backwards, and frame k's receptive field ends at sample 1920 · (k + 1)."""
    wav = torch.randn(1920 * 6, generator=torch.Generator().manual_seed(3)) * 0.1
    longer = torch.cat([wav, torch.randn(1920 * 2, generator=torch.Generator().manual_seed(4)) * 0.1])
    assert torch.equal(tiny_codec_encoder.encode(wav), tiny_codec_encoder.encode(longer)[:6])


def test_input_is_cast_to_module_dtype(tiny_codec_encoder: CodecEncoder) -> None:
    wav = torch.randn(5000, generator=torch.Generator().manual_seed(5)) * 0.1
    assert torch.equal(tiny_codec_encoder.encode(wav.double()), tiny_codec_encoder.encode(wav))


def test_new_weights_replace_the_cached_centroids(golden: Path, tiny_codec_encoder: CodecEncoder) -> None:
    """Mimi caches each codebook's centroids on first use; loading permuted semantic centroids after an
    encode must permute the semantic codes (group 0) and leave the acoustic ones (separate RVQ) unchanged."""
    encoder = copy.deepcopy(tiny_codec_encoder)
    wav = torch.randn(9600, generator=torch.Generator().manual_seed(6)) * 0.1
    before = encoder.encode(wav)
    state = _tiny_state(golden)
    perm = torch.randperm(2048, generator=torch.Generator().manual_seed(7))
    prefix = "quantizer.semantic_residual_vector_quantizer.layers.0.codebook."
    for name in ("embed_sum", "cluster_usage"):
        state[prefix + name] = state[prefix + name][perm]
    encoder.load_state_dict(state, strict=True)
    after = encoder.encode(wav)
    assert torch.equal(perm[after[:, 0]], before[:, 0])
    assert torch.equal(after[:, 1:], before[:, 1:])


def test_not_mono_or_empty_audio_is_refused(tiny_codec_encoder: CodecEncoder) -> None:
    with pytest.raises(AudioInputError, match=r"shape \[T\], got shape \(1, 100\)"):
        tiny_codec_encoder.encode(torch.zeros(1, 100))
    with pytest.raises(AudioInputError, match=r"got shape \(0,\)"):
        tiny_codec_encoder.encode(torch.zeros(0))
