"""The Qwen3 decoder stack shared by the talker and the code predictor (spec §2.2, §2.3, §3.1).

Pre-norm layers with per-head q/k RMSNorm, grouped-query attention, rotate-half RoPE and a SwiGLU MLP. The
talker's interleaved MRoPE reduces exactly to 1-D RoPE in TTS (its three position streams are identical,
spec §2.3), so both stacks use plain RoPE here.

Attention reads and writes caller-owned `KVCache`s. A cache holds rows that share one length (one stream, or
the code predictor's rows, which always sit at the same positions). A forward may mix several caches: the
projections and MLPs run over all rows at once (the weights are read once per step), attention runs per cache,
so streams at different points of their sequences batch together (continuous batching). This module owns no
cache and no loop; the generation and engine layers allocate caches and drive steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import TransformerConfig

__all__ = ["RMSNorm", "KVCache", "Qwen3DecoderStack", "rope_cos_sin"]


class RMSNorm(nn.Module):
    """RMSNorm as Qwen3 computes it: normalise in float32, cast back, then scale by the weight."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        h = x.to(torch.float32) if dtype != torch.float64 else x
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


@dataclass
class KVCache:
    """Static key/value buffers for rows that share one length: `k[layer]`, `v[layer]` of shape
    [B, kv_heads, max_len, head_dim]; positions `0..length-1` are filled. `forward` appends and advances."""

    k: list[Tensor]
    v: list[Tensor]
    length: int = 0

    @classmethod
    def allocate(
        cls, config: TransformerConfig, batch_size: int, max_len: int, *, dtype: torch.dtype, device: torch.device
    ) -> KVCache:
        shape = (batch_size, config.num_key_value_heads, max_len, config.head_dim)
        return cls(
            k=[torch.empty(shape, dtype=dtype, device=device) for _ in range(config.num_hidden_layers)],
            v=[torch.empty(shape, dtype=dtype, device=device) for _ in range(config.num_hidden_layers)],
        )

    @property
    def batch_size(self) -> int:
        return self.k[0].shape[0]

    @property
    def max_len(self) -> int:
        return self.k[0].shape[2]

    def ensure_capacity(self, max_len: int) -> None:
        """Grow the buffers (copying what is filled) so that `max_len` positions fit."""
        if max_len <= self.max_len:
            return
        for buffers in (self.k, self.v):
            for i, old in enumerate(buffers):
                grown = old.new_empty(old.shape[0], old.shape[1], max_len, old.shape[3])
                grown[:, :, : self.length] = old[:, :, : self.length]
                buffers[i] = grown

    def copy_prefix_from(self, other: KVCache) -> None:
        """Start from another cache's filled positions (a warm voice prefix), broadcast over this cache's rows."""
        n = other.length
        for dst, src in zip(self.k + self.v, other.k + other.v, strict=True):
            dst[:, :, :n] = src[:, :, :n]
        self.length = n


def rope_cos_sin(positions: Tensor, head_dim: int, theta: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """cos/sin tables [B, T, head_dim] for positions [B, T] (float32 math as HF, float64 for float64 models)."""
    math_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).to(math_dtype) / head_dim
    inv_freq = 1.0 / (theta**exponent)
    freqs = positions.to(math_dtype)[..., None] * inv_freq  # [B, T, head_dim/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    # x [B, H, T, hd]; cos/sin [B, T, hd]
    return x * cos[:, None] + _rotate_half(x) * sin[:, None]


class _Attention(nn.Module):
    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.q_proj = nn.Linear(c.hidden_size, c.num_attention_heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.num_attention_heads * c.head_dim, c.hidden_size, bias=False)
        self.q_norm = RMSNorm(c.head_dim, c.rms_norm_eps)
        self.k_norm = RMSNorm(c.head_dim, c.rms_norm_eps)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, layer: int, caches: list[KVCache]) -> Tensor:
        b, t, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, t, self.num_heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(b, t, self.num_kv_heads, self.head_dim)).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        outs = []
        row = 0
        for cache in caches:
            n, start = cache.batch_size, cache.length
            assert start + t <= cache.max_len, "KV cache overflow: the caller sized it too small"
            ck, cv = cache.k[layer], cache.v[layer]
            ck[:, :, start : start + t] = k[row : row + n]
            cv[:, :, start : start + t] = v[row : row + n]
            # One new row attends to everything cached; a block of new rows needs the causal mask.
            mask = None
            if t > 1:
                mask = torch.ones(t, start + t, dtype=torch.bool, device=x.device).tril(start)
            outs.append(
                F.scaled_dot_product_attention(
                    q[row : row + n], ck[:, :, : start + t], cv[:, :, : start + t], attn_mask=mask, enable_gqa=True
                )
            )
            row += n
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim))


class _MLP(nn.Module):
    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class _DecoderLayer(nn.Module):
    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.self_attn = _Attention(c)
        self.mlp = _MLP(c)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, layer: int, caches: list[KVCache]) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, layer, caches)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen3DecoderStack(nn.Module):
    """`layers.N.*` and the final `norm`: embeddings in, final-normed hidden states out.

    `forward(x [B, T, D], caches)` appends T positions to every cache; the caches' rows, in order, are the B
    rows of `x`. Each cache's rows attend to that cache's positions only.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(_DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x: Tensor, caches: list[KVCache]) -> Tensor:
        t = x.shape[1]
        assert sum(c.batch_size for c in caches) == x.shape[0], "one cache row per input row"
        positions = torch.cat(
            [torch.arange(c.length, c.length + t, device=x.device).expand(c.batch_size, t) for c in caches]
        )
        cos, sin = rope_cos_sin(positions, self.config.head_dim, self.config.rope_theta, x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, i, caches)
        for c in caches:
            c.length += t
        return self.norm(x)
