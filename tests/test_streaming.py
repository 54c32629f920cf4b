"""Streaming equals offline: the concatenated chunks of `tts.open_stream` are `generate()`'s codes and
audio, for every golden greedy case and several chunk schedules; voices are warm after first use; ending,
cancelling and dropping a stream free it."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time

import numpy as np
import pytest
import torch

from qwen3tts_realtime import Qwen3TTS, SamplingParams
from tests.golden import golden_cases, load_golden_output
from tests.test_generate_golden import voice_for

GREEDY = [c for c in golden_cases("generate") if not c["call"]["sampling"]["do_sample"]]
SCHEDULES = [(1,), (1, 2, 4, 8), (3,)]


@pytest.fixture(scope="module")
def models(golden_models):
    return golden_models


def request_args(call: dict) -> dict:
    return dict(
        language=call["language"],
        sampling=SamplingParams.greedy(),
        non_streaming_layout=call.get("non_streaming_mode"),
        max_new_frames=call["sampling"]["max_new_tokens"] - 1,
    )


def collect(tts: Qwen3TTS, text: str, voice, **kwargs):
    with tts.open_stream(text, voice=voice, **kwargs) as stream:
        return list(stream)


def check_chunks(chunks, schedule):
    assert [c.is_last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    first = 0
    for i, c in enumerate(chunks):
        assert c.first_frame == first
        assert c.audio.dtype == np.float32 and c.audio.shape == (c.num_frames * 1920,)
        if not c.is_last:
            assert c.num_frames == schedule[min(i, len(schedule) - 1)]
        first += c.num_frames


@pytest.mark.parametrize("schedule", SCHEDULES, ids=str)
@pytest.mark.parametrize("case", GREEDY, ids=[c["name"] for c in GREEDY])
def test_stream_equals_generate_float64(models, case, schedule):
    tts = models(case["call"]["model"], "float64")
    voice = voice_for(tts, case["call"])
    args = request_args(case["call"])
    offline = tts.generate(case["call"]["text"], voice=voice, **args)

    chunks = collect(tts, case["call"]["text"], voice, chunk_frames=schedule, **args)

    check_chunks(chunks, schedule)
    assert torch.equal(torch.cat([c.codes for c in chunks]), offline.codes)
    audio = np.concatenate([c.audio for c in chunks])
    assert audio.shape == offline.audio.shape
    assert np.abs(audio - offline.audio).max() <= 1e-6


@pytest.mark.parametrize("case", GREEDY, ids=[c["name"] for c in GREEDY])
def test_stream_matches_official_float32(models, case):
    tts = models(case["call"]["model"])
    expected = load_golden_output(case)

    chunks = collect(tts, case["call"]["text"], voice_for(tts, case["call"]), **request_args(case["call"]))

    assert torch.equal(torch.cat([c.codes for c in chunks]), expected["codes"])
    assert np.abs(np.concatenate([c.audio for c in chunks]) - expected["audio"].numpy()).max() <= 2e-4


def test_first_chunk_is_one_frame_with_the_default_schedule(models):
    tts = models("custom_voice")
    with tts.open_stream("Hello there.", voice=tts.speaker("ryan"), language="English", seed=3) as stream:
        first = next(iter(stream))
    assert first.first_frame == 0 and first.num_frames == 1 and first.audio.shape == (1920,)


async def test_async_stream(models):
    tts = models("custom_voice")
    voice = tts.speaker("ryan")
    offline = tts.generate("Please hold.", voice=voice, language="English", seed=5)
    async with tts.open_stream("Please hold.", voice=voice, language="English", seed=5) as stream:
        chunks = [c async for c in stream]
    assert torch.equal(torch.cat([c.codes for c in chunks]), offline.codes)
    assert chunks[-1].is_last


async def test_a_stream_is_iterated_with_for_or_async_for_wherever_it_was_made(models):
    """Made in a worker thread, consumed in the event loop; made in the loop, consumed in a thread."""
    tts = models("custom_voice")
    voice = tts.speaker("ryan")
    offline = tts.generate("Please hold.", voice=voice, language="English", seed=6)

    made_in_thread = await asyncio.to_thread(tts.open_stream, "Please hold.", voice=voice, language="English", seed=6)
    async with made_in_thread:
        from_loop = [c async for c in made_in_thread]
    made_in_loop = tts.open_stream("Please hold.", voice=voice, language="English", seed=6)
    from_thread = await asyncio.to_thread(list, made_in_loop)

    for chunks in (from_loop, from_thread):
        assert torch.equal(torch.cat([c.codes for c in chunks]), offline.codes)
        assert np.abs(np.concatenate([c.audio for c in chunks]) - offline.audio).max() <= 1e-4  # float32 decode


def test_open_stream_validates_at_once(models):
    tts = models("custom_voice")
    with pytest.raises(ValueError, match="chunk_frames"):
        tts.open_stream("Hi.", voice=tts.speaker("ryan"), chunk_frames=(0,))
    with pytest.raises(ValueError, match="language"):
        tts.open_stream("Hi.", voice=tts.speaker("ryan"), language="Elvish")


def test_warm_voice_equals_cold_and_is_computed_once(golden, monkeypatch):
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "base", dtype="float64")
    case = next(c for c in GREEDY if c["name"] == "base_icl_streaming_layout")
    voice = voice_for(tts, case["call"])
    args = request_args(case["call"])
    cold = tts.generate(case["call"]["text"], voice=voice, **args)

    calls = {"embed": 0, "encode": 0}
    monkeypatch.setattr(tts.speaker_encoder, "embed", lambda *a: calls.__setitem__("embed", 1 / 0))
    monkeypatch.setattr(tts.codec, "encode_samples", lambda *a: calls.__setitem__("encode", 1 / 0))
    for _ in range(2):
        chunks = collect(tts, case["call"]["text"], voice, **args)
        assert torch.equal(torch.cat([c.codes for c in chunks]), cold.codes)
        assert np.abs(np.concatenate([c.audio for c in chunks]) - cold.audio).max() <= 1e-6
    stats = tts.stats()
    assert stats["voice_prefix_computations"] == 1
    assert stats["decoder_primings"] == 1
    tts.close()


def wait_until(predicate, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_cancel_stops_at_once_and_frees_the_slot(models):
    tts = models("custom_voice")
    stream = tts.open_stream("Your order number is four two seven.", voice=tts.speaker("ryan"), language="English",
                             chunk_frames=(1,), seed=1)
    it = iter(stream)
    next(it)
    stream.cancel()
    assert list(it) == []
    assert stream.state.value == "cancelled"
    wait_until(lambda: tts.stats()["active_streams"] == 0)


def test_leaving_the_block_frees_the_stream(models):
    tts = models("custom_voice")
    with tts.open_stream("Your order number is four two seven.", voice=tts.speaker("ryan"), seed=2) as stream:
        next(iter(stream))
    wait_until(lambda: tts.stats()["active_streams"] == 0)


def test_an_abandoned_stream_is_freed_when_garbage_collected(models):
    tts = models("custom_voice")
    stream = tts.open_stream("Your order number is four two seven.", voice=tts.speaker("ryan"), seed=2,
                             max_new_frames=200)
    next(iter(stream))
    del stream
    gc.collect()
    wait_until(lambda: tts.stats()["active_streams"] == 0 and tts.stats()["queued_streams"] == 0)


def test_a_failing_stream_does_not_harm_others(models, monkeypatch):
    tts = models("custom_voice")
    voice = tts.speaker("ryan")
    good = tts.open_stream("Hello there.", voice=voice, language="English", seed=4)
    first = next(good)  # started before the failure is injected
    original = tts.requests.build

    def failing(spec):
        raise RuntimeError("boom")

    monkeypatch.setattr(tts.requests, "build", failing)
    bad = tts.open_stream("Hello there.", voice=voice, language="English", seed=4)
    with pytest.raises(RuntimeError, match="boom"):
        list(bad)
    monkeypatch.setattr(tts.requests, "build", original)
    rest = list(good)
    assert not first.is_last and rest[-1].is_last


async def test_async_cancel_from_another_task(models):
    tts = models("custom_voice")
    stream = tts.open_stream(
        "Your order number is four two seven.", voice=tts.speaker("ryan"), chunk_frames=(1,), seed=8
    )
    got = []

    async def consume():
        async for chunk in stream:
            got.append(chunk)

    task = asyncio.create_task(consume())
    while not got:
        await asyncio.sleep(0.01)
    stream.cancel()
    await asyncio.wait_for(task, 5)
    assert not got[-1].is_last


def test_long_text_is_split_into_consecutive_generations_streamed_seamlessly(golden):
    """A text beyond one generation's budget is spoken as sentence groups with the same voice; the stream
    equals generate(), which splits the same way, and its audio is one continuous exact decode."""
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice", dtype="float64")
    small = type(tts.generation_defaults)(max_new_tokens=261)  # room for 21 tokens each
    tts.requests.runtime = dataclasses.replace(tts.requests.runtime, generation_defaults=small)
    voice = tts.speaker("ryan")
    text = "Hello there. How are you today? I am fine, thanks. See you on Monday then. Bye now!"
    segments = tts.requests.segment_text(text)
    assert len(segments) > 1 and " ".join(segments) == text

    offline = tts.generate(text, voice=voice, language="English", seed=11)
    chunks = collect(tts, text, voice, language="English", seed=11)

    check_chunks(chunks, (1, 2, 4, 8))
    assert torch.equal(torch.cat([c.codes for c in chunks]), offline.codes)
    assert np.abs(np.concatenate([c.audio for c in chunks]) - offline.audio).max() <= 1e-6
    assert offline.audio.shape == (offline.codes.shape[0] * 1920,)
    tts.close()
