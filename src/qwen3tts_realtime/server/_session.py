"""`Session`: one admitted engine stream of one request, from admission to its end, whatever ends it.

Opening admits the stream (or raises the 429), resolves its voice off the event loop and opens it on the
engine; `close(status)` cancels the engine stream (a no-op once it finished; otherwise the engine drops it at
its next step), gives the admission slot back and records the stream's figures. It is idempotent, so every
exit path (end, cancel, disconnect, error) can call it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..errors import InvalidInputError
from ._render import ENGINE_RATE, StreamFigures
from ._requests import ApiError, SpeechRequest

if TYPE_CHECKING:
    from ..engine.stream import AudioChunk, Stream
    from ._state import ServerState

__all__ = ["Session"]

log = logging.getLogger("qwen3tts_realtime.server")


class Session:
    """An open engine stream with its figures. Create with `await Session.open(state, request, endpoint)`."""

    def __init__(self, state: ServerState, request: SpeechRequest, endpoint: str, stream: Stream,
                 figures: StreamFigures) -> None:
        self.state, self.request, self.endpoint = state, request, endpoint
        self.stream, self.figures = stream, figures
        self.closed = False

    @classmethod
    async def open(cls, state: ServerState, request: SpeechRequest, endpoint: str) -> Session:
        """Admit, resolve the voice, open the engine stream.

        Raises:
            ApiError: 429 at capacity; 400 for a voice or option the engine refuses.
        """
        state.admission.enter()
        figures = StreamFigures(voice_cache="miss")
        try:
            profile, warm = await asyncio.to_thread(state.voices.resolve, request.voice, request.instructions)
            figures.voice_cache = "hit" if warm else "miss"
            state.metrics.voice_cache.labels(figures.voice_cache).inc()
            stream = state.tts.open_stream(voice=profile, **request.engine_kwargs())
        except InvalidInputError as e:
            state.admission.leave()
            raise ApiError(400, str(e)) from None
        except BaseException:
            state.admission.leave()
            raise
        return cls(state, request, endpoint, stream, figures)

    def add_chunk(self, chunk: AudioChunk) -> None:
        """Count a chunk that is being sent."""
        self.figures.add_chunk(chunk.num_frames, chunk.audio.size / ENGINE_RATE / self.request.speed)

    def close(self, status: str, *, error_kind: str | None = "generation") -> None:
        """End the stream: "finished", "cancelled", "disconnected", "idle_timeout" or "failed" (counted in
        errors_total under `error_kind`; None: already counted, as the refusal that failed it). Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.stream.cancel()
        self.state.admission.leave()
        if status == "failed" and error_kind is not None:
            self.state.metrics.errors.labels(error_kind).inc()
        self.state.metrics.stream_ended(self.endpoint, status, self.figures)
        log.debug("%s stream %s: %s", self.endpoint, status, self.figures.as_dict())
