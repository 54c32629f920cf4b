"""`Qwen3TTSService`: Qwen3-TTS as a Pipecat TTS service, in-process and streaming.

Two ways to take the LLM's text, both with one audio context (TTSStartedFrame ... TTSStoppedFrame) per turn:
- token mode (`TextAggregationMode.TOKEN`, the default): every LLM token goes straight into one incremental
  engine stream per turn (`run_tts` pushes, a background task appends the audio to the audio context);
  `flush_audio` ends the stream's input, `on_audio_context_interrupted` cancels it.
- sentence mode (`TextAggregationMode.SENTENCE`): the base class cuts sentences; `run_tts` speaks each one
  with its own engine stream and yields its audio.

Audio leaves at the pipeline's output rate through `UtteranceAudio` (speed, resampling, playout start, int16),
with word timestamps estimated from the text and the audio actually released, so after an interruption the
assistant context holds what was spoken. The request (voice, language, speed, sampling) is fixed per audio
context; a change mid-turn closes the context and opens a new one. Loading, warm-up and voice preparation run
in threads, never on the event loop. Depends on the engine only through the `TTSEngine` protocol.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.services.tts_service import TextAggregationMode, TTSService
from pipecat.transcriptions.language import Language
from pipecat.utils.tracing.service_decorators import traced_tts
from pipecat.utils.types import NOT_GIVEN, is_given

from ...audio import SUPPORTED_SAMPLE_RATES
from ...engine.protocol import TTSEngine
from ...engine.stream import Stream, StreamState
from ...errors import InvalidInputError
from ._audio import UtteranceAudio
from ._requests import EngineAccess, Request, load_engine
from ._settings import Qwen3TTSSettings, check_values, is_language_code, model_language

__all__ = ["Qwen3TTSService"]

log = logging.getLogger("qwen3tts_realtime.pipecat")

# Fixed for the life of an engine stream: changing one mid-turn starts a new audio context.
_PER_STREAM = frozenset(
    {"voice", "language", "instruct", "speed", "temperature", "top_k", "top_p", "do_sample", "seed"}
)


KEEPALIVE_S = 0.5  # well under the base class's stop_frame_timeout_s


@dataclass(eq=False)
class _Context:
    """One audio context (an LLM turn or a TTSSpeakFrame) and the engine work behind it."""

    context_id: str
    request: Request
    stream: Stream | None = None  # token mode: the turn's stream; sentence mode: the sentence being spoken
    audio: UtteranceAudio | None = None  # token mode: the turn's audio path
    pump: asyncio.Task | None = None  # token mode: the task appending the stream's audio
    keepalive: asyncio.Task | None = None  # holds the audio context open while its engine stream is alive
    input_ended: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    audio_s: float = 0.0  # sentence mode: audio of the sentences already spoken
    last_sentence_had_audio: bool = False  # sentence mode: the base class then closes the context itself


class Qwen3TTSService(TTSService):
    """Qwen3-TTS (12 Hz) speaking in a Pipecat pipeline, in this process.

    Example:
        tts = Qwen3TTSService(model="Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice",
                              settings=Qwen3TTSService.Settings(voice="ryan", language=Language.EN))

    Several services (and pipelines) can share one engine: load it once with
    `Qwen3TTS.from_pretrained(...)` and pass it as `engine=` to each.
    """

    Settings = Qwen3TTSSettings
    _settings: Qwen3TTSSettings

    def __init__(
        self,
        *,
        model: str | Path | None = None,
        engine: TTSEngine | None = None,
        voice_library: Any | None = None,
        device: str | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
        settings: Qwen3TTSSettings | None = None,
        text_aggregation_mode: TextAggregationMode = TextAggregationMode.TOKEN,
        max_new_frames: int | None = None,
        chunk_frames: tuple[int, ...] | None = None,
        warmup: bool = True,
        **kwargs: Any,
    ) -> None:
        """Create the service; a `model` is loaded (in a thread) when the pipeline sets the service up.

        Args:
            model: a Hugging Face id or a local checkpoint folder to load (give this or `engine`).
            engine: a loaded engine to use, e.g. a `Qwen3TTS` shared with other services, or a remote engine
                implementing `TTSEngine`; the service does not close it.
            voice_library: resolves voice names (`voice_library.resolve(name) -> VoiceProfile`); without one,
                names go to `engine.resolve_voice`.
            device: for loading `model`: "cuda", "cuda:1", "cpu", ...; None = "cuda" when available.
            dtype: for loading `model`: "bfloat16", "float32", ...; None = bfloat16 on accelerators.
            quantize: for loading `model` on a CPU: "fp16", "int8", "int4" or "w8a8" weights (see
                `Qwen3TTS.from_pretrained`); None = float32.
            settings: runtime-updatable settings (voice, language, instruct, speed, sampling).
            text_aggregation_mode: TOKEN streams LLM tokens into one engine stream per turn (lowest latency);
                SENTENCE speaks sentence by sentence.
            max_new_frames: cap on frames (12.5 per second) per engine stream; None = grows with the text.
            chunk_frames: codec frames per audio chunk, the last repeating; None = the engine's default.
            warmup: at start, run the engine's warm-up and prepare the configured voice.
            **kwargs: passed to `TTSService` (e.g. `sample_rate`, `text_transforms`, `name`).

        Raises:
            InvalidInputError: neither or both of `model`/`engine`, an unsupported language, a bad value.
        """
        if (model is None) == (engine is None):
            raise InvalidInputError(
                "Qwen3TTSService needs exactly one of model= (a checkpoint to load) or engine= (a loaded "
                "Qwen3TTS or another TTSEngine, e.g. shared between services)"
            )
        defaults = self.Settings(
            model=None if model is None else str(model),
            voice=None,
            language=None,
            instruct=None,
            speed=1.0,
            temperature=None,
            top_k=None,
            top_p=None,
            do_sample=None,
            seed=None,
        )
        if settings is not None:
            defaults.apply_update(settings)
        errors = check_values(defaults)
        if errors:
            raise next(iter(errors.values()))
        model_language(defaults.language)  # raises for a language the model does not speak
        super().__init__(
            text_aggregation_mode=text_aggregation_mode,
            push_text_frames=False,  # word timestamps instead
            push_stop_frames=True,
            settings=defaults,
            **kwargs,
        )
        if self._settings.language is not None:
            self._settings.language = model_language(self._settings.language)
        self._model = model
        self._device, self._dtype, self._quantize = device, dtype, quantize
        self._owns_engine = engine is None
        self._loading: asyncio.Task | None = None
        self._access_args = {
            "voice_library": voice_library,
            "max_new_frames": max_new_frames,
            "chunk_frames": chunk_frames,
        }
        self._access = None if engine is None else EngineAccess(engine, **self._access_args)
        self._warmup = warmup
        self._contexts: dict[str, _Context] = {}
        self._failed_contexts: set[str] = set()  # token mode: turns whose stream could not open
        self._start_target_ms = 0.0  # playout start target learned across utterances

    def can_generate_metrics(self) -> bool:
        return True

    @property
    def supports_processing_metrics(self) -> bool:
        """Sentence mode synthesizes inside `run_tts`; token mode hands text off to a stream."""
        return not self._is_streaming_tokens

    @property
    def engine(self) -> TTSEngine | None:
        """The engine (None until a `model` has loaded)."""
        return None if self._access is None else self._access.engine

    def language_to_service_language(self, language: Language) -> str:
        """The model's language name ("English", ...); raises `InvalidInputError` for unsupported ones."""
        return model_language(language)

    # ---- lifecycle --------------------------------------------------------------------------------------

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        if self._access is None and self._loading is None:
            # Loading overlaps the other processors' setup; start() waits for it (no setup timeout applies).
            load = asyncio.to_thread(load_engine, self._model, self._device, self._dtype, self._quantize)
            self._loading = self.create_task(load, "load_qwen3tts")

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        if self.sample_rate not in SUPPORTED_SAMPLE_RATES:
            await self.push_error(
                f"{self}: output sample rate {self.sample_rate} Hz is not supported; use one of "
                f"{', '.join(map(str, SUPPORTED_SAMPLE_RATES))}",
                force_treat_as_permanent=True,
            )
            return
        if self._loading is not None:
            try:
                self._access = EngineAccess(await self._loading, **self._access_args)
            except Exception as e:
                await self.push_error(
                    f"{self}: loading {self._model} failed: {e}", exception=e, force_treat_as_permanent=True
                )
                return
            finally:
                self._loading = None
        if self._warmup:
            try:
                await self._access.warm_up(self._settings)
            except Exception as e:
                await self.push_error(f"{self}: warm-up failed: {e}", exception=e)

    async def stop(self, frame: EndFrame) -> None:
        # The base class drains playback before it ends the last turn: end the streams' input first.
        for ctx in list(self._contexts.values()):
            self._end_input(ctx)
        await super().stop(frame)
        await self._close_all()

    async def cancel(self, frame: CancelFrame) -> None:
        await self._close_all()
        await super().cancel(frame)

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._close_all()
        if self._loading is not None:
            await self.cancel_task(self._loading)
            self._loading = None
        if self._owns_engine and self._access is not None:
            access, self._access = self._access, None
            await access.engine.aclose()

    # ---- settings ---------------------------------------------------------------------------------------

    async def _update_settings(self, delta: Qwen3TTSSettings) -> dict[str, Any]:
        """Apply a settings delta; invalid fields are reported (ErrorFrame) and left unchanged.

        A change to what an engine stream is built with (voice, language, instruct, speed, sampling) during a
        turn ends the turn's audio context and opens a new one, as Pipecat's Cartesia service does.
        """
        await self._drop_invalid(delta)
        changed = await super()._update_settings(delta)
        if changed.keys() & _PER_STREAM and self._turn_context_id:
            old = self._turn_context_id
            await self._push_sequencer_frames(await self._aggregated_frame_sequencer.finalize(old), old)
            ctx = self._contexts.get(old)
            if ctx is not None and self._is_streaming_tokens:
                self._end_input(ctx)  # its task closes the context once the speech has ended
            elif ctx is not None:
                await self._retire(ctx)
                await self._close_audio_context(old)
            self._turn_context_id = None
            self._turn_context_id = self.create_context_id()
        return changed

    async def _drop_invalid(self, delta: Qwen3TTSSettings) -> None:
        errors: dict[str, Exception] = dict(check_values(delta))
        if is_given(delta.language):
            try:
                name = model_language(delta.language)
                if not is_language_code(delta.language):
                    delta.language = name  # a model language name, spelled canonically
            except InvalidInputError as e:
                errors["language"] = e
        if is_given(delta.model) and delta.model != self._settings.model:
            log.warning("%s: the model cannot change at runtime (it stays %s)", self, self._settings.model)
            delta.model = NOT_GIVEN
        if (is_given(delta.voice) or is_given(delta.instruct)) and "instruct" not in errors:
            voice = delta.voice if is_given(delta.voice) else self._settings.voice
            instruct = delta.instruct if is_given(delta.instruct) else self._settings.instruct
            try:
                if self._access is None:
                    raise RuntimeError("the model is not loaded (see the earlier error)")
                await self._access.voice(voice, instruct)  # now: a bad voice never opens a context
            except Exception as e:
                errors["voice" if is_given(delta.voice) else "instruct"] = e
                delta.voice = delta.instruct = NOT_GIVEN
        for name, error in errors.items():
            setattr(delta, name, NOT_GIVEN)
            await self.push_error(f"{self}: setting {name} rejected: {error}", exception=error)

    # ---- speaking ---------------------------------------------------------------------------------------

    @traced_tts
    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Token mode: push the token into the turn's stream (audio comes from its task). Sentence mode: speak
        the sentence and yield its audio."""
        if self._is_streaming_tokens:
            await self._push_token(text, context_id)
            yield None
            return
        async for frame in self._speak_sentence(text, context_id):
            yield frame

    async def flush_audio(self, context_id: str | None = None) -> None:
        """The turn's text is complete: token mode ends the stream's input; sentence mode closes the context
        unless the base class already did (it does when the last sentence yielded audio)."""
        ctx = self._contexts.get(context_id) if context_id else None
        if ctx is None:
            return
        if self._is_streaming_tokens:
            self._end_input(ctx)
            return
        await self._retire(ctx)
        if not ctx.last_sentence_had_audio:
            await self._close_audio_context(context_id)

    async def on_turn_context_completed(self) -> None:
        self._failed_contexts.discard(self._turn_context_id)
        await super().on_turn_context_completed()

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        """Barge-in: cancel the context's engine stream now (the engine frees it at its next step)."""
        await self.stop_all_metrics()
        ctx = self._contexts.pop(context_id, None)
        if ctx is not None:
            await self._close(ctx)
        await super().on_audio_context_interrupted(context_id)

    async def on_audio_context_completed(self, context_id: str) -> None:
        # Normally already closed; a context the base class timed out may still hold a stream.
        ctx = self._contexts.pop(context_id, None)
        if ctx is not None:
            await self._close(ctx)
        await super().on_audio_context_completed(context_id)

    async def _push_token(self, text: str, context_id: str) -> None:
        ctx = self._contexts.get(context_id)
        if ctx is None:
            if context_id in self._failed_contexts:
                return  # reported once for the turn
            request = await self._request_or_error()
            stream = None if request is None else await self._open_stream_or_error(request, None)
            if stream is None:
                self._failed_contexts.add(context_id)
                return
            ctx = await self._open_context(context_id, request)
            ctx.stream = stream
            ctx.audio = self._utterance(request, offset_s=0.0)
            ctx.pump = self.create_task(self._pump(ctx), "qwen3tts_pump")
        if ctx.input_ended.is_set() or ctx.stream.state is not StreamState.OPEN:
            log.debug("%s: text after the end of the speech of %s dropped", self, context_id)
            return
        ctx.stream.push_text(text)
        ctx.audio.add_text(text)

    async def _pump(self, ctx: _Context) -> None:
        """Token mode: append the turn's audio and word times to its audio context, then close it."""
        assert ctx.stream is not None and ctx.audio is not None
        try:
            async for chunk in ctx.stream:
                await self._append_audio(ctx, ctx.audio.push(chunk.audio))
            if ctx.stream.state is StreamState.CANCELLED:
                return
            await self._append_audio(ctx, ctx.audio.end())
        except Exception as e:  # the engine failed this stream: report it, close the context
            await self.push_error(f"{self}: speech generation failed: {e}", exception=e)
        finally:
            ctx.stream.cancel()
            self._start_target_ms = ctx.audio.target_ms
        await ctx.input_ended.wait()  # the context spans the whole turn, even if the speech ended early
        await self._close_audio_context(ctx.context_id)
        await self._retire(ctx)

    async def _speak_sentence(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        ctx = self._contexts.get(context_id)
        request = ctx.request if ctx is not None else await self._request_or_error()
        stream = None if request is None else await self._open_stream_or_error(request, text.strip())
        if stream is None:
            return
        if ctx is None:
            ctx = await self._open_context(context_id, request)
        await self.start_tts_usage_metrics(text)
        audio = self._utterance(request, offset_s=ctx.audio_s)
        audio.add_text(text)
        ctx.stream, ctx.last_sentence_had_audio = stream, False
        try:
            async for chunk in stream:
                for pcm in audio.push(chunk.audio):
                    ctx.last_sentence_had_audio = True
                    yield TTSAudioRawFrame(pcm, self.sample_rate, 1, context_id=context_id)
                await self._add_words(ctx, audio)
            if stream.state is StreamState.CANCELLED:
                return
            for pcm in audio.end():
                ctx.last_sentence_had_audio = True
                yield TTSAudioRawFrame(pcm, self.sample_rate, 1, context_id=context_id)
            await self._add_words(ctx, audio)
        except Exception as e:
            await self.push_error(f"{self}: speech generation failed: {e}", exception=e)
        finally:
            stream.cancel()
            ctx.stream = None
            ctx.audio_s += audio.audio_s
            self._start_target_ms = audio.target_ms

    async def _open_context(self, context_id: str, request: Request) -> _Context:
        """Register the audio context and announce it (only once the request is known to be good)."""
        ctx = _Context(context_id, request)
        self._contexts[context_id] = ctx
        await self.create_audio_context(context_id)
        await self.start_ttfb_metrics()
        await self.append_to_audio_context(context_id, TTSStartedFrame(context_id=context_id))
        ctx.keepalive = self.create_task(self._keep_alive(ctx), "qwen3tts_keepalive")
        return ctx

    async def _keep_alive(self, ctx: _Context) -> None:
        """While the context's engine stream is open, tell the base class the context is in use: it ends a
        context that gets no audio for `stop_frame_timeout_s` (3 s), and a busy engine (a stream queued behind
        others, a loaded CPU) may take longer than that to its first audio. The stream's end closes the context."""
        while self._contexts.get(ctx.context_id) is ctx:
            if ctx.stream is not None and ctx.stream.state is StreamState.OPEN:
                self._refresh_audio_context(ctx.context_id)
            await asyncio.sleep(KEEPALIVE_S)

    async def _close_audio_context(self, context_id: str) -> None:
        await self.append_to_audio_context(context_id, TTSStoppedFrame(context_id=context_id))
        await self.remove_audio_context(context_id)

    async def _append_audio(self, ctx: _Context, pcm: list[bytes]) -> None:
        for data in pcm:
            frame = TTSAudioRawFrame(data, self.sample_rate, 1, context_id=ctx.context_id)
            await self.append_to_audio_context(ctx.context_id, frame)
        await self._add_words(ctx, ctx.audio)

    async def _add_words(self, ctx: _Context, audio: UtteranceAudio) -> None:
        words = audio.words()
        if words:
            await self.add_word_timestamps(words, ctx.context_id)

    def _utterance(self, request: Request, *, offset_s: float) -> UtteranceAudio:
        assert self._access is not None
        return UtteranceAudio(
            in_rate=self._access.sample_rate,
            out_rate=self.sample_rate,
            speed=request.speed,
            start_target_ms=self._start_target_ms,
            offset_s=offset_s,
        )

    def _end_input(self, ctx: _Context) -> None:
        if ctx.stream is not None and ctx.stream.incremental and not ctx.input_ended.is_set():
            ctx.input_ended.set()
            ctx.stream.end_input()

    async def _close(self, ctx: _Context) -> None:
        if ctx.stream is not None:
            ctx.stream.cancel()
        if ctx.pump is not None and ctx.pump is not asyncio.current_task():
            await self.cancel_task(ctx.pump)
        if ctx.keepalive is not None:
            await self.cancel_task(ctx.keepalive)

    async def _retire(self, ctx: _Context) -> None:
        """The context is done: forget it and stop its keepalive (no task outlives its context)."""
        if self._contexts.get(ctx.context_id) is ctx:
            del self._contexts[ctx.context_id]
        if ctx.keepalive is not None:
            await self.cancel_task(ctx.keepalive)
            ctx.keepalive = None

    async def _close_all(self) -> None:
        contexts, self._contexts = list(self._contexts.values()), {}
        for ctx in contexts:
            await self._close(ctx)

    # ---- requests ---------------------------------------------------------------------------------------

    async def _request_or_error(self) -> Request | None:
        """The request for the current settings, or None after reporting why not."""
        try:
            if self._access is None:
                raise RuntimeError("the model is not loaded (see the earlier error)")
            return await self._access.request(self._settings)
        except Exception as e:
            await self.push_error(f"{self}: cannot speak: {e}", exception=e)
            return None

    async def _open_stream_or_error(self, request: Request, text: str | None) -> Stream | None:
        """A validated engine stream, or None after reporting why not (before any audio context opens)."""
        try:
            return self._access.open_stream(request, text)
        except Exception as e:
            await self.push_error(f"{self}: cannot speak: {e}", exception=e)
            return None
