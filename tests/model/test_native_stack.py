"""The native decoder stack (model/native_stack.py): a model loaded with our kernels runs each decoder stack in one
native call, which computes what the torch forward computes (to float rounding), writes the same cache entries,
and gives each row the same bits whatever rows share its call."""

from __future__ import annotations

import contextlib

import pytest
import torch

from qwen3tts_realtime.model.native_stack import NativeStack
from qwen3tts_realtime.model.transformer import KVCache

MODES = [(mode, kernel) for mode in ("int8", "int4") for kernel in ("avx2-float32", "avx2-int16")]
IDS = [f"{mode}-{kernel}" for mode, kernel in MODES]
# float rounding apart, which int16 activations can turn into one rounding step of a 14-bit activation
TOLERANCE = {"avx2-float32": dict(rtol=1e-4, atol=2e-5), "avx2-int16": dict(rtol=1e-3, atol=1e-3)}


@contextlib.contextmanager
def torch_forward(stack):
    native, stack.native_forward = stack.native_forward, None
    try:
        yield
    finally:
        stack.native_forward = native


def filled_cache(config, rows: int, seed: int) -> KVCache:
    cache = KVCache.allocate(config, rows, 24, dtype=torch.float32, device=torch.device("cpu"))
    gen = torch.Generator().manual_seed(seed)
    for t in cache.k + cache.v:
        t.copy_(torch.randn(t.shape, generator=gen))
    return cache


def clone(cache: KVCache) -> KVCache:
    return KVCache(k=[t.clone() for t in cache.k], v=[t.clone() for t in cache.v])


def stacks(tts):
    return {"talker": tts.talker.model, "code_predictor": tts.talker.code_predictor.model}


def test_installed_only_where_every_layer_runs_our_kernels(golden_models):
    for mode, kernel in MODES:
        tts = golden_models("custom_voice", quantize=mode, linear_backend=kernel)
        assert all(isinstance(s.native_forward, NativeStack) for s in stacks(tts).values())
    for options in ({}, {"quantize": "int8", "linear_backend": "int8pack-float32"}, {"quantize": "w8a8"}):
        tts = golden_models("custom_voice", **options)
        assert all(s.native_forward is None for s in stacks(tts).values())


@pytest.mark.parametrize(("mode", "kernel"), MODES, ids=IDS)
@pytest.mark.parametrize("part", ["talker", "code_predictor"])
@pytest.mark.parametrize(("rows", "new", "start"), [(1, 2, 0), (3, 1, 7), (2, 5, 4)])
def test_it_computes_what_the_torch_forward_computes(golden_models, mode, kernel, part, rows, new, start):
    stack = stacks(golden_models("custom_voice", quantize=mode, linear_backend=kernel))[part]
    x = torch.randn(rows, new, stack.config.hidden_size, generator=torch.Generator().manual_seed(start))
    native_cache, torch_cache = filled_cache(stack.config, rows, 1), filled_cache(stack.config, rows, 1)
    with torch.inference_mode():
        got = stack(x, native_cache, start)
        with torch_forward(stack):
            want = stack(x, torch_cache, start)
    torch.testing.assert_close(got, want, **TOLERANCE[kernel])
    for a, b in zip(native_cache.k + native_cache.v, torch_cache.k + torch_cache.v, strict=True):
        torch.testing.assert_close(a, b, **TOLERANCE[kernel])


@pytest.mark.parametrize(("mode", "kernel"), MODES, ids=IDS)
def test_per_row_positions_as_the_engine_steps_them(golden_models, mode, kernel):
    stack = stacks(golden_models("custom_voice", quantize=mode, linear_backend=kernel))["talker"]
    start = torch.tensor([4, 11, 0])
    x = torch.randn(3, 1, stack.config.hidden_size, generator=torch.Generator().manual_seed(2))
    native_cache, torch_cache = filled_cache(stack.config, 3, 3), filled_cache(stack.config, 3, 3)
    with torch.inference_mode():
        got = stack(x, native_cache, start, 12)
        with torch_forward(stack):
            want = stack(x, torch_cache, start, 12)
    torch.testing.assert_close(got, want, **TOLERANCE[kernel])
    alone = [stack(x[i : i + 1], clone(native_cache).rows(i, i + 1), start[i : i + 1], 12) for i in range(3)]
    assert torch.equal(torch.cat(alone), got)  # positions already written are rewritten with the same bits


@pytest.mark.parametrize(("mode", "kernel"), MODES, ids=IDS)
def test_a_row_gets_the_same_bits_alone_or_batched(golden_models, mode, kernel):
    stack = stacks(golden_models("custom_voice", quantize=mode, linear_backend=kernel))["code_predictor"]
    x = torch.randn(4, 2, stack.config.hidden_size, generator=torch.Generator().manual_seed(4))
    cache = filled_cache(stack.config, 4, 5)
    with torch.inference_mode():
        alone = [stack(x[i : i + 1], cache.rows(i, i + 1), 3) for i in range(4)]
        together_cache = filled_cache(stack.config, 4, 5)
        together = stack(x, together_cache, 3)
    assert torch.equal(torch.cat(alone), together)
    assert all(torch.equal(a, b) for a, b in zip(cache.k + cache.v, together_cache.k + together_cache.v, strict=True))
