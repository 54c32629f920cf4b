"""The exception tree of qwen3tts-realtime. Integrations map these at their edge.

    Qwen3TTSError
    ├── InvalidInputError (also ValueError)   bad text, audio, codes, language, speaker, voice or option
    │   └── AudioInputError                     reference audio unreadable, empty, silent, NaN/inf, too short
    ├── CheckpointError (also ValueError)     not a Qwen3-TTS 12 Hz checkpoint, missing/unexpected weight key
    ├── UnsupportedError (also ValueError)    asked of a checkpoint type that cannot do it (e.g. clone on CustomVoice)
    └── GenerationError (also RuntimeError)   one stream's generation failed inside the engine (the others go on)

Every message names the offending value, the accepted values and, where there is one, the fix.
"""

from __future__ import annotations

__all__ = [
    "Qwen3TTSError", "InvalidInputError", "AudioInputError", "CheckpointError", "UnsupportedError", "GenerationError",
]


class Qwen3TTSError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidInputError(Qwen3TTSError, ValueError):
    """A request argument is wrong; the message names it and the accepted values."""


class AudioInputError(InvalidInputError):
    """Reference audio that cannot be used."""


class CheckpointError(Qwen3TTSError, ValueError):
    """The checkpoint folder or its weights do not match a Qwen3-TTS 12 Hz model."""


class UnsupportedError(Qwen3TTSError, ValueError):
    """The loaded checkpoint type cannot do what was asked."""


class GenerationError(Qwen3TTSError, RuntimeError):
    """A stream's generation failed (e.g. its logits turned non-finite); other streams are not affected."""
