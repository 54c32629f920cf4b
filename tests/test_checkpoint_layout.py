"""Full-size configs build modules whose weight keys and shapes are exactly the published checkpoints'.

Built on the meta device (no memory), compared with the key/shape lists of the spec
(`../shared/reference/checkpoint-keys/*.tsv`, reconstructed byte-exactly from the published files).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from qwen3tts_realtime.model.codec_decoder import CodecDecoder
from qwen3tts_realtime.model.codec_encoder import CodecEncoder
from qwen3tts_realtime.model.config import Qwen3TTSConfig, SpeechTokenizerConfig
from qwen3tts_realtime.model.random_checkpoint import _package_file, packaged_config
from qwen3tts_realtime.model.speaker_encoder import SpeakerEncoder
from qwen3tts_realtime.model.talker import Talker

KEYS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "checkpoint-keys"


def published(name: str) -> dict[str, tuple[int, ...]]:
    path = KEYS / name
    if not path.exists():
        pytest.skip(f"{path} not found")
    out = {}
    for line in path.read_text().splitlines():
        key, shape = line.split("\t")
        out[key] = tuple(int(x) for x in shape.strip("()").split(",") if x.strip())
    return out


def shapes(module: torch.nn.Module, prefix: str) -> dict[str, tuple[int, ...]]:
    return {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}


def model_shapes(config_name: str) -> dict[str, tuple[int, ...]]:
    config = Qwen3TTSConfig.from_dict(packaged_config(config_name))
    with torch.device("meta"):
        out = shapes(Talker(config.talker), "talker.")
        if config.speaker_encoder is not None:
            out |= shapes(SpeakerEncoder(config.speaker_encoder), "speaker_encoder.")
    return out


@pytest.mark.parametrize(
    ("config_name", "keys_file", "drop_speaker_encoder"),
    [
        ("0.6B-Base", "model_0.6B-Base.keys.tsv", False),
        ("1.7B-Base", "model_1.7B-Base.keys.tsv", False),
        ("0.6B-CustomVoice", "model_0.6B-Base.keys.tsv", True),
        ("1.7B-CustomVoice", "model_1.7B-Base.keys.tsv", True),
        ("1.7B-VoiceDesign", "model_1.7B-Base.keys.tsv", True),
    ],
)
def test_model_keys_and_shapes_match_the_published_checkpoint(config_name, keys_file, drop_speaker_encoder):
    expected = published(keys_file)
    if drop_speaker_encoder:
        expected = {k: v for k, v in expected.items() if not k.startswith("speaker_encoder.")}

    ours = model_shapes(config_name)

    assert ours == expected
    assert sum(math.prod(s) for s in ours.values()) == sum(math.prod(s) for s in expected.values())


def test_published_tensor_counts():
    assert len(model_shapes("0.6B-Base")) == 478
    assert len(model_shapes("0.6B-CustomVoice")) == 402
    assert len(model_shapes("1.7B-Base")) == 480
    assert len(model_shapes("1.7B-VoiceDesign")) == 404


def test_speech_tokenizer_keys_and_shapes_match_the_published_checkpoint():
    import json

    expected = published("speech_tokenizer.keys.tsv")
    config = SpeechTokenizerConfig.from_dict(json.loads(_package_file("speech_tokenizer", "config.json")))
    with torch.device("meta"):
        ours = shapes(CodecEncoder(config), "encoder.") | shapes(CodecDecoder(config.decoder), "decoder.")

    assert ours == expected
    assert len(ours) == 496
    assert sum(math.prod(s) for s in ours.values()) == 170_557_441
