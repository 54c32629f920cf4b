"""Sampling of codec tokens (spec §2.5, §3.3), equal to the official Hugging Face processor chain.

Group 0 (talker): repetition penalty over the row's previously generated group-0 tokens → EOS masked for the
first `MIN_FRAMES` frames → ids 2048..3071 except EOS suppressed → temperature → top-k → top-p → softmax →
one multinomial draw (argmax when `do_sample` is off, on the processed logits). Groups 1..15 (code predictor):
temperature → top-k → top-p → draw. Scores are processed in float32, as Hugging Face does.

Rows are processed together: parameters are per-row tensors (`RowSampling`), greedy rows take one argmax
for the whole batch, and only sampled rows draw one by one, each from its own request's `torch.Generator`, so a
seeded request reproduces the official sampled output alone or in a batch. Each row's arithmetic is the same
whatever else is in the batch, and nothing here reads a tensor back to the host.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from ..errors import InvalidInputError
from ..model.config import GenerationDefaults

__all__ = ["SamplingParams", "RowSampling", "MIN_FRAMES", "check_sampling_value", "penalize_group0", "sample_rows"]

MIN_FRAMES = 2  # the official `min_new_tokens`: EOS is impossible for the first two frames
# Temperatures divide the float32 scores and the repetition penalty multiplies or divides them: outside this
# range they overflow to inf or underflow to 0, the softmax turns NaN and the draw fails, and with it every
# stream of the engine's batched step.
MIN_SCALE, MAX_SCALE = 0.01, 100.0
MAX_TOP_K = 100_000  # far above any codebook (2048 + specials): a bound, not a tuning


@dataclass(frozen=True)
class SamplingParams:
    """Sampling switches, named as in `generation_config.json`; `None` means "the checkpoint's default".

    `SamplingParams()` is the checkpoint's own configuration; `SamplingParams.greedy()` turns both
    `do_sample` switches off (deterministic argmax, what the golden greedy cases use).
    """

    do_sample: bool | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    subtalker_dosample: bool | None = None
    subtalker_temperature: float | None = None
    subtalker_top_k: int | None = None
    subtalker_top_p: float | None = None
    min_new_frames: int | None = None  # EOS impossible before this many frames (officially fixed at 2)

    @classmethod
    def greedy(cls) -> SamplingParams:
        return cls(do_sample=False, subtalker_dosample=False)

    def resolve(self, defaults: GenerationDefaults) -> SamplingParams:
        """Every field filled from `defaults` where unset, validated."""
        filled = replace(
            self, **{f.name: getattr(defaults, f.name) for f in fields(self) if getattr(self, f.name) is None}
        )
        filled._validate()
        return filled

    def _validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            accepted = check_sampling_value(f.name, value)
            if accepted is not None:
                raise InvalidInputError(f"SamplingParams.{f.name}={value!r}; accepted: {accepted}")


def check_sampling_value(name: str, value: object) -> str | None:
    """None when `value` is accepted for the `SamplingParams` field `name`, else the accepted values (for an
    error message). The server checks its JSON fields with this too, so both accept the same values."""
    rule = _RULES.get(name)
    if rule is None:  # do_sample, subtalker_dosample: used for their truth value
        return None
    accepted, description = rule
    return None if accepted(value) else description


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


_SCALE = (lambda v: _is_number(v) and MIN_SCALE <= v <= MAX_SCALE, f"a number from {MIN_SCALE} to {MAX_SCALE:g}")
_TOP_K = (lambda v: _is_int(v) and 0 <= v <= MAX_TOP_K, f"an int from 0 (off) to {MAX_TOP_K}")
_TOP_P = (lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]")
_RULES = {
    "temperature": _SCALE, "subtalker_temperature": _SCALE, "repetition_penalty": _SCALE,
    "top_k": _TOP_K, "subtalker_top_k": _TOP_K, "top_p": _TOP_P, "subtalker_top_p": _TOP_P,
    "min_new_frames": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
}


@dataclass(frozen=True)
class RowSampling:
    """One stage's sampling switches for a batch of rows, as tensors on the model's device, plus what the host
    must know to launch the draws (which rows sample, with which generator; the largest top-k)."""

    temperature: Tensor  # [B] float32
    top_k: Tensor  # [B] int64, 0 = off
    top_p_cut: Tensor  # [B] float32: 1 - top_p (0 = off)
    sampled: tuple[tuple[int, torch.Generator | None], ...]  # (row, generator) of the rows that sample
    top_k_max: int  # the largest top-k among the sampled rows (0 = none)

    @classmethod
    def build(
        cls,
        rows: list[tuple[bool, float, int, float, torch.Generator | None] | None],
        vocab: int,
        device: torch.device,
    ) -> RowSampling:
        """From per-row (do_sample, temperature, top_k, top_p, generator); `None` rows are greedy fillers."""
        filled = [r if r is not None else (False, 1.0, 0, 1.0, None) for r in rows]
        sampled = tuple((i, r[4]) for i, r in enumerate(filled) if r[0])
        top_k = [min(int(r[2]), vocab) for r in filled]
        return cls(
            temperature=torch.tensor([float(r[1]) for r in filled], dtype=torch.float32, device=device),
            top_k=torch.tensor(top_k, dtype=torch.long, device=device),
            # 1 - top_p in double, then float32: the same threshold as comparing with the Python float
            top_p_cut=torch.tensor([1.0 - float(r[3]) for r in filled], dtype=torch.float32, device=device),
            sampled=sampled,
            top_k_max=max((top_k[i] for i, _ in sampled), default=0),
        )

    def rows(self, start: int, stop: int) -> RowSampling:
        """The switches of rows `start..stop-1`, renumbered from 0."""
        return RowSampling(
            temperature=self.temperature[start:stop],
            top_k=self.top_k[start:stop],
            top_p_cut=self.top_p_cut[start:stop],
            sampled=tuple((i - start, g) for i, g in self.sampled if start <= i < stop),
            top_k_max=self.top_k_max,  # the batch's largest: the k-th value of each row is the same
        )


def penalize_group0(
    logits: Tensor, seen: Tensor, num_generated: Tensor, penalty: Tensor, min_frames: Tensor, eos_id: int,
    suppress: Tensor,
) -> Tensor:
    """The talker's logits processors for a batch of rows: logits [B, V] (raw `codec_head` output), seen bool
    [B, V] (the group-0 ids each row generated so far), num_generated / min_frames int [B] (EOS masked while
    num_generated < min_frames), penalty float32 [B] → float32 scores [B, V]. Multiplying or dividing by a
    penalty of 1.0 is exact, so rows without a penalty equal the unpenalised scores bit for bit."""
    scores = logits.to(torch.float32)
    p = penalty[:, None]
    scores = torch.where(seen, torch.where(scores < 0, scores * p, scores / p), scores)
    scores = scores.masked_fill(suppress, float("-inf"))
    eos = torch.where(num_generated < min_frames, float("-inf"), scores[:, eos_id])
    return torch.cat([scores[:, :eos_id], eos[:, None], scores[:, eos_id + 1 :]], dim=1)


def sample_rows(scores: Tensor, switches: RowSampling) -> Tensor:
    """One token per row [B] from processed float32 scores [B, V]: one argmax for every row, then the sampled
    rows' draws (temperature → top-k → top-p → softmax → multinomial on the row's own generator)."""
    tokens = scores.argmax(-1)
    if not switches.sampled:
        return tokens
    index = torch.tensor([i for i, _ in switches.sampled], device=scores.device)
    s = scores.index_select(0, index) / switches.temperature.index_select(0, index)[:, None]
    if switches.top_k_max > 0:
        k = switches.top_k.index_select(0, index)
        values = torch.topk(s, switches.top_k_max).values
        kth = values.gather(1, (k.clamp(1, switches.top_k_max) - 1)[:, None])
        s = s.masked_fill((k > 0)[:, None] & (s < kth), float("-inf"))
    cut = switches.top_p_cut.index_select(0, index)[:, None]
    sorted_scores, order = torch.sort(s, descending=False)
    drop_sorted = sorted_scores.softmax(-1).cumsum(-1) <= cut
    drop_sorted[..., -1:] = False
    s = s.masked_fill((cut > 0) & drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    probs = s.softmax(-1)
    draws = [
        torch.multinomial(probs[j : j + 1], 1, generator=generator).view(())
        for j, (_, generator) in enumerate(switches.sampled)
    ]
    return tokens.index_copy(0, index, torch.stack(draws))
