"""Safety and load: every bad input is a 4xx naming the field and the accepted values (and the server keeps
serving); the API key is required when set; a client that disconnects mid-stream frees its engine slot;
20 concurrent clients all get their own correct audio; past --max-streams + --max-queue the next request gets
429 with Retry-After."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from qwen3tts_realtime.audio import to_pcm16

from .conftest import GREEDY, assert_pcm_close, reference_audio

GOOD = {"input": "Hi there.", "voice": "ryan", "response_format": "pcm", "max_frames": 4, **GREEDY}


@pytest.mark.parametrize(("change", "param", "needle"), [
    ({"voice": "nobody"}, "voice", "built-in speakers: ryan, eric"),
    ({"voice": "../../etc/passwd"}, "voice", "invalid voice name"),
    ({"input": "   "}, "input", "non-empty string"),
    ({"input": 42}, "input", "non-empty string"),
    ({"sample_rate": 22050}, "sample_rate", "8000, 16000, 24000, 48000"),
    ({"speed": 3}, "speed", "0.5 to 2.0"),
    ({"encoding": "ulaw", "response_format": "flac"}, "encoding", "accepted there: 'pcm16'"),
    ({"response_format": "aac"}, "response_format", "'pcm', 'wav'"),
    ({"model": "tts-2"}, "model", "'qwen3-tts', 'tiny-custom-voice' (and answers OpenAI's 'tts-1', "),
    ({"language": "Klingon"}, "language", "accepted: Auto, Chinese, English"),
    ({"language": 7}, "language", "must be a string such as 'English' or 'en'"),
    ({"language": "en-US"}, None, None),  # accepted: names, ISO 639 codes and BCP-47 tags alike
    ({"temperature": 0}, "temperature", "temperature=0; accepted: a number from 0.01 to 100"),
    ({"temperature": 1e-300}, "temperature", "temperature=1e-300; accepted: a number from 0.01 to 100"),
    ({"subtalker_temperature": 1e30}, "subtalker_temperature", "=1e+30; accepted: a number from 0.01 to 100"),
    ({"repetition_penalty": 1e-300}, "repetition_penalty", "=1e-300; accepted: a number from 0.01 to 100"),
    ({"top_k": 1_000_000}, "top_k", "top_k=1000000; accepted: an int from 0 (off) to 100000"),
    ({"do_sample": 1}, "do_sample", "do_sample=1; accepted: true or false"),
    ({"max_frames": 0}, "max_frames", "an int from 1"),
    ({"sampel_rate": 8000}, "sampel_rate", "accepted fields"),
    ({"instructions": "Whisper."}, None, None),  # accepted: the tiny CustomVoice is a 1.7B-size config
])
def test_bad_inputs_are_4xx_naming_the_field(server, change, param, needle):
    with server.client() as c:
        r = c.post("/v1/audio/speech", json={**GOOD, **change})
        if param is None:
            assert r.status_code == 200
            return
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["param"] == param and needle in error["message"]
        assert error["type"] == "invalid_request_error"
        assert c.post("/v1/audio/speech", json=GOOD).status_code == 200  # still serving


def test_malformed_and_oversize_bodies(strict):
    auth = strict.auth()
    with strict.client() as c:
        r = c.post("/v1/audio/speech", content=b'{"input": "Hi", ', headers=auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
        r = c.post("/v1/audio/speech", content=b"[1, 2]", headers=auth)
        assert r.status_code == 400 and "JSON object" in r.json()["error"]["message"]
        r = c.post("/v1/audio/speech", json={**GOOD, "input": "x" * 3000}, headers=auth)
        assert r.status_code == 413 and "2048 bytes" in r.json()["error"]["message"]
        r = c.post("/v1/audio/speech", json={**GOOD, "input": "word " * 70}, headers=auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == "text_too_long"
        assert c.post("/v1/audio/speech", json=GOOD, headers=auth).status_code == 200


def test_api_key(strict):
    with strict.client() as c:
        r = c.post("/v1/audio/speech", json=GOOD)
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
        r = c.post("/v1/audio/speech", json=GOOD, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        assert c.get("/v1/voices", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/health").status_code == 200 and c.get("/ready").status_code == 200  # no key needed
        r = c.get("/metrics")  # behind the key unless --metrics-public
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
        assert c.get("/metrics", headers=strict.auth()).status_code == 200
        assert c.post("/v1/audio/speech", json=GOOD, headers=strict.auth()).status_code == 200
        assert c.post("/v1/audio/speech", json=GOOD, headers={"Authorization": "s3cret-key"}).status_code == 200
        r = c.post("/v1/audio/speech", json=GOOD, headers={"Authorization": "wrong"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"

    async def handshake(headers: dict) -> None:
        async with connect(strict.ws_url, additional_headers=headers):
            pass

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(handshake({"Authorization": "Bearer wrong"}))
    assert refused.value.response.status_code == 401
    asyncio.run(handshake(strict.auth()))
    asyncio.run(handshake({"Authorization": "s3cret-key"}))  # a bare key, as some clients send it


async def test_a_browser_sends_the_key_as_a_websocket_subprotocol(strict, caplog):
    """Browsers cannot set headers on a websocket: they offer ["qwen3tts", "bearer.<key>"] and the server
    selects "qwen3tts". The key is never taken from the URL, and never logged."""
    caplog.set_level(logging.DEBUG, logger="qwen3tts_realtime")
    async with connect(strict.ws_url, subprotocols=["qwen3tts", "bearer.s3cret-key"]) as ws:
        assert ws.subprotocol == "qwen3tts"
        await ws.send(json.dumps({"type": "start", "voice": "ryan", "text": "Hi.", **GREEDY, "max_frames": 4}))
        assert json.loads(await ws.recv())["type"] == "started"
        while not (isinstance(m := await ws.recv(), str) and json.loads(m)["type"] == "done"):
            pass
        assert json.loads(m)["status"] == "finished"
    for subprotocols, url in [(["qwen3tts", "bearer.wrong"], strict.ws_url), (["qwen3tts"], strict.ws_url),
                              (["qwen3tts"], strict.ws_url + "?api_key=s3cret-key"),
                              (["qwen3tts"], strict.ws_url + "?key=s3cret-key&token=s3cret-key")]:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, subprotocols=subprotocols):
                pass
        assert refused.value.response.status_code == 401
    assert "s3cret-key" not in caplog.text
    await asyncio.to_thread(strict.wait_idle)


async def test_ninth_concurrent_request_gets_429(strict):
    """8 websocket streams waiting for text take the server's 4 stream places and 4 queue places; the ninth is
    refused. In the engine they wait for text in its queue, holding no slot (a slot is taken with the text)."""
    sockets = [await connect(strict.ws_url, additional_headers=strict.auth()) for _ in range(9)]
    try:
        for ws in sockets[:8]:
            await ws.send(json.dumps({"type": "start", "voice": "ryan", "max_frames": 4, **GREEDY}))
            assert json.loads(await ws.recv())["type"] == "started"
        async with httpx.AsyncClient(base_url=strict.url, headers=strict.auth()) as c:
            r = await c.post("/v1/audio/speech", json=GOOD)
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            assert "4 streams generating and 4 waiting" in r.json()["error"]["message"]
        await sockets[8].send(json.dumps({"type": "start", "voice": "ryan"}))
        assert json.loads(await sockets[8].recv())["status"] == 429
        stats = strict.tts.stats()
        assert stats["active_streams"] == 0 and stats["queued_streams"] == 8
        for ws in sockets[:8]:
            await ws.send(json.dumps({"type": "cancel"}))
            assert json.loads(await ws.recv())["status"] == "cancelled"
    finally:
        for ws in sockets:
            await ws.close()
    await asyncio.to_thread(strict.wait_idle)
    async with httpx.AsyncClient(base_url=strict.url, headers=strict.auth()) as c:
        assert (await c.post("/v1/audio/speech", json=GOOD)).status_code == 200


def test_disconnect_mid_stream_frees_the_slot(server):
    body = {**GOOD, "input": "This is a long sentence that would go on for a while.", "max_frames": 400,
            "chunk_frames": [1]}
    steps_before = server.tts.stats()["steps"]
    with server.client() as c, c.stream("POST", "/v1/audio/speech", json=body) as r:
        assert r.status_code == 200
        next(r.iter_raw())  # the first audio, then hang up
    stats = server.wait_idle(timeout_s=5)
    assert stats["engine"]["steps"] - steps_before < 100  # stopped long before its 400 frames
    with server.client() as c:
        metrics = c.get("/metrics").text
    assert 'qwen3tts_streams_total{endpoint="speech",status="disconnected"}' in metrics


async def test_twenty_concurrent_clients_get_their_own_audio(server):
    texts = {("ryan", "Hello there."): None, ("eric", "Good morning!"): None}
    for voice, text in texts:
        texts[voice, text] = to_pcm16(reference_audio(server.tts, text, voice, max_frames=6))

    async def one(c: httpx.AsyncClient, i: int) -> tuple[tuple[str, str], bytes]:
        key = list(texts)[i % 2]
        body = {**GOOD, "voice": key[0], "input": key[1], "max_frames": 6}
        async with c.stream("POST", "/v1/audio/speech", json=body) as r:
            assert r.status_code == 200
            return key, b"".join([chunk async for chunk in r.aiter_raw()])

    async with httpx.AsyncClient(base_url=server.url, timeout=120) as c:
        results = await asyncio.gather(*(one(c, i) for i in range(20)))
    for key, data in results:
        assert_pcm_close(np.frombuffer(data, "<i2"), texts[key], lsb=2)
    assert max(int(b) for b in server.tts.stats()["batch_sizes"]) > 1  # they were batched
    await asyncio.to_thread(server.wait_idle)
