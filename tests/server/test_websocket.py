"""WS /v1/stream against the real server: text sent in fragments gives the same audio as the whole text
(streaming layout, greedy); `cancel` stops the audio and frees the slot; word times arrive in order, after
the audio that covers them; a refused message leaves the connection usable; one connection runs several
streams in turn."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect

from qwen3tts_realtime.server import ServerConfig

from .conftest import GREEDY, reference_audio, running_server

TEXT = "Hello there, how are you today?"
FRAGMENTS = ["Hel", "lo the", "re, how", " are y", "ou today?"]


async def run_stream(ws, start: dict, fragments: list[str] | None = None) -> tuple[list, dict]:
    """Send a stream; returns (messages in order: bytes or dicts, the done event)."""
    await ws.send(json.dumps({"type": "start", **start}))
    for fragment in fragments or []:
        await ws.send(json.dumps({"type": "text", "text": fragment}))
    if fragments is not None:
        await ws.send(json.dumps({"type": "end"}))
    messages = []
    while True:
        message = await asyncio.wait_for(ws.recv(), 60)
        messages.append(message if isinstance(message, bytes) else json.loads(message))
        if isinstance(messages[-1], dict) and messages[-1]["type"] in ("done", "error"):
            return messages, messages[-1]


def audio_of(messages: list) -> np.ndarray:
    return np.frombuffer(b"".join(m for m in messages if isinstance(m, bytes)), "<f4")


START = {"voice": "ryan", "encoding": "float32", "max_frames": 15, **GREEDY}


async def test_fragments_give_the_audio_of_the_whole_text(server):
    async with connect(server.ws_url) as ws:
        pieces, done = await run_stream(ws, START, FRAGMENTS)
        assert done["status"] == "finished"
        whole, done_whole = await run_stream(ws, START, [TEXT])  # the same connection, a second stream
        assert done_whole["status"] == "finished"
    assert pieces[0] == {"type": "started", "sample_rate": 24000, "encoding": "float32", "voice_cache": "hit"}
    expected = reference_audio(server.tts, TEXT, max_frames=15, non_streaming_layout=False)
    assert np.array_equal(audio_of(pieces), expected)
    assert np.array_equal(audio_of(whole), expected)
    assert done["frames"] == expected.size // 1920 and done["audio_s"] == pytest.approx(expected.size / 24000)


async def test_start_with_the_whole_text_is_sentence_mode(server):
    async with connect(server.ws_url) as ws:
        messages, done = await run_stream(ws, {**START, "text": "Hello there."})
    assert done["status"] == "finished"
    assert np.array_equal(audio_of(messages), reference_audio(server.tts, "Hello there.", max_frames=15))


async def test_word_times_arrive_in_order_after_their_audio(server):
    async with connect(server.ws_url) as ws:
        messages, done = await run_stream(ws, {**START, "encoding": "pcm16", "sample_rate": 16000}, FRAGMENTS)
    words, audio_s, previous_end = [], 0.0, 0.0
    for m in messages:
        if isinstance(m, bytes):
            audio_s += len(m) / 2 / 16000
        elif m["type"] == "words":
            for w in m["words"]:
                assert previous_end <= w["start_s"] + 1e-9 and w["start_s"] <= w["end_s"]
                assert w["end_s"] <= audio_s + 0.01  # only words the audio already sent covers
                previous_end = w["end_s"]
                words.append(w["word"])
    assert words == TEXT.split()
    assert previous_end == pytest.approx(done["audio_s"], abs=0.01)
    assert messages[-1] is done


async def test_cancel_stops_the_audio_and_frees_the_slot(server):
    async with connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "start", **START, "max_frames": 400, "chunk_frames": [1]}))
        await ws.send(json.dumps({"type": "text", "text": "This long sentence would go on for a while"}))
        audio_before = 0
        while audio_before == 0:
            message = await asyncio.wait_for(ws.recv(), 60)
            audio_before += isinstance(message, bytes)
        await ws.send(json.dumps({"type": "cancel"}))
        after = []
        while True:
            message = await asyncio.wait_for(ws.recv(), 60)
            after.append(message)
            if isinstance(message, str) and json.loads(message)["type"] == "done":
                break
        done = json.loads(after[-1])
        assert done["status"] == "cancelled"
        assert sum(isinstance(m, bytes) for m in after) <= 2  # at most what was already on its way
        assert done["frames"] < 20
        server.wait_idle(timeout_s=5)
        # the connection goes on: a new stream works
        messages, done = await run_stream(ws, {**START, "text": "Hi."})
        assert done["status"] == "finished" and audio_of(messages).size > 0


async def test_refused_messages_keep_the_connection(server):
    async with connect(server.ws_url) as ws:
        async def refused(message: str | bytes) -> dict:
            await ws.send(message)
            event = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert event["type"] == "error"
            return event

        assert (await refused("{not json"))["code"] == "malformed_json"
        assert (await refused(b"\x00\x01"))["code"] == "binary_message"
        assert (await refused(json.dumps({"type": "text", "text": "hi"})))["code"] == "no_open_stream"
        assert (await refused(json.dumps({"type": "dance"})))["param"] == "type"
        event = await refused(json.dumps({"type": "start", "voice": "nobody"}))
        assert event["status"] == 400 and "unknown voice 'nobody'" in event["message"]
        event = await refused(json.dumps({"type": "start", "voice": "ryan", "sample_rate": 44100}))
        assert event["param"] == "sample_rate" and "8000, 16000, 24000, 48000" in event["message"]
        event = await refused(json.dumps({"type": "start", "voice": "ryan", "response_format": "wav"}))
        assert event["code"] == "unknown_field"
        messages, done = await run_stream(ws, {**START, "text": "Hi."})
        assert done["status"] == "finished"
        server.wait_idle(timeout_s=5)


@pytest.mark.parametrize(("field", "value"), [("temperature", 1e-300), ("subtalker_temperature", 1e30),
                                             ("repetition_penalty", 1e-300)])
async def test_a_start_with_sampling_out_of_range_is_refused_naming_the_field(server, field, value):
    async with connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "start", **START, "text": "Hi.", field: value}))
        event = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert event == {"type": "error", "status": 400, "param": field, "code": "invalid_request",
                         "message": f"{field}={value!r}; accepted: a number from 0.01 to 100"}
        messages, done = await run_stream(ws, {**START, "text": "Hi."})  # the connection goes on
        assert done["status"] == "finished"
    server.wait_idle(timeout_s=5)


async def test_input_ended_without_text_fails_the_stream(server):
    async with connect(server.ws_url) as ws:
        messages, _ = await run_stream(ws, START, [])
        errors = [m for m in messages if isinstance(m, dict) and m["type"] == "error"]
        assert errors and "without any text" in errors[0]["message"]
        done = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert done["type"] == "done" and done["status"] == "failed"
    server.wait_idle(timeout_s=5)


async def test_a_flooding_client_is_read_more_slowly_and_loses_nothing(custom_voice_tts, tmp_path):
    """255 text messages (230 empty ones, then a sentence one character at a time) from a connection allowed 100
    a second: the server takes them in at its pace (TCP backpressure, counted in the throttle metric), refuses
    none, and the speech is the sentence's."""
    config = ServerConfig(model="tiny-custom-voice", warmup_text="", ws_max_messages_per_s=100,
                          voice_dir=str(tmp_path))
    text = "Hello there, how are you?"
    with running_server(custom_voice_tts, config) as flooded:
        began = time.monotonic()
        async with connect(flooded.ws_url) as ws:
            messages, done = await run_stream(ws, START, [""] * 230 + list(text))
        took = time.monotonic() - began
        assert done["status"] == "finished" and not [m for m in messages if isinstance(m, dict)
                                                      and m["type"] == "error"]
        expected = reference_audio(custom_voice_tts, text, max_frames=15, non_streaming_layout=False)
        assert np.array_equal(audio_of(messages), expected)
        metrics = httpx.get(flooded.url + "/metrics").text
        throttled = float(re.search(r"^qwen3tts_websocket_throttled_seconds_total (\S+)$", metrics, re.M).group(1))
        # No speech can begin before the first character, message 232 (with `start`): the bucket lets 100 through
        # at once, then 100 a second, so the stream takes at least 1.3 s (a bound a slow server only lengthens),
        # and the waits are counted. A loaded server reads more slowly by itself and so waits less than an idle
        # one would: the count need only be there.
        assert took >= 1.3 and throttled > 0.2
