"""`Slots`: the preallocated per-stream generation state of the batched step, one row per stream.

Row `i` of every buffer belongs to the stream in slot `i`: the talker's KV cache and the position it writes next,
its last hidden state, the group-0 token waiting to become its next frame, its repetition-penalty set, its
frame count and its codec decoder state (decoded in place by row). The code predictor's cache has a row per slot
too (rewritten every frame). A stream takes a slot
when its generation starts and keeps it to its end; a released slot is reset in place. Buffers grow (rows up to
the engine's `max_streams`, positions by doubling) when a stream needs more, which keeps memory proportional to
what runs, and shapes static between growths.

Sampling switches live here as per-row tensors (`RowSampling`), rebuilt only when the slots' occupants change.
"""

from __future__ import annotations

import torch

from ..model.codec_decoder import CodecDecoder, CodecDecoderState
from ..model.talker import Talker
from ..model.transformer import KVCache
from .sampling import RowSampling, SamplingParams

__all__ = ["Slots"]

MIN_POSITIONS = 256


class Slots:
    """Per-slot buffers for `talker` (and `decoder`, when the slots decode: the engine's do, offline generation's
    do not) on its device and dtype. `acquire` a free slot for a stream and `release` it when the stream ends;
    `ensure(length)` before a step makes room for every slot's next position."""

    def __init__(
        self, talker: Talker, decoder: CodecDecoder | None = None, rows: int = 1, max_len: int = MIN_POSITIONS
    ) -> None:
        self.talker, self.decoder = talker, decoder
        tc = talker.config
        self.vocab = tc.transformer.vocab_size
        self.groups = tc.code_predictor.num_code_groups
        weight = talker.model.norm.weight
        self.device, self.dtype = weight.device, weight.dtype
        self._alloc(rows, max_len)
        self.decoder_state = None if decoder is None else decoder.new_state(rows)
        self.free: list[int] = list(range(rows))
        self.length: list[int] = [0] * rows  # host mirror of `pos`: positions filled per slot
        self.params: list[SamplingParams | None] = [None] * rows
        self.generators: list[torch.Generator | None] = [None] * rows
        self._switches: tuple[RowSampling, RowSampling] | None = None

    # ---- buffers ----------------------------------------------------------------------------------------

    @property
    def num_rows(self) -> int:
        return self.pos.shape[0]

    def _alloc(self, rows: int, max_len: int, cache: KVCache | None = None) -> None:
        tc, dev, dt = self.talker.config, self.device, self.dtype
        self.cache = cache or KVCache.allocate(tc.transformer, rows, max_len, dtype=dt, device=dev)
        self.predictor_cache = KVCache.allocate(tc.code_predictor, rows, self.groups, dtype=dt, device=dev)
        self.pos = torch.zeros(rows, dtype=torch.long, device=dev)  # the position each row writes next
        self.last_hidden = torch.zeros(rows, tc.transformer.hidden_size, dtype=dt, device=dev)
        self.pending = torch.zeros(rows, dtype=torch.long, device=dev)  # group-0 token of the next frame
        self.seen = torch.zeros(rows, self.vocab, dtype=torch.bool, device=dev)  # repetition-penalty sets
        self.num_frames = torch.zeros(rows, dtype=torch.long, device=dev)
        self.penalty = torch.ones(rows, dtype=torch.float32, device=dev)
        self.min_frames = torch.zeros(rows, dtype=torch.long, device=dev)

    def _grow(self, rows: int, max_len: int) -> None:
        old = (self.cache, self.pos, self.last_hidden, self.pending, self.seen, self.num_frames, self.penalty,
               self.min_frames)
        n = self.num_rows
        self._alloc(rows, max_len, old[0].grown(rows, max_len, self.length))  # filled positions only
        if rows > n and self.decoder_state is not None:
            self.decoder_state = self.decoder_state.grown(rows)
        for new, prev in zip(
            (self.pos, self.last_hidden, self.pending, self.seen, self.num_frames, self.penalty, self.min_frames),
            old[1:],
            strict=True,
        ):
            new[:n] = prev
        self.free += range(n, rows)
        self.length += [0] * (rows - n)
        self.params += [None] * (rows - n)
        self.generators += [None] * (rows - n)
        self._switches = None

    def ensure(self, rows: int = 0, length: int = 0) -> None:
        """Room for `rows` slots and `length` positions per slot (grown by doubling; contents kept)."""
        want_rows, want_len = max(rows, self.num_rows), self.cache.max_len
        while want_len < length:
            want_len *= 2
        if (want_rows, want_len) != (self.num_rows, self.cache.max_len):
            self._grow(want_rows, want_len)

    # ---- occupants --------------------------------------------------------------------------------------

    def acquire(
        self,
        params: SamplingParams,
        generator: torch.Generator | None,
        max_rows: int,
        decoder_state: CodecDecoderState | None = None,
    ) -> int:
        """The lowest free slot (growing up to `max_rows`), set up for a stream with these switches; its decoder
        row starts fresh, or from `decoder_state` (one row: a primed voice, or a previous segment's)."""
        if not self.free:
            if self.num_rows >= max_rows:
                raise RuntimeError("no free slot")  # the engine admits at most max_streams streams
            self.ensure(rows=min(max_rows, 2 * self.num_rows))
        self.free.sort()
        row = self.free.pop(0)
        self.params[row], self.generators[row] = params, generator
        self.penalty[row] = params.repetition_penalty
        self.min_frames[row] = params.min_new_frames
        self.seen[row] = False
        self.num_frames[row] = 0
        if self.decoder_state is not None:
            if decoder_state is None:
                self.decoder_state.reset_(row)
            else:
                self.decoder_state.put_(row, decoder_state)
        self._switches = None
        return row

    def release(self, row: int, *, poisoned: bool = False) -> None:
        """Free a slot. Its stale positions stay masked; `poisoned` (non-finite values were written) zeroes them,
        since a masked position still multiplies its value by 0 and 0 x NaN is NaN."""
        if poisoned:
            self.cache.zero_row(row, self.length[row] + 1)  # every position it wrote, the step's included
        self.pos[row] = 0
        self.length[row] = 0
        self.last_hidden[row] = 0
        self.pending[row] = 0
        self.params[row], self.generators[row] = None, None
        self.free.append(row)
        self._switches = None

    def switches(self) -> tuple[RowSampling, RowSampling]:
        """Group-0 and code-predictor switches of every row (free rows are greedy fillers)."""
        if self._switches is None:
            g0, sub = [], []
            for p, g in zip(self.params, self.generators, strict=True):
                if p is None:
                    g0.append(None)
                    sub.append(None)
                    continue
                g0.append((bool(p.do_sample), p.temperature, p.top_k, p.top_p, g))
                sub.append((bool(p.subtalker_dosample), p.subtalker_temperature, p.subtalker_top_k,
                            p.subtalker_top_p, g))
            predictor_vocab = self.talker.config.code_predictor.vocab_size
            self._switches = (
                RowSampling.build(g0, self.vocab, self.device),
                RowSampling.build(sub, predictor_vocab, self.device),
            )
        return self._switches

    def row_view(self, start: int, stop: int) -> tuple[KVCache, KVCache]:
        return self.cache.rows(start, stop), self.predictor_cache.rows(start, stop)
