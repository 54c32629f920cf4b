"""How far a fast mode (quantized weights, another dtype) departs from float32, measured teacher-forced.

Random weights cannot judge speech, and free-running equality is the wrong measure (one flipped near-tie changes
every later frame), so: float32 speaks each case freely (greedy) and its frames are recorded; then both the
float32 model and the mode's model read those frames teacher-forced (the talker sees the float32 history; the
code predictor, for group g, the float32 groups < g of the same frame) and we count, per group 0..15, how often
the mode's argmax equals float32's, and the cosine of their logits per step. Group 0's scores are processed as
generation processes them (repetition penalty over the float32 history, suppressed ids). The decoder's SNR (dB)
is measured decoding the same float32 frames.

    frames = reference_frames(reference, cases)          # float32, free-running
    fidelity(reference, candidate, cases, frames)         # the figures `benchmarks/fidelity.py` writes
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..engine.generation import _SUPPRESS
from ..engine.sampling import SamplingParams, penalize_group0
from ..model.transformer import KVCache
from ..tts import Qwen3TTS

__all__ = ["FidelityCase", "default_cases", "fidelity", "reference_frames", "teacher_forced_logits"]

TEXTS = (
    "Hello there, thanks for calling. How can I help you today?",
    "Your order number is four two seven, and it ships on Monday morning.",
    "Sure. I have moved your appointment to three thirty on Thursday afternoon.",
)


@dataclass(frozen=True)
class FidelityCase:
    text: str
    voice: str  # a built-in speaker (CustomVoice) or "xvector:<seed>" (Base: a clone of a synthetic clip)
    frames: int = 64


def default_cases(tts: Qwen3TTS, frames: int = 64) -> list[FidelityCase]:
    """3 texts x 2 voices of the checkpoint."""
    voices = tts.speakers[:2] if tts.model_type == "custom_voice" else ["xvector:0", "xvector:1"]
    return [FidelityCase(text, voice, frames) for text in TEXTS for voice in voices]


def reference_frames(reference: Qwen3TTS, cases: list[FidelityCase]) -> list[Tensor]:
    """What `reference` says freely (greedy, exactly `case.frames` frames) for each case: [frames, 16] each."""
    return [_free_run(reference, case) for case in cases]


def fidelity(
    reference: Qwen3TTS, candidate: Qwen3TTS, cases: list[FidelityCase], frames: list[Tensor] | None = None
) -> dict:
    """Teacher-forced agreement per group, logits cosines and decoder SNR of `candidate` against `reference`
    (float32) over `cases`; `frames`: `reference_frames(reference, cases)` when already computed."""
    if frames is None:
        frames = reference_frames(reference, cases)
    agree = np.zeros(16)
    count = 0
    cos_talker: list[float] = []
    cos_predictor: list[float] = []
    signal = noise = 0.0
    for case, codes in zip(cases, frames, strict=True):
        ref_t, ref_p = teacher_forced_logits(reference, case, codes)
        got_t, got_p = teacher_forced_logits(candidate, case, codes)
        agree[0] += float((_argmax_group0(reference, ref_t, codes) == _argmax_group0(reference, got_t, codes)).sum())
        agree[1:] += (ref_p.argmax(-1) == got_p.argmax(-1)).sum(0).double().numpy()
        count += codes.shape[0]
        cos_talker += F.cosine_similarity(ref_t, got_t, dim=-1).tolist()
        cos_predictor += F.cosine_similarity(ref_p, got_p, dim=-1).flatten().tolist()
        want = reference.codec.decode(codes)
        got = candidate.codec.decode(codes)
        signal += float(np.sum(want.astype(np.float64) ** 2))
        noise += float(np.sum((got.astype(np.float64) - want) ** 2))
    return {
        "cases": [{"text": c.text, "voice": c.voice, "frames": c.frames} for c in cases],
        "agreement_per_group": [round(a / count, 5) for a in agree],
        "logits_cosine": {
            "talker": {"mean": _round(np.mean(cos_talker)), "min": _round(np.min(cos_talker))},
            "predictor": {"mean": _round(np.mean(cos_predictor)), "min": _round(np.min(cos_predictor))},
        },
        "decoder_snr_db": None if noise == 0 else round(10 * math.log10(signal / noise), 2),
    }


@torch.inference_mode()
def teacher_forced_logits(tts: Qwen3TTS, case: FidelityCase, frames: Tensor) -> tuple[Tensor, Tensor]:
    """Float32 logits of `tts` reading `frames` [T, 16]: talker [T, vocab] (group 0 of each frame) and code
    predictor [T, 15, 2048] (groups 1..15)."""
    spec = tts.requests.spec(case.text, _voice(tts, case.voice), sampling=SamplingParams.greedy(),
                             max_new_frames=case.frames)
    prompt, _ = tts.requests.build(spec)
    talker, count = tts.talker, frames.shape[0]
    frames = frames.to(tts.device)
    trailing = prompt.trailing
    feed = torch.stack([trailing[t] if t < trailing.shape[0] else prompt.pad_row for t in range(count - 1)])
    rows = torch.cat([prompt.rows, talker.frame_rows(frames[:-1]) + feed])
    cache = KVCache.allocate(talker.config.transformer, 1, rows.shape[0], dtype=rows.dtype, device=rows.device)
    hidden = talker.forward_rows(rows[None], cache, 0)[0, prompt.rows.shape[0] - 1 :]  # [T, D]
    talker_logits = talker.logits(hidden).to(torch.float32)
    predictor = talker.code_predictor
    inputs = [hidden, talker.codec_rows(frames[:, 0])]
    inputs += [predictor.embed_group(j, frames[:, j]) for j in range(1, 15)]
    x = torch.stack(inputs, dim=1)  # [T, 16, D]
    pcache = KVCache.allocate(predictor.config, count, 16, dtype=x.dtype, device=x.device)
    ph = predictor.forward_rows(x, pcache, 0)
    predictor_logits = torch.stack([predictor.logits(j, ph[:, j]) for j in range(1, 16)], dim=1)
    return talker_logits.cpu(), predictor_logits.to(torch.float32).cpu()


def _free_run(tts: Qwen3TTS, case: FidelityCase) -> Tensor:
    sampling = SamplingParams(do_sample=False, subtalker_dosample=False, min_new_frames=case.frames)
    return tts.generate(case.text, voice=_voice(tts, case.voice), sampling=sampling, max_new_frames=case.frames).codes


def _argmax_group0(tts: Qwen3TTS, logits: Tensor, frames: Tensor) -> Tensor:
    """Greedy group-0 choices from teacher-forced logits, processed as generation does (float32 history)."""
    tc = tts.config.talker
    params = SamplingParams.greedy().resolve(tts.generation_defaults)
    suppress = _SUPPRESS.get(tc.transformer.vocab_size, tc.codec_eos_token_id, logits.device)
    seen = torch.zeros(tc.transformer.vocab_size, dtype=torch.bool)
    picks = []
    for t in range(logits.shape[0]):
        scores = penalize_group0(
            logits[t][None], seen[None], torch.tensor([t]), torch.tensor([float(params.repetition_penalty)]),
            torch.tensor([params.min_new_frames]), tc.codec_eos_token_id, suppress,
        )
        picks.append(int(scores.argmax()))
        seen[int(frames[t, 0])] = True
    return torch.tensor(picks)


def _voice(tts: Qwen3TTS, name: str):
    if not name.startswith("xvector:"):
        return tts.speaker(name)
    gen = np.random.default_rng(int(name.split(":")[1]))
    t = np.arange(3 * 24000) / 24000
    wav = 0.3 * np.sin(2 * np.pi * gen.uniform(100, 250) * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return tts.clone_voice((wav.astype(np.float32), 24000), x_vector_only=True)


def _round(x: float) -> float:
    return round(float(x), 6)
