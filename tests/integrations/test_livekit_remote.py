"""The LiveKit plugin on a `RemoteEngine`: `TTS(engine=RemoteEngine(url), voice="ryan")` speaks through a real
server (around the tiny CustomVoice checkpoint) what it speaks through the in-process engine behind it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from qwen3tts_realtime import SamplingParams
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
