"""`WS /v1/stream`: text in as it arrives (e.g. LLM tokens), audio out as it is produced, with cancel.

Client -> server (JSON text messages):
    {"type": "start", "voice": "ryan", "language": "English", "sample_rate": 16000, "encoding": "pcm16", ...}
        the options of POST /v1/audio/speech (no model/response_format/stream); with "text", that whole text
        is spoken and no text messages follow
    {"type": "text", "text": "Sure, I can"}      any fragments, in order
    {"type": "end"}                              no more text: speak the rest and finish
    {"type": "cancel"}                           stop now (barge-in): no audio after it, the slot is freed
Server -> client:
    {"type": "started", "sample_rate", "encoding", "voice_cache"}   the stream is open
    binary messages                               raw audio in `encoding` at `sample_rate`, in order
    {"type": "words", "words": [{"word", "start_s", "end_s"}]}      estimated word times, in order, each
                                                  after the audio that covers it
    {"type": "error", "status", "message", "param", "code"}        a refused message; the connection stays
    {"type": "done", "status": "finished"|"cancelled"|"failed"|"idle_timeout", "frames", "audio_s",
     "first_audio_s", "generation_s", "xrt", "underruns", "underrun_s", "voice_cache"}   always the stream's
        last message; times count from `start` (from the first text message when the text comes in messages)
After `done` the connection can start another stream. A stream waiting for text that gets no `text` message
for `--ws-idle-timeout` seconds is ended: `done` with status "idle_timeout" and a `message` saying so, its
engine stream cancelled and its slot freed. A message that is malformed beyond a refusal (a lone surrogate,
an integer of more than 4300 digits, JSON nested too deeply) ends the connection: `error` naming the field,
`done` with status "failed" (the open stream's, or an empty one), then a normal close (1000).

The API key (when one is configured) comes in the `Authorization` header, or, for browsers, which cannot set
headers on a websocket, as a subprotocol: offer ["qwen3tts", "bearer.<key>"] and the server selects
"qwen3tts" (it selects "qwen3tts" whenever it is offered). Never in the URL. A wrong or missing key is
refused at the handshake (HTTP 401); a disconnect cancels the open stream.

A connection may send `--ws-max-messages-per-s` messages per second on average (bursts of a second's worth pass
at once); beyond that the server reads its messages more slowly, so TCP pushes back on the client: nothing is
dropped or refused, and one client sending thousands of tiny messages cannot hold up the others' streams (the
time spent waiting is counted in `qwen3tts_websocket_throttled_seconds_total`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, WebSocket
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

from ..engine.stream import StreamState
from ..errors import InvalidInputError
from ..text.word_timing import WordTimer
from ._limits import SUBPROTOCOL, check_api_key
from ._render import ENGINE_RATE, Renderer, StreamFigures
from ._requests import ApiError, parse_json, parse_stream_start
from ._session import Session

if TYPE_CHECKING:
    from ._state import ServerState

__all__ = ["router"]

log = logging.getLogger("qwen3tts_realtime.server")

router = APIRouter()

_GONE = (WebSocketDisconnect, RuntimeError, OSError)  # what the socket raises once the client is gone


class _ClientGone(Exception):
    """A send found the socket closed. Only sends and receives are read as the client leaving: a stream that
    fails, with whatever exception, is a failure the client is told about."""


@router.websocket("/v1/stream")
async def stream_endpoint(ws: WebSocket) -> None:
    state: ServerState = ws.app.state.server
    offered = list(ws.scope.get("subprotocols") or ())
    try:
        check_api_key(ws.headers, state.config.api_key, offered)
    except ApiError as e:
        state.metrics.refused(e.status)
        await ws.send_denial_response(JSONResponse(e.body(), status_code=e.status, headers=e.headers))
        return
    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)  # never the key's entry
    state.metrics.ws_accepted.inc()
    state.metrics.ws_open.inc()
    try:
        await _Connection(ws, state).run()
    finally:
        state.metrics.ws_open.dec()


@dataclass(eq=False)
class _Open:
    """The connection's current stream."""

    session: Session
    renderer: Renderer
    words: WordTimer
    text_chars: int = 0
    pump: asyncio.Task | None = None
    watchdog: asyncio.Task | None = None  # ends the stream when text stops coming (--ws-idle-timeout)
    done: bool = False
    ended: bool = False  # `end` received
    last_text: float = field(default_factory=time.monotonic)  # `start` or the latest text message
    end_reason: str | None = None  # why the server cancelled it: "idle_timeout" or "failed" (else "cancelled")


class _RateLimit:
    """A token bucket: `rate` messages a second on average, bursts up to `rate`; `wait()` sleeps off a deficit."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()

    async def wait(self) -> float:
        """Take one token, sleeping until there is one; returns the seconds slept."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= 1
        if self.tokens >= 0:
            return 0.0
        delay = -self.tokens / self.rate
        await asyncio.sleep(delay)
        return delay


class _Connection:
    def __init__(self, ws: WebSocket, state: ServerState) -> None:
        self.ws, self.state = ws, state
        self._send_lock = asyncio.Lock()  # the receive loop and the pump both send
        self.current: _Open | None = None
        self._limit = _RateLimit(state.config.ws_max_messages_per_s)

    async def run(self) -> None:
        try:
            while True:
                slept = await self._limit.wait()  # before reading: a flooding client is read more slowly
                if slept:
                    self.state.metrics.ws_throttled_s.inc(slept)
                try:
                    message = await self.ws.receive()
                except _GONE:
                    return
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    await self._handle(message)
                except ApiError as e:
                    self.state.metrics.refused(e.status)
                    await self._send_json(e.event())
                    if e.fatal:
                        await self._fail_connection()
                        return
        except _ClientGone:
            return
        finally:
            current = self.current
            if current is not None and not current.done:
                current.session.close("disconnected")
                if current.pump is not None:
                    current.pump.cancel()
            if current is not None and current.watchdog is not None:
                current.watchdog.cancel()

    async def _fail_connection(self) -> None:
        """After a fatal refusal: the open stream ends as "failed" (its `done` says so; an empty `done` when
        none is open), then the connection closes normally."""
        current = self.current
        if current is not None and not current.done and current.pump is not None:
            current.end_reason = "failed"
            current.session.stream.cancel()
            await current.pump  # sends the stream's `done`
        else:
            figures = StreamFigures(voice_cache=None, started=time.perf_counter())
            await self._send_json({"type": "done", "status": "failed", **figures.as_dict(), "generation_s": 0.0})
        with contextlib.suppress(*_GONE):
            await self.ws.close(1000)

    async def _handle(self, message: dict[str, Any]) -> None:
        if message.get("text") is None:
            raise ApiError(400, "binary messages are not accepted: send JSON text messages",
                           code="binary_message")
        if len(message["text"]) > self.state.config.max_body_bytes:
            raise ApiError(413, f"message larger than {self.state.config.max_body_bytes} bytes "
                           "(--max-body-bytes)", code="payload_too_large")
        body = parse_json(message["text"])
        kind = body.get("type")
        if kind == "start":
            await self._start(body)
        elif kind == "text":
            self._text(body)
        elif kind == "end":
            self._only(body, ("type",))
            self._require_open("end").ended = True
            if self.current.session.stream.incremental:
                self.current.session.stream.end_input()
        elif kind == "cancel":
            self._only(body, ("type",))
            if self.current is not None and not self.current.done:  # a cancel racing `done` is no error
                self.current.session.stream.cancel()
        else:
            raise ApiError(400, f"type={kind!r}; accepted: 'start', 'text', 'end', 'cancel'", param="type")

    async def _start(self, body: dict[str, Any]) -> None:
        if self.current is not None and not self.current.done:
            raise ApiError(409, "a stream is already open on this connection: send end or cancel and wait "
                           "for its done message", param="type", code="stream_open")
        req = parse_stream_start(body, self.state.rules)
        session = await Session.open(self.state, req, "stream")
        words = WordTimer()
        if req.text is not None:
            words.add_text(req.text)
        current = self.current = _Open(session, Renderer("pcm", req.encoding, req.sample_rate, req.speed,
                                                         streamed=True), words)
        await self._send_json({"type": "started", "sample_rate": req.sample_rate, "encoding": req.encoding,
                               "voice_cache": session.figures.voice_cache})
        current.pump = asyncio.create_task(self._pump(current))
        timeout_s = self.state.config.ws_idle_timeout_s
        if session.stream.incremental and timeout_s > 0:
            current.watchdog = asyncio.create_task(self._watch_idle(current, timeout_s))

    @staticmethod
    async def _watch_idle(current: _Open, timeout_s: float) -> None:
        """Cancel `current` once it has waited `timeout_s` for a text message (the pump then reports it)."""
        while not current.ended and not current.done:
            left_s = current.last_text + timeout_s - time.monotonic()
            if left_s <= 0:
                current.end_reason = "idle_timeout"
                current.session.stream.cancel()
                return
            await asyncio.sleep(left_s)

    def _text(self, body: dict[str, Any]) -> None:
        self._only(body, ("type", "text"))
        current = self._require_open("text")
        session = current.session
        text = body.get("text")
        if not isinstance(text, str):
            raise ApiError(400, f"text={text!r}; give a string", param="text")
        if not session.stream.incremental:
            raise ApiError(409, "this stream was started with its whole text; start without text to send "
                           "text messages", param="type", code="stream_has_text")
        if current.ended:
            raise ApiError(409, "text after end: the stream's text is complete", param="type",
                           code="input_ended")
        limit = self.state.config.max_text_chars
        if current.text_chars + len(text) > limit:
            raise ApiError(400, f"the stream's text would exceed {limit} characters (--max-text-chars); end "
                           "it and start another", param="text", code="text_too_long")
        if current.text_chars == 0:
            session.figures.started = time.perf_counter()  # first audio counts from the first text
        current.last_text = time.monotonic()
        current.text_chars += len(text)
        session.stream.push_text(text)
        current.words.add_text(text)

    async def _pump(self, current: _Open) -> None:
        """The stream's audio and word times to the client, then its `done`."""
        session, stream = current.session, current.session.stream
        status, error = "failed", None
        try:
            async for chunk in stream:
                data = current.renderer.push(chunk.audio)
                session.add_chunk(chunk)
                current.words.add_audio(chunk.audio.size / ENGINE_RATE / session.request.speed)
                if data:
                    await self._send_bytes(data)
                await self._send_words(current.words)
            if stream.state is StreamState.CANCELLED:
                status = current.end_reason or "cancelled"
            else:
                tail = current.renderer.finish()
                if tail:
                    await self._send_bytes(tail)
                current.words.finish(session.figures.audio_s)
                await self._send_words(current.words)
                status = "finished"
        except InvalidInputError as e:  # e.g. the input ended without any text
            error = ApiError(400, str(e))
        except _ClientGone:
            status = "disconnected"
        except Exception as e:
            log.exception("websocket stream failed")
            error = ApiError(500, f"generation failed: {e}", code="generation_failed")
        finally:
            # a stream failed by the client's malformed message was counted as that refusal
            session.close(status, error_kind=None if current.end_reason == "failed" else "generation")
            current.done = True
            if current.watchdog is not None:
                current.watchdog.cancel()
        if status == "disconnected":
            return
        done = {"type": "done", "status": status, **session.figures.as_dict()}
        if status == "idle_timeout":
            done["message"] = (f"no text message for {self.state.config.ws_idle_timeout_s:g} s "
                               "(--ws-idle-timeout): the stream was ended and its slot freed")
        try:
            if error is not None:
                await self._send_json(error.event())
            await self._send_json(done)
        except _ClientGone:
            pass

    async def _send_words(self, timer: WordTimer) -> None:
        words = timer.ready()
        if words:
            await self._send_json({"type": "words", "words": [
                {"word": w.word, "start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3)} for w in words
            ]})

    def _require_open(self, what: str) -> _Open:
        if self.current is None or self.current.done:
            raise ApiError(409, f"{what} without an open stream: send start first", param="type",
                           code="no_open_stream")
        return self.current

    @staticmethod
    def _only(body: dict[str, Any], accepted: tuple[str, ...]) -> None:
        unknown = sorted(set(body) - set(accepted))
        if unknown:
            raise ApiError(400, f"unknown field {unknown[0]!r} in a {body.get('type')!r} message; accepted: "
                           f"{', '.join(accepted)}", param=unknown[0], code="unknown_field")

    async def _send_json(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            try:
                await self.ws.send_json(message)
            except _GONE as e:
                raise _ClientGone from e

    async def _send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            try:
                await self.ws.send_bytes(data)
            except _GONE as e:
                raise _ClientGone from e
