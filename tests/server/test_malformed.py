"""Malformed input is never a 500 nor a silent drop. POST /v1/audio/speech answers a 4xx JSON error naming the
field: a lone surrogate in a string, an integer of more than 4300 digits, JSON nested deeper than the parser
goes, a body that is not JSON (415). On the websocket the same input gets an `error` naming the field, then a
`done` with status "failed", then a normal close; the open stream's slot is freed. A client that hangs up
halfway through its body is counted as a disconnect, not as an internal error, and logs no traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK

from qwen3tts_realtime.server._limits import read_limited
from qwen3tts_realtime.server._requests import ApiError

from .conftest import GREEDY
from .test_metrics import scrape, value

GOOD = {"input": "Hi there.", "voice": "ryan", "response_format": "pcm", "max_frames": 4, **GREEDY}
HUGE = "9" * 5000


def post_raw(server, body: bytes, content_type: str | None = "application/json"):
    headers = {} if content_type is None else {"Content-Type": content_type}
    with server.client() as c:
        return c.post("/v1/audio/speech", content=body, headers=headers)


def body_with(raw_field: str) -> bytes:
    """GOOD with one more member written as raw JSON text (to send what json.dumps would never write)."""
    return (json.dumps(GOOD)[:-1] + ", " + raw_field + "}").encode()


@pytest.mark.parametrize(("raw_field", "param", "needle"), [
    ('"input": "hi \\ud800 there"', "input", "input holds a lone surrogate (\\ud800 at character 3)"),
    ('"voice": "\\udc00ryan"', "voice", "voice holds a lone surrogate (\\udc00 at character 0)"),
    ('"instructions": "Whisper \\udfff."', "instructions", "lone surrogate"),
    ('"x\\ud800": 1', "x\\ud800", "a field name in the body holds a lone surrogate"),
    (f'"seed": {HUGE}', "seed", "seed is an integer of 5000 digits; numbers are accepted with at most 4300"),
    (f'"temperature": -{HUGE}', "temperature", "temperature is an integer of 5000 digits"),
    (f'"chunk_frames": [1, {HUGE}]', "chunk_frames", "chunk_frames[1] is an integer of 5000 digits"),
])
def test_unusable_strings_and_numbers_are_400_naming_the_field(server, raw_field, param, needle):
    r = post_raw(server, body_with(raw_field))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and needle in error["message"], error
    assert error["code"] in ("invalid_unicode", "number_too_long")
    assert post_raw(server, json.dumps(GOOD).encode()).status_code == 200  # still serving


def test_a_raw_utf8_surrogate_is_refused_like_an_escaped_one(server):
    r = post_raw(server, b'{"input": "hi \xed\xa0\x80 there", "voice": "ryan"}')
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 50_000 + b"1" + b"}" * 50_000])
def test_json_nested_too_deeply_is_400(server, body):
    r = post_raw(server, body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "json_too_deep" and "nested too deeply" in r.json()["error"]["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "image/png", "application/x-www-form-urlencoded"])
def test_the_speech_route_takes_only_json(server, content_type):
    r = post_raw(server, json.dumps(GOOD).encode(), content_type)
    assert r.status_code == 415
    error = r.json()["error"]
    assert error["code"] == "unsupported_media_type" and error["param"] == "Content-Type"
    assert f"Content-Type {content_type!r} is not accepted; send the body as application/json" in error["message"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json", None])
def test_json_media_types_and_no_content_type_are_read_as_json(server, content_type):
    assert post_raw(server, json.dumps(GOOD).encode(), content_type).status_code == 200


async def finish(ws) -> tuple[list, dict, dict]:
    """Read to the end of a connection ended by a malformed message: (messages before the error, the error,
    the done); the close that follows is a normal one."""
    before, error = [], None
    while True:
        message = await asyncio.wait_for(ws.recv(), 30)
        event = json.loads(message) if isinstance(message, str) else message
        if isinstance(event, dict) and event["type"] == "error":
            error = event
        elif isinstance(event, dict) and event["type"] == "done":
            break
        elif error is None:
            before.append(event)
    with pytest.raises(ConnectionClosedOK):
        await asyncio.wait_for(ws.recv(), 30)
    assert ws.close_code == 1000
    return before, error, event


@pytest.mark.parametrize(("message", "param", "code"), [
    ('{"type": "start", "voice": "ryan", "text": "hi \\ud800 there"}', "text", "invalid_unicode"),
    ('{"type": "start", "voice": "\\ud800"}', "voice", "invalid_unicode"),
    (f'{{"type": "start", "voice": "ryan", "seed": {HUGE}}}', "seed", "number_too_long"),
    ("[" * 100_000 + "]" * 100_000, None, "json_too_deep"),
])
async def test_a_malformed_start_gets_error_failed_done_and_a_normal_close(server, message, param, code):
    before = scrape(server)
    async with connect(server.ws_url) as ws:
        await ws.send(message)
        messages, error, done = await finish(ws)
    assert messages == []
    assert error["type"] == "error" and error["status"] == 400
    assert (error["param"], error["code"]) == (param, code)
    assert done["status"] == "failed" and done["frames"] == 0 and done["voice_cache"] is None
    after = scrape(server)
    assert value(after, "qwen3tts_errors_total", kind="invalid_request") - \
        value(before, "qwen3tts_errors_total", kind="invalid_request") == 1


async def test_a_malformed_text_message_fails_the_open_stream_and_frees_its_slot(server):
    before = scrape(server)
    async with connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "start", "voice": "ryan", "max_frames": 400, **GREEDY}))
        assert json.loads(await ws.recv())["type"] == "started"
        await ws.send(json.dumps({"type": "text", "text": "Hello there, "}))
        await ws.send('{"type": "text", "text": "and \\ud83d then"}')  # half of a surrogate pair
        _, error, done = await finish(ws)
    assert (error["param"], error["code"]) == ("text", "invalid_unicode")
    assert "text holds a lone surrogate (\\ud83d at character 4)" in error["message"]
    assert done["status"] == "failed"
    server.wait_idle(timeout_s=5)
    after = scrape(server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("qwen3tts_streams_total", endpoint="stream", status="failed") == 1
    assert moved("qwen3tts_errors_total", kind="invalid_request") == 1
    assert moved("qwen3tts_errors_total", kind="generation") == 0  # the client's fault, counted once


def test_a_client_hanging_up_mid_body_is_a_disconnect_not_an_internal_error(server, caplog):
    before = scrape(server)
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n" + json.dumps(GOOD).encode()[:20])
    deadline = time.monotonic() + 10
    while value(after := scrape(server), "qwen3tts_errors_total", kind="disconnect") == \
            value(before, "qwen3tts_errors_total", kind="disconnect"):
        assert time.monotonic() < deadline, "the disconnect was not counted"
        time.sleep(0.05)
    assert value(after, "qwen3tts_errors_total", kind="disconnect") - \
        value(before, "qwen3tts_errors_total", kind="disconnect") == 1
    assert value(after, "qwen3tts_errors_total", kind="internal") == value(before, "qwen3tts_errors_total",
                                                                           kind="internal")
    assert not [r for r in caplog.records if r.name.startswith("qwen3tts_realtime") and r.levelno >= logging.ERROR]


def test_a_content_length_of_thousands_of_digits_is_413_not_a_crash():
    """uvicorn refuses such a header itself; behind another ASGI server the body reader must not crash."""

    async def no_body():
        return
        yield

    with pytest.raises(ApiError) as refused:
        asyncio.run(read_limited({"content-length": HUGE}, no_body(), 1024, "the request body is", "--max-body-bytes"))
    assert refused.value.status == 413
    assert asyncio.run(read_limited({"content-length": "0" * 5000 + "2"}, no_body(), 1024, "x", "y")) == b""
