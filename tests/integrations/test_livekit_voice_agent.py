"""`examples/livekit_agent.py` end to end: the caller's audio in, speech-to-text, an LLM, Qwen3-TTS, audio out.

The example's own worker setup and session run: `prewarm` (settings from the environment, the engine, the
voice checked, LiveKit's local Silero VAD) and `build_session` (LiveKit's OpenAI plugin for STT and LLM, our
TTS). What would be network services are local stand-ins: the STT and LLM endpoints are an OpenAI-compatible
server on a free localhost port (`openai_standin.py`), reached over HTTP by the real plugin; the room is
replaced by LiveKit's own session I/O: an `AudioInput` carrying the caller's audio and a capturing
`AudioOutput`.
"""

from __future__ import annotations

import asyncio
import io as bytes_io
import types
import wave

import numpy as np
import pytest
from livekit.agents import JobExecutorType
from livekit.agents.voice import io

import qwen3tts_realtime.livekit as lk
from livekit import rtc
from qwen3tts_realtime import InvalidInputError
from tests.integrations.openai_standin import serving_openai
from tests.integrations.test_livekit_worker import CaptureAudio
from tests.integrations.voice_bots import REPLY, TRANSCRIPT, caller_speech, example

FRAMES = 12  # per utterance: random weights never end speech by themselves
ENV = ("LLM_BASE_URL", "OPENAI_BASE_URL", "LLM_API_KEY", "OPENAI_API_KEY", "STT_BASE_URL", "STT_API_KEY",
       "LLM_MODEL", "STT_MODEL", "QWEN3TTS_VOICE")


class Caller(io.AudioInput):
    """The caller's microphone, at the pace of real time: what the test queues, else silence (a live
    microphone never stops sending)."""

    def __init__(self) -> None:
        super().__init__(label="caller")
        self._frames: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue()

    async def __anext__(self) -> rtc.AudioFrame:
        if self._frames.empty():
            frame = rtc.AudioFrame(bytes(640), 16000, 1, 320)
        else:
            frame = self._frames.get_nowait()
        await asyncio.sleep(frame.duration)
        return frame

    def say(self, pcm: np.ndarray) -> None:
        for i in range(0, len(pcm) - 319, 320):  # 20 ms frames at 16 kHz
            self._frames.put_nowait(rtc.AudioFrame(pcm[i : i + 320].tobytes(), 16000, 1, 320))


@pytest.fixture
def agent_env(golden, anna_library, monkeypatch):
    """The environment of a worker whose voice is "anna" from a library, on the tiny Base model."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(lk.MODEL_ENV, str(golden / "tiny" / "base"))
    monkeypatch.setenv("QWEN3TTS_VOICE_DIR", str(anna_library))
    monkeypatch.setenv("QWEN3TTS_VOICE", "anna")
    return monkeypatch


async def test_the_agent_hears_the_caller_asks_the_llm_and_speaks_its_reply(golden, engines, agent_env):
    agent = example("livekit_agent")
    server = agent.server
    assert server._setup_fnc is agent.prewarm and server._job_executor_type is JobExecutorType.THREAD
    assert server._initialize_process_timeout >= 60 and server._num_idle_processes == 1
    assert server.load_fnc is lk.engine_load and server._load_threshold == lk.DEFAULT_LOAD_THRESHOLD

    with serving_openai(TRANSCRIPT, REPLY) as openai:
        agent_env.setenv("LLM_BASE_URL", openai.url)  # the STT goes to the LLM's server by default
        agent_env.setenv("LLM_MODEL", "stand-in-llm")
        proc = types.SimpleNamespace(userdata={})
        agent.prewarm(proc)  # what the worker runs in each process before it takes jobs
        assert proc.userdata["engine"] is lk.load_engine()

        session = agent.build_session(proc.userdata)
        session.tts.update_options(max_new_frames=FRAMES, seed=0)  # seeded: the same speech every run
        caller, speaker = Caller(), CaptureAudio()
        session.input.audio, session.output.audio = caller, speaker
        try:  # closed whatever fails: its tasks would otherwise outlive the test's event loop
            await session.start(agent=agent.Assistant())
            await asyncio.wait_for(speaker.played.wait(), 60)  # the greeting
            speaker.played.clear()
            greeting = list(speaker.frames)
            caller.say(np.concatenate([np.zeros(8000, np.int16), caller_speech(golden), np.zeros(1600, np.int16)]))
            await asyncio.wait_for(speaker.played.wait(), 120)
            answer = speaker.frames[len(greeting):]

            async with asyncio.timeout(10):  # the history is written just after playback ends
                while len(said := _said(session)) < 3:
                    await asyncio.sleep(0.01)
        finally:
            await session.aclose()

    assert said == [("assistant", agent.GREETING), ("user", TRANSCRIPT), ("assistant", REPLY)]
    # speech-to-text got the caller's speech as WAV (LiveKit sends 16 kHz mono segments cut by its VAD)
    [upload] = openai.uploads
    with wave.open(bytes_io.BytesIO(upload)) as w:
        assert w.getnchannels() == 1 and 1.0 <= w.getnframes() / w.getframerate() <= 3.5
    # the LLM got the instructions, the greeting and the caller's words
    [chat] = openai.chats
    assert chat["model"] == "stand-in-llm" and chat["stream"] is True
    roles = [(m["role"], m["content"]) for m in chat["messages"]]
    assert roles[-1] == ("user", TRANSCRIPT) and ("assistant", agent.GREETING) in roles
    assert roles[0][1] == agent.INSTRUCTIONS
    # both utterances were spoken by our TTS at its 24 kHz, each at most the frame cap
    for frames in (greeting, answer):
        samples = sum(f.samples_per_channel for f in frames)
        assert {(f.sample_rate, f.num_channels) for f in frames} == {(24000, 1)} and 0 < samples <= FRAMES * 1920


def test_a_voice_the_engine_lacks_stops_the_worker_before_it_takes_calls(engines, agent_env):
    agent_env.setenv("QWEN3TTS_VOICE", "nobody")
    agent_env.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(InvalidInputError, match="nobody"):
        example("livekit_agent").prewarm(types.SimpleNamespace(userdata={}))


def test_openai_itself_needs_a_key(engines, agent_env):
    agent = example("livekit_agent")
    with pytest.raises(RuntimeError, match="set LLM_API_KEY or OPENAI_API_KEY"):
        agent.Settings.from_env()
    agent_env.setenv("OPENAI_API_KEY", "sk-test")
    agent_env.setenv("STT_BASE_URL", "http://localhost:8000/v1")
    settings = agent.Settings.from_env()
    assert (settings.llm_base_url, settings.stt_base_url) == (None, "http://localhost:8000/v1")
    assert settings.llm_api_key == settings.stt_api_key == "sk-test" and settings.voice == "anna"


def _said(session) -> list[tuple[str, str]]:
    return [(item.role, item.text_content) for item in session.history.items if item.type == "message"]

