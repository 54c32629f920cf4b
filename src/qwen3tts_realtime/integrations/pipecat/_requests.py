"""What the Pipecat service asks of the engine: loading a model, voices, requests and streams.

Does: load a checkpoint (blocking: the service runs it in a thread), resolve voices per audio context (in a
thread, through the voice library it is handed or the engine; nothing memoised here: the library keeps its
loaded profiles and the engine keeps warm state by voice content); freeze the settings into a `Request` per
audio context; open validated engine streams; warm up. Uses the engine only through the
`TTSEngine` protocol.
Does not: touch Pipecat frames, contexts or errors (`_service.py` turns exceptions into ErrorFrames).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...engine.protocol import TTSEngine
from ...engine.sampling import SamplingParams
from ...engine.stream import Stream
from ...errors import InvalidInputError
from ...voices.profile import VoiceProfile, with_instruct
from ._settings import Qwen3TTSSettings, model_language, sampling_params

__all__ = ["EngineAccess", "Request", "load_engine"]

log = logging.getLogger("qwen3tts_realtime.pipecat")

_WARMUP_TEXT = "Hello."


@dataclass(frozen=True)
class Request:
    """What every engine stream of one audio context uses (the settings when the context opened)."""

    voice: VoiceProfile
    language: str
    sampling: SamplingParams
    seed: int | None
    speed: float


def load_engine(model: str | Path, device: str | None, dtype: str | None, quantize: str | None = None) -> TTSEngine:
    """Load a checkpoint (blocking). `device` None: "cuda" when available, else "cpu" (`parse_device`)."""
    from ...tts import Qwen3TTS

    log.info("loading %s", model)
    return Qwen3TTS.from_pretrained(model, device=device, dtype=dtype, quantize=quantize)


class EngineAccess:
    """One service's view of its engine.

    Args:
        engine: the engine.
        voice_library: resolves voice names (`resolve(name) -> VoiceProfile`); None: `engine.resolve_voice`.
        max_new_frames: cap on frames per stream (None: the engine's budget, growing with the text).
        chunk_frames: frames per audio chunk (None: the engine's default).
    """

    def __init__(
        self,
        engine: TTSEngine,
        *,
        voice_library: Any | None,
        max_new_frames: int | None,
        chunk_frames: tuple[int, ...] | None,
    ) -> None:
        self.engine = engine
        self._voice_library = voice_library
        self._stream_args: dict[str, Any] = {"max_new_frames": max_new_frames}
        if chunk_frames is not None:
            self._stream_args["chunk_frames"] = chunk_frames
        self._size: str | None = None  # the engine's model size, once known

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate

    async def request(self, settings: Qwen3TTSSettings) -> Request:
        """The request for the current settings.

        Raises:
            InvalidInputError: no voice, an unknown one, an instruction a clone cannot take, a bad language.
        """
        return Request(
            voice=await self.voice(settings.voice, settings.instruct),
            language=model_language(settings.language),
            sampling=sampling_params(settings),
            seed=settings.seed,
            speed=float(settings.speed),
        )

    def open_stream(self, request: Request, text: str | None) -> Stream:
        """An engine stream for `text` (None: incremental, text pushed later). Validates the request.

        Raises:
            InvalidInputError: the engine refused the request (e.g. a language the checkpoint lacks).
        """
        return self.engine.open_stream(
            voice=request.voice,
            language=request.language,
            sampling=request.sampling,
            seed=request.seed,
            text=text,
            **self._stream_args,
        )

    async def warm_up(self, settings: Qwen3TTSSettings) -> None:
        """The engine's one-time costs, then the voice's prompt prefix (a one-frame generation with it)."""
        await asyncio.to_thread(self.engine.warmup)
        request = await self.request(settings)
        stream = self.engine.open_stream(
            voice=request.voice,
            language=request.language,
            sampling=request.sampling,
            text=_WARMUP_TEXT,
            max_new_frames=1,
        )
        async for _ in stream:
            pass

    async def voice(self, voice: str | VoiceProfile | None, instruct: str | None) -> VoiceProfile:
        """The profile to speak with: a name is resolved in a thread (a library may read files or compute an
        embedding); `instruct` styles built-in speakers and designed voices (`with_instruct`).

        Raises:
            InvalidInputError: no voice, an unknown name, or an instruction for a cloned voice.
        """
        if voice is None:
            raise InvalidInputError(
                "no voice: set Qwen3TTSService.Settings(voice=...) to a voice-library name, a built-in "
                "speaker (CustomVoice checkpoints) or a VoiceProfile"
            )
        if isinstance(voice, VoiceProfile):
            base = voice
        else:
            library = self._voice_library
            resolve = library.resolve if library is not None else self.engine.resolve_voice
            base = await asyncio.to_thread(resolve, voice)
        if not instruct or instruct == base.instruct:
            return base
        return with_instruct(base, instruct, model_size=await self._model_size())

    async def _model_size(self) -> str | None:
        """The engine's `model_size` ("0b6" | "1b7"; None when it has none), read once in a thread: a remote
        engine asks its server (a blocking HTTP request)."""
        if self._size is None:
            self._size = await asyncio.to_thread(getattr, self.engine, "model_size", None)
        return self._size
