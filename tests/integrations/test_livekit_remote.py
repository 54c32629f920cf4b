"""The LiveKit plugin on a `RemoteEngine`: `TTS(engine=RemoteEngine(url), voice="ryan")` speaks through a real
server (around the tiny CustomVoice checkpoint) what it speaks through the in-process engine behind it."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest
from livekit.agents import APIConnectionError, APIConnectOptions, APIStatusError

from qwen3tts_realtime import Qwen3TTS, SamplingParams
from qwen3tts_realtime.livekit import TTS

pytest.importorskip("websockets")

from qwen3tts_realtime.client import RemoteEngine  # noqa: E402


async def collect_pcm(engine) -> np.ndarray:
    t = TTS(engine=engine, voice="ryan", sampling=SamplingParams.greedy())
    try:
        frame = await t.synthesize("Hello there.").collect()
    finally:
        await t.aclose()
    assert (frame.sample_rate, frame.num_channels) == (24000, 1)
    return np.frombuffer(bytes(frame.data), dtype=np.int16)


async def test_synthesize_through_a_remote_engine_equals_the_in_process_engine(remote_server):
    remote = RemoteEngine(remote_server.url)
    try:
        got = await collect_pcm(remote)
    finally:
        await remote.aclose()
    expected = await collect_pcm(remote_server.tts)  # the in-process engine the server runs

    assert got.size > 0 and got.shape == expected.shape
    assert np.abs(got.astype(np.int32) - expected.astype(np.int32)).max() <= 1
    await asyncio.to_thread(remote_server.wait_idle, 5)  # the server holds no stream afterwards


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_remote_failures_are_livekit_errors_retried_only_where_a_retry_helps(golden, tmp_path):
    """A real `RemoteEngine` against a real server that is down, then started: a refused connection is a
    retryable `APIConnectionError` (LiveKit retries it), and the same TTS speaks once the server is up; a wrong
    API key is an `APIStatusError` 401 that is not retried."""
    from qwen3tts_realtime.server import ServerConfig
    from tests.server.conftest import running_server

    port = free_port()
    remote = RemoteEngine(f"http://127.0.0.1:{port}", timeout_s=5)
    t = TTS(engine=remote, voice="ryan", sampling=SamplingParams.greedy(), max_new_frames=4)
    errors = []
    t.on("error", errors.append)
    retry_once = APIConnectOptions(max_retry=1, retry_interval=0.05)
    model = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")
    try:
        with pytest.raises(APIConnectionError) as down:
            await t.synthesize("Hello there.", conn_options=retry_once).collect()
        assert down.value.retryable and [e.recoverable for e in errors] == [True, False]  # retried, then given up

        config = ServerConfig(model="tiny-custom-voice", voice_dir=str(tmp_path / "voices"))
        with running_server(model, config, port=port):
            frame = await t.synthesize("Hello there.", conn_options=retry_once).collect()
        assert len(frame.data) > 0

        keyed = ServerConfig(model="tiny-custom-voice", voice_dir=str(tmp_path / "voices"), api_key="k3y")
        with running_server(model, keyed) as server:
            unkeyed = RemoteEngine(server.url, timeout_s=5)
            t401 = TTS(engine=unkeyed, voice="ryan", max_new_frames=4)
            try:
                with pytest.raises(APIStatusError) as refused:
                    await t401.synthesize("Hello there.", conn_options=retry_once).collect()
                assert refused.value.status_code == 401 and not refused.value.retryable
            finally:
                await t401.aclose()
                await unkeyed.aclose()
    finally:
        await t.aclose()
        await remote.aclose()
        model.close()
