"""A stream that fails mid-way never ends like a normal one: a streamed POST /v1/audio/speech response (its 200
already sent) is broken off without the chunked body's end, so the client sees an incomplete response; the
websocket sends an `error` event, then `done` with status "failed". Both count a failed stream and a
generation error, free the slot, and the server goes on serving.

The failure is injected by wrapping the streams the server's model opens: each yields its first chunk, then
raises the RuntimeError a failed engine step delivers."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect

from qwen3tts_realtime.audio import to_pcm16

from .conftest import GREEDY, reference_audio
from .test_metrics import scrape, value
from .test_websocket import run_stream

TEXT = "Hello there, how are you today?"
FAILURE = "engine step failed (injected)"


class FailsAfterFirstChunk:
    """An engine stream that yields its first chunk, then fails."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._chunks = 0

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._chunks == 1:
            self._stream.cancel()
            raise RuntimeError(FAILURE)
        self._chunks += 1
        return await self._stream.__anext__()


@pytest.fixture
def failing(server, monkeypatch):
    """The server's streams fail after their first chunk (for this test only); yields the first chunk's audio
    as the engine produces it for TEXT."""
    first = reference_audio(server.tts, TEXT, max_frames=20)[:1920]  # the default schedule's first chunk: 1 frame
    open_stream = server.tts.open_stream
    monkeypatch.setattr(
        server.tts, "open_stream", lambda text=None, **kw: FailsAfterFirstChunk(open_stream(text, **kw))
    )
    yield first
    server.wait_idle(timeout_s=5)


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def assert_counted_as_one_failure(before: dict, after: dict, endpoint: str) -> None:
    assert moved(before, after, "qwen3tts_streams_total", endpoint=endpoint, status="failed") == 1
    assert moved(before, after, "qwen3tts_streams_total", endpoint=endpoint, status="finished") == 0
    assert moved(before, after, "qwen3tts_errors_total", kind="generation") == 1
    assert moved(before, after, "qwen3tts_errors_total", kind="internal") == 0


def test_a_streamed_response_that_fails_mid_way_is_broken_off(server, failing):
    body = {"input": TEXT, "voice": "ryan", "response_format": "pcm", "max_frames": 20, **GREEDY}
    before = scrape(server)
    received = bytearray()
    with server.client() as c, c.stream("POST", "/v1/audio/speech", json=body) as r:
        assert r.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            for data in r.iter_raw():
                received += data
    assert bytes(received) == to_pcm16(failing).tobytes()
    assert_counted_as_one_failure(before, scrape(server), "speech")


async def test_a_websocket_stream_that_fails_mid_way_sends_error_then_failed_done(server, failing):
    before = scrape(server)
    async with connect(server.ws_url) as ws:
        messages, event = await run_stream(ws, {"voice": "ryan", "encoding": "float32", "max_frames": 20,
                                                "text": TEXT, **GREEDY})
        done = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert [m["type"] if isinstance(m, dict) else bytes for m in messages] == ["started", bytes, "error"]
    assert np.array_equal(np.frombuffer(messages[1], "<f4"), failing)
    assert event == {"type": "error", "status": 500, "message": f"generation failed: {FAILURE}", "param": None,
                     "code": "generation_failed"}
    assert done["type"] == "done" and done["status"] == "failed" and done["frames"] == 1
    assert_counted_as_one_failure(before, scrape(server), "stream")
