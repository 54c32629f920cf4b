"""`TTS`: Qwen3-TTS as a LiveKit Agents TTS, on any `TTSEngine` (in-process `Qwen3TTS` or a remote client).

`stream()` feeds the LLM's text deltas into one incremental engine stream per LiveKit stream (one segment:
livekit-agents 1.8.9 drops text pushed after `flush()`, and so do we); `synthesize()` speaks a complete text
in the checkpoint's official layout. Both emit the engine's native 24 kHz int16 PCM (LiveKit resamples),
word times estimated from the text and the audio actually produced, and TTFB metrics (see `_streams.py`).
Each stream takes the options current at its creation and resolves its voice then (through the voice library
it is handed, or the engine); the engine keeps warm state by voice content, so nothing is memoised here;
`prewarm()` computes that state in the background.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Protocol

from livekit.agents import APIConnectOptions, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from ...voices.profile import with_instruct
from ._engines import engine_model_name
from ._options import TTSOptions, check_speed, model_language
from ._streams import ChunkedStream, SynthesizeStream

if TYPE_CHECKING:
    from ...engine.protocol import TTSEngine
    from ...engine.sampling import SamplingParams
    from ...voices.profile import VoiceProfile

__all__ = ["TTS", "VoiceLibraryLike"]

log = logging.getLogger("qwen3tts_realtime.livekit")

PROVIDER = "qwen3tts-realtime"
_WARM_TEXT = "Hello."


class VoiceLibraryLike(Protocol):
    """What `TTS` needs of a voice library (`qwen3tts_realtime.voices.VoiceLibrary`): a `VoiceProfile` for a
    name or a profile, raising `InvalidInputError` for unknown names."""

    def resolve(self, voice: VoiceProfile | str) -> VoiceProfile: ...


class TTS(tts.TTS):
    """Qwen3-TTS for LiveKit Agents: streaming text in, 24 kHz mono speech with word times out.

    Args:
        engine: a `TTSEngine`: the process's engine from `load_engine()` (shared by every job of a
            thread-executor worker, so their streams batch), or a remote engine client.
        voice: a built-in speaker name ("ryan"; CustomVoice), a voice-library name (with `voice_library`),
            or a `VoiceProfile` (clones from `clone_voice`, VoiceDesign voices from `design_voice`).
        language: "Auto", a model language ("English", any case) or a code as LiveKit passes it ("en",
            "zh-CN", ...).
        instruct: speaking-style instruction (1.7B CustomVoice) or voice description (VoiceDesign).
        speed: speaking rate, 0.5 to 2.0, pitch kept; 1.0 passes the audio through untouched.
        sampling: sampling switches; `None` = the checkpoint's generation_config.json.
        seed: seeds every request (reproducible speech); `None` = random.
        chunk_frames: engine chunk schedule (frames of 80 ms per chunk, the last repeating); `None` = the
            engine's default (first audio after one frame).
        max_new_frames: cap per utterance; `None` = the engine's guard (grows with the text).
        voice_library: resolves voices when given (names it holds, then built-in speakers); without one the
            engine resolves them (built-in speakers).
        model: the model name reported in LiveKit's metrics; `None` = the one `load_engine` loaded.

    Raises:
        TypeError: `engine` does not implement `TTSEngine`.
        InvalidInputError: (a ValueError) a language Qwen3-TTS does not speak, a speed out of range, or (with
            an in-process engine or a `voice_library`) an unknown voice or an instruction it cannot take. With a
            remote engine the voice is checked at `prewarm()` and the first stream: an unknown one fails that
            stream with a non-retryable APIError.
    """

    def __init__(
        self,
        *,
        engine: TTSEngine,
        voice: VoiceProfile | str,
        language: str = "Auto",
        instruct: str | None = None,
        speed: float = 1.0,
        sampling: SamplingParams | None = None,
        seed: int | None = None,
        chunk_frames: tuple[int, ...] | None = None,
        max_new_frames: int | None = None,
        voice_library: VoiceLibraryLike | None = None,
        model: str | None = None,
    ) -> None:
        from ...engine.protocol import TTSEngine

        if not isinstance(engine, TTSEngine):
            raise TypeError(
                f"engine={engine!r} does not implement the TTSEngine protocol; pass load_engine(...) or a "
                "remote engine client"
            )
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True, aligned_transcript=True),
            sample_rate=engine.sample_rate,
            num_channels=1,
        )
        self._engine = engine
        self._voice_library = voice_library
        self._model = model or engine_model_name(engine) or "Qwen3-TTS"
        self._opts = TTSOptions(
            voice=voice,
            language=model_language(language),
            instruct=instruct,
            speed=check_speed(speed),
            sampling=sampling,
            seed=seed,
            chunk_frames=None if chunk_frames is None else tuple(chunk_frames),
            max_new_frames=max_new_frames,
        )
        self._check_voice(self._opts)
        self._streams: weakref.WeakSet[ChunkedStream | SynthesizeStream] = weakref.WeakSet()
        self._warmed: set[tuple[object, str | None, str]] = set()
        self._prewarm_tasks: set[asyncio.Task[None]] = set()

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def engine(self) -> TTSEngine:
        return self._engine

    @property
    def options(self) -> TTSOptions:
        """The settings new streams take (streams already open keep theirs)."""
        return self._opts

    def update_options(
        self,
        *,
        voice: NotGivenOr[VoiceProfile | str] = NOT_GIVEN,
        language: NotGivenOr[str] = NOT_GIVEN,
        instruct: NotGivenOr[str | None] = NOT_GIVEN,
        speed: NotGivenOr[float] = NOT_GIVEN,
        sampling: NotGivenOr[SamplingParams | None] = NOT_GIVEN,
        seed: NotGivenOr[int | None] = NOT_GIVEN,
        chunk_frames: NotGivenOr[tuple[int, ...] | None] = NOT_GIVEN,
        max_new_frames: NotGivenOr[int | None] = NOT_GIVEN,
    ) -> None:
        """Change settings for the streams created from now on; an utterance in flight keeps its own.

        Arguments as in the constructor; `instruct=None` clears the instruction.

        Raises:
            InvalidInputError: a language Qwen3-TTS does not speak, a speed out of range, or an unknown voice
                (checked as in the constructor); a refused change changes nothing.
        """
        changes: dict[str, object] = {}
        if utils.is_given(voice):
            changes["voice"] = voice
        if utils.is_given(language):
            changes["language"] = model_language(language)
        if utils.is_given(instruct):
            changes["instruct"] = instruct
        if utils.is_given(speed):
            changes["speed"] = check_speed(speed)
        if utils.is_given(sampling):
            changes["sampling"] = sampling
        if utils.is_given(seed):
            changes["seed"] = seed
        if utils.is_given(chunk_frames):
            changes["chunk_frames"] = None if chunk_frames is None else tuple(chunk_frames)
        if utils.is_given(max_new_frames):
            changes["max_new_frames"] = max_new_frames
        opts = dataclasses.replace(self._opts, **changes)
        if "voice" in changes or "instruct" in changes:
            self._check_voice(opts)
        self._opts = opts

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        """Speak a complete text (the checkpoint's official layout for it)."""
        stream = ChunkedStream(tts=self, input_text=text, conn_options=conn_options)
        self._streams.add(stream)
        return stream

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> SynthesizeStream:
        """A stream for text as the LLM produces it: `push_text` deltas, then `end_input()`."""
        stream = SynthesizeStream(tts=self, conn_options=conn_options)
        self._streams.add(stream)
        return stream

    def prewarm(self) -> None:
        """Warm the engine and this voice in the background (returns at once; LiveKit calls it on its loop):
        resolves the voice and runs a two-frame generation with it, so the first reply pays no one-time
        cost. Failures are logged; the first real stream reports them."""
        opts = self._opts
        key = (opts.voice, opts.instruct, opts.language)
        if key in self._warmed:
            return
        self._warmed.add(key)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside asyncio: warm on a thread of its own
            warm = self._warm(opts)
            threading.Thread(target=asyncio.run, args=(warm,), name="qwen3tts-prewarm", daemon=True).start()
            return
        task = loop.create_task(self._warm(opts), name="qwen3tts-prewarm")
        self._prewarm_tasks.add(task)  # held: the loop keeps only a weak reference to a task
        task.add_done_callback(self._prewarm_tasks.discard)

    async def aclose(self) -> None:
        """Close this TTS's open streams (their engine streams are cancelled). The engine stays up: it is
        the process's, shared by its jobs (`await engine.aclose()` stops it if you own it)."""
        await utils.aio.cancel_and_wait(*self._prewarm_tasks)
        await asyncio.gather(*(stream.aclose() for stream in list(self._streams)))

    # ---- internals --------------------------------------------------------------------------------------

    async def _voice(self, opts: TTSOptions) -> VoiceProfile:
        """The profile for `opts`' voice and instruction, resolved per stream off the loop (a library may read
        disk, a remote engine the network). Nothing is memoised here: the voice library keeps its loaded
        profiles, and the engine keeps warm state by voice content, so an equal profile is as warm."""
        return await asyncio.to_thread(self._resolve_voice, opts)

    def _check_voice(self, opts: TTSOptions) -> None:
        """Refuse an unknown voice (or an instruction it cannot take) as soon as the engine is known: at once for
        an in-process engine or a voice library (a name lookup, no model work); a remote engine's server is
        asked at `prewarm()` and the first stream instead, never from the event loop."""
        from ...tts import Qwen3TTS

        if isinstance(self._engine, Qwen3TTS) or self._voice_library is not None:
            self._resolve_voice(opts)

    def _resolve_voice(self, opts: TTSOptions) -> VoiceProfile:
        voice = opts.voice
        if self._voice_library is not None:
            voice = self._voice_library.resolve(voice)
        profile = self._engine.resolve_voice(voice)
        return with_instruct(profile, opts.instruct, model_size=getattr(self._engine, "model_size", None))

    async def _warm(self, opts: TTSOptions) -> None:
        try:
            profile = await self._voice(opts)
            kwargs = {**opts.stream_kwargs(), "max_new_frames": 2, "seed": 0}
            stream = self._engine.open_stream(voice=profile, **kwargs)
            try:
                stream.push_text(_WARM_TEXT)
                stream.end_input()
                async for _ in stream:
                    pass
            finally:
                stream.cancel()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._warmed.discard((opts.voice, opts.instruct, opts.language))
            log.warning("prewarm of voice %r failed: %s", opts.voice, e)
