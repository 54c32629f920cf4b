"""`examples/pipecat_voice_bot.py` end to end: caller audio in, speech-to-text, an LLM, Qwen3-TTS, audio out.

The bot's own pipeline runs under Pipecat's pipeline runner. What would be network services are local stand-ins:
the speech-to-text and LLM endpoints are an OpenAI-compatible server on a free localhost port
(`openai_standin.py`), reached by Pipecat's real OpenAI services over HTTP; the microphone and speakers are a
frame source and a capturing sink. The bot's own local models run as they would: Silero finds the caller's
speech, Pipecat's smart-turn model ends the caller's turn.
"""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path

import numpy as np
import pytest
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    LLMRunFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from tests.integrations.openai_standin import serving_openai
from tests.integrations.voice_bots import REPLY, TRANSCRIPT, caller_speech, example

FRAMES = 12  # per reply: random weights never end speech by themselves


class Microphone(FrameProcessor):
    """The transport's input: passes frames on (the test queues the caller's audio into the pipeline)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class Speaker(FrameProcessor):
    """The transport's output: keeps each reply's audio."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: list[bytearray] = [bytearray()]
        self.finished = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.replies[-1] += frame.audio
        elif isinstance(frame, TTSStoppedFrame) and self.replies[-1]:
            self.replies.append(bytearray())
            self.finished.set()
        await self.push_frame(frame, direction)

    async def next_reply(self, timeout: float) -> bytes:
        await asyncio.wait_for(self.finished.wait(), timeout)
        self.finished.clear()
        return bytes(self.replies[-2])


def caller_audio(golden: Path) -> list[InputAudioRawFrame]:
    """The caller speaks between silences, in 20 ms frames."""
    pcm = np.concatenate([np.zeros(8000, np.int16), caller_speech(golden), np.zeros(16000 * 4, np.int16)])
    data = pcm.tobytes()
    return [InputAudioRawFrame(audio=data[i : i + 640], sample_rate=16000, num_channels=1)
            for i in range(0, len(data), 640)]


async def test_the_bot_hears_the_caller_asks_the_llm_and_speaks_its_reply(golden, anna_library):
    bot = example("pipecat_voice_bot")
    with serving_openai(TRANSCRIPT, REPLY) as openai:
        args = bot.parse_args(["--model", str(golden / "tiny" / "base"), "--voice", "anna",
                               "--voice-dir", str(anna_library), "--device", "cpu", "--seed", "0",
                               "--max-frames", str(FRAMES), "--llm-base-url", openai.url,
                               "--llm-model", "stand-in-llm", "--stt-model", "stand-in-stt"])
        assert args.stt_base_url == openai.url  # STT defaults to the LLM's server
        engine = bot.load_engine(args)
        microphone, speaker = Microphone(), Speaker()
        pipeline, context = bot.build_pipeline(args, engine, microphone, speaker, vad_analyzer=SileroVADAnalyzer())
        worker = PipelineWorker(pipeline, params=PipelineParams(audio_in_sample_rate=16000,
                                                                audio_out_sample_rate=16000))
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        running = asyncio.create_task(runner.run())
        try:
            await worker.queue_frames([LLMRunFrame()])  # the bot speaks first, as `run_bot` has it do
            greeting = await speaker.next_reply(120)
            assert openai.chats[0]["messages"][0] == {"role": "system", "content": bot.SYSTEM_PROMPT}

            for frame in caller_audio(golden):  # the caller speaks, at twice real time
                await worker.queue_frame(frame)
                await asyncio.sleep(0.01)
            answer = await speaker.next_reply(120)
        finally:
            await worker.queue_frame(EndFrame())  # a clean end: every service stops, the runner returns
            await asyncio.wait_for(running, 60)
            engine.close()
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("Qwen3TTS")]  # none left behind

    # speech-to-text got the caller's sentence as a 16 kHz WAV (with the VAD's pre-roll and padding)
    # speech-to-text got the caller's speech as 16 kHz WAVs: one per stretch of speech Silero found, with its
    # pre-roll and trailing padding; the turn holds every stretch's transcript
    seconds = 0.0
    for upload in openai.uploads:
        with wave.open(io.BytesIO(upload)) as w:
            assert w.getframerate() == 16000
            seconds += w.getnframes() / 16000
    assert 1.4 <= seconds <= 1.4 + 1.5 * len(openai.uploads)
    # the LLM got the transcript as the user's turn, after its own greeting
    [first, second] = openai.chats
    assert second["model"] == "stand-in-llm" and second["stream"] is True
    assert second["messages"][-1] == {"role": "user", "content": " ".join([TRANSCRIPT] * len(openai.uploads))}
    assert first["messages"][-1] == {"role": "developer", "content": bot.GREETING}
    # each reply was spoken (16-bit mono at 16 kHz; sampled speech may end before the cap)
    for audio in (greeting, answer):
        assert 0 < len(audio) <= FRAMES * 1280 * 2
    said = [m["content"] for m in context.get_messages() if m["role"] == "assistant"]
    assert said == [REPLY, REPLY]


def test_a_voice_that_is_not_in_the_library_stops_the_bot_before_it_starts(golden, anna_library, capsys):
    bot = example("pipecat_voice_bot")
    code = bot.main(["--model", str(golden / "tiny" / "base"), "--voice", "nobody", "--voice-dir",
                     str(anna_library), "--device", "cpu", "--llm-base-url", "http://127.0.0.1:9/v1"])
    assert code == 2
    assert "nobody" in capsys.readouterr().err


def test_openai_itself_needs_a_key(monkeypatch, capsys):
    for name in ("LLM_BASE_URL", "OPENAI_BASE_URL", "LLM_API_KEY", "OPENAI_API_KEY", "STT_BASE_URL",
                 "STT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    bot = example("pipecat_voice_bot")
    with pytest.raises(SystemExit):
        bot.parse_args([])
    assert "--llm-api-key (or $LLM_API_KEY / $OPENAI_API_KEY) is needed" in capsys.readouterr().err
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    args = bot.parse_args(["--stt-base-url", "http://localhost:8000/v1"])
    assert (args.llm_base_url, args.llm_api_key, args.stt_api_key) == (None, "sk-test", "sk-test")
