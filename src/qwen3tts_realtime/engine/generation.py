"""The frame generation loop (spec §2.5, §3.2) as a batched step over `Slots`.

A `Generation` is one stream's host-side bookkeeping (its slot, trailing text rows, frame count, end). The
device-side state lives in its slot. `prefill` runs a stream's prompt into its slot and draws its first group-0
token; a step is `predict` (the code predictor turns each row's pending group-0 token and last hidden state into
groups 1..15) then `advance` (the frames plus each stream's next text row go through the talker, and each row's
next group-0 token, or its end, is drawn). Both run over a contiguous range of slots at once: rows of streams
not stepping (waiting for text, or free) compute along but change nothing (masked updates), so shapes are
static and nothing in a step reads the device back, except the one host read at the end of `advance`, which
carries every row's codes, end-of-speech flag and finite flag.

Random draws happen per stream on that stream's generator in the official order (group 0, then groups
1..15 of the same frame at the next step), so a seeded stream reproduces the official sampled output alone or
in a batch. `generate_frames` (offline) runs the same code on a one-slot `Slots`, so streaming equals offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import GenerationError
from ..model.config import Qwen3TTSConfig
from ..model.prompt import Prompt
from ..model.talker import Talker
from ..model.transformer import KVCache
from .host_reads import host_read
from .sampling import SamplingParams, penalize_group0, sample_rows
from .slots import Slots

__all__ = [
    "RowRequest", "Generation", "StepResult", "prefill", "predict", "advance", "advance_rows", "generate_frames",
    "NON_FINITE",
]

NON_FINITE = (
    "the model's logits turned non-finite (NaN or inf) at frame {frame}: this stream's generation cannot go on "
    "(a damaged checkpoint, or values that overflow the model's dtype); other streams are not affected"
)


@dataclass
class RowRequest:
    """One generation: its prompt, resolved sampling parameters, frame budget and random generator."""

    prompt: Prompt
    params: SamplingParams
    max_frames: int
    generator: torch.Generator | None = None


@dataclass(eq=False)
class Generation:
    """One stream's host-side state; its device state is row `slot` of the `Slots`."""

    request: RowRequest
    slot: int
    trailing: list[Tensor] = field(default_factory=list)  # text rows fed to frames 0, 1, ... (grows with input)
    text_closed: bool = True  # no more trailing rows will come (then P(tts_pad) is fed)
    length: int = 0  # positions filled in the slot's talker cache
    num_frames: int = 0
    done: bool = False  # drew the end of speech, or reached its frame budget

    @property
    def surely_continues(self) -> bool:
        """Between `predict` and `advance`: the frame just predicted cannot be the stream's last (the end of
        speech is held off for the next draw, and the frame budget is not reached)."""
        after = self.num_frames + 1
        return after < self.request.max_frames and after < self.request.params.min_new_frames

    @property
    def can_step(self) -> bool:
        """The next frame's text row is known (incremental text may not have arrived yet)."""
        return not self.done and (self.text_closed or self.num_frames < len(self.trailing))

    def next_text_row(self) -> Tensor:
        k = self.num_frames
        return self.trailing[k] if k < len(self.trailing) else self.request.prompt.pad_row


@dataclass(frozen=True)
class StepResult:
    """What `advance` read back: per stepping stream (in order) its new frame, end and finiteness."""

    codes: list[list[int]]  # [S][16]
    ended: list[bool]
    finite: list[bool]


class _Suppress:
    """The ids group 0 may never take: vocab-1024..vocab-1 except EOS (official rule), per device."""

    def __init__(self) -> None:
        self._masks: dict[tuple[int, int, torch.device], Tensor] = {}

    def get(self, vocab: int, eos_id: int, device: torch.device) -> Tensor:
        key = (vocab, eos_id, device)
        if key not in self._masks:
            mask = torch.zeros(vocab, dtype=torch.bool, device=device)
            mask[vocab - 1024 :] = True
            mask[eos_id] = False
            self._masks[key] = mask
        return self._masks[key]


_SUPPRESS = _Suppress()


@torch.inference_mode()
def prefill(
    talker: Talker, config: Qwen3TTSConfig, slots: Slots, gen: Generation, prefix: KVCache | None = None
) -> None:
    """Write the stream's prompt into its slot (from a warm voice prefix when given: the KV of the prompt's
    first `prefix.max_len` rows) and draw its first group-0 token. An end drawn here (possible only when
    `min_new_frames` is 0) ends the stream with no frame."""
    row, rows = gen.slot, gen.request.prompt.rows
    slots.ensure(length=rows.shape[0] + gen.request.max_frames + 1)
    start = 0
    if prefix is not None:
        start = prefix.max_len
        slots.cache.copy_prefix(row, prefix, start)
    cache, _ = slots.row_view(row, row + 1)
    hidden = talker.forward_rows(rows[None, start:], cache, start)[:, -1]  # [1, D]
    g0, _ = slots.switches()
    one = slice(row, row + 1)
    scores = penalize_group0(
        talker.logits(hidden), slots.seen[one], slots.num_frames[one], slots.penalty[one], slots.min_frames[one],
        config.talker.codec_eos_token_id, _suppress(config, hidden.device),
    )
    token = sample_rows(scores, g0.rows(row, row + 1))
    ended = token == config.talker.codec_eos_token_id
    slots.pending[one] = token
    slots.last_hidden[one] = hidden
    slots.seen[one] = slots.seen[one].scatter(1, token[:, None], ~ended[:, None])
    slots.pos[row] = rows.shape[0]
    slots.length[row] = gen.length = rows.shape[0]
    if gen.request.params.min_new_frames == 0:
        gen.done = bool(host_read(ended, "prefill")[0])


@torch.inference_mode()
def predict(talker: Talker, slots: Slots, start: int, stop: int) -> tuple[Tensor, Tensor]:
    """Groups 1..15 for rows `start..stop-1`: their frames [n, 16] and a finite flag [n] (the predictor's logits
    were all finite), on the device."""
    predictor = talker.code_predictor
    _, cache = slots.row_view(start, stop)
    _, sub = slots.switches()
    switches = sub.rows(start, stop)
    c0 = slots.pending[start:stop]
    x = torch.stack([slots.last_hidden[start:stop], talker.codec_rows(c0)], dim=1)  # [n, 2, D]
    codes, finite, position = [c0], None, 0
    for j in range(1, slots.groups):
        hidden = predictor.forward_rows(x, cache, position)[:, -1]
        position += x.shape[1]
        logits = predictor.logits(j, hidden).to(torch.float32)
        ok = torch.isfinite(logits).all(-1)
        finite = ok if finite is None else finite & ok
        cj = sample_rows(logits, switches)
        codes.append(cj)
        if j < slots.groups - 1:
            x = predictor.embed_group(j, cj)[:, None]
    return torch.stack(codes, dim=1), finite


@torch.inference_mode()
def advance(
    talker: Talker,
    config: Qwen3TTSConfig,
    slots: Slots,
    gens: list[Generation],
    start: int,
    stop: int,
    frames: Tensor,
    finite: Tensor,
) -> StepResult:
    """Feed rows `start..stop-1`'s frames (and each stepping stream's next text row) to the talker and draw each
    stepping stream's next group-0 token or its end; rows of `slots` not in `gens` are left as they were. One
    host read returns the codes, ends and finite flags of `gens`, in order."""
    n, dev = stop - start, frames.device
    index = [g.slot - start for g in gens]
    feed = torch.zeros(n, talker.hidden_size, dtype=slots.dtype, device=dev)
    feed[index] = torch.stack([g.next_text_row() for g in gens])
    active = torch.zeros(n, dtype=torch.bool, device=dev)
    active[index] = True
    kv_len = max(slots.length[start:stop]) + 1  # every row writes its next position, stepping or not
    slots.ensure(length=kv_len)
    packed = advance_rows(talker, config, slots, start, stop, frames, finite, feed, active, kv_len)
    rows = host_read(packed[index], "step")
    result = StepResult(
        codes=[r[:-2] for r in rows], ended=[bool(r[-2]) for r in rows], finite=[bool(r[-1]) for r in rows]
    )
    for g, end in zip(gens, result.ended, strict=True):
        g.num_frames += 1
        g.length += 1
        slots.length[g.slot] = g.length
        g.done = end or g.num_frames >= g.request.max_frames
    return result


def advance_rows(
    talker: Talker,
    config: Qwen3TTSConfig,
    slots: Slots,
    start: int,
    stop: int,
    frames: Tensor,
    finite: Tensor,
    feed: Tensor,
    active: Tensor,
    kv_len: int,
) -> Tensor:
    """The device part of `advance` (static shapes, no host read: what a CUDA graph captures): rows
    `start..stop-1` through the talker, group-0 draws, and the in-place commit of the `active` rows. Returns
    [n, 18] int64: the frames, then each row's end flag and finite flag."""
    cache, _ = slots.row_view(start, stop)
    pos = slots.pos[start:stop]
    rows_in = talker.frame_rows(frames) + feed
    hidden = talker.forward_rows(rows_in[:, None], cache, pos, kv_len)[:, 0]
    logits = talker.logits(hidden)
    eos_id = config.talker.codec_eos_token_id
    frames_after = slots.num_frames[start:stop] + active
    scores = penalize_group0(
        logits, slots.seen[start:stop], frames_after, slots.penalty[start:stop], slots.min_frames[start:stop],
        eos_id, _suppress(config, frames.device),
    )
    g0, _ = slots.switches()
    token = sample_rows(scores, g0.rows(start, stop))
    ended = token == eos_id
    finite = finite & torch.isfinite(logits).all(-1)
    # Commit, only for the active rows (a failure above leaves every slot as it was).
    seen = slots.seen[start:stop]
    seen.scatter_(1, token[:, None], seen.gather(1, token[:, None]) | (active & ~ended)[:, None])
    slots.pending[start:stop] = torch.where(active, token, slots.pending[start:stop])
    slots.last_hidden[start:stop] = torch.where(active[:, None], hidden, slots.last_hidden[start:stop])
    slots.num_frames[start:stop] = frames_after
    slots.pos[start:stop] = pos + active
    return torch.cat([frames, ended[:, None], finite[:, None]], dim=1)


@torch.inference_mode()
def generate_frames(talker: Talker, config: Qwen3TTSConfig, request: RowRequest) -> Tensor:
    """All frames of one request, offline: [frames, 16] on the model's device (the engine's step, one slot)."""
    slots = Slots(talker, rows=1, max_len=request.prompt.rows.shape[0] + request.max_frames + 1)
    gen = Generation(request, slots.acquire(request.params, request.generator, 1),
                     trailing=list(request.prompt.trailing.unbind(0)))
    prefill(talker, config, slots, gen)
    frames = []
    while not gen.done:
        codes, finite = predict(talker, slots, 0, 1)
        result = advance(talker, config, slots, [gen], 0, 1, codes, finite)
        if not result.finite[0]:
            raise GenerationError(NON_FINITE.format(frame=len(frames)))
        frames.append(codes[0])
    if not frames:
        return torch.zeros(0, 16, dtype=torch.long, device=request.prompt.rows.device)
    return torch.stack(frames)


def _suppress(config: Qwen3TTSConfig, device: torch.device) -> Tensor:
    tc = config.talker
    return _SUPPRESS.get(tc.transformer.vocab_size, tc.codec_eos_token_id, device)
