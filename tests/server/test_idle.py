"""Idle websocket streams: a stream waiting for text that gets no `text` message for `--ws-idle-timeout`
seconds ends with `done` status "idle_timeout" (its message names the setting), its engine stream is
cancelled and its slot freed; the connection goes on."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from qwen3tts_realtime.server import ServerConfig

from .conftest import GREEDY, running_server
from .test_metrics import scrape, value
from .test_websocket import run_stream

IDLE_TIMEOUT_S = 0.3


@pytest.fixture(scope="module")
def idle(custom_voice_tts, tmp_path_factory):
    config = ServerConfig(model="tiny-custom-voice", ws_idle_timeout_s=IDLE_TIMEOUT_S, warmup_text="",
                          voice_dir=str(tmp_path_factory.mktemp("voices")))
    with running_server(custom_voice_tts, config) as running:
        yield running


async def test_a_stream_that_stops_getting_text_is_ended_and_its_slot_freed(idle):
    async with connect(idle.ws_url) as ws:
        await ws.send(json.dumps({"type": "start", "voice": "ryan", "max_frames": 400, **GREEDY}))
        await ws.send(json.dumps({"type": "text", "text": "Sure, I can"}))  # then nothing: a stalled LLM
        while True:
            message = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(message, str) and json.loads(message)["type"] == "done":
                break
        done = json.loads(message)
        assert done["status"] == "idle_timeout"
        assert done["message"] == ("no text message for 0.3 s (--ws-idle-timeout): the stream was ended and its "
                                   "slot freed")
        await asyncio.to_thread(idle.wait_idle, 5)
        assert value(scrape(idle), "qwen3tts_streams_total", endpoint="stream", status="idle_timeout") == 1

        messages, done = await run_stream(ws, {"voice": "ryan", "max_frames": 4, "text": "Hi.", **GREEDY})
        assert done["status"] == "finished"  # the connection goes on

