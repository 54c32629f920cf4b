"""`Engine`: one thread that owns the model and steps every active stream together (continuous batching).

Per step, for all generating streams at once: code predictor then talker over their slots (`generation.predict`,
`generation.advance`: static per-slot caches, batched sampling, one host read), then each stream whose chunk is
due decodes its new frames with its own stateful streaming codec decoder (exact: the concatenated chunks equal
the full decode) and hands the audio to its consumer. A stream takes a slot when its generation starts
(incremental text: once its first tokens are committed) and frees it when it ends, fails or is cancelled, at
a step boundary. At most `max_streams` generate at once; more wait in a FIFO queue (never dropped; a cancelled
queued stream leaves it at once).

A step that raises is retried stream by stream, so only the culprit fails (with its error) and the others go
on with the output they would have had alone; a stream whose logits turn non-finite fails alone the same way
(a per-row finite flag travels with the step's host read).

Warm voices: the talker KV of a voice's constant prompt rows (per language) and, for ICL clones, the decoder
state primed with the reference codes are computed once and reused by every later request with that voice.

Only this thread touches the model. Callers hand requests in through a condition-guarded queue and get
audio out through each stream's `Channel`; pushed text is tokenized on a separate thread (`text_feed.py`).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ..errors import GenerationError, InvalidInputError
from ..model.codec_decoder import CodecDecoderState
from ..model.omp import release_omp_workers
from ..model.transformer import KVCache
from .decoding import decode_chunks, make_chunk
from .generation import NON_FINITE, Generation, advance, predict, prefill
from .host_reads import counting
from .job import DEFAULT_CHUNK_FRAMES, Job, check_chunk_frames
from .request import Requests, RequestSpec
from .slots import Slots
from .stream import AudioChunk, Channel, Stream
from .text_feed import PendingText, TextFeed
from .warm import DEFAULT_WARM_VOICES, WarmVoices

if TYPE_CHECKING:
    from ..voices.profile import VoiceProfile

__all__ = ["Engine", "DEFAULT_CHUNK_FRAMES", "check_chunk_frames"]

log = logging.getLogger("qwen3tts_realtime.engine")

DEFAULT_START_TOKENS = 4  # incremental text: committed tokens before generation starts (absent a clause end)


def _close_at_exit(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.close()


class Engine:
    """The streaming engine of one loaded model (its `Requests` and their `Runtime`). Create streams with
    `_submit` (through `Qwen3TTS.open_stream`); `close()` stops the threads."""

    def __init__(
        self,
        requests: Requests,
        *,
        max_streams: int = 16,
        start_tokens: int = DEFAULT_START_TOKENS,
        warm_voices: int = DEFAULT_WARM_VOICES,
    ) -> None:
        if max_streams < 1:
            raise InvalidInputError(f"max_streams={max_streams!r}; it must be >= 1")
        self.requests = requests
        self.runtime = requests.runtime
        self.max_streams = max_streams
        self.start_tokens = start_tokens
        self._cond = threading.Condition()
        self._queue: deque[Job] = deque()  # not generating yet (incremental ones may be waiting for text)
        self._active: list[Job] = []  # generating: each holds a slot
        self._thread: threading.Thread | None = None
        self._closed = False
        self._exit_hook: partial[None] | None = None  # closes this engine at interpreter exit (see _ensure_thread)
        self._text_feed = TextFeed(self._wake)
        self._slots: Slots | None = None
        self._warm = WarmVoices(warm_voices)
        self._steps = 0
        self._batch_sizes: Counter[int] = Counter()
        self._decode_batch_sizes: Counter[int] = Counter()
        self._host_reads: Counter[str] = Counter()
        self._isolated_failures = 0
        self._timings: dict[str, float] = {}  # wall seconds by stage, since start

    # ---- caller side ------------------------------------------------------------------------------------

    def _submit(
        self,
        spec: RequestSpec,
        chunk_frames: tuple[int, ...],
        more: list[RequestSpec] | tuple[RequestSpec, ...] = (),
    ) -> Stream:
        """Queue a validated request; returns its handle.

        A spec without `text_ids` is incremental: its text comes through `Stream.push_text`/`end_input`.
        `more`: further segments of a long text, generated one after another into the same stream.
        """
        channel = Channel()
        job = Job(spec=spec, chunk_frames=chunk_frames, channel=channel, segments=list(more))
        if spec.text_ids is None:
            job.text = PendingText(self.runtime.tokenizer.backend, self._text_feed)
        with self._cond:
            if self._closed:
                raise RuntimeError("the engine is closed")
            self._queue.append(job)
            self._ensure_thread()
            self._cond.notify()
        if job.text is None:
            return Stream(channel, self._wake)
        return Stream(channel, self._wake, push_text=job.text.push, end_input=job.text.end)

    def stats(self) -> dict[str, Any]:
        """Streams generating and queued, steps run, batch sizes seen, host reads by kind, warm-voice work."""
        with self._cond:
            steps = self._steps
            return {
                "active_streams": len(self._active),
                "queued_streams": len(self._queue),
                "max_streams": self.max_streams,
                "steps": steps,
                "batch_sizes": dict(sorted(self._batch_sizes.items())),
                "decode_batch_sizes": dict(sorted(self._decode_batch_sizes.items())),
                "host_reads": dict(self._host_reads),
                "host_reads_per_step": self._host_reads["step"] / steps if steps else 0.0,
                "isolated_failures": self._isolated_failures,
                "tokenized_chars": self._text_feed.tokenized_chars,
                "warm_voices": self._warm.stats(),
                "voice_prefix_computations": self._warm.prefix_computations,
                "decoder_primings": self._warm.decoder_primings,
                "time_s": dict(self._timings),
            }

    def is_warm(self, voice: VoiceProfile) -> bool:
        """Whether `voice` (or an equal profile: warm state is keyed by content) has warm state now, so a stream
        for it starts without computing its prompt prefix. A peek: counts no hit or miss."""
        return self._warm.contains(voice)

    def close(self) -> None:
        """Stop the threads and wait for them (the engine ends at its next step boundary); open streams are
        cancelled. Idempotent; also run at interpreter exit for an engine still open."""
        with self._cond:
            self._closed = True
            jobs = list(self._queue) + list(self._active)
            hook, self._exit_hook = self._exit_hook, None
            self._cond.notify_all()
        for job in jobs:
            job.channel.cancel()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._text_feed.close()
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
            self._text_feed.start()
            self._exit_hook = partial(_close_at_exit, weakref.ref(self))
            atexit.register(self._exit_hook)

    # ---- engine thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        with counting(self._host_reads), torch.inference_mode():  # slots and states are inference tensors
            while self._run_once():
                pass

    def _run_once(self) -> bool:
        with self._cond:
            while not self._closed and not self._has_work():
                release_omp_workers()  # idle: let other threads' torch work run unthrottled (see omp.py)
                self._cond.wait()
            if self._closed:
                self._queue.clear()
                self._active.clear()
                self._slots = None
                return False
            self._queue = deque(job for job in self._queue if not job.cancelled)  # abandoned: gone at once
            jobs = [*self._queue, *self._active]
        for job in jobs:
            if job.text is not None and not job.text_complete and not job.finished:
                self._take_text(job)
        with self._cond:
            starting = []
            free = self.max_streams - len(self._active)
            for job in list(self._queue):
                if free == 0:
                    break
                if job.finished or self._ready_to_start(job):
                    self._queue.remove(job)
                    self._active.append(job)
                    starting.append(job)
                    free -= 1
        for job in starting:
            if not job.finished:
                self._start(job)
        self._reap()
        if self._active:
            self._step()
        return True

    def _has_work(self) -> bool:
        """Something to do (called under the lock)."""
        if any(job.finished or (job.gen is not None and job.gen.can_step) for job in self._active):
            return True
        for job in [*self._queue, *self._active]:
            if job.text is not None and not job.text_complete and job.text.has_news():
                return True
        if len(self._active) < self.max_streams:
            return any(job.finished or self._ready_to_start(job) for job in self._queue)
        return False

    def _take_text(self, job: Job) -> None:
        """New committed ids from the text feed; a started stream gets them as trailing rows."""
        news = job.text.take()
        if news.error is not None:
            self._fail(job, news.error)
            return
        job.committed += news.ids
        job.clause_ended = news.clause_ended
        closing = news.complete and not job.text_complete
        job.text_complete = news.complete
        if job.gen is not None and (news.ids or closing):
            try:
                self._extend_trailing(job, news.ids, closed=closing)
            except Exception as e:  # noqa: BLE001 - this stream fails, the engine goes on
                self._fail(job, e)

    def _ready_to_start(self, job: Job) -> bool:
        """Complete text starts at once. Incremental text starts when its first tokens are committed and either
        the input ended, a clause ended, or `start_tokens` are committed; an ICL clone also needs enough text
        to overlay its reference frames (its prompt holds them)."""
        if job.text is None or job.text_complete:
            return True
        committed = job.committed
        if not committed:
            return False
        voice = job.spec.voice
        if voice.kind == "clone_icl":
            ref_tokens = self.requests.ref_text_tokens(voice)
            return ref_tokens + len(committed) > voice.ref_codes.shape[0] + 1
        return job.clause_ended or len(committed) >= self.start_tokens

    def _slots_for(self) -> Slots:
        if self._slots is None:
            self._slots = Slots(self.runtime.talker, self.runtime.codec.decoder)
        return self._slots

    def _start(
        self, job: Job, generator: torch.Generator | None = None, decoder_state: CodecDecoderState | None = None
    ) -> bool:
        """Prefill a new stream into a free slot (from its voice's warm prefix); False if it failed or was
        cancelled. `generator` and `decoder_state` continue a previous segment's random sequence and audio."""
        job.started = True
        if job.cancelled:
            return False
        slots = self._slots_for()
        try:
            rt, spec = self.runtime, job.spec
            if job.text is not None:
                spec = self.requests.incremental(spec, job.committed)
            t0 = time.perf_counter()
            prompt, request = self.requests.build(spec)
            self._timings["prompt"] = self._timings.get("prompt", 0.0) + time.perf_counter() - t0
            if generator is not None:
                request.generator = generator
            warm = self._warm.entry(spec.voice)
            prefix = None
            if self.requests.starts_with_role(spec):
                prefix = self._voice_prefix(warm, spec.language_id, prompt.rows[: prompt.voice_prefix_len])
            if decoder_state is None:
                decoder_state = self._primed_decoder(warm, spec.voice)
            slot = slots.acquire(request.params, request.generator, self.max_streams, decoder_state)
            gen = Generation(request, slot, trailing=list(prompt.trailing.unbind(0)))
            job.gen = gen
            if job.text is not None and not job.text_complete:
                gen.trailing.pop()  # the end-of-text row comes when the input ends
                gen.text_closed = False
            t0 = time.perf_counter()
            prefill(rt.talker, rt.config, slots, gen, prefix)
            self._timings["prefill"] = self._timings.get("prefill", 0.0) + time.perf_counter() - t0
            if gen.done:  # ended before its first frame (min_new_frames=0)
                self._deliver(job, make_chunk(job, np.zeros(0, np.float32), torch.zeros(0, 16, dtype=torch.long),
                                              True, self.runtime.sample_rate))
        except Exception as e:  # delivered to this stream's consumer; the engine goes on
            log.debug("stream failed to start: %r", e)
            self._fail(job, e)
            return False
        return True

    def _next_segment(self, job: Job) -> None:
        """Continue a long text with its next generation: same stream, decoder state and random sequence."""
        generator = job.gen.request.generator
        state = self._slots.decoder_state.select(job.gen.slot)
        self._free_slot(job)
        job.spec = job.segments.pop(0)
        self._start(job, generator, state)

    def _extend_trailing(self, job: Job, ids: list[int], *, closed: bool) -> None:
        gen, rt = job.gen, self.runtime
        with torch.inference_mode():
            if ids:
                gen.trailing.extend(rt.talker.text_rows(torch.tensor(ids, device=rt.device)).unbind(0))
            if closed:
                eos = torch.tensor([rt.config.tts_eos_token_id], device=rt.device)
                gen.trailing.append(rt.talker.text_rows(eos)[0])
                gen.text_closed = True
        if job.spec.max_frames_auto:
            gen.request.max_frames = max(gen.request.max_frames, self.requests.frame_budget(len(job.committed)))

    # ---- the step -----------------------------------------------------------------------------------------

    def _step(self) -> None:
        jobs = sorted((j for j in self._active if j.stepping), key=lambda j: j.gen.slot)
        if not jobs:
            return
        t0 = time.perf_counter()
        outbox = self._step_jobs(jobs)
        self._timings["step"] = self._timings.get("step", 0.0) + time.perf_counter() - t0
        for job, item in outbox:
            self._deliver(job, item)

    def _deliver(self, job: Job, item: AudioChunk | BaseException) -> None:
        if isinstance(item, BaseException):
            job.ended = True
        if not job.channel.deliver(item):
            job.ended = True  # consumer gone: reaped at the next boundary

    def _fail(self, job: Job, error: BaseException) -> None:
        job.started = job.ended = True
        job.channel.deliver(error)

    def _step_jobs(self, jobs: list[Job]) -> list[tuple[Job, AudioChunk | BaseException]]:
        """One step; returns the chunks to deliver (after the caller's bookkeeping).

        A chunk that is due and surely not the stream's last (a stream's first frame: the end of speech is held
        off for the next draw) is decoded and delivered between the code predictor and the talker, so the first
        audio does not wait for the talker's next position.
        """
        frames = self._isolated(jobs, self._predict)
        jobs = [j for j in jobs if j in frames]
        early = [(j, False) for j in jobs if j.gen.surely_continues and len(j.undecoded) + 1 >= j.next_chunk_size()]
        for job in jobs:
            job.undecoded.append(frames[job][0])
        for job, item in self._decode_chunks(early):
            self._deliver(job, item)
        jobs = [j for j in jobs if not j.finished]
        results = self._isolated(jobs, partial(self._advance, frames))
        self._steps += 1
        self._batch_sizes[len(jobs)] += 1
        due: list[tuple[Job, bool]] = []
        for job in jobs:
            if job not in results:
                continue
            if not results[job]:
                job.poisoned = True
                self._fail(job, GenerationError(NON_FINITE.format(frame=job.gen.num_frames - 1)))
                continue
            last = job.gen.done and not job.segments
            if last or len(job.undecoded) >= job.next_chunk_size():
                due.append((job, last))
        outbox = self._decode_chunks(due)
        for job in jobs:
            if not job.finished and job.gen.done and job.segments:
                self._next_segment(job)
        # Free ended streams before their last chunk leaves, so a consumer that saw the end sees a free slot.
        self._reap()
        return outbox

    def _predict(self, jobs: list[Job]) -> dict[Job, tuple[Tensor, bool]]:
        slots, lo, hi = self._slots, jobs[0].gen.slot, jobs[-1].gen.slot + 1
        t0 = time.perf_counter()
        codes, finite = predict(self.runtime.talker, slots, lo, hi)
        self._timings["code_predictor"] = self._timings.get("code_predictor", 0.0) + time.perf_counter() - t0
        return {job: (codes[job.gen.slot - lo], finite[job.gen.slot - lo]) for job in jobs}

    def _advance(self, frames: dict[Job, tuple[Tensor, Tensor]], jobs: list[Job]) -> dict[Job, bool]:
        slots, lo, hi = self._slots, jobs[0].gen.slot, jobs[-1].gen.slot + 1
        t0 = time.perf_counter()
        codes = torch.zeros(hi - lo, 16, dtype=torch.long, device=slots.device)
        finite = torch.ones(hi - lo, dtype=torch.bool, device=slots.device)
        index = [job.gen.slot - lo for job in jobs]
        codes[index] = torch.stack([frames[job][0] for job in jobs])
        finite[index] = torch.stack([frames[job][1] for job in jobs])
        result = advance(self.runtime.talker, self.runtime.config, slots, [j.gen for j in jobs], lo, hi, codes, finite)
        self._timings["talker"] = self._timings.get("talker", 0.0) + time.perf_counter() - t0
        return dict(zip(jobs, result.finite, strict=True))

    def _isolated(self, jobs: list[Job], run: Callable[[list[Job]], dict]) -> dict:
        """`run(jobs)`; when it raises, each stream again alone (its seeded generator rewound), so the culprit
        fails with its own error and the others get what they would have had alone."""
        if not jobs:
            return {}
        rewind = [(g, g.get_state()) for g in {j.gen.request.generator for j in jobs} if g is not None]
        try:
            return run(jobs)
        except Exception as e:  # noqa: BLE001
            if len(jobs) == 1:
                log.warning("a stream failed in the engine step: %r", e)
                self._fail(jobs[0], e)
                return {}
        log.warning("an engine step of %d streams failed; retrying them one by one", len(jobs))
        self._isolated_failures += 1
        for generator, state in rewind:
            generator.set_state(state)
        out: dict = {}
        for job in jobs:
            out.update(self._isolated([job], run))
        return out

    def _decode_chunks(self, due: list[tuple[Job, bool]]) -> list[tuple[Job, AudioChunk | BaseException]]:
        t0 = time.perf_counter()
        outbox = decode_chunks(self.runtime.codec.decoder, self._slots.decoder_state, due, self.runtime.sample_rate,
                               self._decode_batch_sizes)
        self._timings["decoder"] = self._timings.get("decoder", 0.0) + time.perf_counter() - t0
        return outbox

    def _free_slot(self, job: Job) -> None:
        if job.gen is not None and self._slots is not None:
            self._slots.release(job.gen.slot, poisoned=job.poisoned)
        job.gen = None

    def _reap(self) -> None:
        """Drop finished, failed and cancelled streams, freeing their slots."""
        with self._cond:
            keep = [j for j in self._active if not j.finished]
            for job in self._active:
                if job not in keep:
                    self._free_slot(job)
                    job.undecoded.clear()
            self._active = keep

    def _voice_prefix(self, warm, language_id: int | None, rows: Tensor) -> KVCache:  # noqa: ANN001
        talker = self.runtime.talker

        def compute() -> KVCache:
            cache = KVCache.allocate(talker.config.transformer, 1, rows.shape[0], dtype=rows.dtype, device=rows.device)
            talker.forward_rows(rows[None], cache, 0)
            return cache

        return self._warm.prefix(warm, language_id, compute)

    def _primed_decoder(self, warm, voice: VoiceProfile) -> CodecDecoderState | None:  # noqa: ANN001
        """An ICL clone's decoder state primed with its reference codes (shared: copied into the slot); None for
        other voices, whose decoder row starts fresh."""
        decoder = self.runtime.codec.decoder
        if voice.kind != "clone_icl":
            return None

        def compute() -> CodecDecoderState:
            primed = decoder.new_state(1)
            decoder.decode_step(voice.ref_codes[None].to(self.runtime.device), primed)
            return primed

        return self._warm.decoder(warm, compute)
