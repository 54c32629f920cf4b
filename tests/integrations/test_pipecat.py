"""`Qwen3TTSService` in real Pipecat pipelines (PipelineWorker, `run_test`) on the tiny CustomVoice model.

Specs:
- token mode: LLM tokens at a realistic rate become one engine stream per turn, whose text is exactly the
  tokens; sentence mode: one engine stream per sentence. Both: one audio context per turn, framed
  TTSStartedFrame < audio < TTSStoppedFrame; word TTSTextFrames carry the spoken words, with times that
  increase and lie within the audio; TTFB and usage metrics (processing metrics in sentence mode only).
- output at 8/16/24 kHz equals the engine's own (greedy) output through `StreamResampler`, byte for byte;
  speed 2.0 halves the duration.
- barge-in: no audio of the interrupted context after the InterruptionFrame, only the words spoken before it
  reach the context, the engine stream is cancelled within one engine step, and the next turn speaks; an
  uninterruptible TTSSpeakFrame is spoken to its end.
- a bad voice (at start or in an update) is an ErrorFrame before any audio context opens and the pipeline goes
  on; a voice change mid-turn closes the turn's context at the end of its speech and opens another with the
  new voice; voice-library names resolve through the library.
- `model=` loads in a thread (the event loop keeps running) and the service closes what it loaded;
  CancelFrame leaves no stream running; one engine serves two pipelines at once.

Every test that drives an engine runs twice (`backend`): on the in-process engine, and on a `RemoteEngine`
through a real speech server around the same tiny checkpoint, with the same assertions; what only the engine
sees (its step count at a cancel, its streams' states) is read from the model behind the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from pipecat.metrics.metrics import ProcessingMetricsData, TTFBMetricsData, TTSUsageMetricsData
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.tts_service import TextAggregationMode
from pipecat.tests.utils import SleepFrame
from pipecat.tests.utils import run_test as pipecat_run_test
from pipecat.transcriptions.language import Language
from pipecat.workers.runner import WorkerRunner

from qwen3tts_realtime import InvalidInputError, Qwen3TTS, SamplingParams, VoiceLibrary
from qwen3tts_realtime.audio import StreamResampler, to_pcm16
from qwen3tts_realtime.engine.protocol import TTSEngine
from qwen3tts_realtime.engine.stream import StreamState
from qwen3tts_realtime.pipecat import Qwen3TTSService, model_language

TOKEN = TextAggregationMode.TOKEN
SENTENCE = TextAggregationMode.SENTENCE
TEXT = "Hello there. How are you today?"
SENTENCES = ["Hello there.", "How are you today?"]


async def run_test(*args, **kwargs):
    """Pipecat's `run_test`, with time for the service to start: its warm-up runs a generation, which takes more
    than `run_test`'s default 1 s on a loaded CPU (and a pipeline that never starts leaks its tasks)."""
    kwargs.setdefault("start_timeout", 60)
    return await pipecat_run_test(*args, **kwargs)


@pytest.fixture(scope="module")
def tiny(golden):
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")
    yield tts
    tts.close()


@dataclass
class Backend:
    """What a test gives the service as its engine, and the in-process model doing that engine's work.

    in_process: `engine` is the module's `tiny` model itself. remote: `engine` is a `RemoteEngine` on a real
    server (`remote_server`, started once per module around the same tiny checkpoint) and `model` is the
    server's model. `served` lists the streams opened on `model` during the test (warm-ups aside), each with
    the engine's step count when it was cancelled while still open: the engine-side view of a stream, which
    a remote client cannot see directly.
    """

    kind: str
    engine: TTSEngine
    model: Qwen3TTS
    served: list[dict]

    def stats(self) -> dict:
        """The statistics of the engine doing the work (remote: the server's `GET /v1/stats`)."""
        return self.engine.stats()


def record_served(model: Qwen3TTS, served: list[dict]):
    """An `open_stream` for `model` that records each stream it opens (warm-ups aside) in `served`."""
    open_stream = model.open_stream

    def recording_open_stream(text=None, **kwargs):
        stream = open_stream(text, **kwargs)
        if kwargs.get("max_new_frames") in (1, 2):  # warm-ups: the engine's (2 frames), the service's voice (1)
            return stream
        rec = {"stream": stream, "steps_at_cancel": None}
        cancel = stream.cancel

        def cancel_and_note() -> None:
            if stream.state is StreamState.OPEN and rec["steps_at_cancel"] is None:
                rec["steps_at_cancel"] = model.stats()["steps"]
            cancel()

        stream.cancel = cancel_and_note
        served.append(rec)
        return stream

    return recording_open_stream


@pytest.fixture(params=["in_process", "remote"])
def backend(request, tiny, monkeypatch) -> Backend:
    """Each test runs with the in-process engine and with the remote one (see `Backend`)."""
    if request.param == "in_process":
        engine, model = tiny, tiny
    else:
        engine, model = request.getfixturevalue("remote_engine"), request.getfixturevalue("remote_server").tts
    served: list[dict] = []
    monkeypatch.setitem(vars(model), "open_stream", record_served(model, served))  # undone: the method again
    return Backend(request.param, engine, model, served)


class RecordingEngine:
    """A `TTSEngine` that forwards to a real one (in-process or remote) and records every stream it opens
    (voice, args, pushed text)."""

    def __init__(self, inner: TTSEngine) -> None:
        self.inner = inner
        self.opened: list[dict] = []

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    def open_stream(self, text=None, *, voice, **kwargs):
        stream = self.inner.open_stream(text, voice=voice, **kwargs)
        rec = {"voice": voice, "stream": stream, "pushed": [], "text": text, **kwargs}
        push = stream.push_text

        def push_text(fragment: str) -> None:
            rec["pushed"].append(fragment)
            push(fragment)

        stream.push_text = push_text
        if kwargs.get("max_new_frames") != 1:  # not the warm-up
            self.opened.append(rec)
        return stream

    def resolve_voice(self, voice):
        return self.inner.resolve_voice(voice)

    def stats(self):
        return self.inner.stats()

    def warmup(self) -> None:
        self.inner.warmup()

    async def aclose(self) -> None:
        raise AssertionError("the service must not close an engine it was given")


def service(engine, mode=TOKEN, **settings) -> Qwen3TTSService:
    settings = {"voice": "ryan", "do_sample": False, **settings}
    max_new_frames = settings.pop("max_new_frames", 12)
    return Qwen3TTSService(
        engine=engine,
        settings=Qwen3TTSService.Settings(**settings),
        text_aggregation_mode=mode,
        max_new_frames=max_new_frames,
    )


def params(sample_rate: int = 24000) -> PipelineParams:
    return PipelineParams(audio_out_sample_rate=sample_rate, enable_metrics=True, enable_usage_metrics=True)


def llm_turn(text: str, token_interval_s: float = 0.0) -> list[Frame]:
    words = text.split(" ")
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
    frames: list[Frame] = [LLMFullResponseStartFrame()]
    for token in tokens:
        frames.append(LLMTextFrame(token))
        if token_interval_s:
            frames.append(SleepFrame(token_interval_s))
    return [*frames, LLMFullResponseEndFrame()]


def of(frames: Sequence[Frame], kind: type) -> list:
    return [f for f in frames if isinstance(f, kind)]


def pcm(frames: Sequence[Frame], context_id: str | None = None) -> np.ndarray:
    chunks = [
        np.frombuffer(f.audio, np.int16)
        for f in of(frames, TTSAudioRawFrame)
        if context_id is None or f.context_id == context_id
    ]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def check_turn(frames: Sequence[Frame], spoken: str) -> str:
    """One audio context, framed Started < audio < Stopped, its words spoken in order; returns its id."""
    started, stopped = of(frames, TTSStartedFrame), of(frames, TTSStoppedFrame)
    assert len(started) == 1 and len(stopped) == 1
    context_id = started[0].context_id
    assert stopped[0].context_id == context_id
    audio = of(frames, TTSAudioRawFrame)
    assert audio and {f.context_id for f in audio} == {context_id}
    index = {id(f): i for i, f in enumerate(frames)}
    assert index[id(started[0])] < index[id(audio[0])] and index[id(audio[-1])] < index[id(stopped[0])]
    words = of(frames, TTSTextFrame)
    assert [w.text for w in words] == spoken.split()
    pts = [w.pts for w in words]
    assert all(a < b for a, b in zip(pts, pts[1:], strict=False))
    return context_id


def record_word_times(tts: Qwen3TTSService) -> list[tuple[str, float]]:
    """The (word, seconds) the service reports through Pipecat's word-timestamp API."""
    times: list[tuple[str, float]] = []
    add = tts.add_word_timestamps

    async def spy(word_times, context_id=None, **kwargs):
        times.extend(word_times)
        await add(word_times, context_id, **kwargs)

    tts.add_word_timestamps = spy
    return times


class Recorder(FrameProcessor):
    """Keeps the frames passing in one direction, and when each arrived."""

    def __init__(self, direction: FrameDirection) -> None:
        super().__init__()
        self.direction, self.frames, self.arrival_s = direction, [], {}

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == self.direction:
            self.frames.append(frame)
            self.arrival_s[id(frame)] = time.monotonic()
        await self.push_frame(frame, direction)


Step = Frame | float | Callable[[list[Frame]], Awaitable[None]]


async def drive(
    tts: Qwen3TTSService,
    steps: Sequence[Step],
    *,
    end: Frame | None = None,
    arrival_s: dict[int, float] | None = None,
) -> tuple[list[Frame], list[Frame]]:
    """Run a pipeline [source, tts, sink] at 24 kHz through `steps`: frames are queued, floats are pauses,
    async callables get the downstream frames so far (to wait for something or check it); then `end`
    (EndFrame). Returns (down, up); `arrival_s` gets each downstream frame's arrival time, by id."""
    up, down = Recorder(FrameDirection.UPSTREAM), Recorder(FrameDirection.DOWNSTREAM)
    worker = PipelineWorker(Pipeline([up, tts, down]), params=params(), cancel_on_idle_timeout=False)
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_started(worker, frame):
        started.set()

    async def feed() -> None:
        await asyncio.wait_for(started.wait(), 30)
        for step in steps:
            if isinstance(step, Frame):
                await worker.queue_frame(step)
            elif isinstance(step, float):
                await asyncio.sleep(step)
            else:
                await step(down.frames)
        await worker.queue_frame(end or EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run, fed = asyncio.create_task(runner.run()), asyncio.create_task(feed())
    try:
        await asyncio.gather(run, fed)
    finally:  # a failed step: stop the pipeline, so that the test reports the failure rather than hanging
        fed.cancel()
        if not run.done():
            await runner.cancel()
            await asyncio.wait_for(run, 10)
    if arrival_s is not None:
        arrival_s.update(down.arrival_s)
    return down.frames, up.frames


def audio_at_least(seconds: float, sample_rate: int = 24000) -> Callable[[list[Frame]], Awaitable[None]]:
    """A `drive` step: wait until this much audio has come out."""

    async def wait(frames: list[Frame]) -> None:
        async with asyncio.timeout(20):
            while len(pcm(frames)) < seconds * sample_rate:
                await asyncio.sleep(0.005)

    return wait


first_audio = audio_at_least(1e-9)


def engine_output(tts: Qwen3TTS, text: str, sample_rate: int, max_new_frames: int, voice: str = "ryan") -> np.ndarray:
    """The engine's own greedy speech for `text`, resampled to `sample_rate` in one go, as int16."""
    with tts.open_stream(
        text, voice=tts.speaker(voice), sampling=SamplingParams.greedy(), max_new_frames=max_new_frames
    ) as stream:
        audio = np.concatenate([chunk.audio for chunk in stream])
    resampler = StreamResampler(24000, sample_rate)
    return to_pcm16(np.concatenate([resampler.process(audio), resampler.flush()]))


# ---- turns ------------------------------------------------------------------------------------------------


async def test_token_mode_streams_a_turn_into_one_engine_stream(backend):
    engine = RecordingEngine(backend.engine)
    tts = service(engine, TOKEN, max_new_frames=None)
    word_times = record_word_times(tts)

    down, up = await run_test(
        tts, frames_to_send=llm_turn(TEXT, token_interval_s=0.02), pipeline_params=params(16000)
    )

    assert len(engine.opened) == 1
    opened = engine.opened[0]
    assert opened["text"] is None and "".join(opened["pushed"]) == TEXT  # incremental, every token
    check_turn(down, TEXT)
    audio_s = len(pcm(down)) / 16000
    assert [w for w, _ in word_times] == TEXT.split()
    times = [t for _, t in word_times]
    assert (
        times[0] >= 0 and all(a < b for a, b in zip(times, times[1:], strict=False)) and times[-1] < audio_s
    )
    metrics = [d for m in of(down, MetricsFrame) for d in m.data]
    assert any(isinstance(d, TTFBMetricsData) and d.value > 0 for d in metrics)
    assert any(isinstance(d, TTSUsageMetricsData) and d.value == len(TEXT) for d in metrics)
    assert not any(isinstance(d, ProcessingMetricsData) and d.value > 0 for d in metrics)
    assert not of(up, ErrorFrame)
    assert backend.stats()["active_streams"] == 0


async def test_sentence_mode_speaks_each_sentence_with_its_own_stream(backend):
    engine = RecordingEngine(backend.engine)
    tts = service(engine, SENTENCE)
    word_times = record_word_times(tts)

    down, up = await run_test(tts, frames_to_send=llm_turn(TEXT), pipeline_params=params())

    assert [rec["text"] for rec in engine.opened] == SENTENCES
    check_turn(down, TEXT)
    times = [t for _, t in word_times]
    assert all(a < b for a, b in zip(times, times[1:], strict=False)) and times[-1] < len(pcm(down)) / 24000
    metrics = [d for m in of(down, MetricsFrame) for d in m.data]
    assert any(isinstance(d, TTFBMetricsData) and d.value > 0 for d in metrics)
    assert sum(isinstance(d, TTSUsageMetricsData) and d.value > 0 for d in metrics) == 2
    assert sum(isinstance(d, ProcessingMetricsData) and d.value > 0 for d in metrics) == 2
    assert not of(up, ErrorFrame)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 24000])
async def test_output_is_the_engine_output_at_the_pipeline_rate(backend, tiny, sample_rate):
    tts = service(backend.engine, SENTENCE, max_new_frames=10)

    down, _ = await run_test(
        tts, frames_to_send=[TTSSpeakFrame("Hello there.")], pipeline_params=params(sample_rate)
    )

    assert {f.sample_rate for f in of(down, TTSAudioRawFrame)} == {sample_rate}
    np.testing.assert_array_equal(pcm(down), engine_output(tiny, "Hello there.", sample_rate, 10))


async def test_speed_changes_the_duration_not_the_rate(backend):
    normal, fast = (
        service(backend.engine, SENTENCE, max_new_frames=10),
        service(backend.engine, SENTENCE, max_new_frames=10, speed=2.0),
    )
    frames = [TTSSpeakFrame("Hello there.")]
    down_normal, _ = await run_test(normal, frames_to_send=frames, pipeline_params=params(16000))
    down_fast, _ = await run_test(fast, frames_to_send=frames, pipeline_params=params(16000))
    assert abs(len(pcm(down_fast)) - len(pcm(down_normal)) / 2) <= 2
    assert {f.sample_rate for f in of(down_fast, TTSAudioRawFrame)} == {16000}


# ---- interruptions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [TOKEN, SENTENCE])
async def test_interruption_stops_audio_and_cancels_the_stream(backend, mode):
    engine = RecordingEngine(backend.engine)
    tts = service(engine, mode, max_new_frames=40)
    long_text = (
        "One two three. Four five six. Seven eight nine. Ten eleven twelve. Thirteen fourteen fifteen."
    )
    turn = llm_turn(long_text)[:-1] if mode is TOKEN else [TTSSpeakFrame(long_text)]  # token turn: no end

    async def check_cancelled(frames: list[Frame]) -> None:
        # The turn's stream as the service holds it, and as the engine holds it (in-process: the same one;
        # remote: the server's stream, cancelled when the client's cancel arrives).
        rec, served = engine.opened[0], backend.served[0]
        assert rec["stream"].state is StreamState.CANCELLED
        assert served["stream"].state is StreamState.CANCELLED and served["steps_at_cancel"] is not None
        async with asyncio.timeout(5):
            while backend.stats()["active_streams"]:
                await asyncio.sleep(0.005)
        assert backend.stats()["steps"] - served["steps_at_cancel"] <= 1  # freed within one step

    down, up = await drive(
        tts,
        [*turn, audio_at_least(0.6), InterruptionFrame(), 0.2, check_cancelled, TTSSpeakFrame("Next turn.")],
    )

    interrupted = of(down, TTSStartedFrame)[0].context_id
    after = down[next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame)) :]
    assert not [f for f in after if isinstance(f, TTSAudioRawFrame) and f.context_id == interrupted]
    spoken = [f.text for f in of(down, TTSTextFrame) if f.context_id == interrupted]
    assert spoken == long_text.split()[: len(spoken)]  # what was spoken, no more
    assert 0 < len(spoken) < len(long_text.split())
    next_turn = of(after, TTSStartedFrame)
    assert len(next_turn) == 1 and len(pcm(after, next_turn[0].context_id)) > 0
    assert [f.context_id for f in of(after, TTSStoppedFrame)] == [next_turn[0].context_id]
    assert not of(up, ErrorFrame)


async def test_uninterruptible_speak_frame_is_spoken_to_the_end(backend):
    engine = RecordingEngine(backend.engine)
    tts = service(engine, TOKEN, max_new_frames=30)
    speak = TTSSpeakFrame("Hello there, how are you today?")
    speak.interruptible = False

    down, up = await drive(tts, [speak, first_audio, InterruptionFrame(), 0.1])

    check_turn(down, speak.text)
    interruption = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    assert of(down[interruption:], TTSAudioRawFrame)  # it went on speaking through the interruption
    assert engine.opened[0]["stream"].state is StreamState.FINISHED  # spoken to its end
    assert not of(up, ErrorFrame)


async def test_cancel_frame_cancels_the_stream(backend):
    engine = RecordingEngine(backend.engine)
    tts = service(engine, TOKEN, max_new_frames=None)

    await drive(
        tts,
        [*llm_turn("One two three four five six seven eight nine ten.")[:-1], first_audio],
        end=CancelFrame(),
    )

    assert engine.opened[0]["stream"].state is StreamState.CANCELLED
    async with asyncio.timeout(5):
        while backend.stats()["active_streams"]:
            await asyncio.sleep(0.005)


# ---- voices and settings -----------------------------------------------------------------------------------


async def test_bad_settings_are_error_frames_and_open_no_audio_context(backend):
    engine = RecordingEngine(backend.engine)
    tts = service(engine, TOKEN, voice="nobody")
    update = Qwen3TTSService.Settings

    down, up = await run_test(
        tts,
        pipeline_params=params(),
        frames_to_send=[
            TTSSpeakFrame("Hello."),  # the configured voice is unknown: refused before any context opens
            TTSUpdateSettingsFrame(delta=update(voice="ryan")),
            TTSUpdateSettingsFrame(delta=update(voice="still nobody")),  # refused: ryan stays
            TTSUpdateSettingsFrame(delta=update(speed=5.0, language=Language.HI)),  # both refused
            TTSUpdateSettingsFrame(delta=update(speed=1.5, language="english")),
            TTSSpeakFrame("Hello there."),
        ],
    )

    errors = [f.error for f in of(up, ErrorFrame)]
    assert len(errors) == 5 and not any("no audio" in e for e in errors)
    assert ["nobody" in e for e in errors] == [True, True, True, False, False]  # warm-up, speak, update
    assert "speed=5.0" in errors[3] and "not supported by Qwen3-TTS" in errors[4]
    check_turn(down, "Hello there.")
    assert (tts.settings.voice, tts.settings.speed, tts.settings.language) == ("ryan", 1.5, "English")
    assert [(rec["voice"].speaker, rec["language"]) for rec in engine.opened] == [("ryan", "English")]
    assert tts.is_usable


@pytest.mark.parametrize("mode", [TOKEN, SENTENCE])
async def test_voice_change_mid_turn_opens_a_new_context(backend, mode):
    engine = RecordingEngine(backend.engine)
    tts = service(engine, mode)
    change = TTSUpdateSettingsFrame(delta=Qwen3TTSService.Settings(voice="eric"))
    tokens = [LLMTextFrame(t) for t in ["Hello", " there.", " How", " are", " you?"]]
    frames = [
        LLMFullResponseStartFrame(),
        *tokens[:3],
        first_audio,
        change,
        *tokens[3:],
        LLMFullResponseEndFrame(),
    ]

    arrival_s: dict[int, float] = {}
    down, up = await drive(tts, frames, arrival_s=arrival_s)

    started, stopped = of(down, TTSStartedFrame), of(down, TTSStoppedFrame)
    assert len(started) == 2 and [f.context_id for f in stopped] == [f.context_id for f in started]
    assert all(len(pcm(down, f.context_id)) for f in started)
    # The old context ends with its speech, not after Pipecat's 3 s idle timeout; then the new one plays.
    old_audio = [f for f in of(down, TTSAudioRawFrame) if f.context_id == started[0].context_id]
    assert arrival_s[id(started[1])] - arrival_s[id(old_audio[-1])] < 1.5
    assert [rec["voice"].speaker for rec in engine.opened] == ["ryan", "eric"]
    if mode is TOKEN:
        assert ["".join(rec["pushed"]) for rec in engine.opened] == ["Hello there. How", " are you?"]
    else:
        assert [rec["text"] for rec in engine.opened] == ["Hello there.", "How are you?"]
    assert not of(up, ErrorFrame)


async def test_voice_library_names_are_resolved_through_the_library(backend, tiny, tmp_path):
    library = VoiceLibrary(tiny, cache_dir=tmp_path)
    library.add("agent-anna", tiny.speaker("eric"))
    engine = RecordingEngine(backend.engine)
    tts = Qwen3TTSService(
        engine=engine,
        voice_library=library,
        settings=Qwen3TTSService.Settings(voice="agent-anna", do_sample=False),
        max_new_frames=8,
    )

    down, up = await run_test(tts, frames_to_send=[TTSSpeakFrame("Hello.")], pipeline_params=params())

    check_turn(down, "Hello.")
    assert engine.opened[0]["voice"] is library.get("agent-anna") and not of(up, ErrorFrame)


# In-process only: `model=` makes the service load a checkpoint in this process; a remote engine is always
# given (`engine=`), which the tests above drive.
async def test_model_loads_in_a_thread_and_is_closed_with_the_pipeline(golden, monkeypatch):
    load = Qwen3TTS.from_pretrained

    def slow_load(*args, **kwargs):  # a download: two seconds of blocking work
        time.sleep(2.0)
        return load(*args, **kwargs)

    monkeypatch.setattr(Qwen3TTS, "from_pretrained", slow_load)
    tts = Qwen3TTSService(
        model=golden / "tiny" / "custom_voice",
        device="cpu",
        settings=Qwen3TTSService.Settings(voice="ryan", do_sample=False),
        max_new_frames=8,
    )
    lag_s = []

    async def tick() -> None:  # how late the event loop runs a 10 ms timer
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lag_s.append(time.monotonic() - t - 0.01)

    ticker = asyncio.create_task(tick())
    try:
        down, up = await run_test(
            tts, frames_to_send=[TTSSpeakFrame("Hello.")], pipeline_params=params(), start_timeout=60
        )
    finally:
        ticker.cancel()

    check_turn(down, "Hello.")
    assert not of(up, ErrorFrame)
    # The loop kept running while the model loaded: had the load run on it, one tick would be >= 2 s late (a
    # loaded machine delays ticks by itself, by up to 0.56 s in CI, so the bound is the blocking time, not 0)
    assert max(lag_s) < 1.5
    assert tts.engine is None  # the service loaded it, so it closed it


# No engine is used (`engine=object()`): nothing here differs between an in-process and a remote engine.
def test_languages_map_to_the_model_languages():
    assert model_language(Language.EN_GB) == "English"
    assert model_language(Language.ZH_CN) == "Chinese"
    assert model_language(Language.JA) == "Japanese"
    assert model_language("french") == "French"
    assert model_language(None) == "Auto"
    tts = Qwen3TTSService(
        engine=object(), settings=Qwen3TTSService.Settings(voice="ryan", language=Language.DE)
    )
    assert tts.settings.language == "German"
    with pytest.raises(InvalidInputError, match="not supported by Qwen3-TTS"):
        Qwen3TTSService(
            engine=object(), settings=Qwen3TTSService.Settings(voice="ryan", language=Language.HI)
        )
    with pytest.raises(InvalidInputError, match="speed"):
        Qwen3TTSService(engine=object(), settings=Qwen3TTSService.Settings(voice="ryan", speed=3.0))
    with pytest.raises(InvalidInputError, match="exactly one"):
        Qwen3TTSService(settings=Qwen3TTSService.Settings(voice="ryan"))


@pytest.mark.parametrize(("field", "value", "accepted"), [
    ("temperature", 1e-300, "a number from 0.01 to 100, or None"),  # the engine's range: no overflowing scores
    ("top_k", 100_001, "an int from 0 (off) to 100000, or None"),
    ("top_p", 0, "a number in (0, 1], or None"),
])
def test_sampling_settings_take_the_engines_ranges(field, value, accepted):
    with pytest.raises(InvalidInputError) as refused:
        Qwen3TTSService(engine=object(), settings=Qwen3TTSService.Settings(voice="ryan", **{field: value}))
    assert str(refused.value) == f"{field}={value!r}; accepted: {accepted}"


async def test_one_engine_serves_two_pipelines_at_once(backend, tiny):
    frames = [TTSSpeakFrame("Hello there.")]
    (down_a, _), (down_b, _) = await asyncio.gather(
        run_test(
            service(backend.engine, SENTENCE, max_new_frames=15), frames_to_send=frames, pipeline_params=params(16000)
        ),
        run_test(
            service(backend.engine, SENTENCE, max_new_frames=15, voice="eric"),
            frames_to_send=frames,
            pipeline_params=params(8000),
        ),
    )
    # Each pipeline hears what its voice says alone, at its own rate: codes are exact in a batch, and the batched
    # decoder rounds float32 differently from a one-row decode (within 1e-4, a few int16 steps).
    for down, rate, voice in ((down_a, 16000, "ryan"), (down_b, 8000, "eric")):
        alone = engine_output(tiny, "Hello there.", rate, 15, voice=voice)
        heard = pcm(down)
        assert heard.shape == alone.shape and np.abs(heard.astype(np.int32) - alone).max() <= 4
    assert backend.stats()["active_streams"] == 0
