"""Qwen3-TTS for LiveKit Agents: LLM text streamed in, 24 kHz speech with word times out, many calls per GPU.

    from livekit.agents import AgentServer, AgentSession, JobExecutorType
    from qwen3tts_realtime.livekit import DEFAULT_LOAD_THRESHOLD, TTS, engine_load, load_engine

    def prewarm(proc):                   # once per process: load the model, warm it up
        proc.userdata["engine"] = load_engine("Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice")

    server = AgentServer(setup_fnc=prewarm, initialize_process_timeout=120, num_idle_processes=1,
                         job_executor_type=JobExecutorType.THREAD,
                         load_fnc=engine_load, load_threshold=DEFAULT_LOAD_THRESHOLD)

    @server.rtc_session()
    async def entrypoint(ctx):
        tts = TTS(engine=ctx.proc.userdata["engine"], voice="ryan", language="en")
        session = AgentSession(stt=..., llm=..., tts=tts)

Also importable as `livekit.plugins.qwen3tts` (where `python -m livekit.agents download-files` looks; that
command fetches `default_model()`'s weights: $QWEN3TTS_MODEL, else DEFAULT_MODEL).

Concurrency: the documented setup runs every job as a thread of one worker process sharing one engine
(`load_engine` returns the same engine for the same model, device and dtype). The engine's step loop batches
all calls' streams on the GPU: one copy of the weights, one step for N calls. The trade-off: jobs are not
isolated from each other: a job that crashes the interpreter, leaks memory or blocks the event loop hurts
the other calls of that process, and a worker process is a single point of failure for its calls. LiveKit's
default (`JobExecutorType.PROCESS`) isolates each job in its own process, but then every call loads its own
model (seconds to start, one copy of the weights per call) and nothing batches. To scale past one GPU, run one
worker per GPU; LiveKit dispatches jobs across workers. `load_fnc=engine_load` reports the engine's occupancy
((generating + queued streams) / `max_streams`, set by `load_engine(max_streams=)`) instead of LiveKit's default
CPU usage, so LiveKit stops sending calls to a worker whose engine is full (at `load_threshold`). Workers
without the model pass a remote engine (any object implementing `TTSEngine`) instead of `load_engine()`.

What it does not do: load models inside a job (use the worker's `setup_fnc`), several segments per stream
(livekit-agents 1.8.9 drops text pushed after `flush()`; LiveKit opens a new stream per turn), or close the
shared engine when a session ends.

Errors reach LiveKit as `APIError`: bad input (unknown voice or language, bad text or option) is not
retryable; a remote engine's connection failures and timeouts, and running out of GPU memory, are.
"""

from __future__ import annotations

import logging
import threading

try:
    from livekit.agents import Plugin
except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        f"qwen3tts_realtime.livekit needs livekit-agents ({e}); install it with: "
        "pip install 'qwen3tts-realtime[livekit]'",
        name=e.name,
    ) from e

from . import __version__
from .integrations.livekit._engines import (
    DEFAULT_LOAD_THRESHOLD,
    DEFAULT_MODEL,
    MODEL_ENV,
    default_model,
    download_files,
    engine_load,
    load_engine,
)
from .integrations.livekit._options import MODEL_LANGUAGES, Qwen3Language, TTSOptions, model_language
from .integrations.livekit._streams import ChunkedStream, SynthesizeStream
from .integrations.livekit._tts import TTS, VoiceLibraryLike

__all__ = [
    "DEFAULT_LOAD_THRESHOLD",
    "DEFAULT_MODEL",
    "MODEL_ENV",
    "MODEL_LANGUAGES",
    "ChunkedStream",
    "Qwen3Language",
    "Qwen3TTSPlugin",
    "SynthesizeStream",
    "TTS",
    "TTSOptions",
    "VoiceLibraryLike",
    "__version__",
    "default_model",
    "download_files",
    "engine_load",
    "load_engine",
    "model_language",
]

log = logging.getLogger("qwen3tts_realtime.livekit")

# Public names report this module, where users import them from (LiveKit labels metrics and logs with it).
for _cls in (TTS, ChunkedStream, SynthesizeStream, TTSOptions, VoiceLibraryLike):
    _cls.__module__ = __name__
del _cls


class Qwen3TTSPlugin(Plugin):
    """The LiveKit plugin record: `python -m livekit.agents download-files` calls `download_files()`."""

    def __init__(self) -> None:
        super().__init__("livekit.plugins.qwen3tts", __version__, "qwen3tts_realtime", log)

    def download_files(self) -> None:
        log.info("fetching %s (set %s to choose another model)", default_model(), MODEL_ENV)
        download_files()


# LiveKit accepts registrations on the main thread only; a job thread importing this late still gets a
# working TTS, just no download-files hook (import the plugin at the top of the worker module).
if threading.current_thread() is threading.main_thread():
    Plugin.register_plugin(Qwen3TTSPlugin())
else:
    log.warning(
        "qwen3tts_realtime.livekit imported off the main thread: the LiveKit plugin is not registered "
        "(import it at the top of your worker module)"
    )
