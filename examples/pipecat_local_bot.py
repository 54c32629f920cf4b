"""Qwen3-TTS speaking through your speakers in a Pipecat pipeline: streamed LLM-style tokens in, audio out.

    pip install "qwen3tts-realtime[pipecat]" "pipecat-ai[local]"   # PyAudio: needs PortAudio
    python examples/pipecat_local_bot.py --model Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice --voice ryan
    python examples/pipecat_local_bot.py --random          # no download: a tiny random-weight model (noise!)
    python examples/pipecat_local_bot.py --random --wav out.wav   # no sound card: write the audio to a file

The text arrives token by token, as from an LLM, and goes straight into one engine stream per turn
(`TextAggregationMode.TOKEN`); the first audio plays after about one codec frame. In a real bot the tokens
come from your LLM service: `Pipeline([transport.input(), stt, user_aggregator, llm, tts, transport.output(),
assistant_aggregator])`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import wave

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from qwen3tts_realtime.pipecat import Qwen3TTSService

REPLY = (
    "Hi! I am a voice agent running Qwen3 TTS inside this process. "
    "I start speaking while the rest of my reply is still being written."
)
TOKEN_INTERVAL_S = 0.03  # a fast LLM: about 30 tokens per second


class WavWriter(FrameProcessor):
    """Writes the TTS audio to a WAV file (in place of a speaker)."""

    def __init__(self, path: str, sample_rate: int) -> None:
        super().__init__()
        self._wav = wave.open(path, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self._wav.writeframes(frame.audio)
        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await super().cleanup()
        self._wav.close()


def audio_output(wav_path: str | None, sample_rate: int) -> FrameProcessor:
    if wav_path:
        return WavWriter(wav_path, sample_rate)
    try:  # imported here: it needs PyAudio, which --wav does without
        from pipecat.transports.local.audio import LocalAudioTransport, LocalAudioTransportParams
    except ImportError:
        sys.exit(
            'Playing audio needs PyAudio: pip install "pipecat-ai[local]" (and PortAudio: apt install '
            "portaudio19-dev, or brew install portaudio), or write a file instead with --wav out.wav"
        )
    return LocalAudioTransport(LocalAudioTransportParams(audio_out_enabled=True)).output()


def reply_frames(text: str) -> list[Frame | float]:
    """An LLM reply as its frames: the words as tokens, with pauses (floats, seconds) between them."""
    frames: list[Frame | float] = [LLMFullResponseStartFrame()]
    for i, word in enumerate(text.split(" ")):
        frames += [LLMTextFrame(word if i == 0 else " " + word), TOKEN_INTERVAL_S]
    return [*frames, LLMFullResponseEndFrame(), EndFrame()]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice", help="hub id or local folder"
    )
    parser.add_argument(
        "--random", action="store_true", help="use a tiny random-weight CustomVoice checkpoint"
    )
    parser.add_argument("--voice", default="ryan", help="speaker or voice-library name")
    parser.add_argument("--device", default=None, help='"cuda", "cpu", ...')
    parser.add_argument(
        "--sample-rate", type=int, default=24000, help="pipeline output rate (24000, 16000, ...)"
    )
    parser.add_argument("--wav", default=None, help="write the audio to this WAV file instead of playing it")
    parser.add_argument("--text", default=REPLY)
    parser.add_argument("--seed", type=int, default=None, help="seed the sampling (the same speech every run)")
    args = parser.parse_args()

    output = audio_output(args.wav, args.sample_rate)
    if not args.random:
        await speak(args, args.model, output)
        return
    from qwen3tts_realtime.model.random_checkpoint import write_random_checkpoint

    with tempfile.TemporaryDirectory(prefix="qwen3tts-random-") as model:
        write_random_checkpoint(model, "0.6B-CustomVoice", tiny=True)
        print("a random-weight checkpoint: its speech is noise")
        await speak(args, model, output)


async def speak(args: argparse.Namespace, model: str, output: FrameProcessor) -> None:
    # The service loads the model in a thread while the pipeline sets up, then warms up the voice.
    tts = Qwen3TTSService(
        model=model,
        device=args.device,
        settings=Qwen3TTSService.Settings(voice=args.voice, seed=args.seed),
        max_new_frames=100 if args.random else None,  # random weights rarely stop by themselves
    )
    pipeline = Pipeline([tts, output])
    worker = PipelineWorker(
        pipeline, params=PipelineParams(audio_out_sample_rate=args.sample_rate, enable_metrics=True)
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_pipeline_started(worker, frame):
        started.set()

    async def reply() -> None:
        await started.wait()
        for item in reply_frames(args.text):
            if isinstance(item, float):
                await asyncio.sleep(item)
            else:
                await worker.queue_frame(item)

    runner = WorkerRunner()
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), reply())
    if args.wav:
        print(f"wrote {args.wav}")


if __name__ == "__main__":
    asyncio.run(main())
