"""The Qwen3 decoder stack shared by the talker and the code predictor (spec §2.2, §2.3, §3.1).

Pre-norm layers with per-head q/k RMSNorm, grouped-query attention, rotate-half RoPE and a SwiGLU MLP. The
talker's interleaved MRoPE reduces exactly to 1-D RoPE in TTS (its three position streams are identical,
spec §2.3), so both stacks use plain RoPE here.

Attention reads and writes caller-owned static `KVCache`s, one row per stream. A prompt is written at
contiguous positions of its row; the engine's batched step writes one position per row, each row at its own
place (per-row positions, continuous batching), and attends under a mask, so the step has static shapes and no
host reads. RoPE tables are built once per device and dtype. This module owns no loop; the engine allocates the
caches and drives the steps.

Fused projections: each attention and MLP declares in `FUSED` which of its checkpoint linears may run as one
(q/k/v as `qkv_proj`, gate/up as `gate_up_proj`: one call instead of three or two, the official weights
concatenated along their output rows). The loader installs them (`model/linear_loader.py`) while the official
checkpoint loads unchanged; a module built without them runs its separate projections, with the same math.
"""

from __future__ import annotations

import math
import mmap
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import TransformerConfig

__all__ = ["RMSNorm", "KVCache", "RopeTable", "Qwen3DecoderStack", "rope_cos_sin", "lazy_zeros"]


class RMSNorm(nn.Module):
    """RMSNorm as Qwen3 computes it: normalise in float32, cast back, then scale by the weight."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        wide = dtype in (torch.float32, torch.float64)  # no cast ops on the hot path when none is needed
        h = x if wide else x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * (h if wide else h.to(dtype))


@dataclass
class KVCache:
    """Static key/value buffers: `k[layer]`, `v[layer]` of shape [rows, kv_heads, max_len, head_dim].

    A row is one stream (a slot of the engine) or one of the code predictor's rows. The cache owns no positions:
    a forward is told where each row writes (see `Qwen3DecoderStack.forward`). `rows(a, b)` is a view of some rows
    (shared storage), so a slot is prefilled in place.
    """

    k: list[Tensor]
    v: list[Tensor]

    @classmethod
    def allocate(
        cls, config: TransformerConfig, rows: int, max_len: int, *, dtype: torch.dtype, device: torch.device
    ) -> KVCache:
        """Zero-filled buffers: stale positions are masked in attention, and zeros keep them finite. On the CPU
        their memory becomes resident only where positions are written (`lazy_zeros`)."""
        shape = (rows, config.num_key_value_heads, max_len, config.head_dim)
        return cls(
            k=[lazy_zeros(shape, dtype, device) for _ in range(config.num_hidden_layers)],
            v=[lazy_zeros(shape, dtype, device) for _ in range(config.num_hidden_layers)],
        )

    @property
    def num_rows(self) -> int:
        return self.k[0].shape[0]

    @property
    def max_len(self) -> int:
        return self.k[0].shape[2]

    def rows(self, start: int, stop: int) -> KVCache:
        """A view of rows `start..stop-1` (writes through it land in this cache)."""
        return KVCache(k=[t[start:stop] for t in self.k], v=[t[start:stop] for t in self.v])

    def grown(self, rows: int, max_len: int, lengths: list[int] | None = None) -> KVCache:
        """A larger zero-filled cache holding this one's contents in its first rows and positions: every
        position, or only row i's first `lengths[i]` (the rest is stale), so that no unwritten position of the
        new cache is touched."""
        out = KVCache(
            k=[lazy_zeros((rows, t.shape[1], max_len, t.shape[3]), t.dtype, t.device) for t in self.k],
            v=[lazy_zeros((rows, t.shape[1], max_len, t.shape[3]), t.dtype, t.device) for t in self.v],
        )
        r, n = min(rows, self.num_rows), min(max_len, self.max_len)
        for dst, src in zip(out.k + out.v, self.k + self.v, strict=True):
            if lengths is None:
                dst[:r, :, :n] = src[:r, :, :n]
                continue
            for row, length in enumerate(lengths[:r]):
                dst[row, :, : min(length, n)] = src[row, :, : min(length, n)]
        return out

    def copy_prefix(self, row: int, other: KVCache, length: int) -> None:
        """Positions `0..length-1` of `other`'s single row into row `row` (a warm voice prefix into a slot)."""
        for dst, src in zip(self.k + self.v, other.k + other.v, strict=True):
            dst[row, :, :length] = src[0, :, :length]

    def zero_row(self, row: int, length: int | None = None) -> None:
        """Reset one row in place (after a stream whose values turned non-finite): its first `length` positions,
        or all."""
        for t in self.k + self.v:
            t[row, :, :length].zero_()


LAZY_MIN_BYTES = 1 << 20


def lazy_zeros(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """`torch.zeros(shape)` whose memory, on the CPU, is a private anonymous mapping: the kernel hands out zero
    pages, and a page becomes resident only when written. A static KV cache sized for every slot and the longest
    stream then costs memory for the positions streams actually reach (`torch.zeros` writes, and so holds, all
    of it: 8 slots x 2,048 positions of the 0.6B talker are 3.7 GB). Small buffers and other devices: zeros."""
    nbytes = math.prod(shape) * dtype.itemsize
    if device.type != "cpu" or nbytes < LAZY_MIN_BYTES:
        return torch.zeros(shape, dtype=dtype, device=device)
    with warnings.catch_warnings():  # an anonymous mapping is writable; torch cannot tell from the buffer
        warnings.simplefilter("ignore")
        return torch.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype).view(shape)


class RopeTable:
    """cos and signed-sin rows [length, head_dim] for positions 0..length-1 (see `_apply_rope`), built once per
    device and dtype and grown when a longer sequence comes (float32 math as Hugging Face, float64 for float64
    models)."""

    def __init__(self, head_dim: int, theta: float) -> None:
        self.head_dim, self.theta = head_dim, theta
        self._tables: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    def get(self, length: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        key = (device, dtype)
        table = self._tables.get(key)
        if table is None or table[0].shape[0] < length:
            size = max(256, 1 << (length - 1).bit_length())
            cos, sin = rope_cos_sin(torch.arange(size, device=device), self.head_dim, self.theta, dtype)
            half = self.head_dim // 2
            table = (cos, torch.cat((-sin[:, :half], sin[:, half:]), dim=-1))
            self._tables[key] = table
        return table


def rope_cos_sin(positions: Tensor, head_dim: int, theta: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """cos/sin tables [..., head_dim] for integer positions [...] (float32 math as HF, float64 for float64)."""
    math_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).to(math_dtype) / head_dim
    inv_freq = 1.0 / (theta**exponent)
    freqs = positions.to(math_dtype)[..., None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def _apply_rope(x: Tensor, cos: Tensor, signed_sin: Tensor) -> Tensor:
    """Rotate-half RoPE, x [B, H, T, hd], cos/signed_sin [B or 1, T, hd]. Hugging Face's
    `x * cos + cat(-x2, x1) * sin` equals `x * cos + cat(x2, x1) * cat(-sin1, sin2)` bit for bit (a sign moves
    between the factors of one product), and the second is one roll and no negation per call."""
    return x * cos[:, None] + x.roll(x.shape[-1] // 2, -1) * signed_sin[:, None]


class _Attention(nn.Module):
    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.qkv_proj: nn.Module | None = None  # q/k/v fused at load
        self.q_proj = nn.Linear(c.hidden_size, c.num_attention_heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.num_attention_heads * c.head_dim, c.hidden_size, bias=False)
        self.q_norm = RMSNorm(c.head_dim, c.rms_norm_eps)
        self.k_norm = RMSNorm(c.head_dim, c.rms_norm_eps)

    FUSED = {"qkv_proj": ("q_proj", "k_proj", "v_proj")}

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], layer: int, cache: KVCache, at: _Positions) -> Tensor:
        b, t, _ = x.shape
        heads, kv_heads, hd = self.num_heads, self.num_kv_heads, self.head_dim
        if self.qkv_proj is None:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        else:
            q, k, v = self.qkv_proj(x).split([heads * hd, kv_heads * hd, kv_heads * hd], dim=-1)
        # q and k stay apart: normed and rotated as one tensor, a batch's q and k would be strided views, which
        # measured slower at 4 streams in 4 of 5 rounds (step_compare) although one stream's predictor gained
        q = _apply_rope(self.q_norm(q.view(b, t, heads, hd)).transpose(1, 2), *rope)
        k = _apply_rope(self.k_norm(k.view(b, t, kv_heads, hd)).transpose(1, 2), *rope)
        v = v.reshape(b, t, kv_heads, hd).transpose(1, 2)
        ck, cv = cache.k[layer], cache.v[layer]
        if at.rows is None:  # every row at the same positions: contiguous writes
            ck[:, :, at.start : at.start + t] = k
            cv[:, :, at.start : at.start + t] = v
        else:  # one new position per row, each at its own place
            ck[at.rows, :, at.start] = k[:, :, 0]
            cv[at.rows, :, at.start] = v[:, :, 0]
        out = F.scaled_dot_product_attention(
            q, ck[:, :, : at.kv_len], cv[:, :, : at.kv_len], attn_mask=at.mask, enable_gqa=True
        )
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim))


@dataclass
class _Positions:
    """Where a forward writes and what it attends to (built once per forward, shared by every layer)."""

    start: int | Tensor  # first position (int: all rows), or each row's position [B]
    kv_len: int  # positions attended to
    rows: Tensor | None  # arange(B) when `start` is per row
    mask: Tensor | None  # bool [B or 1, 1, T, kv_len]; None when every position up to kv_len is visible


class _MLP(nn.Module):
    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.gate_up_proj: nn.Module | None = None  # gate/up fused at load
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    FUSED = {"gate_up_proj": ("gate_proj", "up_proj")}

    def forward(self, x: Tensor) -> Tensor:
        if self.gate_up_proj is None:
            gate, up = self.gate_proj(x), self.up_proj(x)
        else:
            gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class _DecoderLayer(nn.Module):
    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.self_attn = _Attention(c)
        self.mlp = _MLP(c)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], layer: int, cache: KVCache, at: _Positions) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, layer, cache, at)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen3DecoderStack(nn.Module):
    """`layers.N.*` and the final `norm`: embeddings in, final-normed hidden states out.

    `forward(x [B, T, D], cache, start, kv_len)` writes T positions of every row of `cache` (B rows) and attends
    causally. `start` is an int when all rows sit at the same positions (a prompt, the code predictor), or a
    tensor [B] of per-row positions for one new position each (T = 1; the engine's batched step), with `kv_len`
    (a host int, at least max(start) + 1) the positions attended to; positions past a row's own are masked.
    Nothing here reads a tensor back to the host, so a step can be traced and captured whole.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(_DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rope = RopeTable(config.head_dim, config.rope_theta)
        # the same forward in one native call, installed for quantized stacks (model/native_stack.py)
        self.native_forward: Callable[[Tensor, KVCache, int | Tensor, int | None], Tensor] | None = None

    def forward(self, x: Tensor, cache: KVCache, start: int | Tensor, kv_len: int | None = None) -> Tensor:
        b, t, _ = x.shape
        assert cache.num_rows == b, "one cache row per input row"
        if self.native_forward is not None:
            return self.native_forward(x, cache, start, kv_len)
        if isinstance(start, int):
            at = self._contiguous(start, t, x.device)
            cos, signed_sin = self.rope.get(start + t, x.dtype, x.device)
            rope = (cos[None, start : start + t], signed_sin[None, start : start + t])
        else:
            assert t == 1 and kv_len is not None, "per-row positions take one new row each and a kv_len"
            visible = torch.arange(kv_len, device=x.device)[None, :] <= start[:, None]
            at = _Positions(start, kv_len, torch.arange(b, device=x.device), visible[:, None, None, :])
            cos, signed_sin = self.rope.get(kv_len, x.dtype, x.device)
            rope = (cos[start][:, None], signed_sin[start][:, None])
        for i, layer in enumerate(self.layers):
            x = layer(x, rope, i, cache, at)
        return self.norm(x)

    @staticmethod
    def _contiguous(start: int, t: int, device: torch.device) -> _Positions:
        mask = None  # one new row attends to everything cached; a block of new rows needs the causal mask
        if t > 1:
            mask = torch.ones(t, start + t, dtype=torch.bool, device=device).tril(start)
        return _Positions(start, start + t, None, mask)
