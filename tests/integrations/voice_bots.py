"""What the voice-bot example tests share: loading an example script, the caller's speech, the conversation."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import soundfile as sf

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TRANSCRIPT = "What is the capital of France?"  # what the stand-in speech-to-text hears
REPLY = "The capital of France is Paris."  # what the stand-in LLM answers


def example(name: str) -> ModuleType:
    """`examples/<name>.py` as a module (registered, so its dataclasses can look their module up)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def caller_speech(golden: Path) -> np.ndarray:
    """The caller's speech, int16 at 16 kHz: the golden clip from 1.2 s, where Silero hears one unbroken stretch
    (from its start it hears several, which a turn may or may not join)."""
    speech, rate = sf.read(golden / "inputs" / "ref_16k.wav", dtype="float32")
    assert rate == 16000
    return (speech[int(1.2 * rate) :] * 32767).astype(np.int16)
