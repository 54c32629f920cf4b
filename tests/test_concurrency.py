"""Many streams on one engine: each stream's output equals the same request run alone; cancellation frees
everything; the queue never drops requests beyond the cap."""

from __future__ import annotations

import gc
import random
import threading
import time

import numpy as np
import pytest
import torch

from qwen3tts_realtime import Qwen3TTS, SamplingParams
from tests.streams import stream_concurrently

TEXTS = [
    "Hello there, how can I help you today?",
    "Your order number is four two seven.",
    "Please hold while I transfer your call.",
    "Thanks!",
]


@pytest.fixture(scope="module")
def models(golden_models):
    return lambda kind: golden_models(kind, "float64")


def requests_for(tts: Qwen3TTS, golden, kind: str) -> list[dict]:
    if kind == "custom_voice":
        voices = [tts.speaker("ryan"), tts.speaker("eric"), tts.speaker("ryan", instruct="Speak warmly.")]
    elif kind == "base":
        ref = str(golden / "inputs" / "ref_24k.wav")
        voices = [
            tts.clone_voice(ref, ref_text="This is the reference voice."),
            tts.clone_voice(ref, x_vector_only=True),
        ]
    else:
        voices = [tts.design_voice("A calm voice."), tts.design_voice("A bright, fast voice.")]
    out = []
    for i in range(8):
        out.append(dict(text=TEXTS[i % len(TEXTS)], voice=voices[i % len(voices)],
                        language=["English", "Auto"][i % 2], non_streaming_layout=[None, False, True][i % 3],
                        max_new_frames=10 + 3 * i, sampling=SamplingParams.greedy()))
    return out


@pytest.mark.parametrize("kind", ["custom_voice", "base", "voice_design"])
def test_eight_concurrent_streams_equal_each_alone(models, golden, kind):
    tts = models(kind)
    reqs = requests_for(tts, golden, kind)
    alone = [tts.generate(r.pop("text"), voice=r.pop("voice"), **r) for r in [dict(r) for r in reqs]]

    results = stream_concurrently(tts, reqs, stagger_s=0.02)  # staggered starts: streams join a running batch

    for chunks, expected in zip(results, alone, strict=True):
        assert torch.equal(torch.cat([c.codes for c in chunks]), expected.codes)
        assert np.abs(np.concatenate([c.audio for c in chunks]) - expected.audio).max() <= 1e-6
    assert max(tts.stats()["batch_sizes"]) > 1  # they really ran together
    assert max(tts.stats()["decode_batch_sizes"]) > 1  # and decoded together


@pytest.mark.parametrize("backend", ["auto", "onednn"])
def test_batched_equals_alone_in_float32(golden_models, golden, backend):
    """The default dtype too: codes exact with the larger layers packed ("auto") or every layer ("onednn")."""
    tts = golden_models("custom_voice", "float32", linear_backend=backend)
    reqs = requests_for(tts, golden, "custom_voice")
    alone = [tts.generate(r.pop("text"), voice=r.pop("voice"), **r) for r in [dict(r) for r in reqs]]

    results = stream_concurrently(tts, reqs, stagger_s=0.02)

    for chunks, expected in zip(results, alone, strict=True):
        assert torch.equal(torch.cat([c.codes for c in chunks]), expected.codes)
        # the batched decoder rounds float32 differently from a one-row decode: audio within rounding
        assert np.abs(np.concatenate([c.audio for c in chunks]) - expected.audio).max() <= 1e-4
    assert max(tts.stats()["batch_sizes"]) > 1


def test_seeded_sampling_in_a_batch_equals_alone(models):
    tts = models("custom_voice")
    voice = tts.speaker("ryan")
    alone = [tts.generate(t, voice=voice, language="English", seed=i, max_new_frames=12) for i, t in enumerate(TEXTS)]
    streams = [
        tts.open_stream(t, voice=voice, language="English", seed=i, max_new_frames=12) for i, t in enumerate(TEXTS)
    ]
    for stream, expected in zip(streams, alone, strict=True):
        assert torch.equal(torch.cat([c.codes for c in stream]), expected.codes)


def test_requests_beyond_the_cap_queue_and_all_complete(golden):
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")
    tts.max_streams = 2
    voice = tts.speaker("ryan")
    alone = [tts.generate("Hello.", voice=voice, max_new_frames=4, seed=i).codes for i in range(6)]
    streams = [tts.open_stream("Hello.", voice=voice, max_new_frames=4, seed=i) for i in range(6)]
    for s, expected in zip(streams, alone, strict=True):
        chunks = list(s)
        assert chunks[-1].is_last and torch.equal(torch.cat([c.codes for c in chunks]), expected)
    stats = tts.stats()
    assert max(stats["batch_sizes"]) == 2  # never more than the cap at once, and the cap was reached
    assert sum(size * steps for size, steps in stats["batch_sizes"].items()) == sum(len(c) for c in alone)
    tts.close()


def test_no_chunk_after_cancel_and_many_cycles_leak_nothing(models):
    tts = models("custom_voice")
    voice = tts.speaker("ryan")
    tts.warmup()
    threads_before = threading.active_count()
    gc.collect()
    objects_before = len(gc.get_objects())
    rng = random.Random(0)
    for i in range(500):
        s = tts.open_stream(voice=voice, language="English", seed=i, max_new_frames=50)
        s.push_text("Hello there, how can I help?")
        if rng.random() < 0.5:
            next(s)
        s.cancel()
        assert list(s) == []
    deadline = time.monotonic() + 30
    while tts.stats()["active_streams"] or tts.stats()["queued_streams"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gc.collect()
    assert threading.active_count() == threads_before
    assert len(gc.get_objects()) < objects_before + 2000  # no per-stream residue (500 cycles)


def test_cancel_from_another_thread_takes_effect_within_a_step(models):
    tts = models("custom_voice")
    stream = tts.open_stream("Your order number is four two seven.", voice=tts.speaker("ryan"), chunk_frames=(1,),
                             max_new_frames=200, seed=1)
    first = next(stream)
    steps_at_cancel = []

    def cancel():
        steps_at_cancel.append(tts.stats()["steps"])
        stream.cancel()

    t = threading.Thread(target=cancel)
    t.start()
    t.join()
    assert not first.is_last and list(stream) == []
    deadline = time.monotonic() + 10
    while tts.stats()["active_streams"]:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert tts.stats()["steps"] <= steps_at_cancel[0] + 1
