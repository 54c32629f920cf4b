"""The 12 Hz speech-tokenizer decoder: codes [B, T, 16] → 24 kHz waveform [B, T·1920] (spec §6.2–§6.4).

`CodecDecoder.forward` is the official full decode of all frames at once. `CodecDecoder.decode_step` is the
same decode run incrementally: the decoder is strictly causal with a finite receptive field (sliding-window
attention, left-padded convolutions, right-trimmed transposed convolutions), so carrying the left context of
every block in a `CodecDecoderState` makes any chunking of a stream, 1 frame at a time or more, produce
exactly the samples of the full decode (up to float rounding), with zero look-ahead. Unlike the official
`chunked_decode` (300-frame windows, 25 frames of context) it stays exact past 300 frames.

A state is one row per stream. Rows may sit at different points of their streams (keys older than a row's
history are masked), so the engine can batch streams that started at different times. It keeps one state of
fixed slots and decodes the rows that are due in place (`decode_step(codes, state, rows=...)`): no per-call
stacking and splitting of stream states. A new stream's row is `reset_` or gets a primed state by `put_`;
`stack` and `select` remain for callers that hold separate states.
Priming a state with a voice's reference codes (decode, drop the audio) continues the reference exactly as
decoding reference + generated codes together and cutting the reference part.

State size per stream (float32, the real decoder): the key/value cache is 8 layers × 2 × 16 heads × 71 frames
× 64 = 1.16 M values (4.7 MB); the convolution contexts are 135 k values (0.54 MB: pre_conv 2 frames × 512,
ConvNeXt 2 × 6 × 1024, decoder.0 6 × 1024, per decoder block 1 transposed-conv input sample plus 6 + 18 + 54
samples for the dilated convs, final conv 6 × 96). About 5.2 MB per stream.

Cost on CPU: a step reads all ~106 M weights (420 MB in float32) whatever its size, so one frame per call is
weight-bandwidth bound; decoding a few frames per call, or several streams per batch, amortises that.

What this module does not do: load checkpoints, pick devices, batch streams or compile; the engine does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InvalidInputError
from .codec_layers import (
    CausalConv1d,
    CausalTransConv1d,
    ConvNeXtBlock,
    DecoderBlock,
    DecoderTransformer,
    SnakeBeta,
    SplitResidualVQ,
    StreamContext,
)
from .config import CodecDecoderConfig

__all__ = ["CodecDecoder", "CodecDecoderState", "validate_codes"]


def validate_codes(codes: Any, num_groups: int = 16, codebook_size: int = 2048) -> Tensor:
    """Check codec codes and return them as an int64 tensor [B, T, num_groups].

    Args:
        codes: integer codes [T, num_groups] (one stream) or [B, T, num_groups] (a batch), T ≥ 1; a
            tensor or anything `torch.as_tensor` reads.
        num_groups: code groups per frame (16 for every Qwen3-TTS 12 Hz checkpoint).
        codebook_size: ids must lie in [0, codebook_size).

    Returns:
        The codes as int64, with a batch dimension of 1 added to a [T, num_groups] input.

    Raises:
        InvalidInputError: wrong type, dtype, number of dimensions or groups, no frames, or an id out of
            range.
    """
    accepted = f"[T, {num_groups}] or [B, T, {num_groups}] integer ids in [0, {codebook_size})"
    if not isinstance(codes, Tensor):
        try:
            codes = torch.as_tensor(codes)
        except (TypeError, ValueError, RuntimeError) as e:
            kind = type(codes).__name__
            raise InvalidInputError(f"codes of type {kind} are not a tensor; expected {accepted}") from e
    if codes.dtype == torch.bool or codes.is_floating_point() or codes.is_complex():
        raise InvalidInputError(f"codes have dtype {codes.dtype}; expected {accepted} (e.g. torch.long)")
    shape = list(codes.shape)
    if codes.ndim not in (2, 3) or shape[-1] != num_groups:
        raise InvalidInputError(f"codes have shape {shape}; expected {accepted}")
    if codes.numel() == 0:
        raise InvalidInputError(f"codes have shape {shape} (no frames); expected {accepted} with T ≥ 1")
    if codes.ndim == 2:
        codes = codes.unsqueeze(0)
    codes = codes.long()
    lo, hi = int(codes.min()), int(codes.max())
    if lo < 0 or hi >= codebook_size:
        bad = lo if lo < 0 else hi
        raise InvalidInputError(
            f"code id {bad} is out of range; expected {accepted} (strip control tokens such as EOS, "
            "and padding such as -1, before decoding)"
        )
    return codes


@dataclass
class CodecDecoderState:
    """Left context of every time-mixing block of a `CodecDecoder`, one row per stream.

    `decode_step` overwrites the tensors in place; `stack`, `select` and `clone` return independent copies.
    Build one with `CodecDecoder.new_state`. In-place updates run under `torch.inference_mode`, so a state
    made inside or outside inference mode works either way.
    """

    frames: Tensor  # [B] int64: frames decoded so far per row (only min(frames, window - 1) matters)
    kv: Tensor  # [layers, 2, B, kv_heads, window - 1, head_dim]: unrotated keys/values, newest last
    conv: dict[str, Tensor]  # module name → [B, channels, context]: last inputs of each causal (trans)conv

    @property
    def batch_size(self) -> int:
        return self.frames.shape[0]

    def _map(self, fn: Any) -> CodecDecoderState:
        """Apply `fn(tensor, batch_dim)` to every tensor."""
        return CodecDecoderState(
            frames=fn(self.frames, 0), kv=fn(self.kv, 2), conv={k: fn(v, 0) for k, v in self.conv.items()}
        )

    def clone(self) -> CodecDecoderState:
        return self._map(lambda t, _: t.clone())

    def _index(self, rows: int | Sequence[int] | Tensor) -> Tensor:
        rows = [rows] if isinstance(rows, int) else rows
        return torch.as_tensor(rows, dtype=torch.long, device=self.kv.device)

    def select(self, rows: int | Sequence[int] | Tensor) -> CodecDecoderState:
        """A copy of some rows: an int keeps a batch of 1, a sequence or index tensor keeps that order."""
        index = self._index(rows)
        return self._map(lambda t, dim: t.index_select(dim, index))

    @torch.inference_mode()
    def put_(self, rows: int | Sequence[int] | Tensor, other: CodecDecoderState) -> None:
        """Overwrite some rows in place with the rows of `other` (same order), e.g. a new primed stream."""
        index = self._index(rows)
        if index.numel() != other.batch_size or other.conv.keys() != self.conv.keys():
            raise ValueError(f"cannot put a state of {other.batch_size} rows into rows {index.tolist()}")
        self.frames.index_copy_(0, index, other.frames)
        self.kv.index_copy_(2, index, other.kv)
        for key, t in self.conv.items():
            t.index_copy_(0, index, other.conv[key])

    @torch.inference_mode()
    def reset_(self, rows: int | Sequence[int] | Tensor) -> None:
        """Make some rows fresh (nothing decoded), in place."""
        index = self._index(rows)
        self.frames.index_fill_(0, index, 0)
        self.kv.index_fill_(2, index, 0)
        for t in self.conv.values():
            t.index_fill_(0, index, 0)

    def grown(self, batch_size: int) -> CodecDecoderState:
        """A state of `batch_size` rows: this one's rows first, fresh rows after them."""
        extra = batch_size - self.batch_size
        if extra < 0:
            raise ValueError(f"cannot grow a state of {self.batch_size} rows to {batch_size}")

        def grow(t: Tensor, dim: int) -> Tensor:
            shape = list(t.shape)
            shape[dim] = extra
            return torch.cat([t, t.new_zeros(shape)], dim)

        return self._map(grow)

    @staticmethod
    def stack(states: Sequence[CodecDecoderState]) -> CodecDecoderState:
        """One batch of the rows of several states, in order."""
        if not states:
            raise ValueError("stack needs at least one state")
        first = states[0]
        return CodecDecoderState(
            frames=torch.cat([s.frames for s in states]),
            kv=torch.cat([s.kv for s in states], dim=2),
            conv={key: torch.cat([s.conv[key] for s in states]) for key in first.conv},
        )


class CodecDecoder(nn.Module):
    """The official `Qwen3TTSTokenizerV2Decoder`; `state_dict()` keys are the checkpoint's `decoder.*` keys
    without the prefix."""

    def __init__(self, config: CodecDecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.quantizer = SplitResidualVQ(config)
        self.pre_conv = CausalConv1d(config.codebook_dim, config.latent_dim, 3)
        self.pre_transformer = DecoderTransformer(config)
        latent = config.latent_dim
        self.upsample = nn.ModuleList(
            nn.ModuleList([CausalTransConv1d(latent, latent, r, r), ConvNeXtBlock(latent)])
            for r in config.upsampling_ratios
        )
        dims = [config.decoder_dim // 2**i for i in range(len(config.upsample_rates) + 1)]
        self.decoder = nn.ModuleList(
            [CausalConv1d(config.latent_dim, dims[0], 7)]
            + [DecoderBlock(dims[i], dims[i + 1], r) for i, r in enumerate(config.upsample_rates)]
            + [SnakeBeta(dims[-1]), CausalConv1d(dims[-1], 1, 7)]
        )
        self._context_shapes: dict[str, tuple[int, int]] = {}  # state key → (channels, context samples)
        for name, module in self.named_modules():
            if isinstance(module, CausalConv1d | CausalTransConv1d) and module.context_shape[1] > 0:
                module.state_key = name
                self._context_shapes[name] = module.context_shape

    def new_state(self, batch_size: int = 1) -> CodecDecoderState:
        """A fresh streaming state (nothing decoded yet) on the module's device and dtype."""
        weight = self.pre_conv.conv.weight
        cfg = self.config
        past = cfg.sliding_window - 1
        kv_shape = (cfg.num_hidden_layers, 2, batch_size, cfg.num_key_value_heads, past, cfg.head_dim)
        return CodecDecoderState(
            frames=torch.zeros(batch_size, dtype=torch.long, device=weight.device),
            kv=weight.new_zeros(kv_shape),
            conv={k: weight.new_zeros(batch_size, c, n) for k, (c, n) in self._context_shapes.items()},
        )

    @torch.inference_mode()
    def forward(self, codes: Tensor) -> Tensor:
        """Full decode of all frames at once.

        Args:
            codes: int codes [B, T, 16] (or [T, 16]) in [0, 2048).

        Returns:
            Audio [B, T·1920] at 24 kHz in the module's dtype, clamped to [-1, 1].

        Raises:
            InvalidInputError: codes of the wrong shape, dtype or range (see `validate_codes`).
        """
        return self._decode(self._check(codes), None)

    @torch.inference_mode()
    def decode_step(
        self, codes: Tensor, state: CodecDecoderState, *, rows: Tensor | None = None, validate: bool = True
    ) -> Tensor:
        """Decode the next n ≥ 1 frames of every row of `state` (or of the rows listed in `rows`) and advance
        them in place.

        Concatenating the outputs of successive calls gives the samples of `forward` on all the codes.

        Args:
            codes: int codes [B, n, 16] (or [n, 16] for B = 1), B = `state.batch_size`, or B = len(rows).
            state: from `new_state` (or stacked/selected/primed ones), on the module's device and dtype.
            rows: int64 index tensor [B] of distinct rows of `state`, on its device: decode those rows only,
                row `rows[i]` with `codes[i]` (the engine's fixed slots). None: every row, in order.
            validate: check the codes' range (reads them back to the host); the engine, whose codes come from
                the model, passes False.

        Returns:
            Audio [B, n·1920], clamped to [-1, 1].

        Raises:
            InvalidInputError: bad codes, a batch size other than the state's (or than `rows`), or a state of
                another dtype or device than the module's.
        """
        codes = self._check(codes) if validate else codes.to(self.pre_conv.conv.weight.device)
        expected = state.batch_size if rows is None else rows.shape[0]
        if codes.shape[0] != expected:
            what = "the decoder state holds" if rows is None else "rows lists"
            raise InvalidInputError(
                f"codes hold {codes.shape[0]} rows but {what} {expected}; pass one row of codes per stream decoded"
            )
        weight = self.pre_conv.conv.weight
        if state.kv.dtype != weight.dtype or state.kv.device != weight.device:
            raise InvalidInputError(
                f"decoder state is {state.kv.dtype} on {state.kv.device} but the decoder is {weight.dtype} "
                f"on {weight.device}; make states with new_state() after moving the decoder"
            )
        audio = self._decode(codes, StreamContext(state.conv, state.kv, state.frames, rows))
        if rows is None:
            state.frames.add_(codes.shape[1])
        else:
            state.frames.index_add_(0, rows, torch.full_like(rows, codes.shape[1]))
        return audio

    def _check(self, codes: Tensor) -> Tensor:
        codes = validate_codes(codes, self.config.num_quantizers, self.config.codebook_size)
        return codes.to(self.pre_conv.conv.weight.device)

    def _decode(self, codes: Tensor, ctx: StreamContext | None) -> Tensor:
        x = self.quantizer(codes)  # [B, T, codebook_dim]
        x = self.pre_conv(x.transpose(1, 2), ctx).transpose(1, 2)  # [B, T, latent]
        x = self.pre_transformer(x, ctx)
        x = x.transpose(1, 2)  # [B, latent, T]
        for upsample, convnext in self.upsample:
            x = convnext(upsample(x, ctx), ctx)  # [B, latent, 2T], then 4T
        first, *blocks, act, last = self.decoder
        x = first(x, ctx)
        for block in blocks:
            x = block(x, ctx)
        x = last(act(x), ctx)  # [B, 1, T·1920]
        return x[:, 0].clamp(-1.0, 1.0)
