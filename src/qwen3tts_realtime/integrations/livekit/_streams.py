"""The two LiveKit stream kinds over one engine stream each: `SynthesizeStream` (text deltas, one segment) and
`ChunkedStream` (a complete text), and `_AudioOut`, which turns engine chunks into what LiveKit's emitter takes:
int16 PCM at the engine's rate (speaking rate applied) and timed words.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import numpy as np
from livekit.agents import APIConnectOptions, APIError, tts, utils
from livekit.agents.types import TimedString

from ...audio import RateChanger, to_pcm16
from ...text.word_timing import WordTimer
from ._options import TTSOptions, api_error

if TYPE_CHECKING:
    from ...engine.stream import Stream
    from ...voices.profile import VoiceProfile
    from ._tts import TTS

__all__ = ["ChunkedStream", "SynthesizeStream"]

log = logging.getLogger("qwen3tts_realtime.livekit")


class _AudioOut:
    """One engine stream's audio into a LiveKit emitter: speaking rate, int16 PCM, word times."""

    def __init__(self, emitter: tts.AudioEmitter, opts: TTSOptions, sample_rate: int) -> None:
        self._emitter = emitter
        self._sample_rate = sample_rate
        self._rate = RateChanger(opts.speed, sample_rate)
        self._words = WordTimer()

    def add_text(self, text: str) -> None:
        self._words.add_text(text)

    async def run(self, stream: Stream) -> None:
        """Forward every chunk; returns after the last one.

        Raises:
            APIError: the stream stopped before its last chunk (the engine was closed or dropped it).
        """
        async for chunk in stream:
            audio = self._rate.process(chunk.audio)
            if chunk.is_last:
                audio = np.concatenate([audio, self._rate.flush()])
            if audio.size:
                self._emitter.push(to_pcm16(audio).tobytes())
            self._words.add_audio(audio.size / self._sample_rate)
            if chunk.is_last:
                self._words.finish()
            for word in self._words.ready():
                self._emitter.push_timed_transcript(
                    TimedString(f"{word.word} ", start_time=word.start_s, end_time=word.end_s)
                )
            if chunk.is_last:
                return
        raise APIError("the Qwen3-TTS engine stopped the stream before its end (closed?)", retryable=False)


class ChunkedStream(tts.ChunkedStream):
    """`TTS.synthesize()`: a complete text in one engine request."""

    def __init__(self, *, tts: TTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._tts: TTS = tts
        self._opts = tts.options

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=self._tts.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        if not self._input_text.strip():
            return
        out = _AudioOut(output_emitter, self._opts, self._tts.sample_rate)
        stream: Stream | None = None
        try:
            voice = await self._tts._voice(self._opts)
            stream = self._tts.engine.open_stream(voice=voice, text=self._input_text, **self._opts.stream_kwargs())
            out.add_text(self._input_text)
            await out.run(stream)
        except APIError:
            raise
        except Exception as e:
            raise api_error(e) from e
        finally:
            if stream is not None:
                stream.cancel()  # a no-op once finished


class SynthesizeStream(tts.SynthesizeStream):
    """`TTS.stream()`: text deltas into one incremental engine stream (one segment)."""

    def __init__(self, *, tts: TTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._tts: TTS = tts
        self._opts = tts.options
        self._engine_stream: Stream | None = None

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=self._tts.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            stream=True,
        )
        out = _AudioOut(output_emitter, self._opts, self._tts.sample_rate)
        opened: asyncio.Future[Stream | None] = asyncio.get_running_loop().create_future()
        input_task: asyncio.Task[None] | None = None
        try:
            voice = await self._tts._voice(self._opts)
            input_task = asyncio.create_task(self._forward_text(voice, out, output_emitter, opened))
            stream = await opened
            if stream is None:
                return  # no text: nothing to say
            await out.run(stream)
            # End the segment before anything awaits: the emitter's flush timer (it fires when audio comes
            # slower than real time) would otherwise end it with a synthetic 10 ms silent final frame.
            output_emitter.end_segment()
            if (failure := _failure(input_task)) is not None:
                raise failure
        except Exception as e:
            error = _failure(input_task) or e  # the input side's error explains a stream it had to stop
            if isinstance(error, APIError):
                raise error from None
            raise api_error(error) from error
        finally:
            if self._engine_stream is not None:
                self._engine_stream.cancel()  # barge-in: the engine drops it at its next step
            if input_task is not None:
                await utils.aio.cancel_and_wait(input_task)

    async def _forward_text(
        self,
        voice: VoiceProfile,
        out: _AudioOut,
        output_emitter: tts.AudioEmitter,
        opened: asyncio.Future[Stream | None],
    ) -> None:
        """Copy LiveKit's input into the engine stream, opened on the first non-blank text; resolve `opened`
        with it (None when the input ended without text). A flush ends the engine's input."""
        stream: Stream | None = None
        pending = ""  # leading blank text, held until something to say arrives
        ended = False
        warned = False
        try:
            async for data in self._input_ch:
                if isinstance(data, self._FlushSentinel):
                    if stream is not None and not ended:
                        stream.end_input()
                        ended = True
                    continue
                if ended:
                    if not warned:
                        warned = True
                        log.warning(
                            "text pushed after flush() is dropped: one segment per stream (as livekit-agents "
                            "1.8.9 does); create a new stream() per segment"
                        )
                    continue
                if stream is None:
                    pending += data
                    if not pending.strip():
                        continue
                    data, pending = pending, ""
                    stream = self._tts.engine.open_stream(voice=voice, **self._opts.stream_kwargs())
                    self._engine_stream = stream
                    output_emitter.start_segment(segment_id=utils.shortuuid())
                    opened.set_result(stream)
                stream.push_text(data)
                out.add_text(data)
                self._mark_started()  # TTFB counts from the first text handed to the engine
            if stream is not None and not ended:
                stream.end_input()
        except Exception as e:
            if not opened.done():
                opened.set_exception(e)
                return
            if stream is not None:
                stream.cancel()  # the audio side sees the stream stop, then this error
            raise
        finally:
            if not opened.done():
                opened.set_result(None)


def _failure(task: asyncio.Task[None] | None) -> BaseException | None:
    """The exception a finished task ended with (None if it is running, cancelled or succeeded)."""
    if task is None or not task.done() or task.cancelled():
        return None
    return task.exception()
