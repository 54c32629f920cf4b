"""qwen3tts-realtime in LiveKit's plugin namespace: `from livekit.plugins import qwen3tts`.

The same objects as `qwen3tts_realtime.livekit` (see its docstring); importing either registers the plugin,
so `python -m livekit.agents download-files` fetches the model's weights. `livekit` and `livekit.plugins`
are namespace packages shared with livekit-agents: they have no `__init__.py` here.
"""

from qwen3tts_realtime.livekit import (
    DEFAULT_MODEL,
    MODEL_ENV,
    MODEL_LANGUAGES,
    TTS,
    ChunkedStream,
    Qwen3Language,
    Qwen3TTSPlugin,
    SynthesizeStream,
    TTSOptions,
    VoiceLibraryLike,
    __version__,
    default_model,
    download_files,
    load_engine,
    model_language,
)

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_ENV",
    "MODEL_LANGUAGES",
    "ChunkedStream",
    "Qwen3Language",
    "Qwen3TTSPlugin",
    "SynthesizeStream",
    "TTS",
    "TTSOptions",
    "VoiceLibraryLike",
    "__version__",
    "default_model",
    "download_files",
    "load_engine",
    "model_language",
]
