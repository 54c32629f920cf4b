"""The engine's step is static: per-slot caches, batched sampling on the device, no host read inside, so it
traces whole (what a CUDA graph captures); and the engine reads the device once per step."""

from __future__ import annotations

import pytest
import torch

from qwen3tts_realtime import SamplingParams
from qwen3tts_realtime.engine.generation import Generation, advance_rows, predict, prefill
from qwen3tts_realtime.engine.slots import Slots


@pytest.fixture(scope="module")
def tts(golden_models):
    return golden_models("custom_voice", "float32", linear_backend="torch")


def three_slots(tts) -> tuple[Slots, list[Generation]]:
    """Three greedy streams prefilled into slots 0..2 (different voices, texts and layouts)."""
    slots = Slots(tts.talker, rows=3)
    gens = []
    for text, speaker, layout in [("Hello there.", "ryan", False), ("Good morning to you.", "eric", True),
                                  ("Thanks!", "ryan", False)]:
        spec = tts.requests.spec(text, tts.speaker(speaker), "English", sampling=SamplingParams.greedy(),
                                 non_streaming_layout=layout, max_new_frames=8)
        _, request = tts.requests.build(spec)
        gen = Generation(request, slots.acquire(request.params, None, 3), trailing=list(request.prompt.trailing))
        prefill(tts.talker, tts.config, slots, gen)
        gens.append(gen)
    return slots, gens


def step_fn(tts, slots: Slots):
    """One whole step over slots 0..2 (code predictor, talker, sampling, commit): device tensors in and out."""

    def step(feed: torch.Tensor, kv_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames, finite = predict(tts.talker, slots, 0, 3)
        active = torch.ones(3, dtype=torch.bool)
        return frames, advance_rows(tts.talker, tts.config, slots, 0, 3, frames, finite, feed, active, kv_len)

    return step


def test_the_step_traces_whole_and_gives_the_untraced_codes(tts):
    eager_slots, gens = three_slots(tts)
    traced_slots, _ = three_slots(tts)
    eager = step_fn(tts, eager_slots)
    traced = torch.compile(step_fn(tts, traced_slots), fullgraph=True, backend="eager")  # no graph break allowed

    with torch.inference_mode():
        for k in range(3):
            feed = torch.stack([g.trailing[k] if k < len(g.trailing) else g.request.prompt.pad_row for g in gens])
            kv_len = max(eager_slots.length) + 1 + k
            expected_frames, expected = eager(feed, kv_len)
            frames, packed = traced(feed, kv_len)
            assert torch.equal(frames, expected_frames)
            assert torch.equal(packed, expected)
    assert torch.equal(traced_slots.pos, eager_slots.pos)
    assert torch.equal(traced_slots.pending, eager_slots.pending)


def test_the_engine_reads_the_device_once_per_step(tts):
    voice = tts.speaker("ryan")
    with tts.open_stream("Hello there, how are you?", voice=voice, max_new_frames=12, chunk_frames=(1, 4), seed=0) as s:
        chunks = list(s)

    stats = tts.stats()
    assert stats["steps"] >= 11
    assert stats["host_reads"]["step"] == stats["steps"]  # one read per step: codes, ends, finite flags
    assert stats["host_reads"]["decode"] == len(chunks)  # one copy per decode call: audio and codes together
    assert stats["host_reads_per_step"] == 1.0


def test_offline_generations_are_counted_apart_from_engine_steps(tts):
    """`generate()` runs in the caller's thread: `stats()["offline"]` counts it; it takes no engine step."""
    voice, before = tts.speaker("ryan"), tts.stats()
    outs = [tts.generate("Hi.", voice=voice, max_new_frames=4, seed=i) for i in range(3)]

    after = tts.stats()
    assert after["offline"]["generations"] - before["offline"]["generations"] == 3
    assert after["offline"]["frames"] - before["offline"]["frames"] == sum(o.codes.shape[0] for o in outs)
    assert after["steps"] == before["steps"]
