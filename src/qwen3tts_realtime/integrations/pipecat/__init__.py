"""Pipecat integration; import it as `qwen3tts_realtime.pipecat`."""

from __future__ import annotations

from ._service import Qwen3TTSService
from ._settings import Qwen3TTSSettings, model_language

__all__ = ["Qwen3TTSService", "Qwen3TTSSettings", "model_language"]
