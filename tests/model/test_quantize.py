"""Opt-in CPU weight formats: `quantize="fp16"` keeps the official greedy codes and every equality of the float32
engine (batched == alone, streaming == offline); `quantize="int8"` runs; bad combinations are named."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from qwen3tts_realtime import InvalidInputError, Qwen3TTS, SamplingParams
from qwen3tts_realtime.model.quantize import check_quantize
from tests.golden import GOLDEN, golden_cases, load_golden_output
from tests.test_generate_golden import replay

GREEDY_CASES = [c for c in golden_cases("generate") if not c["call"]["sampling"]["do_sample"]]
TEXTS = ["Hello there, how can I help you today?", "Your order number is four two seven.", "Thanks!"]


@pytest.fixture(scope="module")
def fp16_models(golden_models):
    return lambda kind: golden_models(kind, quantize="fp16")


@pytest.mark.parametrize("case", GREEDY_CASES, ids=[c["name"] for c in GREEDY_CASES])
def test_fp16_weights_give_the_official_greedy_codes(fp16_models, case):
    tts = fp16_models(case["call"]["model"])
    assert tts.quantize == "fp16"
    out = replay(tts, case["call"])
    expected = load_golden_output(case)
    assert torch.equal(out.codes, expected["codes"])
    assert np.abs(out.audio - expected["audio"].numpy()).max() <= 2e-4


def test_fp16_streams_batched_together_equal_each_alone_and_offline(fp16_models):
    tts = fp16_models("custom_voice")
    voices = [tts.speaker("ryan"), tts.speaker("eric")]
    reqs = [dict(text=TEXTS[i % 3], voice=voices[i % 2], max_new_frames=8 + 3 * i, sampling=SamplingParams.greedy())
            for i in range(4)]
    alone = [tts.generate(**r) for r in reqs]
    results: list = [None] * len(reqs)

    def run(i: int) -> None:
        with tts.stream_sync(**reqs[i], chunk_frames=(1, 3)) as s:
            results[i] = list(s)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(reqs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for chunks, expected in zip(results, alone, strict=True):
        assert torch.equal(torch.cat([c.codes for c in chunks]), expected.codes)
        assert np.abs(np.concatenate([c.audio for c in chunks]) - expected.audio).max() <= 1e-4  # float32 decoding
    assert max(tts.stats()["batch_sizes"]) > 1


def test_int8_runs_and_streams(golden):
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice", quantize="int8")
    try:
        out = tts.generate("Hello there.", tts.speaker("ryan"), sampling=SamplingParams.greedy(), max_new_frames=6)
        assert out.codes.shape[1] == 16 and len(out.audio) == out.codes.shape[0] * 1920
        with tts.stream_sync("Hello there.", tts.speaker("ryan"), sampling=SamplingParams.greedy(),
                             max_new_frames=6) as s:
            streamed = torch.cat([c.codes for c in s])
        assert streamed.shape == out.codes.shape
        # int8 activations share one scale per call, so how rows are grouped (the warm voice prefix, the batch)
        # changes the codes; what holds is determinism.
        again = tts.generate("Hello there.", tts.speaker("ryan"), sampling=SamplingParams.greedy(), max_new_frames=6)
        assert torch.equal(again.codes, out.codes)
    finally:
        tts.close()


def test_bad_quantize_settings_are_named():
    cpu = torch.device("cpu")
    with pytest.raises(InvalidInputError, match="quantize='int4'; accepted: None, 'fp16', 'int8'"):
        check_quantize("int4", cpu, torch.float32)
    with pytest.raises(InvalidInputError, match="CPU mode"):
        check_quantize("fp16", torch.device("cuda"), torch.float32)
    with pytest.raises(InvalidInputError, match="computes in float32"):
        check_quantize("int8", cpu, torch.bfloat16)
    assert check_quantize(None, torch.device("cuda"), torch.bfloat16) is None
    with pytest.raises(InvalidInputError, match="accepted"):
        Qwen3TTS.from_pretrained(GOLDEN / "tiny" / "custom_voice", quantize="int4")
