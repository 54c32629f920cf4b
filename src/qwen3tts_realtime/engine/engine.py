"""`Engine`: one thread that owns the model and steps every active stream together (continuous batching).

Per step, for all active streams at once: talker + code predictor (`generation.step`), then each stream whose
chunk is due decodes its new frames with its own stateful streaming codec decoder (exact: the concatenated
chunks equal the full decode) and hands the audio to its consumer. New streams are prefilled and join at step
boundaries; finished, failed or cancelled streams leave at step boundaries and their caches are freed. At
most `max_streams` run at once; more wait in a FIFO queue (never dropped).

Warm voices: the talker KV of a voice's constant prompt rows (per language) and, for ICL clones, the decoder
state primed with the reference codes are computed once and reused by every later request with that voice.

Only this thread touches the model. Callers hand requests in through a condition-guarded queue and get
audio out through each stream's `Channel`.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..errors import InvalidInputError
from ..model.codec_decoder import CodecDecoderState
from ..model.transformer import KVCache
from .generation import FrameStream, prefill, step
from .stream import AudioChunk, Channel, Stream

if TYPE_CHECKING:
    import asyncio

    from ..tts import Qwen3TTS, RequestSpec
    from ..voices.profile import VoiceProfile

__all__ = ["Engine", "DEFAULT_CHUNK_FRAMES", "check_chunk_frames"]

log = logging.getLogger("qwen3tts_realtime.engine")

DEFAULT_CHUNK_FRAMES: tuple[int, ...] = (1, 2, 4, 8)  # first audio after one 80 ms frame, then growing
ROLE_IDS = (151644, 77091, 198)  # "<|im_start|>assistant\n": prefix rows are voice-only when the text starts so


def check_chunk_frames(chunk_frames: tuple[int, ...] | list[int] | int) -> tuple[int, ...]:
    """Validate a chunk schedule: frames per chunk, the last size repeating."""
    sizes = (chunk_frames,) if isinstance(chunk_frames, int) else tuple(chunk_frames)
    if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise InvalidInputError(
            f"chunk_frames={chunk_frames!r}; give positive ints, frames per chunk with the last repeating, "
            "e.g. (1, 2, 4, 8)"
        )
    return sizes


@dataclass(eq=False)
class _Job:
    spec: RequestSpec
    chunk_frames: tuple[int, ...]
    channel: Channel
    frames: FrameStream | None = None
    decoder_state: CodecDecoderState | None = None
    undecoded: list[Tensor] = field(default_factory=list)
    emitted_frames: int = 0
    chunks: int = 0

    @property
    def cancelled(self) -> bool:
        return self.channel.cancel_requested.is_set()

    def next_chunk_size(self) -> int:
        return self.chunk_frames[min(self.chunks, len(self.chunk_frames) - 1)]


class _WarmVoices:
    """Per-voice constants computed once: talker prefix KV per language, primed decoder state (ICL)."""

    def __init__(self) -> None:
        self.prefixes: weakref.WeakKeyDictionary[VoiceProfile, dict[int | None, KVCache]] = (
            weakref.WeakKeyDictionary()
        )
        self.decoders: weakref.WeakKeyDictionary[VoiceProfile, CodecDecoderState] = weakref.WeakKeyDictionary()


class Engine:
    """The streaming engine of one `Qwen3TTS`. Create streams with `submit`; `close()` stops the thread."""

    def __init__(self, tts: Qwen3TTS, *, max_streams: int = 16) -> None:
        if max_streams < 1:
            raise InvalidInputError(f"max_streams={max_streams!r}; it must be >= 1")
        self.tts = tts
        self.max_streams = max_streams
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._active: list[_Job] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._warm = _WarmVoices()
        self._steps = 0
        self._batch_sizes: Counter[int] = Counter()
        self._prefix_computations = 0
        self._decoder_primings = 0

    # ---- caller side ------------------------------------------------------------------------------------

    def submit(
        self, spec: RequestSpec, chunk_frames: tuple[int, ...], loop: asyncio.AbstractEventLoop | None
    ) -> Stream:
        """Queue a validated request; returns its handle (asyncio-bound when `loop` is given)."""
        channel = Channel(loop)
        job = _Job(spec=spec, chunk_frames=chunk_frames, channel=channel)
        with self._cond:
            if self._closed:
                raise RuntimeError("the engine is closed")
            self._queue.append(job)
            self._ensure_thread()
            self._cond.notify()
        return Stream(channel, self._wake)

    def stats(self) -> dict[str, Any]:
        """Active and queued streams, steps run, batch sizes seen, warm-voice work done."""
        with self._cond:
            return {
                "active_streams": len(self._active),
                "queued_streams": len(self._queue),
                "max_streams": self.max_streams,
                "steps": self._steps,
                "batch_sizes": dict(sorted(self._batch_sizes.items())),
                "voice_prefix_computations": self._prefix_computations,
                "decoder_primings": self._decoder_primings,
            }

    def close(self) -> None:
        """Stop the thread; open streams are cancelled. Idempotent."""
        with self._cond:
            self._closed = True
            jobs = list(self._queue) + list(self._active)
            self._cond.notify_all()
        for job in jobs:
            job.channel.cancel()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="qwen3tts-engine", daemon=True)
            self._thread.start()

    # ---- engine thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._queue and not self._active:
                    self._cond.wait()
                if self._closed:
                    self._queue.clear()
                    self._active.clear()
                    return
                admitted = []
                while self._queue and len(self._active) + len(admitted) < self.max_streams:
                    admitted.append(self._queue.popleft())
            for job in admitted:
                if self._start(job):
                    with self._cond:
                        self._active.append(job)
            self._reap()
            if self._active:
                self._step()

    def _start(self, job: _Job) -> bool:
        """Prefill a new stream (from its voice's warm prefix); False if it failed or was cancelled."""
        if job.cancelled:
            return False
        try:
            tts, spec = self.tts, job.spec
            prompt, request = tts.build_request(spec)
            prefix = None
            if tuple(spec.text_ids[:3].tolist()) == ROLE_IDS:
                prefix = self._voice_prefix(spec.voice, spec.language_id, prompt.rows[: prompt.voice_prefix_len])
            job.frames = FrameStream.create(tts.talker, request, prefix)
            prefill(tts.talker, tts.config, job.frames)
            job.decoder_state = self._decoder_state(spec.voice)
        except Exception as e:  # delivered to this stream's consumer; the engine goes on
            log.debug("stream failed to start: %r", e)
            job.channel.deliver(e)
            return False
        return True

    def _step(self) -> None:
        jobs = [j for j in self._active if not j.cancelled]
        if not jobs:
            return
        try:
            frames = step(self.tts.talker, self.tts.config, [j.frames for j in jobs])
        except Exception as e:  # a failed batched step fails its streams, never the engine
            log.exception("engine step failed")
            for job in jobs:
                job.channel.deliver(e)
                job.frames = None
            return
        self._steps += 1
        self._batch_sizes[len(jobs)] += 1
        outbox: list[tuple[_Job, AudioChunk | BaseException]] = []
        for job, frame in zip(jobs, frames, strict=True):
            job.undecoded.append(frame)
            done = job.frames.done
            if done or len(job.undecoded) >= job.next_chunk_size():
                outbox.append((job, self._decode_chunk(job, done)))
        # Free ended streams before their last chunk leaves, so a consumer that saw the end sees a free slot.
        self._reap()
        for job, item in outbox:
            if not job.channel.deliver(item) and job.frames is not None:
                job.frames = None  # consumer gone: reaped at the next boundary

    def _decode_chunk(self, job: _Job, is_last: bool) -> AudioChunk | BaseException:
        try:
            codes = torch.stack(job.undecoded)[None]  # [1, n, 16]
            audio = self.tts.codec.decoder.decode_step(codes, job.decoder_state)[0]
            samples = audio.to(torch.float32).cpu().numpy()
        except Exception as e:
            log.exception("codec decode failed")
            job.frames = None
            return e
        n = len(job.undecoded)
        chunk = AudioChunk(samples, job.emitted_frames, n, is_last, self.tts.sample_rate, codes[0].cpu())
        job.undecoded.clear()
        job.emitted_frames += n
        job.chunks += 1
        if is_last:
            job.frames = None
        return chunk

    def _reap(self) -> None:
        """Drop finished, failed and cancelled streams, freeing their caches."""
        with self._cond:
            keep = [j for j in self._active if j.frames is not None and not j.cancelled]
            for job in self._active:
                if job not in keep:
                    job.frames = None
                    job.decoder_state = None
                    job.undecoded.clear()
            self._active = keep

    def _voice_prefix(self, voice: VoiceProfile, language_id: int | None, rows: Tensor) -> KVCache:
        by_language = self._warm.prefixes.setdefault(voice, {})
        cache = by_language.get(language_id)
        if cache is None:
            talker = self.tts.talker
            cache = KVCache.allocate(talker.config.transformer, 1, rows.shape[0], dtype=rows.dtype, device=rows.device)
            with torch.inference_mode():
                talker.forward_rows(rows[None], [cache])
            by_language[language_id] = cache
            self._prefix_computations += 1
        return cache

    def _decoder_state(self, voice: VoiceProfile) -> CodecDecoderState:
        decoder = self.tts.codec.decoder
        if voice.kind != "clone_icl":
            return decoder.new_state(1)
        primed = self._warm.decoders.get(voice)
        if primed is None:
            primed = decoder.new_state(1)
            with torch.inference_mode():
                decoder.decode_step(voice.ref_codes[None].to(self.tts.device), primed)
            self._warm.decoders[voice] = primed
            self._decoder_primings += 1
        return primed.clone()
