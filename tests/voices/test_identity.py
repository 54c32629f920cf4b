"""Model identity: a content hash of what a voice depends on, so a checkpoint with the same config but other
weights never reuses a voice; hashed once per checkpoint (memoised, and cached on disk by size/mtime)."""

from __future__ import annotations

import os
import shutil

import pytest

from qwen3tts_realtime.model.random_checkpoint import write_random_checkpoint
from qwen3tts_realtime.voices import identity
from qwen3tts_realtime.voices.identity import checkpoint_identity, model_identity, model_label


@pytest.fixture
def hashes(monkeypatch) -> list:
    calls = []
    real = identity.hash_checkpoint

    def counted(folder):
        calls.append(folder)
        return real(folder)

    monkeypatch.setattr(identity, "hash_checkpoint", counted)
    return calls


def test_same_config_other_weights_means_another_identity(tmp_path, golden):
    write_random_checkpoint(tmp_path / "seed0", "0.6B-Base", tiny=True, seed=0)
    write_random_checkpoint(tmp_path / "seed1", "0.6B-Base", tiny=True, seed=1)
    shutil.copytree(tmp_path / "seed0", tmp_path / "copy")
    config = [(tmp_path / name / "config.json").read_bytes() for name in ("seed0", "seed1")]
    assert config[0] == config[1]

    ids = {name: checkpoint_identity(tmp_path / name) for name in ("seed0", "seed1", "copy")}

    assert ids["seed0"] != ids["seed1"]
    assert ids["seed0"] == ids["copy"]  # content, not path
    assert checkpoint_identity(golden / "tiny" / "base") not in ids.values()


def test_identity_is_hashed_once_then_read_from_the_disk_cache(tmp_path, golden, hashes):
    model = tmp_path / "model"
    shutil.copytree(golden / "tiny" / "base", model)
    cache = tmp_path / "cache"

    first = checkpoint_identity(model, cache)
    assert checkpoint_identity(model, cache) == first and len(hashes) == 1  # a new process reads the cache

    weights = model / "speech_tokenizer" / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000_000))
    assert checkpoint_identity(model, cache) == first and len(hashes) == 2  # a touched file is rehashed


def test_identity_is_memoised_on_the_model(base_tts, tmp_path, hashes):
    base_tts.__dict__.pop("_voice_library_identity", None)
    assert model_identity(base_tts, tmp_path) == model_identity(base_tts, tmp_path)
    assert len(hashes) == 1


def test_labels_are_readable():
    hub = "/home/u/.cache/huggingface/hub/models--Qwen--Qwen3-TTS-12Hz-0.6B-Base/snapshots/abc123"
    assert model_label(hub) == "Qwen/Qwen3-TTS-12Hz-0.6B-Base"
    assert model_label("/models/my-voice-model") == "my-voice-model"
