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

import atexit
import logging
import threading
import time
import weakref
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..errors import InvalidInputError
from ..model.codec_decoder import CodecDecoderState
from ..model.transformer import KVCache
from ..text.incremental import CLAUSE_END, IncrementalTokenizer
from .generation import FrameStream, advance, predict_frames, prefill
from .omp import release_omp_workers
from .stream import AudioChunk, Channel, Stream

if TYPE_CHECKING:
    import asyncio

    from ..tts import Qwen3TTS, RequestSpec
    from ..voices.profile import VoiceProfile

__all__ = ["Engine", "DEFAULT_CHUNK_FRAMES", "check_chunk_frames"]

log = logging.getLogger("qwen3tts_realtime.engine")

DEFAULT_CHUNK_FRAMES: tuple[int, ...] = (1, 2, 4, 8)  # first audio after one 80 ms frame, then growing
ROLE_IDS = (151644, 77091, 198)  # "<|im_start|>assistant\n": prefix rows are voice-only when the text starts so
END_IDS = (151645, 198, 151644, 77091, 198)  # "<|im_end|>\n<|im_start|>assistant\n"
DEFAULT_START_TOKENS = 4  # incremental text: committed tokens before generation starts (absent a clause end)


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
    text: IncrementalTokenizer | None = None  # incremental requests: text arriving in fragments
    fragments: list[str] = field(default_factory=list)  # pushed, not yet tokenized (guarded by the engine lock)
    input_ended: bool = False  # end_input() was called (guarded by the engine lock)
    started: bool = False  # prefilled (incremental requests wait for enough text first)
    segments: list[RequestSpec] = field(default_factory=list)  # next generations of a long text
    frames: FrameStream | None = None
    decoder_state: CodecDecoderState | None = None
    undecoded: list[Tensor] = field(default_factory=list)
    emitted_frames: int = 0
    chunks: int = 0

    @property
    def cancelled(self) -> bool:
        return self.channel.cancel_requested.is_set()

    @property
    def finished(self) -> bool:
        """Ended, failed or gone: to be reaped."""
        return self.cancelled or (self.started and self.frames is None)

    def next_chunk_size(self) -> int:
        return self.chunk_frames[min(self.chunks, len(self.chunk_frames) - 1)]


def _close_at_exit(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.close()


class _WarmVoices:
    """Per-voice constants computed once: talker prefix KV per language, primed decoder state (ICL)."""

    def __init__(self) -> None:
        self.prefixes: weakref.WeakKeyDictionary[VoiceProfile, dict[int | None, KVCache]] = (
            weakref.WeakKeyDictionary()
        )
        self.decoders: weakref.WeakKeyDictionary[VoiceProfile, CodecDecoderState] = weakref.WeakKeyDictionary()


class Engine:
    """The streaming engine of one `Qwen3TTS`. Create streams with `submit`; `close()` stops the thread."""

    def __init__(
        self, tts: Qwen3TTS, *, max_streams: int = 16, start_tokens: int = DEFAULT_START_TOKENS
    ) -> None:
        if max_streams < 1:
            raise InvalidInputError(f"max_streams={max_streams!r}; it must be >= 1")
        self.tts = tts
        self.max_streams = max_streams
        self.start_tokens = start_tokens
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._active: list[_Job] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._exit_hook: partial[None] | None = None  # closes this engine at interpreter exit (see _ensure_thread)
        self._warm = _WarmVoices()
        self._steps = 0
        self._batch_sizes: Counter[int] = Counter()
        self._decode_batch_sizes: Counter[int] = Counter()
        self._prefix_computations = 0
        self._decoder_primings = 0
        self._timings: dict[str, float] = {}  # wall seconds by stage, since start

    # ---- caller side ------------------------------------------------------------------------------------

    def submit(
        self,
        spec: RequestSpec,
        chunk_frames: tuple[int, ...],
        loop: asyncio.AbstractEventLoop | None,
        more: list[RequestSpec] | tuple[RequestSpec, ...] = (),
    ) -> Stream:
        """Queue a validated request; returns its handle (asyncio-bound when `loop` is given).

        A spec without `text_ids` is incremental: its text comes through `Stream.push_text`/`end_input`.
        `more`: further segments of a long text, generated one after another into the same stream.
        """
        channel = Channel(loop)
        job = _Job(spec=spec, chunk_frames=chunk_frames, channel=channel, segments=list(more))
        if spec.text_ids is None:
            job.text = IncrementalTokenizer(self.tts.tokenizer.hf_tokenizer)
        with self._cond:
            if self._closed:
                raise RuntimeError("the engine is closed")
            self._queue.append(job)
            self._ensure_thread()
            self._cond.notify()
        if job.text is None:
            return Stream(channel, self._wake)
        return Stream(
            channel, self._wake, push_text=partial(self._push_text, job), end_input=partial(self._end_input, job)
        )

    def _push_text(self, job: _Job, fragment: str) -> None:
        if not isinstance(fragment, str):
            raise InvalidInputError(f"push_text() takes str fragments, got {type(fragment).__name__}")
        with self._cond:
            if job.input_ended:
                raise InvalidInputError("push_text() after end_input(): the stream's text is complete")
            job.fragments.append(fragment)
            self._cond.notify()

    def _end_input(self, job: _Job) -> None:
        with self._cond:
            job.input_ended = True
            self._cond.notify()

    def stats(self) -> dict[str, Any]:
        """Active and queued streams, steps run, batch sizes seen, warm-voice work done."""
        with self._cond:
            return {
                "active_streams": len(self._active),
                "queued_streams": len(self._queue),
                "max_streams": self.max_streams,
                "steps": self._steps,
                "batch_sizes": dict(sorted(self._batch_sizes.items())),
                "decode_batch_sizes": dict(sorted(self._decode_batch_sizes.items())),
                "voice_prefix_computations": self._prefix_computations,
                "decoder_primings": self._decoder_primings,
                "time_s": dict(self._timings),
            }

    def close(self) -> None:
        """Stop the thread and wait for it (it ends at its next step boundary); open streams are cancelled.
        Idempotent; also run at interpreter exit for an engine still open."""
        with self._cond:
            self._closed = True
            jobs = list(self._queue) + list(self._active)
            hook, self._exit_hook = self._exit_hook, None
            self._cond.notify_all()
        for job in jobs:
            job.channel.cancel()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if hook is not None:
            atexit.unregister(hook)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _ensure_thread(self) -> None:
        """Start the thread (called under the lock). It is a daemon, so a forgotten engine never keeps the
        process alive; but a daemon thread still inside torch when the interpreter finalizes is killed there
        and aborts the process ("terminate called without an active exception"). The exit hook therefore
        stops and joins it first: atexit callbacks run before daemon threads are stopped."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="qwen3tts-engine", daemon=True)
            self._thread.start()
            self._exit_hook = partial(_close_at_exit, weakref.ref(self))
            atexit.register(self._exit_hook)

    # ---- engine thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._queue and not self._has_work():
                    release_omp_workers()  # idle: let other threads' torch work run unthrottled (see omp.py)
                    self._cond.wait()
                if self._closed:
                    self._queue.clear()
                    self._active.clear()
                    return
                while self._queue and len(self._active) < self.max_streams:
                    self._active.append(self._queue.popleft())
                texts = {job: (job.fragments, job.input_ended) for job in self._active if job.text is not None}
                for job in texts:
                    job.fragments = []
            for job, (fragments, ended) in texts.items():
                self._feed_text(job, fragments, ended)
            for job in self._active:
                if not job.started and not job.finished and self._ready_to_start(job):
                    self._start(job)
            self._reap()
            if self._active:
                self._step()

    def _has_work(self) -> bool:
        """Something to do for an admitted stream (called under the lock)."""
        for job in self._active:
            if job.finished or (job.frames is not None and job.frames.can_step):
                return True
            if job.text is not None and (job.fragments or (job.input_ended and not job.text.ended)):
                return True
            if not job.started and job.text is None:
                return True
        return False

    def _feed_text(self, job: _Job, fragments: list[str], ended: bool) -> None:
        """Tokenize newly pushed text; a started stream gets the new stable tokens as trailing rows."""
        if job.finished:
            return
        closing = ended and not job.text.ended
        if not fragments and not closing:
            return
        try:
            new: list[int] = []
            for fragment in fragments:
                new += job.text.push(fragment)
            if closing:
                new += job.text.end()
            if job.started and (new or closing):
                self._extend_trailing(job, new, closed=closing)
        except Exception as e:
            job.channel.deliver(e)
            job.frames, job.started = None, True

    def _ready_to_start(self, job: _Job) -> bool:
        """Complete text starts at once. Incremental text starts when its first tokens are stable and either
        the input ended, a clause ended, or `start_tokens` are committed; an ICL clone also needs enough text
        to overlay its reference frames (its prompt holds them)."""
        if job.text is None:
            return True
        committed = job.text.committed
        if job.text.ended:
            return True
        if not committed:
            return False
        voice = job.spec.voice
        if voice.kind == "clone_icl":
            ref_tokens = len(self.tts.tokenizer.ref_ids(voice.ref_text)) - 5
            return ref_tokens + len(committed) > voice.ref_codes.shape[0] + 1
        clause = any(ch in CLAUSE_END for ch in job.text.committed_text)
        return clause or len(committed) >= self.start_tokens

    def _start(self, job: _Job, generator: torch.Generator | None = None) -> bool:
        """Prefill a new stream (from its voice's warm prefix); False if it failed or was cancelled.
        `generator` continues a previous segment's random sequence."""
        job.started = True
        if job.cancelled:
            return False
        try:
            tts, spec = self.tts, job.spec
            if job.text is not None:
                spec = self._incremental_spec(job)
            t0 = time.perf_counter()
            prompt, request = tts.build_request(spec)
            self._timings["prompt"] = self._timings.get("prompt", 0.0) + time.perf_counter() - t0
            if generator is not None:
                request.generator = generator
            prefix = None
            if tuple(spec.text_ids[:3].tolist()) == ROLE_IDS:
                prefix = self._voice_prefix(spec.voice, spec.language_id, prompt.rows[: prompt.voice_prefix_len])
            frames = FrameStream.create(tts.talker, request, prefix)
            if job.text is not None and not job.text.ended:
                frames.trailing.pop()  # the end-of-text row comes when the input ends
                frames.text_closed = False
            t0 = time.perf_counter()
            prefill(tts.talker, tts.config, frames)
            self._timings["prefill"] = self._timings.get("prefill", 0.0) + time.perf_counter() - t0
            job.decoder_state = self._decoder_state(spec.voice)
            job.frames = frames
        except Exception as e:  # delivered to this stream's consumer; the engine goes on
            log.debug("stream failed to start: %r", e)
            job.channel.deliver(e)
            job.frames = None
            return False
        return True

    def _next_segment(self, job: _Job) -> None:
        """Continue a long text with its next generation: same stream, decoder state and random sequence."""
        generator = job.frames.request.generator
        state = job.decoder_state
        job.spec = job.segments.pop(0)
        if self._start(job, generator):
            job.decoder_state = state
        else:
            job.frames = None

    def _incremental_spec(self, job: _Job) -> RequestSpec:
        """The request as if its committed text were the whole text (streaming layout)."""
        ids = job.text.committed
        if not ids:
            raise InvalidInputError("the stream's input ended without any text; push_text() something to say")
        template = torch.tensor([*ROLE_IDS, *ids, *END_IDS], dtype=torch.long)
        max_frames = job.spec.max_frames
        if job.spec.max_frames_auto:
            max_frames = self.tts.frame_budget(len(ids))
        return replace(job.spec, text_ids=template, max_frames=max_frames)

    def _extend_trailing(self, job: _Job, ids: list[int], *, closed: bool) -> None:
        frames = job.frames
        if frames is None:
            return
        tts = self.tts
        with torch.inference_mode():
            if ids:
                frames.trailing.extend(tts.talker.text_rows(torch.tensor(ids, device=tts.device)).unbind(0))
            if closed:
                eos = torch.tensor([tts.config.tts_eos_token_id], device=tts.device)
                frames.trailing.append(tts.talker.text_rows(eos)[0])
                frames.text_closed = True
        if job.spec.max_frames_auto:
            frames.request.max_frames = max(
                frames.request.max_frames, self.tts.frame_budget(len(job.text.committed))
            )

    def _step(self) -> None:
        jobs = [j for j in self._active if not j.cancelled and j.frames is not None and j.frames.can_step]
        if not jobs:
            return
        t0 = time.perf_counter()
        outbox = self._step_jobs(jobs)
        self._timings["step"] = self._timings.get("step", 0.0) + time.perf_counter() - t0
        for job, item in outbox:
            self._deliver(job, item)

    @staticmethod
    def _deliver(job: _Job, item: AudioChunk | BaseException) -> None:
        if not job.channel.deliver(item):
            job.frames = None  # consumer gone: reaped at the next boundary

    def _step_jobs(self, jobs: list[_Job]) -> list[tuple[_Job, AudioChunk | BaseException]]:
        """One step; returns the chunks to deliver (after the caller's bookkeeping).

        A chunk that is due and surely not the stream's last (a stream's first frame: the end of speech is held
        off for the next draw) is decoded and delivered between the code predictor and the talker, so the first
        audio does not wait for the talker's next position.
        """
        talker, config = self.tts.talker, self.tts.config
        try:
            frames = predict_frames(talker, [j.frames for j in jobs], self._timings)
            early: list[tuple[_Job, bool]] = []
            for job, frame in zip(jobs, frames, strict=True):
                job.undecoded.append(frame)
                if job.frames.surely_continues and len(job.undecoded) >= job.next_chunk_size():
                    early.append((job, False))
            for job, item in self._decode_chunks(early):  # a failed decode has already ended its stream
                self._deliver(job, item)
            alive = [i for i, job in enumerate(jobs) if job.frames is not None]
            if alive:
                advance(talker, config, [jobs[i].frames for i in alive], frames[alive], self._timings)
        except Exception as e:  # a failed batched step fails its streams, never the engine
            log.exception("engine step failed")
            for job in jobs:
                job.frames = None
            return [(job, e) for job in jobs]
        self._steps += 1
        self._batch_sizes[len(jobs)] += 1
        due: list[tuple[_Job, bool]] = []
        for job in (jobs[i] for i in alive):
            last = job.frames.done and not job.segments
            if last or len(job.undecoded) >= job.next_chunk_size():
                due.append((job, last))
        outbox = self._decode_chunks(due)
        for job in jobs:
            if job.frames is not None and job.frames.done and job.segments:
                self._next_segment(job)
        # Free ended streams before their last chunk leaves, so a consumer that saw the end sees a free slot.
        self._reap()
        return outbox

    def _decode_chunks(self, due: list[tuple[_Job, bool]]) -> list[tuple[_Job, AudioChunk | BaseException]]:
        """Decode the due chunks, batching streams that decode the same number of frames: the decoder reads
        its weights once per call, so one call for several streams costs far less than one call each."""
        groups: dict[int, list[tuple[_Job, bool]]] = {}
        for job, last in due:
            groups.setdefault(len(job.undecoded), []).append((job, last))
        outbox: list[tuple[_Job, AudioChunk | BaseException]] = []
        decoder = self.tts.codec.decoder
        for group in groups.values():
            self._decode_batch_sizes[len(group)] += 1
            t0 = time.perf_counter()
            try:
                codes = torch.stack([torch.stack(job.undecoded) for job, _ in group])  # [G, n, 16]
                if len(group) == 1:
                    state = group[0][0].decoder_state
                    audio = decoder.decode_step(codes, state)
                else:
                    state = CodecDecoderState.stack([job.decoder_state for job, _ in group])
                    audio = decoder.decode_step(codes, state)
                    for i, (job, _) in enumerate(group):
                        job.decoder_state = state.select(i)
                samples = audio.to(torch.float32).cpu().numpy()
            except Exception as e:
                log.exception("codec decode failed")
                for job, _ in group:
                    job.frames = None
                    outbox.append((job, e))
                continue
            finally:
                self._timings["decoder"] = self._timings.get("decoder", 0.0) + time.perf_counter() - t0
            for i, (job, last) in enumerate(group):
                outbox.append((job, self._chunk(job, samples[i], codes[i].cpu(), last)))
        return outbox

    def _chunk(self, job: _Job, samples, codes: Tensor, is_last: bool) -> AudioChunk:
        n = len(job.undecoded)
        chunk = AudioChunk(samples, job.emitted_frames, n, is_last, self.tts.sample_rate, codes)
        job.undecoded.clear()
        job.emitted_frames += n
        job.chunks += 1
        if is_last:
            job.frames = None
        return chunk

    def _reap(self) -> None:
        """Drop finished, failed and cancelled streams, freeing their caches."""
        with self._cond:
            keep = [j for j in self._active if not j.finished]
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
