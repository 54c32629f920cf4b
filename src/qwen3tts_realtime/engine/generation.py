"""The frame generation loop (spec §2.5, §3.2): prefill, then one codec frame per step, in plain PyTorch over
static caches. Drivable step by step, so streaming and batching reuse it.

Per step and row: the code predictor turns the pending group-0 token and the talker's last hidden state into
groups 1..15 (a fresh 16-position cache per frame), the frame is emitted, its embedding plus the next trailing
text row is fed to the talker, and the next group-0 token is drawn. A row ends when it draws EOS (which never
becomes a frame) or reaches its frame budget.

Random draws happen per row on that row's generator, in the official order (group 0, then groups 1..15 of the
same frame at the next step), so a seeded row reproduces the official sampled output alone or in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..model.config import Qwen3TTSConfig
from ..model.prompt import Prompt
from ..model.talker import Talker
from ..model.transformer import KVCache
from .sampling import SamplingParams, draw, process_group0

__all__ = ["RowRequest", "FrameGenerator"]


@dataclass
class RowRequest:
    """One generation: its prompt, resolved sampling parameters, frame budget and random generator."""

    prompt: Prompt
    params: SamplingParams
    max_frames: int
    generator: torch.Generator | None = None


@dataclass
class _Row:
    request: RowRequest
    position: int  # next talker position to write
    seen: Tensor  # bool [V]: group-0 ids generated so far
    pending: int | None = None  # drawn group-0 token waiting to become a frame; None when finished
    num_frames: int = 0
    last_hidden: Tensor | None = field(default=None, repr=False)  # [D]


class FrameGenerator:
    """Generates codec frames for a fixed batch of rows that start together.

    Usage: `gen = FrameGenerator(talker, config, requests)`; then `gen.step()` until `gen.done`; each step
    returns one `[16]` frame (or None once that row has ended) per row.
    """

    def __init__(self, talker: Talker, config: Qwen3TTSConfig, requests: list[RowRequest]) -> None:
        self.talker, self.config = talker, config
        tc = config.talker
        ref = requests[0].prompt.rows
        self.dtype, self.device = ref.dtype, ref.device
        vocab = tc.transformer.vocab_size
        self.eos_id = tc.codec_eos_token_id
        self.suppress = torch.zeros(vocab, dtype=torch.bool, device=self.device)
        self.suppress[vocab - 1024 :] = True  # official: ids vocab-1024..vocab-1 except EOS
        self.suppress[self.eos_id] = False
        max_len = max(r.prompt.rows.shape[0] + r.max_frames + 1 for r in requests)
        self.cache = KVCache.allocate(tc.transformer, len(requests), max_len, dtype=self.dtype, device=self.device)
        self.pred_cache = KVCache.allocate(
            tc.code_predictor, len(requests), tc.code_predictor.num_code_groups, dtype=self.dtype, device=self.device
        )
        self.rows = [
            _Row(request=r, position=0, seen=torch.zeros(vocab, dtype=torch.bool, device=self.device))
            for r in requests
        ]
        for b, row in enumerate(self.rows):
            self._prefill(b, row)

    @property
    def done(self) -> bool:
        return all(row.pending is None for row in self.rows)

    @torch.inference_mode()
    def step(self) -> list[Tensor | None]:
        """Advance every unfinished row by one frame; returns the new [16] frames (None for ended rows)."""
        active = [b for b, row in enumerate(self.rows) if row.pending is not None]
        out: list[Tensor | None] = [None] * len(self.rows)
        if not active:
            return out
        frames = self._predict_groups(active)  # [A, 16]
        feed: list[Tensor] = []
        for i, b in enumerate(active):
            row = self.rows[b]
            out[b] = frames[i]
            row.num_frames += 1
            trailing = row.request.prompt.trailing
            text = trailing[row.num_frames - 1] if row.num_frames - 1 < trailing.shape[0] else None
            feed.append(row.request.prompt.pad_row if text is None else text)
        rows_in = self.talker.frame_rows(frames) + torch.stack(feed)  # [A, D]
        continuing = [
            (i, b) for i, b in enumerate(active) if self.rows[b].num_frames < self.rows[b].request.max_frames
        ]
        for b in active:
            if self.rows[b].num_frames >= self.rows[b].request.max_frames:
                self.rows[b].pending = None
        if continuing:
            self._talker_step([b for _, b in continuing], rows_in[[i for i, _ in continuing]])
        return out

    def _prefill(self, b: int, row: _Row) -> None:
        rows = row.request.prompt.rows
        cache = _rows_view(self.cache, [b])
        positions = torch.arange(rows.shape[0], device=self.device)[None]
        with torch.inference_mode():
            hidden = self.talker.forward_rows(rows[None], positions, cache)[0, -1]
            row.position = rows.shape[0]
            self._accept_hidden(row, hidden)

    def _talker_step(self, slots: list[int], rows_in: Tensor) -> None:
        # Step the contiguous range of rows covering `slots`; rows in between that have ended get a zero row
        # at their current position (their cache is never read again), which keeps every cache access a view.
        lo, hi = slots[0], slots[-1] + 1
        x = rows_in.new_zeros(hi - lo, rows_in.shape[-1])
        x[[b - lo for b in slots]] = rows_in
        cache = _rows_view(self.cache, list(range(lo, hi)))
        positions = torch.tensor([[self.rows[b].position] for b in range(lo, hi)], device=self.device)
        hidden = self.talker.forward_rows(x[:, None], positions, cache)[:, 0]
        for b in slots:
            self.rows[b].position += 1
            self._accept_hidden(self.rows[b], hidden[b - lo])

    def _accept_hidden(self, row: _Row, hidden: Tensor) -> None:
        """Draw the row's next group-0 token from its last hidden state; EOS ends the row."""
        if row.num_frames >= row.request.max_frames:
            row.pending = None
            return
        p = row.request.params
        logits = self.talker.logits(hidden)
        scores = process_group0(logits, row.seen, row.num_frames, p.repetition_penalty, self.eos_id, self.suppress)
        token = int(draw(scores, p.do_sample, p.temperature, p.top_k, p.top_p, row.request.generator))
        row.last_hidden = hidden
        if token == self.eos_id:
            row.pending = None
            return
        row.seen[token] = True
        row.pending = token

    def _predict_groups(self, active: list[int]) -> Tensor:
        """Groups 1..15 for each active row's pending group-0 token: [A, 16] codes."""
        predictor = self.talker.code_predictor
        groups = predictor.config.num_code_groups
        n = len(active)
        cache = _rows_view(self.pred_cache, list(range(n)))
        c0 = torch.tensor([self.rows[b].pending for b in active], device=self.device)
        past = torch.stack([self.rows[b].last_hidden for b in active])
        x = torch.stack([past, self.talker.codec_rows(c0)], dim=1)  # [A, 2, D]
        positions = torch.arange(2, device=self.device).expand(n, 2)
        codes = [c0]
        for j in range(1, groups):
            hidden = predictor.forward_rows(x, positions, cache)[:, -1]
            logits = predictor.logits(j, hidden).to(torch.float32)
            picked = []
            for i, b in enumerate(active):
                p = self.rows[b].request.params
                picked.append(
                    draw(
                        logits[i],
                        p.subtalker_dosample,
                        p.subtalker_temperature,
                        p.subtalker_top_k,
                        p.subtalker_top_p,
                        self.rows[b].request.generator,
                    )
                )
            cj = torch.stack(picked)
            codes.append(cj)
            if j < groups - 1:
                x = predictor.embed_group(j, cj)[:, None]
                positions = torch.full((n, 1), j + 1, device=self.device)
        return torch.stack(codes, dim=1)


def _rows_view(cache: KVCache, slots: list[int]) -> KVCache:
    """A view of the cache over contiguous rows (writes land in `cache`)."""
    lo, hi = slots[0], slots[-1] + 1
    assert slots == list(range(lo, hi)), "cache views need contiguous rows"
    return KVCache(k=[t[lo:hi] for t in cache.k], v=[t[lo:hi] for t in cache.v], start=cache.start[lo:hi])
