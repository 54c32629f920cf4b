"""Fixtures of the voice-library tests: the golden tiny checkpoints, a private voice folder, work counters and
synthetic speech-like clips."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from qwen3tts_realtime import Qwen3TTS

REF_TEXT = "Hello there, this is the reference clip."


def speechlike(seconds: float, sample_rate: int = 24000, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """A voiced, syllable-modulated tone (140 Hz, 5 harmonics, 4 syllables a second) over a noise floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(2 * np.pi * 0.7 * t)) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4 * t))
    x = voiced * envelope
    x = level * x / np.abs(x).max() + 0.003 * rng.standard_normal(t.shape[0])
    return x.astype(np.float32)


def quiet(seconds: float, sample_rate: int = 24000, seed: int = 1) -> np.ndarray:
    """Near-silence: a -80 dBFS noise floor."""
    noise = np.random.default_rng(seed).standard_normal(round(seconds * sample_rate))
    return (1e-4 * noise).astype(np.float32)


@pytest.fixture(scope="session")
def base_tts(golden: Path) -> Qwen3TTS:
    return Qwen3TTS.from_pretrained(golden / "tiny" / "base")


@pytest.fixture(scope="session")
def custom_tts(golden: Path) -> Qwen3TTS:
    return Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")


@pytest.fixture(scope="session")
def design_tts(golden: Path) -> Qwen3TTS:
    return Qwen3TTS.from_pretrained(golden / "tiny" / "voice_design")


@pytest.fixture
def ref_wav(golden: Path) -> Path:
    return golden / "inputs" / "ref_24k.wav"


@pytest.fixture
def voice_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private library folder, also the default one (`QWEN3TTS_VOICE_DIR`): never the user cache."""
    folder = tmp_path / "voices"
    monkeypatch.setenv("QWEN3TTS_VOICE_DIR", str(folder))
    return folder


@pytest.fixture
def work(base_tts: Qwen3TTS, monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts the expensive calls of cloning: codec encodes and speaker embeddings."""
    calls: Counter = Counter()
    encode, embed = base_tts.codec.encode_samples, base_tts._embed

    def counted_encode(wav):
        calls["encode"] += 1
        return encode(wav)

    def counted_embed(wav):
        calls["embed"] += 1
        return embed(wav)

    monkeypatch.setattr(base_tts.codec, "encode_samples", counted_encode)
    monkeypatch.setattr(base_tts, "_embed", counted_embed)
    return calls
