"""A complete Pipecat voice bot on your computer: microphone -> speech-to-text -> LLM -> Qwen3-TTS -> speakers.

    pip install "qwen3tts-realtime[pipecat]" "pipecat-ai[local,openai,silero]"   # PyAudio: needs PortAudio
    export OPENAI_API_KEY=sk-...                                    # OpenAI's STT and LLM, or:
    python examples/pipecat_voice_bot.py --llm-base-url http://localhost:11434/v1 --llm-model llama3.2 \\
        --stt-base-url http://localhost:8000/v1 --stt-model Systran/faster-whisper-small
    python examples/pipecat_voice_bot.py --voice anna --voice-dir ./voices   # a voice from your library

Speech-to-text and the LLM are any OpenAI-compatible endpoints (OpenAI, vLLM, Ollama, llama.cpp's server,
speaches/faster-whisper-server, ...): flags, or the environment (LLM_BASE_URL, LLM_MODEL, LLM_API_KEY,
STT_BASE_URL, STT_MODEL, STT_API_KEY; OPENAI_BASE_URL/OPENAI_API_KEY as the fallbacks). The TTS runs in this
process; the LLM's tokens stream straight into one engine stream per reply, so the bot starts speaking while
the reply is still being written. Silero VAD and Pipecat's smart-turn model (both local) find the end of your
turn. Use headphones: the bot would otherwise hear itself. Ctrl-C stops the pipeline and closes the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.frames.frames import LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.stt import OpenAISTTService
from pipecat.transcriptions.language import Language
from pipecat.workers.runner import WorkerRunner

from qwen3tts_realtime import Qwen3TTS, Qwen3TTSError
from qwen3tts_realtime.pipecat import Qwen3TTSService

SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Your replies are spoken aloud: answer in one or two short sentences "
    "of plain speech, without lists, markdown or emoji."
)
GREETING = "Say hello and ask how you can help."  # the bot speaks first, prompted by this


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tts = parser.add_argument_group("text to speech (this process)")
    tts.add_argument("--model", default="Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice", help="hub id or local folder")
    tts.add_argument("--voice", default="ryan", help="built-in speaker or voice-library name")
    tts.add_argument("--voice-dir", default=None, help="voice library: a folder or redis:// URL "
                     "(default: $QWEN3TTS_VOICE_DIR or the user cache)")
    tts.add_argument("--device", default=None, help='"cuda", "cpu", ...')
    tts.add_argument("--quantize", default=None, help='CPU weights: "fp16", "int8", "int4" or "w8a8"')
    tts.add_argument("--seed", type=int, default=None, help="seed the speech sampling")
    tts.add_argument("--max-frames", type=int, default=None,
                     help="cap on frames per reply (random-weight checkpoints never stop on their own)")
    llm = parser.add_argument_group("LLM (any OpenAI-compatible chat completions endpoint)")
    llm.add_argument("--llm-base-url", default=env("LLM_BASE_URL") or env("OPENAI_BASE_URL"),
                     help="e.g. http://localhost:11434/v1 (default: $LLM_BASE_URL, $OPENAI_BASE_URL, OpenAI)")
    llm.add_argument("--llm-model", default=env("LLM_MODEL", "gpt-4.1-mini"),
                     help="default: $LLM_MODEL, else gpt-4.1-mini")
    llm.add_argument("--llm-api-key", default=env("LLM_API_KEY") or env("OPENAI_API_KEY"),
                     help="default: $LLM_API_KEY, $OPENAI_API_KEY")
    stt = parser.add_argument_group("speech to text (any OpenAI-compatible transcriptions endpoint)")
    stt.add_argument("--stt-base-url", default=env("STT_BASE_URL"), help="default: $STT_BASE_URL, else the LLM's")
    stt.add_argument("--stt-model", default=env("STT_MODEL", "gpt-4o-mini-transcribe"),
                     help="default: $STT_MODEL, else gpt-4o-mini-transcribe")
    stt.add_argument("--stt-api-key", default=env("STT_API_KEY"), help="default: $STT_API_KEY, else the LLM's")
    parser.add_argument("--language", default="en", help="the conversation's language, e.g. en, de, zh")
    args = parser.parse_args(argv)
    args.stt_base_url = args.stt_base_url or args.llm_base_url
    args.stt_api_key = args.stt_api_key or args.llm_api_key
    for what in ("llm", "stt"):
        if getattr(args, f"{what}_api_key") is None:
            if getattr(args, f"{what}_base_url") is None:  # OpenAI itself: a key is required
                parser.error(f"--{what}-api-key (or ${what.upper()}_API_KEY / $OPENAI_API_KEY) is needed for "
                             f"OpenAI; for another server give --{what}-base-url")
            setattr(args, f"{what}_api_key", "none")  # local servers ignore it; the client needs one
    try:
        args.pipecat_language = Language(args.language)
    except ValueError:
        parser.error(f"--language {args.language!r} is not a language code such as en, de, zh")
    return args


def load_engine(args: argparse.Namespace) -> Qwen3TTS:
    """Load the model and check the voice before the bot starts (a wrong name fails here, not mid-call)."""
    engine = Qwen3TTS.from_pretrained(args.model, device=args.device, quantize=args.quantize,
                                      voice_dir=args.voice_dir)
    try:
        engine.resolve_voice(args.voice)
        engine.warmup()
    except BaseException:
        engine.close()
        raise
    return engine


def build_pipeline(
    args: argparse.Namespace,
    engine: Qwen3TTS,
    audio_in: FrameProcessor,
    audio_out: FrameProcessor,
    *,
    vad_analyzer: VADAnalyzer,
) -> tuple[Pipeline, LLMContext]:
    """audio_in -> STT -> user turns -> LLM -> Qwen3-TTS -> audio_out -> assistant turns, and their context."""
    stt = OpenAISTTService(
        api_key=args.stt_api_key,
        base_url=args.stt_base_url,
        settings=OpenAISTTService.Settings(model=args.stt_model, language=args.pipecat_language),
    )
    llm = OpenAILLMService(
        api_key=args.llm_api_key,
        base_url=args.llm_base_url,
        settings=OpenAILLMService.Settings(model=args.llm_model, system_instruction=SYSTEM_PROMPT),
    )
    tts = Qwen3TTSService(
        engine=engine,  # the process's engine: loaded once, shared by every pipeline you run on it
        settings=Qwen3TTSService.Settings(voice=args.voice, language=args.pipecat_language, seed=args.seed),
        max_new_frames=args.max_frames,
    )
    context = LLMContext([{"role": "developer", "content": GREETING}])
    user, assistant = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=vad_analyzer)
    )
    return Pipeline([audio_in, stt, user, llm, tts, audio_out, assistant]), context


async def run_bot(args: argparse.Namespace, engine: Qwen3TTS) -> None:
    try:  # imported here: they need PyAudio and onnxruntime, which the bot's tests do without
        from pipecat.audio.vad.silero import SileroVADAnalyzer
        from pipecat.transports.local.audio import LocalAudioTransport, LocalAudioTransportParams
    except ImportError as e:
        sys.exit(f'{e}: pip install "pipecat-ai[local,silero]" (PyAudio needs PortAudio: apt install '
                 "portaudio19-dev, or brew install portaudio)")
    transport = LocalAudioTransport(LocalAudioTransportParams(audio_in_enabled=True, audio_out_enabled=True))
    pipeline, _ = build_pipeline(
        args, engine, transport.input(), transport.output(), vad_analyzer=SileroVADAnalyzer()
    )
    worker = PipelineWorker(pipeline, params=PipelineParams(enable_metrics=True))
    await worker.queue_frames([LLMRunFrame()])  # the greeting: the bot speaks first
    runner = WorkerRunner()  # Ctrl-C cancels the pipeline; every service stops
    await runner.add_workers(worker)
    await runner.run()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        engine = load_engine(args)
    except Qwen3TTSError as e:  # a wrong model, device or voice: say what and stop
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_bot(args, engine))
    except KeyboardInterrupt:
        pass
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
