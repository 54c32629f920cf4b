"""`ServerState`: what every route of one app shares (one per app, on `app.state.server`).

The engine is the model's own (`tts.engine`): every request of every route goes through its one batching
step loop. Nothing here imports FastAPI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._config import ServerConfig
from ._formats import available_formats
from ._limits import Admission
from ._metrics import Metrics
from ._requests import RequestRules
from ._voices import VoiceResolver

if TYPE_CHECKING:
    from ..tts import Qwen3TTS
    from ..voices.library import VoiceLibrary

__all__ = ["ServerState"]

log = logging.getLogger("qwen3tts_realtime.server")


@dataclass
class ServerState:
    tts: Qwen3TTS
    config: ServerConfig
    library: VoiceLibrary
    rules: RequestRules
    admission: Admission
    metrics: Metrics
    voices: VoiceResolver
    ready: bool = False
    owns_model: bool = False  # loaded by `serve()`: closed with the app

    @classmethod
    def create(cls, tts: Qwen3TTS, config: ServerConfig, *, owns_model: bool) -> ServerState:
        from ..voices.library import VoiceLibrary

        tts.max_streams = config.max_streams  # read when the engine starts
        if tts.engine.max_streams != config.max_streams:
            log.warning("the model's engine already runs with max_streams=%d; --max-streams %d is not "
                        "applied", tts.engine.max_streams, config.max_streams)
        formats = available_formats()
        default = config.default_response_format or ("mp3" if "mp3" in formats else "wav")
        if default not in formats:
            from ..errors import InvalidInputError

            raise InvalidInputError(
                f"default_response_format={default!r} is not available here; accepted: {', '.join(formats)}"
            )
        rules = RequestRules(
            model_names=config.model_names,
            languages=tuple(tts.languages),
            formats=formats,
            default_format=default,
            max_text_chars=config.max_text_chars,
            max_frames=tts.generation_defaults.max_new_tokens - 1,
        )
        # The model's own library, or the server's folder: resolved explicitly here, never installed on the model.
        library = tts.voices if config.voice_dir is None else VoiceLibrary(tts, config.voice_dir)
        admission = Admission(config.max_streams, config.max_queue)
        metrics = Metrics(tts.stats, lambda: admission.admitted)
        voices = VoiceResolver(tts, library, dict(config.voice_aliases))
        return cls(tts, config, library, rules, admission, metrics, voices, owns_model=owns_model)
