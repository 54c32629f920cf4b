"""Qwen3-TTS for Pipecat: `Qwen3TTSService`, an in-process streaming TTS service.

    from qwen3tts_realtime.pipecat import Qwen3TTSService
    tts = Qwen3TTSService(model="Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice",
                          settings=Qwen3TTSService.Settings(voice="ryan", language=Language.EN))

Needs the `pipecat` extra: pip install "qwen3tts-realtime[pipecat]".
"""

from __future__ import annotations

try:
    import pipecat.services.tts_service  # noqa: F401
except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        f"qwen3tts_realtime.pipecat needs pipecat-ai ({e}); install it with: "
        'pip install "qwen3tts-realtime[pipecat]"',
        name=e.name,
    ) from e

from .integrations.pipecat import Qwen3TTSService, Qwen3TTSSettings, model_language

__all__ = ["Qwen3TTSService", "Qwen3TTSSettings", "model_language"]
