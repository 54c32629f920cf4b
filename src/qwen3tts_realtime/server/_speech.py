"""`POST /v1/audio/speech`: OpenAI's speech endpoint, streamed as the audio is produced.

With `stream` (the default) the response starts at the first audio and goes out chunk by chunk (chunked
transfer); its figures go to /metrics. With `"stream": false` the whole file comes back at once, with the
figures in headers: X-Generation-Seconds, X-Audio-Seconds, X-First-Audio-Seconds, X-xRT, X-Voice-Cache.
A client that disconnects cancels its engine stream at once (the engine drops it at its next step). The body
must be JSON: a Content-Type other than application/json (or a `+json` type) is refused with 415; a request
without one is read as JSON, as curl-less clients send it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..engine.stream import StreamState
from ..errors import InvalidInputError
from ._formats import content_type
from ._limits import read_limited
from ._render import Renderer
from ._requests import ApiError, parse_json, parse_speech
from ._session import Session

if TYPE_CHECKING:
    from ._state import ServerState

__all__ = ["router", "StreamBroken"]

log = logging.getLogger("qwen3tts_realtime.server")

router = APIRouter()


@router.post("/v1/audio/speech")
async def speech(request: Request) -> Response:
    state: ServerState = request.app.state.server
    _require_json(request.headers.get("content-type"))
    raw = await read_limited(request.headers, request.stream(), state.config.max_body_bytes,
                             "the request body is", "--max-body-bytes")
    req = parse_speech(parse_json(raw), state.rules)
    session = await Session.open(state, req, "speech")
    renderer = Renderer(req.response_format, req.encoding, req.sample_rate, req.speed, streamed=req.stream)
    headers = {"X-Voice-Cache": session.figures.voice_cache, "X-Sample-Rate": str(req.sample_rate)}
    media_type = content_type(req.response_format, req.encoding, req.sample_rate)
    if req.stream:
        return _AudioStream(_streamed(session, renderer), media_type=media_type, headers=headers)
    return await _whole(session, renderer, request, media_type, headers)


def _require_json(content_type: str | None) -> None:
    """Refuse a body declared as anything but JSON (415): it would only fail later, less clearly."""
    if content_type is None:
        return
    media = content_type.partition(";")[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise ApiError(415, f"Content-Type {content_type!r} is not accepted; send the body as application/json "
                       "(a JSON object, UTF-8)", param="Content-Type", code="unsupported_media_type")


class StreamBroken(Exception):
    """Raised out of a streamed response's body when generation fails after the headers left (already logged
    and counted). The ASGI server then drops the connection without the body's terminating chunk, so the
    client sees a broken response, never a complete-looking short one."""


async def _streamed(session: Session, renderer: Renderer) -> AsyncIterator[bytes]:
    """The response body: audio as it comes. The headers (200) have left, so a failure breaks the body."""
    status = "disconnected"  # unless it ends otherwise: the client went away (the task was cancelled)
    try:
        async for chunk in session.stream:
            data = renderer.push(chunk.audio)
            session.add_chunk(chunk)
            if data:
                yield data
        tail = renderer.finish()
        status = "finished"
        if tail:
            yield tail
    except Exception as e:
        status = "failed"
        log.exception("speech stream failed after its first bytes")
        raise StreamBroken(f"generation failed: {e}") from e
    finally:
        session.close(status)


async def _whole(session: Session, renderer: Renderer, request: Request, media_type: str,
                 headers: dict[str, str]) -> Response:
    """Generate everything, then answer with the file and its figures (cancelled if the client leaves)."""
    watcher = asyncio.create_task(_cancel_on_disconnect(request, session))
    status = "failed"
    try:
        parts = []
        async for chunk in session.stream:
            parts.append(renderer.push(chunk.audio))
            session.add_chunk(chunk)
        if session.stream.state is StreamState.CANCELLED:
            status = "disconnected"
            return Response(status_code=499)  # nobody is listening any more
        parts.append(renderer.finish())
        status = "finished"
    except InvalidInputError as e:
        raise ApiError(400, str(e)) from None
    except Exception as e:
        log.exception("speech generation failed")
        raise ApiError(500, f"generation failed: {e}", code="generation_failed") from None
    finally:
        watcher.cancel()
        session.close(status)
    figures = session.figures.as_dict()
    headers.update({
        "X-Generation-Seconds": str(figures["generation_s"]),
        "X-Audio-Seconds": str(figures["audio_s"]),
        "X-First-Audio-Seconds": str(figures["first_audio_s"]),
        "X-xRT": str(figures["xrt"]),
    })
    return Response(b"".join(parts), media_type=media_type, headers=headers)


async def _cancel_on_disconnect(request: Request, session: Session) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
    session.stream.cancel()


class _AudioStream(StreamingResponse):
    """A streaming response whose body generator is closed as soon as the response ends, so its engine
    stream is cancelled and its slot freed at once (not whenever the generator is garbage-collected)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined]
