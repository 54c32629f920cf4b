"""Sampling of codec tokens (spec §2.5, §3.3), equal to the official Hugging Face processor chain.

Group 0 (talker): repetition penalty over the row's previously generated group-0 tokens → EOS masked for the
first `MIN_FRAMES` frames → ids 2048..3071 except EOS suppressed → temperature → top-k → top-p → softmax →
one multinomial draw (argmax when `do_sample` is off, on the processed logits). Groups 1..15 (code predictor):
temperature → top-k → top-p → draw. Scores are processed in float32, as Hugging Face does.

Draws use a caller-owned `torch.Generator` per request, so seeded requests are reproducible alone or batched.
Parameters are per row; nothing here synchronises with the host.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from ..errors import InvalidInputError
from ..model.config import GenerationDefaults

__all__ = ["SamplingParams", "MIN_FRAMES", "check_sampling_value", "process_group0", "draw"]

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


def process_group0(
    logits: Tensor, seen: Tensor, num_generated: int, penalty: float, eos_id: int, suppress: Tensor,
    min_frames: int = MIN_FRAMES,
) -> Tensor:
    """The talker's logits processors for one row: [V] float32 → [V].

    Args:
        logits: raw `codec_head` logits of the row's last position.
        seen: bool [V], the group-0 ids this row generated so far (repetition penalty set).
        num_generated: how many group-0 tokens this row sampled before (EOS masked while < `min_frames`).
        penalty: repetition penalty (1.0 = off).
        eos_id: codec EOS id.
        suppress: bool [V], ids that may never be produced.
        min_frames: the official `min_new_tokens` (2).
    """
    scores = logits.to(torch.float32)
    if penalty != 1.0:
        penalised = torch.where(scores < 0, scores * penalty, scores / penalty)
        scores = torch.where(seen, penalised, scores)
    scores = scores.masked_fill(suppress, float("-inf"))
    if num_generated < min_frames:
        scores[eos_id] = float("-inf")
    return scores


def draw(
    scores: Tensor, do_sample: bool, temperature: float, top_k: int, top_p: float, generator: torch.Generator | None
) -> Tensor:
    """One token from processed float32 scores [V]: argmax, or temperature/top-k/top-p then a multinomial draw."""
    if not do_sample:
        return scores.argmax(-1)
    if temperature != 1.0:
        scores = scores / temperature
    if top_k > 0:
        k = min(top_k, scores.shape[-1])
        kth = torch.topk(scores, k).values[..., -1, None]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=False)
        cumulative = sorted_scores.softmax(-1).cumsum(-1)
        drop_sorted = cumulative <= (1 - top_p)
        drop_sorted[..., -1:] = False
        scores = scores.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    probs = scores.softmax(-1)
    return torch.multinomial(probs.unsqueeze(0), 1, generator=generator).view(())
