"""The frame generation loop (spec §2.5, §3.2) in plain PyTorch over static caches, step by step.

`FrameStream` is one generation's state: its own talker KV cache, the drawn-but-not-yet-framed group-0 token,
the repetition-penalty set and its random generator. `prefill` runs a stream's prompt; `step` advances any
number of streams by one frame together (continuous batching: the talker and code predictor read their
weights once for all rows; attention runs per stream over its own cache).

Per step and stream: the code predictor turns the pending group-0 token and the talker's last hidden state
into groups 1..15 (a fresh 16-position cache per frame), the frame is returned, its embedding plus the next
trailing text row is fed to the talker, and the next group-0 token is drawn. A stream ends when it draws EOS
(which never becomes a frame) or reaches its frame budget; either is known in the step that returns its last
frame.

Random draws happen per stream on that stream's generator in the official order (group 0, then groups
1..15 of the same frame at the next step), so a seeded stream reproduces the official sampled output alone or
in a batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..model.config import Qwen3TTSConfig
from ..model.prompt import Prompt
from ..model.talker import Talker
from ..model.transformer import KVCache
from .sampling import SamplingParams, draw, process_group0

__all__ = ["RowRequest", "FrameStream", "prefill", "step", "generate_frames"]


@dataclass
class RowRequest:
    """One generation: its prompt, resolved sampling parameters, frame budget and random generator."""

    prompt: Prompt
    params: SamplingParams
    max_frames: int
    generator: torch.Generator | None = None


@dataclass(eq=False)
class FrameStream:
    """The generation state of one stream (owned by one thread at a time)."""

    request: RowRequest
    cache: KVCache
    seen: Tensor  # bool [V]: group-0 ids generated so far (repetition penalty)
    trailing: list[Tensor] = field(default_factory=list)  # text rows fed to frames 0, 1, ... (grows with input)
    text_closed: bool = True  # no more trailing rows will come (then P(tts_pad) is fed)
    pending: int | None = None  # drawn group-0 token waiting to become a frame; None once ended
    num_frames: int = 0
    last_hidden: Tensor | None = field(default=None, repr=False)  # [D] final-normed talker state

    @property
    def done(self) -> bool:
        return self.pending is None

    @property
    def surely_continues(self) -> bool:
        """Between `predict_frames` and `advance`: the frame just predicted cannot be the stream's last (the
        end of speech is held off for the next draw, and the frame budget is not reached)."""
        after = self.num_frames + 1
        return after < self.request.max_frames and after < self.request.params.min_new_frames

    @property
    def can_step(self) -> bool:
        """The next frame's text row is known (incremental text may not have arrived yet)."""
        return not self.done and (self.text_closed or self.num_frames < len(self.trailing))

    @classmethod
    def create(
        cls, talker: Talker, request: RowRequest, prefix: KVCache | None = None
    ) -> FrameStream:
        """A stream with a cache sized for its prompt and frame budget, optionally starting from a cached
        voice prefix (the KV of `request.prompt.rows[:prefix.length]`)."""
        rows = request.prompt.rows
        cache = KVCache.allocate(
            talker.config.transformer, 1, rows.shape[0] + request.max_frames + 1, dtype=rows.dtype, device=rows.device
        )
        if prefix is not None:
            cache.copy_prefix_from(prefix)
        vocab = talker.config.transformer.vocab_size
        return cls(
            request=request,
            cache=cache,
            seen=torch.zeros(vocab, dtype=torch.bool, device=rows.device),
            trailing=list(request.prompt.trailing.unbind(0)),
        )


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
def prefill(talker: Talker, config: Qwen3TTSConfig, stream: FrameStream) -> None:
    """Run the prompt rows not yet in the stream's cache and draw its first group-0 token."""
    rows = stream.request.prompt.rows[stream.cache.length :]
    hidden = talker.forward_rows(rows[None], [stream.cache])[0, -1]
    _accept_hidden(talker, config, stream, hidden)


@torch.inference_mode()
def step(
    talker: Talker, config: Qwen3TTSConfig, streams: list[FrameStream], timings: dict[str, float] | None = None
) -> Tensor:
    """Advance every stream (none may be done) by one frame; returns their new frames [S, 16].

    Afterwards `stream.done` tells whether that frame was the stream's last. `timings`, when given,
    accumulates wall seconds under "code_predictor" and "talker" (host clock: on an asynchronous device
    these measure launch time unless the caller synchronises). The same as `predict_frames` then `advance`.
    """
    frames = predict_frames(talker, streams, timings)
    advance(talker, config, streams, frames, timings)
    return frames


@torch.inference_mode()
def predict_frames(talker: Talker, streams: list[FrameStream], timings: dict[str, float] | None = None) -> Tensor:
    """The first half of a step: each stream's next frame [S, 16] (code predictor). `advance` must follow with
    the same streams; in between, `FrameStream.surely_continues` tells which frames cannot be the last."""
    assert streams and all(s.can_step for s in streams), "step() takes streams whose next text row is known"
    t0 = time.perf_counter()
    frames = _predict_groups(talker, streams)
    if timings is not None:
        timings["code_predictor"] = timings.get("code_predictor", 0.0) + (time.perf_counter() - t0)
    return frames


@torch.inference_mode()
def advance(
    talker: Talker,
    config: Qwen3TTSConfig,
    streams: list[FrameStream],
    frames: Tensor,
    timings: dict[str, float] | None = None,
) -> None:
    """The second half of a step: feed the new frames (and each stream's next text row) to the talker and draw
    each stream's next group-0 token, or its end."""
    t1 = time.perf_counter()
    feed = []
    for s in streams:
        k = s.num_frames
        s.num_frames += 1
        feed.append(s.trailing[k] if k < len(s.trailing) else s.request.prompt.pad_row)
    going = [i for i, s in enumerate(streams) if s.num_frames < s.request.max_frames]
    for s in streams:
        if s.num_frames >= s.request.max_frames:
            s.pending = None  # budget reached: this was the last frame
    if going:
        for i in going:
            cache = streams[i].cache
            if cache.length + 1 > cache.max_len:  # incremental text raised the frame budget
                cache.ensure_capacity(2 * cache.max_len)
        rows_in = talker.frame_rows(frames[going]) + torch.stack([feed[i] for i in going])
        hidden = talker.forward_rows(rows_in[:, None], [streams[i].cache for i in going])[:, 0]
        for j, i in enumerate(going):
            _accept_hidden(talker, config, streams[i], hidden[j])
    if timings is not None:
        timings["talker"] = timings.get("talker", 0.0) + (time.perf_counter() - t1)


def generate_frames(talker: Talker, config: Qwen3TTSConfig, request: RowRequest) -> Tensor:
    """All frames of one request, offline: [frames, 16] on the model's device."""
    stream = FrameStream.create(talker, request)
    prefill(talker, config, stream)
    frames = []
    while not stream.done:
        frames.append(step(talker, config, [stream])[0])
    if not frames:
        return torch.zeros(0, 16, dtype=torch.long, device=request.prompt.rows.device)
    return torch.stack(frames)


def _accept_hidden(talker: Talker, config: Qwen3TTSConfig, s: FrameStream, hidden: Tensor) -> None:
    """Draw the stream's next group-0 token from its last hidden state; EOS ends the stream."""
    tc = config.talker
    p = s.request.params
    suppress = _SUPPRESS.get(tc.transformer.vocab_size, tc.codec_eos_token_id, hidden.device)
    scores = process_group0(
        talker.logits(hidden[None])[0], s.seen, s.num_frames, p.repetition_penalty, tc.codec_eos_token_id, suppress,
        p.min_new_frames,
    )
    token = int(draw(scores, p.do_sample, p.temperature, p.top_k, p.top_p, s.request.generator))
    s.last_hidden = hidden
    if token == tc.codec_eos_token_id:
        s.pending = None
        return
    s.seen[token] = True
    s.pending = token


def _predict_groups(talker: Talker, streams: list[FrameStream]) -> Tensor:
    """Groups 1..15 for each stream's pending group-0 token: [S, 16] codes."""
    predictor = talker.code_predictor
    groups = predictor.config.num_code_groups
    n = len(streams)
    past = torch.stack([s.last_hidden for s in streams])
    cache = KVCache.allocate(predictor.config, n, groups, dtype=past.dtype, device=past.device)
    c0 = torch.tensor([s.pending for s in streams], device=past.device)
    x = torch.stack([past, talker.codec_rows(c0)], dim=1)  # [S, 2, D]
    codes = [c0]
    for j in range(1, groups):
        hidden = predictor.forward_rows(x, [cache])[:, -1]
        logits = predictor.logits(j, hidden).to(torch.float32)
        picked = []
        for i, s in enumerate(streams):
            p = s.request.params
            picked.append(
                draw(
                    logits[i],
                    p.subtalker_dosample,
                    p.subtalker_temperature,
                    p.subtalker_top_k,
                    p.subtalker_top_p,
                    s.request.generator,
                )
            )
        cj = torch.stack(picked)
        codes.append(cj)
        if j < groups - 1:
            x = predictor.embed_group(j, cj)[:, None]
    return torch.stack(codes, dim=1)
