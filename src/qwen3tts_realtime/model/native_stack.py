"""A decoder stack whose linears all run our native int8/int4 kernels, run whole by one native call per forward.

Why: a quantized code predictor step spent about half its time in Python and torch's per-operation overhead
(~60 small ops per layer, 5 layers x 15 steps per frame); the weights it reads take the other half. The native
stack (`qwen3tts_stack_forward` in `native/qlinear.c`) runs the same math as `Qwen3DecoderStack.forward` in
float32 (RMSNorm, q/k norm, rotate-half RoPE, grouped-query attention over the caller's static caches, SwiGLU),
each linear in the layer's own quantized format, each row from that row alone.
Does:
    `install(stack)` gives a stack loaded with one of our kernels (int8 or int4, "avx2-float32" or "avx2-int16")
    a native forward;
    every other stack (float32, torch's kernels, layers left in float32 by int4) keeps its torch forward.
Does not:
    Change any float32 path, run off the CPU, or keep float copies: it reads the layers' own buffers.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import native_kernels
from .quantized_linear import NATIVE_ACT, QuantizedLinear
from .transformer import KVCache, Qwen3DecoderStack

__all__ = ["NativeStack", "install"]

KERNELS = tuple(NATIVE_ACT)


def install(stack: Qwen3DecoderStack) -> bool:
    """Give `stack` a native forward when all its layers can take one; True if installed."""
    native = NativeStack.build(stack)
    stack.native_forward = native
    return native is not None


class NativeStack:
    """Callable as `Qwen3DecoderStack.forward(x, cache, start, kv_len)`; holds the ctypes view of the stack."""

    def __init__(self, stack: Qwen3DecoderStack, layers: list[native_kernels.Layer]) -> None:
        c = stack.config
        self._stack = stack  # keeps every buffer the view points into alive
        self._layers = (native_kernels.Layer * len(layers))(*layers)
        self._view = native_kernels.Stack(
            len(layers), c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim,
            c.intermediate_size, c.rms_norm_eps, self._layers, stack.norm.weight.data_ptr(),
        )

    @classmethod
    def build(cls, stack: Qwen3DecoderStack) -> NativeStack | None:
        c = stack.config
        shapes_fit = c.hidden_size % 8 == 0 and c.head_dim % 8 == 0 and c.head_dim <= 512 and \
            c.num_attention_heads % c.num_key_value_heads == 0  # what qwen3tts_stack_forward takes
        if native_kernels.unavailable() or stack.norm.weight.dtype != torch.float32 or not shapes_fit:
            return None
        layers = []
        for layer in stack.layers:
            attn, mlp = layer.self_attn, layer.mlp
            linears = [attn.qkv_proj, attn.o_proj, mlp.gate_up_proj, mlp.down_proj]
            if not all(isinstance(m, QuantizedLinear) and m.kernel in KERNELS and m.bias is None for m in linears):
                return None
            norms = [layer.input_layernorm, layer.post_attention_layernorm, attn.q_norm, attn.k_norm]
            layers.append(native_kernels.Layer(*[n.weight.data_ptr() for n in norms], *map(_qweight, linears)))
        return cls(stack, layers)

    def __call__(self, x: Tensor, cache: KVCache, start: int | Tensor, kv_len: int | None = None) -> Tensor:
        b, t, _ = x.shape
        if isinstance(start, int):
            starts = torch.full((b,), start, dtype=torch.int64)
            span = start + t
        else:
            assert t == 1 and kv_len is not None, "per-row positions take one new row each and a kv_len"
            starts = start.to(torch.int64).contiguous()
            span = kv_len
        cos, signed_sin = self._stack.rope.get(span, torch.float32, x.device)
        k, v = cache.k, cache.v  # allocated together: every layer's buffers share the first one's layout
        assert k[0].dtype == v[0].dtype == torch.float32 and k[0].stride() == v[0].stride() and k[0].stride(3) == 1
        return native_kernels.stack_forward(
            self._view, x.to(torch.float32).contiguous(), starts, k, v, cos.contiguous(), signed_sin.contiguous()
        )


def _qweight(m: QuantizedLinear) -> native_kernels.QWeight:
    if m.mode == "int8":
        return native_kernels.QWeight(8, m.act, m.out_features, m.in_features, 0, m.qweight.data_ptr(),
                                      m.scales.data_ptr(), None)
    return native_kernels.QWeight(4, m.act, m.out_features, m.in_features, m.group_size, m.qweight.data_ptr(),
                                  m.scales.data_ptr(), m.lows.data_ptr())


