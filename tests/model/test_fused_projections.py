"""The loader runs each attention's q/k/v as one `qkv_proj` and each MLP's gate/up as one `gate_up_proj`: the
official checkpoint loads unchanged (its keys are the separate ones), and the fused layers compute exactly what
the separate projections compute, in float32 and in every quantized format (each output row is quantized on
its own, so a fused layer holds the separate layers' rows)."""

from __future__ import annotations

import pytest
import torch

from qwen3tts_realtime.model.kernel_choice import _unusable
from qwen3tts_realtime.model.linear_loader import linear_loader
from qwen3tts_realtime.model.quantized_linear import KERNELS, quantize_linear
from qwen3tts_realtime.model.transformer import KVCache, Qwen3DecoderStack

RUNNABLE = [(mode, kernel) for mode, kernels in KERNELS.items() for kernel in kernels if not _unusable(mode, kernel)]


@pytest.mark.parametrize("kind", ["custom_voice", "base"])
def test_every_loaded_attention_and_mlp_is_fused(golden_models, kind):
    talker = golden_models(kind).talker
    for stack in (talker.model, talker.code_predictor.model):
        for layer in stack.layers:
            attn, mlp = layer.self_attn, layer.mlp
            assert attn.qkv_proj is not None and mlp.gate_up_proj is not None
            assert not any(hasattr(attn, p) for p in ("q_proj", "k_proj", "v_proj"))
            assert not any(hasattr(mlp, p) for p in ("gate_proj", "up_proj"))


def test_a_fused_stack_equals_the_separate_one(golden_models):
    config = golden_models("custom_voice").talker.config.transformer
    torch.manual_seed(0)
    separate = Qwen3DecoderStack(config).eval()
    for p in separate.parameters():
        torch.nn.init.normal_(p, std=0.2)
    fused = Qwen3DecoderStack(config).eval()
    convert = linear_loader(fused, torch.device("cpu"))
    rest = {k: v for k, v in separate.state_dict().items() if not convert(k, v.clone())}
    fused.load_state_dict(rest, strict=False)
    assert all(layer.self_attn.qkv_proj is not None for layer in fused.layers)

    x = torch.randn(2, 5, config.hidden_size)
    with torch.inference_mode():
        outs = []
        for stack in (separate, fused):
            cache = KVCache.allocate(config, 2, 8, dtype=torch.float32, device=torch.device("cpu"))
            prompt = stack(x, cache, 0)
            step = stack(x[:, :1], cache, torch.tensor([5, 5]), 6)
            outs.append(torch.cat([prompt, step], dim=1))
    assert torch.allclose(outs[0], outs[1], rtol=0, atol=1e-5)


@pytest.mark.parametrize(("mode", "kernel"), RUNNABLE, ids=[k for _, k in RUNNABLE])
def test_a_fused_quantized_layer_holds_the_separate_layers_rows(mode, kernel):
    gen = torch.Generator().manual_seed(1)
    parts = [torch.randn(n, 256, generator=gen) * 0.05 for n in (128, 64, 64)]
    x = torch.randn(3, 256, generator=gen)
    with torch.inference_mode():
        fused = quantize_linear(torch.cat(parts), mode, kernel)(x)
        separate = torch.cat([quantize_linear(w, mode, kernel)(x) for w in parts], dim=-1)
    assert torch.equal(fused, separate)
