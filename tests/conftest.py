"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden import GOLDEN


@pytest.fixture(scope="session")
def golden() -> Path:
    """The golden bundle folder; tests that need it skip when it is absent."""
    if not (GOLDEN / "cases.json").exists():
        pytest.skip(f"golden bundle not found at {GOLDEN}")
    return GOLDEN


@pytest.fixture(scope="module")
def golden_models(golden: Path):
    """`get(kind, dtype="float32")`: the golden tiny checkpoint of that kind, loaded once per test module."""
    from qwen3tts_realtime import Qwen3TTS

    loaded: dict[tuple[str, str], Qwen3TTS] = {}

    def get(kind: str, dtype: str = "float32") -> Qwen3TTS:
        if (kind, dtype) not in loaded:
            loaded[kind, dtype] = Qwen3TTS.from_pretrained(golden / "tiny" / kind, dtype=dtype)
        return loaded[kind, dtype]

    yield get
    for tts in loaded.values():
        tts.close()
