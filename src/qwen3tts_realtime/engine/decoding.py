"""Decoding the due chunks of a step: streams that decode the same number of frames share one decoder call (the
decoder reads its weights once per call), each in its own slot's row of the engine's decoder state, updated in
place; audio and codes leave the device in one copy per call."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import torch
from torch import Tensor

from ..model.codec_decoder import CodecDecoder, CodecDecoderState
from .host_reads import host_copy
from .job import Job
from .stream import AudioChunk

__all__ = ["decode_chunks", "make_chunk"]

log = logging.getLogger("qwen3tts_realtime.engine")


def decode_chunks(
    decoder: CodecDecoder,
    state: CodecDecoderState,
    due: list[tuple[Job, bool]],
    sample_rate: int,
    batch_sizes: Counter[int],
) -> list[tuple[Job, AudioChunk | BaseException]]:
    """Decode the due chunks, batching streams that decode the same number of frames: the decoder reads
    its weights once per call, so one call for several streams costs far less than one call each. Each stream
    decodes in its slot's row of `state` (rows of the slots' decoder state). The audio and the codes leave the
    device in one copy per call."""
    groups: dict[int, list[tuple[Job, bool]]] = {}
    for job, last in due:
        groups.setdefault(len(job.undecoded), []).append((job, last))
    outbox: list[tuple[Job, AudioChunk | BaseException]] = []
    for group in groups.values():
        batch_sizes[len(group)] += 1
        try:
            codes = torch.stack([torch.stack(job.undecoded) for job, _ in group])  # [G, n, 16]
            rows = torch.tensor([job.gen.slot for job, _ in group], device=codes.device)
            audio = decoder.decode_step(codes, state, rows=rows, validate=False)
            n = audio.shape[1]
            host = host_copy(torch.cat([audio.to(torch.float32), codes.flatten(1).to(torch.float32)], 1), "decode")
        except Exception as e:  # noqa: BLE001 - this group's streams fail, the engine goes on
            log.exception("codec decode failed")
            for job, _ in group:
                job.ended = True
                outbox.append((job, e))
            continue
        samples = host[:, :n].numpy()
        frame_codes = host[:, n:].to(torch.long).view(len(group), -1, 16)
        for i, (job, last) in enumerate(group):
            outbox.append((job, make_chunk(job, samples[i], frame_codes[i], last, sample_rate)))
    return outbox


def make_chunk(job: Job, samples: np.ndarray, codes: Tensor, is_last: bool, sample_rate: int) -> AudioChunk:
    """The job's next chunk: its undecoded frames' audio (which it now has emitted)."""
    n = len(job.undecoded)
    chunk = AudioChunk(samples, job.emitted_frames, n, is_last, sample_rate, codes)
    job.undecoded.clear()
    job.emitted_frames += n
    job.chunks += 1
    if is_last:
        job.ended = True
    return chunk
