"""`RemoteEngine`: the `TTSEngine` protocol over the server's websocket. Driven as the Pipecat service drives
an engine (resolve the voice in a thread, open_stream, push_text, end_input, iterate), it yields the chunks
the in-process engine yields for the same request; cancel frees the server's slot; refusals raise."""

from __future__ import annotations

import asyncio
import re
import urllib.request

import numpy as np
import pytest

from qwen3tts_realtime import InvalidInputError, SamplingParams
from qwen3tts_realtime.client import RemoteEngine, RemoteEngineError, RemoteVoice
from qwen3tts_realtime.engine.protocol import TTSEngine
from qwen3tts_realtime.engine.stream import StreamState

from .conftest import reference_audio

FRAGMENTS = ["Sure, I can", " help with", " that."]


@pytest.fixture
def engine(server):
    engine = RemoteEngine(server.url)
    yield engine
    engine.close()


async def test_pipecat_style_incremental_usage(server, engine):
    assert isinstance(engine, TTSEngine) and engine.sample_rate == 24000
    await asyncio.to_thread(engine.warmup)
    voice = await asyncio.to_thread(engine.resolve_voice, "ryan")
    assert isinstance(voice, RemoteVoice) and (voice.kind, voice.name) == ("speaker", "ryan")
    stream = engine.open_stream(voice=voice, language="English", sampling=SamplingParams.greedy(),
                                max_new_frames=12)
    for fragment in FRAGMENTS:
        stream.push_text(fragment)
    stream.end_input()
    chunks = [chunk async for chunk in stream]

    local = server.tts.open_stream(voice="ryan", language="English", sampling=SamplingParams.greedy(),
                                   max_new_frames=12)
    for fragment in FRAGMENTS:
        local.push_text(fragment)
    local.end_input()
    expected = [chunk async for chunk in local]

    audio = [c.audio for c in chunks if c.audio.size]
    assert [a.size for a in audio] == [c.audio.size for c in expected]
    assert np.array_equal(np.concatenate(audio), np.concatenate([c.audio for c in expected]))
    assert [c.is_last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert [c.first_frame for c in chunks[:-1]] == [c.first_frame for c in expected]
    assert stream.state is StreamState.FINISHED
    with pytest.raises(InvalidInputError, match="after end_input"):
        stream.push_text("more")


def test_whole_text_from_a_thread(server, engine):
    """Outside an event loop the stream is iterated with `for`, like a Qwen3TTS stream."""
    stream = engine.open_stream(voice="eric", text="Hello there.", sampling=SamplingParams.greedy(),
                                max_new_frames=8)
    audio = np.concatenate([chunk.audio for chunk in stream])
    assert np.array_equal(audio, reference_audio(server.tts, "Hello there.", "eric", max_frames=8))
    assert engine.stats()["active_streams"] == 0
    assert engine.model_type == "custom_voice" and engine.speakers == ["ryan", "eric"]


async def test_cancel_frees_the_server_slot(server, engine):
    stream = engine.open_stream(voice="ryan", max_new_frames=400, chunk_frames=(1,))
    stream.push_text("This is a long sentence that would go on for a while")
    first = await anext(stream)
    assert first.num_frames == 1 and not first.is_last
    stream.cancel()
    assert [chunk async for chunk in stream] == []
    assert stream.state is StreamState.CANCELLED
    await asyncio.to_thread(server.wait_idle, 5)


async def test_refusals_raise(server, engine):
    with pytest.raises(InvalidInputError, match="no voice named 'nobody'"):
        await asyncio.to_thread(engine.resolve_voice, "nobody")
    stream = engine.open_stream(voice="nobody", text="Hi.")
    with pytest.raises(InvalidInputError, match="unknown voice 'nobody'"):
        await anext(stream)
    stream = engine.open_stream(voice="ryan", language="Klingon", text="Hi.")
    with pytest.raises(InvalidInputError, match="language 'Klingon' is not supported"):
        await anext(stream)
    unreachable = RemoteEngine("http://127.0.0.1:9")
    stream = unreachable.open_stream(voice="ryan", text="Hi.")
    with pytest.raises(RemoteEngineError, match="cannot stream"):
        await anext(stream)
    with pytest.raises(RemoteEngineError, match="cannot reach"):
        await asyncio.to_thread(unreachable.stats)
    await unreachable.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        unreachable.open_stream(voice="ryan")


async def test_wrong_key_and_capacity_are_remote_engine_errors(strict):
    wrong = RemoteEngine(strict.url, api_key="wrong")
    with pytest.raises(RemoteEngineError) as refused:
        await anext(wrong.open_stream(voice="ryan", text="Hi."))
    assert refused.value.status == 401
    with pytest.raises(RemoteEngineError) as refused:
        await asyncio.to_thread(wrong.resolve_voice, "ryan")
    assert refused.value.status == 401
    await wrong.aclose()


def accepted_websockets(server) -> float:
    """`qwen3tts_websocket_connections_total` from the server's /metrics: handshakes the server accepted."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return float(re.search(r"^qwen3tts_websocket_connections_total (\S+)$", text, re.M).group(1))


def test_sequential_streams_reuse_pooled_connections(server):
    """100 streams one after another (finished, cancelled and refused among them) open at most 4 connections,
    counted by the server, and each stream's audio is what a fresh connection gives."""
    engine = RemoteEngine(server.url, pool_size=2)
    before = accepted_websockets(server)
    expected = reference_audio(server.tts, "Hi there.", "ryan", max_frames=3)
    for i in range(100):
        if i % 10 == 3:  # a refused start leaves nothing open: the connection serves the next stream
            with pytest.raises(InvalidInputError, match="unknown voice"):
                list(engine.open_stream(voice="nobody", text="Hi."))
        elif i % 10 == 7:  # barge-in: cancelled after its first chunk, the server's `done` read, then reused
            stream = engine.open_stream(voice="ryan", text="A long sentence to cut short.", max_new_frames=200,
                                        chunk_frames=(1,))
            next(iter(stream))
            stream.cancel()
            assert list(stream) == [] and stream.state is StreamState.CANCELLED
        else:
            stream = engine.open_stream(voice="ryan", text="Hi there.", sampling=SamplingParams.greedy(),
                                        max_new_frames=3)
            assert np.array_equal(np.concatenate([c.audio for c in stream]), expected)
    assert accepted_websockets(server) - before <= 4
    assert engine.connections_opened <= 4
    engine.close()
    server.wait_idle(5)


def test_prewarm_opens_the_connection_ahead_of_the_first_stream(server):
    engine = RemoteEngine(server.url)
    engine.prewarm().result(timeout=10)
    assert engine.connections_opened == 1
    stream = engine.open_stream(voice="ryan", text="Hi.", sampling=SamplingParams.greedy(), max_new_frames=2)
    assert list(stream)[-1].is_last
    assert engine.connections_opened == 1  # the first stream used it
    engine.close()


async def test_a_connection_dropping_mid_stream_fails_only_its_stream(server):
    """The network drops one stream's connection: that stream fails with a retryable error (no HTTP status),
    a stream on another connection goes on to its end, and the next stream gets a fresh connection."""
    engine = RemoteEngine(server.url)
    doomed = engine.open_stream(voice="ryan", text="A long sentence that goes on.", max_new_frames=300,
                                chunk_frames=(1,))
    other = engine.open_stream(voice="eric", text="Hello there.", sampling=SamplingParams.greedy(),
                               max_new_frames=8)
    await anext(doomed)
    [remote] = [r for r in engine._open if r.channel is doomed._channel]
    engine._loop.call_soon_threadsafe(remote.ws.transport.abort)  # what a dead network looks like
    with pytest.raises(RemoteEngineError, match="dropped mid-stream") as failure:
        async for _ in doomed:
            pass
    assert failure.value.status is None
    audio = np.concatenate([c.audio async for c in other])
    # the same speech as alone; decoded in one batch with the doomed stream (as it is when their chunks fall due
    # together) the codec decoder rounds a few float32 ulps differently: ~6e-6 seen, well under one 16-bit step
    assert np.abs(audio - reference_audio(server.tts, "Hello there.", "eric", max_frames=8)).max() < 1e-4
    again = engine.open_stream(voice="ryan", text="Hi.", sampling=SamplingParams.greedy(), max_new_frames=2)
    assert [c async for c in again][-1].is_last
    await engine.aclose()
    await asyncio.to_thread(server.wait_idle, 5)
