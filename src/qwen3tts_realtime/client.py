"""`RemoteEngine`: the `TTSEngine` protocol over a qwen3tts-realtime server, so the Pipecat service and the
LiveKit plugin can speak through a remote GPU box exactly as through an in-process model.

    engine = RemoteEngine("http://gpu-box:8000", api_key=os.environ["QWEN3TTS_API_KEY"])
    tts = Qwen3TTSService(engine=engine, settings=Qwen3TTSService.Settings(voice="ryan"))   # Pipecat
    tts = qwen3tts_realtime.livekit.TTS(engine=engine, voice="ryan")                         # LiveKit

    stream = engine.open_stream("ryan", language="English")     # or: open_stream(voice, text="Hello.")
    stream.push_text("Sure, I can"); stream.push_text(" help."); stream.end_input()
    async for chunk in stream: play(chunk.audio)                # float32, 24 kHz, as from Qwen3TTS

Each stream runs on a websocket (`WS /v1/stream`) asking for float32 audio at 24 kHz, so chunks carry the
engine's samples unchanged; the final chunk is an empty one with `is_last` (the end is known only after the
last audio left) and `codes` is None. Connections are pooled: a stream that ended at a clean boundary (its
`done`, or a refused start) leaves its connection open for the next stream (at most `pool_size` idle ones are
kept), so a call does not pay a TCP and websocket handshake (plus TLS) per reply; `prewarm()` opens one ahead
of the first stream. A pooled connection found closed before its stream got an answer is replaced once; a
connection that drops mid-stream fails only that stream, with a `RemoteEngineError` whose `status` is None
(the integrations treat it as retryable). The sockets run on one background thread with its own event loop;
the chunks reach the caller through the same `Stream` handle `Qwen3TTS` returns (async when opened inside an
event loop, blocking otherwise). `open_stream` never blocks: a refused request (unknown voice, bad option,
server at capacity) raises from the stream's iteration. `resolve_voice`, `stats`, `warmup` and the model
properties make blocking HTTP requests (call them from a thread in asyncio code, as the integrations do).
Does not: send voices made locally (store them on the server).

Needs `websockets` (the `server` extra).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .engine.engine import DEFAULT_CHUNK_FRAMES, check_chunk_frames
from .engine.sampling import SamplingParams
from .engine.stream import AudioChunk, Channel, Stream
from .errors import InvalidInputError, Qwen3TTSError
from .voices.profile import VoiceProfile

try:
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import InvalidStatus, WebSocketException
    from websockets.protocol import State
except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        f"qwen3tts_realtime.client needs websockets ({e}); install it with: "
        'pip install "qwen3tts-realtime[server]"',
        name=e.name,
    ) from e

__all__ = ["RemoteEngine", "RemoteEngineError", "RemoteVoice"]

log = logging.getLogger("qwen3tts_realtime.client")

SAMPLE_RATE = 24000
FRAME_SAMPLES = 1920
_CANCEL = object()
_CLIENT_ERRORS = (400, 404, 409, 413, 415, 422)


class RemoteEngineError(Qwen3TTSError):
    """The server could not be reached, refused the request for a reason other than its content (wrong API
    key: 401, at capacity: 429), or failed. `status` is the HTTP status, None when there was no answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, eq=False)
class RemoteVoice(VoiceProfile):
    """A voice of the server, by name. It holds no tensors: the server resolves `name` (plus `instruct`)."""

    name: str | None = None


class RemoteEngine:
    """A qwen3tts-realtime server as a `TTSEngine`.

    Args:
        url: the server, "http(s)://host:port" (or "ws(s)://host:port").
        api_key: sent as `Authorization: Bearer <key>` when set.
        timeout_s: for connecting and for each HTTP request.
        pool_size: idle websocket connections kept open for the next streams (0: one connection per stream).
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", api_key: str | None = None, *,
                 timeout_s: float = 30.0, pool_size: int = 4) -> None:
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 0:
            raise InvalidInputError(f"pool_size={pool_size!r}; give an int >= 0 (idle connections kept)")
        parts = urllib.parse.urlsplit(url)
        scheme = {"http": "http", "ws": "http", "https": "https", "wss": "https"}.get(parts.scheme)
        if scheme is None or not parts.netloc:
            raise InvalidInputError(f"url={url!r}; give the server's address, e.g. 'http://127.0.0.1:8000'")
        base = parts.path.rstrip("/")
        self._http = f"{scheme}://{parts.netloc}{base}"
        self._ws = f"{'wss' if scheme == 'https' else 'ws'}://{parts.netloc}{base}/v1/stream"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._open: set[_RemoteStream] = set()
        self._model: dict[str, Any] | None = None
        self._closed = False
        self._pool_size = pool_size
        self._idle: list[ClientConnection] = []  # touched on the background loop only
        self.connections_opened = 0  # websocket handshakes made (a pooled stream makes none)

    def __repr__(self) -> str:
        return f"RemoteEngine({self._http!r})"

    # ---- the TTSEngine protocol -----------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def open_stream(
        self,
        text: str | None = None,
        *,
        voice: VoiceProfile | str,
        language: str = "Auto",
        sampling: SamplingParams | None = None,
        chunk_frames: tuple[int, ...] = DEFAULT_CHUNK_FRAMES,
        non_streaming_layout: bool | None = None,
        max_new_frames: int | None = None,
        seed: int | None = None,
    ) -> Stream:
        """A stream on the server (see `Qwen3TTS.open_stream`; the same arguments and behaviour).

        Raises:
            InvalidInputError: a voice that cannot be named to the server (a clone made in this process).
            RuntimeError: the engine is closed.
        """
        start: dict[str, Any] = {"type": "start", **_voice_fields(voice), "language": language,
                                 "sample_rate": SAMPLE_RATE, "encoding": "float32",
                                 "chunk_frames": list(check_chunk_frames(chunk_frames))}
        if sampling is not None:
            chosen = {f.name: getattr(sampling, f.name) for f in fields(sampling)}
            start.update({name: v for name, v in chosen.items() if v is not None})
        optional = {"text": text, "seed": seed, "max_frames": max_new_frames,
                    "non_streaming_layout": non_streaming_layout}
        start.update({k: v for k, v in optional.items() if v is not None})
        channel = Channel()
        loop = self._io_loop()
        remote = _RemoteStream(self, channel, start, loop)
        incremental = text is None
        stream = Stream(channel, remote.cancel, push_text=remote.push_text if incremental else None,
                        end_input=remote.end_input if incremental else None)
        with self._lock:
            self._open.add(remote)
        asyncio.run_coroutine_threadsafe(remote.run(), loop)
        return stream

    def resolve_voice(self, voice: VoiceProfile | str) -> VoiceProfile:
        """A `RemoteVoice` for a server voice name (library voice or built-in speaker); a speaker or designed
        profile is returned as is. Blocking (one HTTP request).

        Raises:
            InvalidInputError: unknown name, or a clone profile made in this process.
        """
        if isinstance(voice, VoiceProfile):
            _voice_fields(voice)
            return voice
        if not isinstance(voice, str) or not voice:
            raise InvalidInputError(f"voice must be a VoiceProfile or a name, got {voice!r}")
        info = self._get(f"/v1/voices/{urllib.parse.quote(voice, safe='')}")
        return RemoteVoice(kind=info["kind"], model_type=info["model_type"], speaker=info["speaker"],
                           instruct=info["instruct"], name=info["name"])

    def stats(self) -> dict[str, Any]:
        """The server engine's statistics (active/queued streams, steps, batch sizes). Blocking."""
        return self._get("/v1/stats")["engine"]

    def prewarm(self) -> concurrent.futures.Future[None]:
        """Open a pooled connection now, in the background, so the first stream does not wait for the handshake.
        Returns at once (a future; its failure is logged, and the first stream reports it)."""
        return asyncio.run_coroutine_threadsafe(self._prewarm(), self._io_loop())

    def warmup(self, timeout_s: float = 600.0) -> None:
        """Wait until the server has warmed up (`GET /ready`). Blocking.

        Raises:
            RemoteEngineError: not ready within `timeout_s`, or unreachable.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._get("/ready")
                return
            except RemoteEngineError as e:
                if e.status != 503 or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Cancel the open streams and stop the background thread. Idempotent."""
        with self._lock:
            self._closed = True
            remotes, loop, thread = list(self._open), self._loop, self._thread
            self._loop = self._thread = None
        for remote in remotes:
            remote.channel.cancel()
        if loop is None:
            return
        with _suppress_closed():
            asyncio.run_coroutine_threadsafe(_cancel_tasks(), loop).result(timeout=self._timeout_s)
            asyncio.run_coroutine_threadsafe(self._close_idle(), loop).result(timeout=self._timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        loop.close()

    # ---- the model behind the server ------------------------------------------------------------------

    @property
    def model_type(self) -> str:
        """"base" | "custom_voice" | "voice_design" (blocking on first use)."""
        return self._model_info()["type"]

    @property
    def model_size(self) -> str:
        """"0b6" | "1b7" (blocking on first use)."""
        return self._model_info()["size"]

    @property
    def speakers(self) -> list[str]:
        return self._model_info()["speakers"]

    @property
    def languages(self) -> list[str]:
        return self._model_info()["languages"]

    # ---- internals ------------------------------------------------------------------------------------

    def _model_info(self) -> dict[str, Any]:
        if self._model is None:
            self._model = self._get("/v1/stats")["model"]
        return self._model

    def _io_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError("this RemoteEngine is closed")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="qwen3tts-remote",
                                                daemon=True)
                self._thread.start()
            return self._loop

    def _forget(self, remote: _RemoteStream) -> None:
        with self._lock:
            self._open.discard(remote)

    # connections (background loop only)

    async def _connect(self) -> ClientConnection:
        ws = await connect(self._ws, additional_headers=self._headers, compression=None, max_size=None,
                           open_timeout=self._timeout_s)
        self.connections_opened += 1
        return ws

    async def _acquire(self) -> tuple[ClientConnection, bool]:
        """An idle pooled connection (True) or a new one (False)."""
        while self._idle:
            ws = self._idle.pop()
            if ws.state is State.OPEN:
                return ws, True
        return await self._connect(), False

    async def _release(self, ws: ClientConnection, reusable: bool) -> None:
        if reusable and ws.state is State.OPEN and not self._closed and len(self._idle) < self._pool_size:
            self._idle.append(ws)
        else:
            await ws.close()

    async def _prewarm(self) -> None:
        if self._idle or self._pool_size == 0:
            return
        try:
            await self._release(await self._connect(), True)
        except (OSError, TimeoutError, WebSocketException) as e:
            log.warning("prewarm: cannot connect to %s: %s", self._ws, e)

    async def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(ws.close() for ws in idle), return_exceptions=True)

    def _get(self, path: str) -> dict[str, Any]:
        request = urllib.request.Request(self._http + path, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            raise _error(e.code, _message(e.read(), e.reason)) from None
        except (urllib.error.URLError, OSError) as e:
            raise RemoteEngineError(f"cannot reach {self._http}: {getattr(e, 'reason', e)}") from None


class _RemoteStream:
    """One stream's websocket, run on the engine's background loop; chunks go to the caller's channel."""

    def __init__(self, engine: RemoteEngine, channel: Channel, start: dict[str, Any],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.engine, self.channel, self.start, self.loop = engine, channel, start, loop
        self.outbox: asyncio.Queue[Any] = asyncio.Queue()
        self.lock = threading.Lock()
        self.ended = False
        self.answered = False  # the server sent something for this stream
        self.ws: ClientConnection | None = None  # the connection it runs on

    # caller side (any thread)

    def push_text(self, fragment: str) -> None:
        if not isinstance(fragment, str):
            raise InvalidInputError(f"push_text() takes str fragments, got {type(fragment).__name__}")
        with self.lock:
            if self.ended:
                raise InvalidInputError("push_text() after end_input(): the stream's text is complete")
            self._post({"type": "text", "text": fragment})

    def end_input(self) -> None:
        with self.lock:
            if not self.ended:
                self.ended = True
                self._post({"type": "end"})

    def cancel(self) -> None:
        self._post(_CANCEL)

    def _post(self, item: object) -> None:
        with _suppress_closed():
            self.loop.call_soon_threadsafe(self.outbox.put_nowait, item)

    # background loop

    async def run(self) -> None:
        engine = self.engine
        try:
            for attempt in range(2):
                ws, pooled = await engine._acquire()
                reusable = False
                try:
                    reusable = await self._exchange(ws)
                    return
                except (OSError, TimeoutError, WebSocketException):
                    if pooled and not self.answered and attempt == 0:
                        continue  # a pooled connection the server or a proxy had closed: once more, fresh
                    raise
                finally:
                    await engine._release(ws, reusable)
        except InvalidStatus as e:
            self.channel.deliver(_error(e.response.status_code, _message(e.response.body, "refused")))
        except (OSError, TimeoutError, WebSocketException) as e:
            where = "the connection dropped mid-stream" if self.answered else "cannot stream"
            self.channel.deliver(RemoteEngineError(f"{where} ({engine._ws}): {e}"))
        finally:
            engine._forget(self)

    async def _exchange(self, ws: ClientConnection) -> bool:
        """One stream on `ws`; True when it ended at a clean boundary (the connection can serve another)."""
        self.answered, self.ws = False, ws
        await ws.send(json.dumps(self.start))
        sender = asyncio.create_task(self._send(ws))
        try:
            return await self._receive(ws)
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _send(self, ws: ClientConnection) -> None:
        while True:
            item = await self.outbox.get()
            if item is _CANCEL:
                await ws.send(json.dumps({"type": "cancel"}))  # the server ends the stream with its `done`
                return
            await ws.send(json.dumps(item))

    async def _receive(self, ws: ClientConnection) -> bool:
        first_frame, started, failed = 0, False, False
        async for message in ws:
            self.answered = True
            if isinstance(message, bytes):
                audio = np.frombuffer(message, dtype="<f4").astype(np.float32)
                frames = audio.size // FRAME_SAMPLES
                if not failed and not self.channel.deliver(AudioChunk(audio, first_frame, frames, False,
                                                                      SAMPLE_RATE)):
                    failed = True  # the caller cancelled: the sender tells the server; read on to its `done`
                    self.cancel()
                first_frame += frames
                continue
            event = json.loads(message)
            kind = event.get("type")
            if kind == "started":
                started = True
            elif kind == "error":
                if not failed:
                    self.channel.deliver(_error(event.get("status") or 500, event.get("message", "")))
                if not started:
                    return True  # a refused start: nothing is open on the connection
                if not failed:
                    failed = True
                    self.cancel()  # the stream is failed for the caller: end it on the server too
            elif kind == "done":
                status = event.get("status")
                if failed:
                    pass
                elif status == "finished":
                    end = AudioChunk(np.zeros(0, np.float32), first_frame, 0, True, SAMPLE_RATE)
                    self.channel.deliver(end)
                elif status == "failed":
                    self.channel.deliver(RemoteEngineError("the server's stream failed", 500))
                else:  # ended by the server (e.g. shutting down): a no-op when the caller cancelled it
                    self.channel.deliver(RemoteEngineError(f"the server ended the stream ({status})"))
                return True
        if not failed:
            self.channel.deliver(RemoteEngineError("the server closed the stream before its end"))
        return False


def _voice_fields(voice: VoiceProfile | str) -> dict[str, str]:
    """How a voice is named to the server."""
    if isinstance(voice, str):
        return {"voice": voice}
    if not isinstance(voice, VoiceProfile):
        raise InvalidInputError(f"voice must be a VoiceProfile or a name, got {voice!r}")
    if isinstance(voice, RemoteVoice) and voice.name:
        named = {"voice": voice.name}
    elif voice.kind == "speaker" and voice.speaker:
        named = {"voice": voice.speaker}
    elif voice.kind == "design":
        named = {"voice": "design"}
    else:
        raise InvalidInputError(
            f"{voice!r} was made in this process and cannot be sent to the server: store it there "
            "(POST /v1/voices, or `qwen3tts-realtime voices add` on the server's voice folder) and use its "
            "name"
        )
    if voice.instruct:
        named["instructions"] = voice.instruct
    return named


def _error(status: int, message: str) -> Exception:
    if status in _CLIENT_ERRORS:
        return InvalidInputError(message)
    return RemoteEngineError(f"the server answered {status}: {message}", status)


def _message(body: bytes | None, fallback: str) -> str:
    try:
        return json.loads(body or b"")["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return str(fallback)


async def _cancel_tasks() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)



def _suppress_closed() -> contextlib.suppress:
    """Ignore a closed event loop (the engine was closed meanwhile) and a shutdown that timed out."""
    return contextlib.suppress(RuntimeError, concurrent.futures.TimeoutError)
