"""Building blocks of the 12 Hz codec decoder (spec §6.2): causal convolutions, SnakeBeta, ConvNeXt, the
sliding-window pre-transformer and the split RVQ codebooks.

Every time-mixing block runs in two modes with one code path:

* **whole sequence** (`contexts` is None): left zero padding, exactly as the official full decode;
* **streaming**: the block's left context comes from a per-stream buffer that it reads and overwrites in
  place through a `StreamContext` (`read`/`write` by the block's `state_key` for convolutions, one layer's
  slice of the key/value cache for attention). The context addresses either every row of the buffers or
  some rows (`rows`, an index tensor): the engine keeps one buffer of fixed slots and decodes the rows of the
  streams that are due, in place, without gathering their states into a batch and scattering them back.
  Zero-filled buffers are the zero padding, so a fresh state continues exactly where the whole sequence would
  start, and any chunking of a sequence gives the same output.

Attributes and parameter names follow the checkpoint (`conv.weight`, `_codebook.embedding_sum`, ...), so the
official `decoder.*` weights load unchanged. This module holds no state of its own and no loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import CodecDecoderConfig

__all__ = [
    "StreamContext",
    "CausalConv1d",
    "CausalTransConv1d",
    "SnakeBeta",
    "ConvNeXtBlock",
    "DecoderBlock",
    "DecoderTransformer",
    "SplitResidualVQ",
]


def _promoted(dtype: torch.dtype) -> torch.dtype:
    """float32 for half types (as the official code computes norms and RoPE), the dtype itself otherwise."""
    return torch.promote_types(dtype, torch.float32)


class StreamContext:
    """The streaming buffers of a decode call: conv contexts, key/value cache and frame counts, for every row
    (`rows` None) or for the rows listed in `rows` (index tensor [B], in the order of the call's batch).

    `read` returns the call's rows (a gathered copy when `rows` is given); `write` stores new values for them in
    place. Reads and writes never leave the device and have static shapes, so a decode call can be captured.
    """

    def __init__(self, conv: dict[str, Tensor], kv: Tensor, frames: Tensor, rows: Tensor | None = None) -> None:
        self._conv, self._kv, self.rows = conv, kv, rows
        self.frames = frames if rows is None else frames.index_select(0, rows)  # [B] frames decoded before

    def read(self, key: str) -> Tensor:  # [B, C, context]
        buf = self._conv[key]
        return buf if self.rows is None else buf.index_select(0, self.rows)

    def write(self, key: str, value: Tensor) -> None:
        buf = self._conv[key]
        if self.rows is None:
            buf.copy_(value)
        else:
            buf.index_copy_(0, self.rows, value)

    def read_kv(self, layer: int) -> Tensor:  # [2, B, kv_heads, window - 1, head_dim]
        buf = self._kv[layer]
        return buf if self.rows is None else buf.index_select(1, self.rows)

    def write_kv(self, layer: int, keys: Tensor, values: Tensor) -> None:  # each [B, kv_heads, window - 1, hd]
        for buf, new in zip(self._kv[layer], (keys, values), strict=True):
            if self.rows is None:
                buf.copy_(new)
            else:
                buf.index_copy_(0, self.rows, new)


class CausalConv1d(nn.Module):
    """Stride-1 Conv1d that sees only the past: `(kernel_size - 1) * dilation` samples of left context."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, groups=groups)
        self.context_size = (kernel_size - 1) * dilation
        self.context_shape = (in_channels, self.context_size)  # [C_in, samples] carried over
        self.state_key = ""  # the module's name in the decoder, set by `CodecDecoder`

    def forward(self, x: Tensor, contexts: StreamContext | None = None) -> Tensor:  # [B, C, T]
        if self.context_size == 0:
            return self._conv(x)
        if contexts is None:
            return self._conv(F.pad(x, (self.context_size, 0)))
        x = torch.cat([contexts.read(self.state_key), x], dim=-1)  # [B, C, context_size + T]
        contexts.write(self.state_key, x[..., -self.context_size :])
        return self._conv(x)

    def _conv(self, x: Tensor) -> Tensor:  # [B, C_in, context + T] → [B, C_out, T]
        weight = self.conv.weight  # [C_out, C_in / groups, k]
        c_out, c_in, k = weight.shape
        b, t = x.shape[0], x.shape[-1] - self.context_size
        if self.conv.groups > 1 or 4 * b * t > c_out:
            return self.conv(x)
        # Few output samples for a large weight (streaming steps; decoder.0 always): one matmul on the
        # checkpoint weight. On CPU, F.conv1d repacks the whole weight for oneDNN on every call (44 MB for
        # decoder.0): that layer ran 1.5-3.5x slower, a whole decode step 4-8%. Long inputs favour conv1d.
        cols = x.unfold(-1, self.context_size + 1, 1)[..., :: self.conv.dilation[0]]  # [B, C_in, T, k]
        cols = cols.permute(0, 2, 1, 3).reshape(b * t, c_in * k)
        y = torch.addmm(self.conv.bias, cols, weight.reshape(c_out, c_in * k).t())
        return y.view(b, t, c_out).transpose(1, 2)


class CausalTransConv1d(nn.Module):
    """ConvTranspose1d with kernel = stride or 2·stride and the last `kernel − stride` outputs dropped.

    Computed as one matmul of the input with the checkpoint weight [C_in, C_out, k] viewed as [C_in, C_out·k]
    (all k output taps of every input sample), then an overlap-add: output frame t (stride samples) is taps
    0..s−1 of input t plus taps s..2s−1 of input t−1. Same arithmetic as `nn.ConvTranspose1d`, whose CPU
    kernel is over 10x slower on the few samples of a streaming step. Streaming carries the second-half taps
    of the last input, [B, C_out, stride], into the next call.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        if kernel_size not in (stride, 2 * stride):
            raise ValueError(f"kernel_size {kernel_size} must be stride {stride} or twice it")
        self.conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride)
        self.stride = stride
        self.context_shape = (out_channels, kernel_size - stride)  # [C_out, samples] carried over
        self.state_key = ""

    def forward(self, x: Tensor, contexts: StreamContext | None = None) -> Tensor:  # [B, C_in, T]
        b, c_in, t = x.shape
        s = self.stride
        c_out, k = self.conv.weight.shape[1:]
        taps = torch.matmul(x.transpose(1, 2), self.conv.weight.reshape(c_in, c_out * k))
        taps = taps.view(b, t, c_out, k)
        y = taps[..., :s] + self.conv.bias[:, None]  # [B, T, C_out, s]
        if k > s:
            overlap = taps[..., s:]
            y[:, 1:] += overlap[:, :-1]
            if contexts is not None:
                y[:, 0] += contexts.read(self.state_key)
                contexts.write(self.state_key, overlap[:, -1])
        return y.permute(0, 2, 1, 3).reshape(b, c_out, t * s)


class SnakeBeta(nn.Module):
    """Per-channel `x + sin²(x·e^alpha) / (e^beta + 1e-9)`; alpha and beta are stored in log space."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:  # [B, C, T]
        alpha = self.alpha.exp()[:, None]
        inv_beta = 1.0 / (self.beta.exp()[:, None] + 1e-9)
        if torch.is_grad_enabled() and x.requires_grad:
            return x + inv_beta * torch.sin(x * alpha).pow(2)
        s = torch.sin(x * alpha)  # the same arithmetic in place: fewer full-size temporaries (the decoder's hot path)
        return s.mul_(s).mul_(inv_beta).add_(x)


class ConvNeXtBlock(nn.Module):
    """Causal depthwise k7 conv, LayerNorm, 4x pointwise MLP with exact GELU, `gamma` scale, residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = CausalConv1d(dim, dim, 7, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor, contexts: StreamContext | None = None) -> Tensor:  # [B, C, T]
        h = self.dwconv(x, contexts).transpose(1, 2)
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class _ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int) -> None:
        super().__init__()
        self.act1 = SnakeBeta(dim)
        self.conv1 = CausalConv1d(dim, dim, 7, dilation=dilation)
        self.act2 = SnakeBeta(dim)
        self.conv2 = CausalConv1d(dim, dim, 1)

    def forward(self, x: Tensor, contexts: StreamContext | None) -> Tensor:
        return x + self.conv2(self.act2(self.conv1(self.act1(x), contexts)))


class DecoderBlock(nn.Module):
    """SnakeBeta, transposed conv upsampling by `rate` (k = 2·rate), residual units with dilation 1, 3, 9."""

    def __init__(self, in_dim: int, out_dim: int, rate: int) -> None:
        super().__init__()
        self.block = nn.ModuleList(
            [SnakeBeta(in_dim), CausalTransConv1d(in_dim, out_dim, 2 * rate, rate)]
            + [_ResidualUnit(out_dim, d) for d in (1, 3, 9)]
        )

    def forward(self, x: Tensor, contexts: StreamContext | None = None) -> Tensor:
        act, upsample, *units = self.block
        x = upsample(act(x), contexts)
        for unit in units:
            x = unit(x, contexts)
        return x


class _RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        h = x.to(_promoted(x.dtype))
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class _LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * x


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate-half RoPE; `cos`/`sin` are [positions, head_dim] matching x's second-to-last axis."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class _Attention(nn.Module):
    def __init__(self, config: CodecDecoderConfig) -> None:
        super().__init__()
        d, hd = config.hidden_size, config.head_dim
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = hd
        self.q_proj = nn.Linear(d, self.num_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, self.num_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, self.num_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(self.num_heads * hd, d, bias=False)

    def forward(
        self, x: Tensor, rope: tuple[Tensor, ...], mask: Tensor, contexts: StreamContext | None, layer: int
    ) -> Tensor:
        """x [B, n, D]; rope = (cos_q, sin_q, cos_k, sin_k); mask bool [.., n, keys] (True = attend);
        streaming: this layer's cache [2, B, kv_heads, window - 1, head_dim] of *unrotated* past keys and values
        is prepended to the new ones and then overwritten with the newest `window - 1`."""
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if contexts is not None:
            kv = contexts.read_kv(layer)
            past = kv.shape[-2]
            k = torch.cat([kv[0], k], dim=-2)
            v = torch.cat([kv[1], v], dim=-2)
            contexts.write_kv(layer, k[:, :, -past:], v[:, :, -past:])
        cos_q, sin_q, cos_k, sin_k = rope
        q, k = _rotate(q, cos_q, sin_q), _rotate(k, cos_k, sin_k)
        if self.num_kv_heads != self.num_heads:
            k = k.repeat_interleave(self.num_heads // self.num_kv_heads, dim=1)
            v = v.repeat_interleave(self.num_heads // self.num_kv_heads, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # scale head_dim ** -0.5
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class _TransformerLayer(nn.Module):
    def __init__(self, config: CodecDecoderConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.self_attn = _Attention(config)
        self.mlp = _Mlp(d, config.intermediate_size)
        self.input_layernorm = _RMSNorm(d, config.rms_norm_eps)
        self.post_attention_layernorm = _RMSNorm(d, config.rms_norm_eps)
        self.self_attn_layer_scale = _LayerScale(d)
        self.mlp_layer_scale = _LayerScale(d)

    def forward(
        self, x: Tensor, rope: tuple[Tensor, ...], mask: Tensor, contexts: StreamContext | None, layer: int
    ) -> Tensor:
        x = x + self.self_attn_layer_scale(self.self_attn(self.input_layernorm(x), rope, mask, contexts, layer))
        return x + self.mlp_layer_scale(self.mlp(self.post_attention_layernorm(x)))


class DecoderTransformer(nn.Module):
    """`pre_transformer`: latent → hidden projection, pre-norm layers with causal sliding-window attention
    (each query sees itself and the `sliding_window - 1` previous frames), final norm, projection back."""

    def __init__(self, config: CodecDecoderConfig) -> None:
        super().__init__()
        self.window = config.sliding_window
        self.head_dim = config.head_dim
        self.rope_theta = config.rope_theta
        self.input_proj = nn.Linear(config.latent_dim, config.hidden_size)
        self.layers = nn.ModuleList(_TransformerLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = _RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.output_proj = nn.Linear(config.hidden_size, config.latent_dim)

    def _cos_sin(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        # inv_freq is recomputed (head_dim / 2 values) rather than kept in a buffer that `.to(dtype)` would
        # round; float32 for float32 runs, as the official rotary embedding computes it.
        compute = _promoted(dtype)
        exponents = torch.arange(0, self.head_dim, 2, device=positions.device).to(compute) / self.head_dim
        inv_freq = 1.0 / (self.rope_theta**exponents)
        angles = positions.to(compute)[:, None] * inv_freq[None, :]
        angles = torch.cat([angles, angles], dim=-1)  # [P, head_dim]
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def forward(self, x: Tensor, contexts: StreamContext | None = None) -> Tensor:
        """x [B, n, latent] → [B, n, latent].

        Whole sequence when `contexts` is None. Streaming otherwise: its key/value cache [layers, 2, B,
        kv_heads, window - 1, head_dim] holds each row's newest past frames (right-aligned) and its `frames` [B]
        how many frames each row has decoded before; slots older than a row's history are masked, so rows may
        be at different points of their streams. Positions are local to the window (past slots 0 .. window - 2,
        new frames after them): RoPE scores depend only on offsets, and local positions keep fp32 angles exact
        however long a stream runs. The cache is overwritten in place with the newest frames; the caller
        advances the frame counts.
        """
        n, device = x.shape[1], x.device
        h = self.input_proj(x)
        if contexts is None:
            pos = torch.arange(n, device=device)
            cos, sin = self._cos_sin(pos, h.dtype)
            rope = (cos, sin, cos, sin)
            offset = pos[:, None] - pos[None, :]  # query − key
            mask = (offset >= 0) & (offset < self.window)  # [n, n]
        else:
            past = self.window - 1
            cos, sin = self._cos_sin(torch.arange(past + n, device=device), h.dtype)
            rope = (cos[past:], sin[past:], cos, sin)
            q = torch.arange(n, device=device)[:, None]
            k = torch.arange(past + n, device=device)[None, :]
            in_window = (k >= q) & (k <= q + past)  # [n, past + n]
            first_valid = past - contexts.frames.clamp(max=past)  # [B]
            mask = in_window & (k >= first_valid[:, None, None, None])  # [B, 1, n, past + n]
        for i, layer in enumerate(self.layers):
            h = layer(h, rope, mask, contexts, i)
        return self.output_proj(self.norm(h))


class _Codebook(nn.Module):
    """`embedding_sum / clamp(cluster_usage, 1e-5)`, divided row by row after the lookup: the same values
    as dividing the whole table first, without touching all 2048 rows every step."""

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.cluster_usage = nn.Parameter(torch.ones(size))
        self.embedding_sum = nn.Parameter(torch.zeros(size, dim))

    def forward(self, codes: Tensor) -> Tensor:  # [B, T] → [B, T, dim]
        usage = self.cluster_usage.clamp(min=1e-5)[codes]
        return F.embedding(codes, self.embedding_sum) / usage[..., None]


class _ResidualVQ(nn.Module):
    def __init__(self, num_quantizers: int, dim: int, codebook_size: int, io_dim: int) -> None:
        super().__init__()
        # input_proj is the encoder's; it is kept only so that the checkpoint loads strictly.
        self.input_proj = nn.Conv1d(io_dim, dim, 1, bias=False)
        self.output_proj = nn.Conv1d(dim, io_dim, 1, bias=False)
        layers = [nn.ModuleDict({"_codebook": _Codebook(dim, codebook_size)}) for _ in range(num_quantizers)]
        self.vq = nn.ModuleDict({"layers": nn.ModuleList(layers)})

    def forward(self, codes: Tensor) -> Tensor:  # [B, T, K] → [B, T, io_dim]
        total = self.vq["layers"][0]["_codebook"](codes[..., 0])
        for k in range(1, codes.shape[-1]):
            total = total + self.vq["layers"][k]["_codebook"](codes[..., k])
        return F.linear(total, self.output_proj.weight[..., 0])


class SplitResidualVQ(nn.Module):
    """`quantizer`: the semantic codebook (`rvq_first`) and the acoustic ones (`rvq_rest`), each summed in
    `codebook_dim / 2` and projected to `codebook_dim`; the two projections are added."""

    def __init__(self, config: CodecDecoderConfig, num_semantic: int = 1) -> None:
        super().__init__()
        dim, size = config.codebook_dim // 2, config.codebook_size
        self.num_semantic = num_semantic
        self.rvq_first = _ResidualVQ(num_semantic, dim, size, config.codebook_dim)
        self.rvq_rest = _ResidualVQ(config.num_quantizers - num_semantic, dim, size, config.codebook_dim)

    def forward(self, codes: Tensor) -> Tensor:  # [B, T, num_quantizers] → [B, T, codebook_dim]
        k = self.num_semantic
        return self.rvq_first(codes[..., :k]) + self.rvq_rest(codes[..., k:])
