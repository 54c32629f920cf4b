"""oneDNN pre-packed linear layers: the CPU float32 default for the talker and code predictor. Same math as
`nn.Linear` (to float32 rounding), the official greedy codes with either backend, and clear errors where the
packed path cannot run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qwen3tts_realtime import InvalidInputError, Qwen3TTS, SamplingParams
from qwen3tts_realtime.model.packed_linear import AUTO_MIN_WEIGHTS, PackedLinear, pack_linears, resolve_linear_backend
from tests.golden import golden_cases, load_golden_output
from tests.test_generate_golden import replay

CPU = torch.device("cpu")
needs_onednn = pytest.mark.skipif(
    resolve_linear_backend("auto", CPU, torch.float32) != "onednn", reason="this torch build cannot pack for oneDNN"
)


@needs_onednn
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape", [(1, 64), (7, 64), (2, 33, 64)])
def test_packed_linear_computes_what_nn_linear_computes(shape, bias):
    gen = torch.Generator().manual_seed(1)
    layer = nn.Linear(64, 96, bias=bias)
    x = torch.randn(*shape, generator=gen)
    with torch.inference_mode():
        want = layer(x)
        got = PackedLinear(layer)(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_pack_linears_replaces_the_linears_below_a_module_from_a_size_on():
    block = nn.Sequential(nn.Linear(8, 8), nn.ModuleList([nn.Linear(8, 4), nn.ReLU()]), nn.Embedding(3, 8))
    assert pack_linears(block, min_weights=64) == 1
    assert isinstance(block[0], PackedLinear) and isinstance(block[1][0], nn.Linear)
    assert pack_linears(block) == 1
    assert not any(isinstance(m, nn.Linear) for m in block.modules())
    assert isinstance(block[2], nn.Embedding)


GENERATE_CASES = golden_cases("generate")


@needs_onednn
@pytest.mark.parametrize("case", GENERATE_CASES, ids=[c["name"] for c in GENERATE_CASES])
def test_every_layer_packed_gives_the_official_codes(golden_models, case):
    tts = golden_models(case["call"]["model"], linear_backend="onednn")
    assert not any(isinstance(m, nn.Linear) for m in tts.talker.modules())
    out = replay(tts, case["call"])
    expected = load_golden_output(case)
    assert torch.equal(out.codes, expected["codes"])
    assert abs(out.audio - expected["audio"].numpy()).max() <= 2e-4


@needs_onednn
def test_cpu_float32_models_pack_their_larger_layers_by_default_and_give_the_same_greedy_codes(golden):
    folder = golden / "tiny" / "custom_voice"
    packed = Qwen3TTS.from_pretrained(folder)
    plain = Qwen3TTS.from_pretrained(folder, linear_backend="torch")
    assert packed.linear_backend == "onednn" and plain.linear_backend == "torch"
    for module in packed.talker.modules():
        if isinstance(module, (nn.Linear, PackedLinear)):
            big = module.in_features * module.out_features >= AUTO_MIN_WEIGHTS
            assert isinstance(module, PackedLinear) == big
    assert isinstance(packed.talker.codec_head, PackedLinear)  # 64 x 3072 on the tiny model
    assert isinstance(plain.talker.codec_head, nn.Linear)
    kwargs = dict(voice=packed.speaker("ryan"), max_new_frames=12, sampling=SamplingParams.greedy())
    a = packed.generate("Your order number is four two seven.", **kwargs)
    b = plain.generate("Your order number is four two seven.", **kwargs)
    assert torch.equal(a.codes, b.codes)
    assert abs(a.audio - b.audio).max() <= 1e-4


def test_float64_and_quantized_models_keep_their_own_linear_layers(golden):
    folder = golden / "tiny" / "custom_voice"
    assert Qwen3TTS.from_pretrained(folder, dtype="float64").linear_backend == "torch"
    assert Qwen3TTS.from_pretrained(folder, quantize="fp16").linear_backend == "fbgemm-fp16"


def test_bad_linear_backends_are_named():
    with pytest.raises(InvalidInputError, match="accepted without quantize: 'auto', 'onednn', 'torch'"):
        resolve_linear_backend("mkl", CPU, torch.float32)
    with pytest.raises(InvalidInputError, match="float64"):
        resolve_linear_backend("onednn", CPU, torch.float64)
    with pytest.raises(InvalidInputError, match="meta"):
        resolve_linear_backend("onednn", torch.device("meta"), torch.float32)


def test_onednn_and_quantize_together_are_refused(golden):
    with pytest.raises(InvalidInputError, match="'onednn' does not run quantize='fp16'; accepted: 'auto', 'fbgemm"):
        Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice", quantize="fp16", linear_backend="onednn")
