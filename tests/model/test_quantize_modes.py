"""CPU weight formats (`from_pretrained(quantize=...)`), on the golden tiny checkpoints: every mode and kernel
loads and speaks; streaming equals offline and batched equals alone, codes exact, in every mode; `fp16` keeps
the official greedy codes; a quantized model holds no float32 copy of a quantized layer; loading a quantized
model never changes a float32 model's results."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qwen3tts_realtime import InvalidInputError, Qwen3TTS, SamplingParams
from qwen3tts_realtime.model.quantized_linear import KERNELS, QuantizedLinear
from tests.golden import GOLDEN, golden_cases, load_golden_output
from tests.streams import stream_concurrently
from tests.test_generate_golden import replay

GREEDY_CASES = [c for c in golden_cases("generate") if not c["call"]["sampling"]["do_sample"]]
TEXTS = ["Hello there, how can I help you today?", "Your order number is four two seven.", "Thanks!"]
MODES = [(mode, kernel) for mode, kernels in KERNELS.items() for kernel in kernels]


@pytest.mark.parametrize("case", GREEDY_CASES, ids=[c["name"] for c in GREEDY_CASES])
def test_fp16_weights_give_the_official_greedy_codes(golden_models, case):
    tts = golden_models(case["call"]["model"], quantize="fp16")
    assert tts.quantize == "fp16"
    out = replay(tts, case["call"])
    expected = load_golden_output(case)
    assert torch.equal(out.codes, expected["codes"])
    assert np.abs(out.audio - expected["audio"].numpy()).max() <= 2e-4


@pytest.mark.parametrize(("mode", "kernel"), MODES, ids=[k for _, k in MODES])
def test_each_mode_streams_what_it_generates_and_batches_as_alone(golden_models, mode, kernel):
    tts = golden_models("custom_voice", quantize=mode, linear_backend=kernel)
    assert (tts.quantize, tts.linear_backend) == (mode, kernel)
    quantized = [m for m in tts.talker.modules() if isinstance(m, QuantizedLinear)]
    assert quantized and all(m.kernel == kernel for m in quantized)
    assert not any(isinstance(m, nn.Linear) and m.weight.numel() >= 64 * 64 for m in tts.talker.modules()) or \
        mode == "int4"  # int4 leaves the layers its kernel cannot shape (out % 16, in % 32) in float32
    voices = [tts.speaker("ryan"), tts.speaker("eric")]
    reqs = [dict(text=TEXTS[i % 3], voice=voices[i % 2], max_new_frames=8 + 3 * i, sampling=SamplingParams.greedy())
            for i in range(4)]
    alone = [tts.generate(**r) for r in reqs]
    results = stream_concurrently(tts, reqs)
    for chunks, expected in zip(results, alone, strict=True):
        assert torch.equal(torch.cat([c.codes for c in chunks]), expected.codes)
        assert np.abs(np.concatenate([c.audio for c in chunks]) - expected.audio).max() <= 1e-4  # float32 decoding
    assert max(tts.stats()["batch_sizes"]) > 1


def test_clones_speak_in_every_mode(golden_models):
    for mode in KERNELS:
        tts = golden_models("base", quantize=mode)
        wav = (np.sin(np.arange(48000) * 0.05) * 0.3).astype(np.float32)
        voice = tts.clone_voice((wav, 24000), x_vector_only=True)
        out = tts.generate("Hello there.", voice=voice, sampling=SamplingParams.greedy(), max_new_frames=6)
        with tts.open_stream("Hello there.", voice=voice, sampling=SamplingParams.greedy(), max_new_frames=6) as s:
            assert torch.equal(torch.cat([c.codes for c in s]), out.codes)


def test_quantized_loads_leave_float32_results_alone(golden):
    folder = golden / "tiny" / "custom_voice"
    kwargs = dict(max_new_frames=10, sampling=SamplingParams.greedy())
    before = Qwen3TTS.from_pretrained(folder)
    first = before.generate(TEXTS[0], voice=before.speaker("ryan"), **kwargs)
    for mode in KERNELS:
        other = Qwen3TTS.from_pretrained(folder, quantize=mode)
        other.generate(TEXTS[0], voice=other.speaker("ryan"), **kwargs)
    after = Qwen3TTS.from_pretrained(folder)
    second = after.generate(TEXTS[0], voice=after.speaker("ryan"), **kwargs)
    assert torch.equal(first.codes, second.codes) and np.array_equal(first.audio, second.audio)


def test_the_text_embedding_is_kept_compact_and_memory_mapped(golden_models):
    tts = golden_models("custom_voice")
    table = tts.talker.model.text_embedding.weight
    assert table.dtype == torch.bfloat16 and tts.talker.dtype == torch.float32  # official bf16 values, exact
    rows = tts.talker.text_rows(torch.tensor([9707, 1052]))
    assert rows.dtype == torch.float32
    float64 = golden_models("custom_voice", dtype="float64")
    assert float64.talker.model.text_embedding.weight.dtype == torch.bfloat16


def test_bad_quantize_settings_are_named():
    with pytest.raises(InvalidInputError, match="quantize='int5'; accepted: None, 'fp16', 'int8', 'int4', 'w8a8'"):
        Qwen3TTS.from_pretrained(GOLDEN / "tiny" / "custom_voice", quantize="int5")
    with pytest.raises(InvalidInputError, match="'torch' does not run quantize='int8'"):
        Qwen3TTS.from_pretrained(GOLDEN / "tiny" / "custom_voice", quantize="int8", linear_backend="torch")
