"""`random-checkpoint` writes a model in the official layout that loads back, and loading stays strict."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from qwen3tts_realtime import CheckpointError, Qwen3TTS
from qwen3tts_realtime.cli import main
from qwen3tts_realtime.model.random_checkpoint import write_random_checkpoint


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-base")
    assert main(["random-checkpoint", str(folder), "--config", "0.6B-Base", "--tiny"]) == 0
    return folder


def test_random_tiny_base_round_trips(tiny_base):
    tts = Qwen3TTS.from_pretrained(tiny_base)
    assert (tts.model_type, tts.model_size) == ("base", "0b6")

    rng = np.random.default_rng(0)
    codes = tts.codec.encode((0.1 * rng.standard_normal(24000).astype(np.float32), 24000))
    assert codes.shape == (13, 16) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < 2048
    audio = tts.codec.decode(codes)
    assert audio.shape == (13 * 1920,) and audio.dtype == np.float32
    assert tts.speaker_embedding((rng.standard_normal(24000).astype(np.float32), 24000)).shape == (64,)


@pytest.mark.parametrize("config_name", ["0.6B-CustomVoice", "1.7B-CustomVoice", "1.7B-VoiceDesign", "1.7B-Base"])
def test_every_published_type_has_a_tiny_random_checkpoint(tmp_path, config_name):
    write_random_checkpoint(tmp_path, config_name, tiny=True)
    tts = Qwen3TTS.from_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert tts.model_type == cfg["tts_model_type"] and tts.model_size == cfg["tts_model_size"]
    assert tts.speakers == list(cfg["talker_config"]["spk_id"])


def test_fallback_tokenizer_keeps_the_template_ids(tiny_base):
    tts = Qwen3TTS.from_pretrained(tiny_base)
    ids = tts.tokenizer.assistant_ids("Hi").tolist()
    assert ids[:3] == [151644, 77091, 198]
    assert ids[-5:] == [151645, 198, 151644, 77091, 198]


def test_a_removed_tensor_fails_loudly(tiny_base, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_base, broken)
    tensors = load_file(str(broken / "model.safetensors"))
    del tensors["talker.model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, str(broken / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"talker\.model\.layers\.1\.mlp\.up_proj\.weight"):
        Qwen3TTS.from_pretrained(broken)


def test_an_unexpected_tensor_fails_loudly(tiny_base, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_base, broken)
    tensors = load_file(str(broken / "speech_tokenizer" / "model.safetensors"))
    tensors["decoder.extra.weight"] = torch.zeros(3)
    save_file(tensors, str(broken / "speech_tokenizer" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"decoder\.extra\.weight"):
        Qwen3TTS.from_pretrained(broken)


def test_hub_ids_resolve_through_the_hub_cache(tiny_base, tmp_path, monkeypatch):
    """A Hugging Face id goes through `snapshot_download`; here it is faked to return the local folder."""
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append(repo_id)
        return str(tiny_base)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    tts = Qwen3TTS.from_pretrained("Qwen/Qwen3-TTS-12Hz-0.6B-Base")
    assert calls == ["Qwen/Qwen3-TTS-12Hz-0.6B-Base"]
    assert tts.model_type == "base"
