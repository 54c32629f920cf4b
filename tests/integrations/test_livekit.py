"""The LiveKit TTS plugin, driven directly in asyncio as an `AgentSession` would drive it (no server).

- `stream()` turns LLM deltas into 24 kHz mono frames of at most 250 ms, all with the stream's request id,
  the last one (only) flagged final; its audio is exactly the engine's for the same text; its metrics carry a
  TTFB; its timed transcript lists the words in order, within the audio. `synthesize()` equals the engine's
  greedy output (and offline `generate()` to 1 LSB).
- `aclose()` mid-stream cancels the run task and the engine stream, which leaves the engine within a step;
  200 open/close cycles leave no stream, task or thread behind.
- Bad input (voice, language, speed, engine) fails with a non-retryable error; a failing connection to a
  (remote) engine is retried.
- Options: LiveKit language codes map to the model's languages; `update_options` reaches new streams only;
  speed changes the duration exactly as `RateChanger` does, word times following; `instruct` steers
  built-in speakers and is refused for clones; a voice library resolves a voice once.
- One segment per stream: text after `flush()` is dropped. `prewarm()` returns at once and warms the voice.
Runs on the tiny random-weight CustomVoice checkpoint of the golden bundle, greedy, CPU.
"""
from __future__ import annotations

import asyncio
import gc
import threading
import time

import numpy as np
import pytest
import torch
from livekit.agents import APIConnectOptions, APIError
from livekit.agents.metrics import TTSMetrics
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

from qwen3tts_realtime import InvalidInputError, Qwen3TTS, SamplingParams, VoiceProfile
from qwen3tts_realtime.audio import RateChanger, to_pcm16
from qwen3tts_realtime.engine.stream import StreamState
from qwen3tts_realtime.livekit import TTS, model_language

TEXT = "Hello there, how can I help you today?"
DELTAS = ["Hel", "lo", " there", ",", " how", " can I", " help", " you", " today", "?"]
FRAMES = 16  # per utterance: 1.28 s of audio, a fraction of a second of CPU


@pytest.fixture(scope="module")
def engine(golden):
    model = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice", dtype="float32")
    model.warmup()
    yield model
    model.close()


def make_tts(engine, **kwargs) -> TTS:
    options = dict(voice="ryan", language="en", sampling=SamplingParams.greedy(), max_new_frames=FRAMES)
    return TTS(engine=engine, **{**options, **kwargs})


async def engine_pcm(engine, text: str, *, incremental: bool) -> bytes:
    """What the engine itself says for `text` (greedy), as int16 PCM."""
    voice = engine.resolve_voice("ryan")
    args = dict(language="English", sampling=SamplingParams.greedy(), max_new_frames=FRAMES)
    if incremental:
        stream = engine.open_stream(voice=voice, **args)
        stream.push_text(text)
        stream.end_input()
    else:
        stream = engine.open_stream(voice=voice, text=text, **args)
    audio = np.concatenate([chunk.audio async for chunk in stream])
    return to_pcm16(audio).tobytes()


def words_of(events) -> list:
    return [w for ev in events for w in ev.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]


async def wait_idle(engine, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while engine.stats()["active_streams"] or engine.stats()["queued_streams"]:
        assert time.monotonic() < deadline, engine.stats()
        await asyncio.sleep(0.005)


class SpyEngine:
    """The real engine behind the `TTSEngine` protocol, recording its streams (and when each was cancelled,
    in engine steps); `fail_opens` open_stream calls raise `fail_with` first."""

    def __init__(self, engine: Qwen3TTS, *, fail_opens: int = 0, fail_with: BaseException | None = None):
        self.engine = engine
        self.streams = []
        self.cancelled_at_step: list[int] = []
        self.fail_opens, self.fail_with, self.opens = fail_opens, fail_with, 0

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate

    def open_stream(self, text=None, *, voice, **kwargs):
        self.opens += 1
        if self.opens <= self.fail_opens:
            raise self.fail_with
        stream = self.engine.open_stream(text, voice=voice, **kwargs)
        real_cancel = stream.cancel

        def cancel() -> None:
            if stream.state is StreamState.OPEN:
                self.cancelled_at_step.append(self.engine.stats()["steps"])
            real_cancel()

        stream.cancel = cancel
        self.streams.append(stream)
        return stream

    def resolve_voice(self, voice):
        return self.engine.resolve_voice(voice)

    def stats(self):
        return self.engine.stats()

    def warmup(self) -> None:
        self.engine.warmup()

    async def aclose(self) -> None:
        await self.engine.aclose()


async def test_stream_of_llm_deltas_gives_final_24k_frames_metrics_and_word_times(engine):
    t = make_tts(engine)
    metrics: list[TTSMetrics] = []
    t.on("metrics_collected", metrics.append)
    assert t.capabilities.streaming and t.capabilities.aligned_transcript
    assert (t.sample_rate, t.num_channels, t.provider) == (24000, 1, "qwen3tts-realtime")

    async with t.stream() as stream:
        for delta in DELTAS:
            stream.push_text(delta)
        stream.end_input()
        events = [ev async for ev in stream]
    await asyncio.sleep(0)  # metrics are emitted by a task of their own

    assert [ev.is_final for ev in events] == [False] * (len(events) - 1) + [True]
    assert len({ev.request_id for ev in events}) == 1 and events[0].request_id
    assert len({ev.segment_id for ev in events}) == 1 and events[0].segment_id
    for ev in events:
        assert (ev.frame.sample_rate, ev.frame.num_channels) == (24000, 1)
        assert 0 < ev.frame.duration <= 0.25
    pcm = b"".join(bytes(ev.frame.data) for ev in events)
    assert pcm == await engine_pcm(engine, TEXT, incremental=True)
    duration_s = len(pcm) / 2 / 24000
    assert duration_s == pytest.approx(FRAMES * 0.08)

    assert len(metrics) == 1
    m = metrics[0]
    assert m.streamed and not m.cancelled and 0 < m.ttfb < m.duration
    assert m.audio_duration == pytest.approx(duration_s) and m.characters_count == len(TEXT)
    assert m.request_id == events[0].request_id
    assert (m.metadata.model_name, m.metadata.model_provider) == (t.model, "qwen3tts-realtime")

    words = words_of(events)
    assert "".join(words) == " ".join(TEXT.split()) + " "
    starts = [w.start_time for w in words]
    assert starts == sorted(starts) and starts[0] == 0.0
    assert all(w.start_time < w.end_time for w in words)
    assert words[-1].end_time == pytest.approx(duration_s)
    await t.aclose()


async def test_synthesize_collect_equals_the_engine_greedy_output(engine):
    t = make_tts(engine)
    frame = await t.synthesize(TEXT).collect()
    assert (frame.sample_rate, frame.num_channels) == (24000, 1)
    assert bytes(frame.data) == await engine_pcm(engine, TEXT, incremental=False)
    offline = engine.generate(
        TEXT,
        voice=engine.resolve_voice("ryan"),
        language="English",
        sampling=SamplingParams.greedy(),
        max_new_frames=FRAMES,
    )
    got = np.frombuffer(bytes(frame.data), dtype=np.int16).astype(np.int32)
    assert np.abs(got - to_pcm16(offline.audio)).max() <= 1  # streamed decode == offline, to float rounding
    await t.aclose()


async def test_aclose_mid_stream_cancels_the_engine_stream_within_a_step(engine):
    spy = SpyEngine(engine)
    t = make_tts(spy, max_new_frames=400, chunk_frames=(1,))
    stream = t.stream()
    stream.push_text("This sentence is long enough to keep the engine busy for a good while. ")
    first = await anext(aiter(stream))
    assert not first.is_final
    await stream.aclose()  # what AgentSession does on barge-in

    assert stream._task.cancelled()
    [engine_stream] = spy.streams
    assert engine_stream.state is StreamState.CANCELLED
    await wait_idle(engine)
    assert engine.stats()["steps"] - spy.cancelled_at_step[0] <= 1

    async with t.stream() as again:  # the TTS goes on working
        again.push_text("Hi there.")
        again.end_input()
        events = [ev async for ev in again]
    assert events and events[-1].is_final
    await t.aclose()
    await wait_idle(engine)


async def test_open_close_cycles_leak_nothing(engine):
    t = make_tts(engine, max_new_frames=50)
    tasks_before = len(asyncio.all_tasks())

    async def cycle(i: int) -> None:
        stream = t.stream()
        stream.push_text("Hello there, how can I help? ")
        if i % 2:
            await anext(aiter(stream))
        await stream.aclose()

    await cycle(1)  # the voice is resolved and cached, worker threads exist
    await wait_idle(engine)
    threads_before = threading.active_count()
    for i in range(200):
        await cycle(i)
    await wait_idle(engine)
    gc.collect()
    assert threading.active_count() == threads_before
    assert len(asyncio.all_tasks()) == tasks_before
    assert len(t._streams) == 0
    await t.aclose()


async def test_an_unknown_voice_is_refused_as_soon_as_the_engine_is_known(engine):
    """In-process, the voice is looked up when the TTS is made or its voice changed (no model work)."""
    with pytest.raises(InvalidInputError, match="unknown voice 'nobody'"):
        make_tts(engine, voice="nobody")
    t = make_tts(engine)
    with pytest.raises(InvalidInputError, match="unknown voice 'nobody'"):
        t.update_options(voice="nobody")
    clone = VoiceProfile("clone_xvector", "custom_voice", speaker_embedding=torch.zeros(8))
    with pytest.raises(InvalidInputError, match="a clone takes its style from its reference audio"):
        make_tts(engine, voice=clone, instruct="Speak slowly.")
    assert t._opts.voice == "ryan"  # a refused change changes nothing
    await t.aclose()


async def test_bad_input_fails_with_a_non_retryable_api_error(engine):
    # An engine that cannot be asked at once (a remote one; here a wrapper) refuses the voice at synthesis.
    t = make_tts(SpyEngine(engine), voice="nobody")
    errors = []
    t.on("error", errors.append)
    with pytest.raises(APIError, match="unknown voice 'nobody'") as raised:
        async with t.stream() as stream:
            stream.push_text("Hello there.")
            stream.end_input()
            [ev async for ev in stream]
    assert raised.value.retryable is False
    with pytest.raises(APIError, match="unknown voice 'nobody'") as raised:
        await t.synthesize("Hello there.").collect()
    assert raised.value.retryable is False
    assert [e.recoverable for e in errors] == [False, False]

    with pytest.raises(InvalidInputError, match="accepted: Auto, Chinese, English"):
        make_tts(engine, language="klingon")
    with pytest.raises(InvalidInputError, match="speed=3"):
        make_tts(engine, speed=3)
    with pytest.raises(TypeError, match="TTSEngine"):
        TTS(engine=object(), voice="ryan")
    await t.aclose()


async def test_a_failing_engine_connection_is_retried(engine):
    spy = SpyEngine(engine, fail_opens=1, fail_with=ConnectionError("engine server unreachable"))
    t = make_tts(spy)
    errors = []
    t.on("error", errors.append)
    async with t.stream(conn_options=APIConnectOptions(max_retry=1)) as stream:
        stream.push_text(TEXT)
        stream.end_input()
        events = [ev async for ev in stream]
    assert events[-1].is_final and spy.opens == 2
    assert [e.recoverable for e in errors] == [True]
    await t.aclose()


def test_languages_are_taken_as_model_names_or_livekit_codes():
    codes = ("en", "en-US", "English", "english", "zh-CN", "cmn-Hans-CN", "zh")
    assert [model_language(x) for x in codes] == ["English"] * 4 + ["Chinese"] * 3
    assert [model_language(x) for x in ("ja", "ko", "de", "fr", "ru", "pt-BR", "es-419", "it")] == [
        "Japanese", "Korean", "German", "French", "Russian", "Portuguese", "Spanish", "Italian"]
    assert [model_language(x) for x in ("Auto", "auto", "multi")] == ["Auto"] * 3
    for bad in ("ar", "klingon", "yue"):
        with pytest.raises(InvalidInputError, match=repr(bad)):
            model_language(bad)


async def test_update_options_apply_to_new_streams_and_speed_keeps_word_times_in_the_audio(engine):
    t = make_tts(engine)
    before = t.stream()  # created before the update: keeps speed 1.0
    t.update_options(speed=1.5, language="English")
    after = t.stream()
    results = []
    for stream in (before, after):
        async with stream:
            stream.push_text(TEXT)
            stream.end_input()
            results.append([ev async for ev in stream])
    samples = [sum(ev.frame.samples_per_channel for ev in events) for events in results]
    assert samples[0] == FRAMES * 1920
    assert samples[1] == RateChanger(1.5).expected_output_samples(FRAMES * 1920)
    words = words_of(results[1])
    assert words[-1].end_time == pytest.approx(samples[1] / 24000)
    with pytest.raises(InvalidInputError, match="speed=0.1"):
        t.update_options(speed=0.1)
    await t.aclose()


async def test_voices_resolve_through_the_voice_library_it_is_handed(engine):
    class Library:
        calls: list = []

        def resolve(self, voice):
            self.calls.append(voice)
            return engine.speaker("eric") if voice == "agent-anna" else engine.resolve_voice(voice)

    library = Library()
    t = make_tts(engine, voice="agent-anna", voice_library=library)
    first, second = [bytes((await t.synthesize("Hello there.").collect()).data) for _ in range(2)]
    assert first and first == second  # greedy: the same voice twice
    # checked when the TTS was made, then resolved per stream through the library it was handed
    assert library.calls == ["agent-anna"] * 3
    await t.aclose()


async def test_instruct_steers_built_in_speakers_and_is_refused_for_clones(engine):
    t = make_tts(engine, instruct="Speak slowly and warmly.")
    styled = bytes((await t.synthesize("Hello there.").collect()).data)
    t.update_options(instruct=None)
    plain = bytes((await t.synthesize("Hello there.").collect()).data)
    assert styled != plain  # the instruction is in the prompt (a 1.7B CustomVoice checkpoint honours it)
    await t.aclose()
    clone = VoiceProfile("clone_xvector", "custom_voice", speaker_embedding=torch.zeros(8))
    t = make_tts(SpyEngine(engine), voice=clone, instruct="Speak slowly.")
    with pytest.raises(APIError, match="a clone takes its style from its reference audio") as refused:
        await t.synthesize("Hello there.").collect()
    assert not refused.value.retryable
    await t.aclose()


async def test_one_segment_per_stream_text_after_flush_is_dropped(engine):
    t = make_tts(engine)
    async with t.stream() as stream:
        stream.push_text("Hello there.")
        stream.flush()
        stream.push_text(" And more.")  # livekit-agents 1.8.9 drops it (with a warning), and so do we
        stream.end_input()
        events = [ev async for ev in stream]
    assert sum(ev.is_final for ev in events) == 1 and len({ev.segment_id for ev in events}) == 1
    assert "".join(words_of(events)) == "Hello there. "
    await t.aclose()


async def test_prewarm_returns_at_once_and_warms_the_voice(engine):
    t = make_tts(engine, voice="eric", language="zh")
    prefixes = engine.stats()["voice_prefix_computations"]
    start = time.perf_counter()
    t.prewarm()
    assert time.perf_counter() - start < 0.05
    await asyncio.gather(*t._prewarm_tasks)
    assert engine.stats()["voice_prefix_computations"] == prefixes + 1
    async with t.stream() as stream:  # the warm voice is reused
        stream.push_text("你好，欢迎致电。")
        stream.end_input()
        assert [ev async for ev in stream][-1].is_final
    assert engine.stats()["voice_prefix_computations"] == prefixes + 1
    await t.aclose()

