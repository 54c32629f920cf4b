"""qwen3tts-realtime: Qwen3-TTS (12 Hz) as an in-process, real-time streaming TTS engine for voice agents.

Public surface: `Qwen3TTS`, `SamplingParams`, `VoiceProfile`, `GenerationResult`, `Stream` (with `AudioChunk`,
`StreamState`), the `TTSEngine` protocol the integrations use, `VoiceLibrary` (with `ReferencePreprocessing`) and
the exception tree.
Exports load lazily, so `qwen3tts_realtime.audio` (numpy/soxr only) never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Qwen3TTS": ".tts",
    "GenerationResult": ".tts",
    "SamplingParams": ".engine.sampling",
    "VoiceProfile": ".voices.profile",
    "VoiceLibrary": ".voices.library",
    "ReferencePreprocessing": ".voices.preprocess",
    "Qwen3TTSError": ".errors",
    "InvalidInputError": ".errors",
    "AudioInputError": ".errors",
    "CheckpointError": ".errors",
    "UnsupportedError": ".errors",
    "GenerationError": ".errors",
    "Stream": ".engine.stream",
    "StreamState": ".engine.stream",
    "AudioChunk": ".engine.stream",
    "TTSEngine": ".engine.protocol",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .engine.protocol import TTSEngine  # noqa: F401
    from .engine.sampling import SamplingParams  # noqa: F401
    from .engine.stream import AudioChunk, Stream, StreamState  # noqa: F401
    from .errors import (  # noqa: F401
        AudioInputError,
        CheckpointError,
        GenerationError,
        InvalidInputError,
        Qwen3TTSError,
        UnsupportedError,
    )
    from .tts import GenerationResult, Qwen3TTS  # noqa: F401
    from .voices.library import VoiceLibrary  # noqa: F401
    from .voices.preprocess import ReferencePreprocessing  # noqa: F401
    from .voices.profile import VoiceProfile  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'qwen3tts_realtime' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
