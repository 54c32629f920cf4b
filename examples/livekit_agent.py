"""A LiveKit voice agent: speech-to-text and an LLM from any OpenAI-compatible endpoint, Qwen3-TTS in-process.

    pip install "qwen3tts-realtime[livekit]" "livekit-plugins-openai>=1.8.9"
    export OPENAI_API_KEY=sk-...                   # OpenAI's STT and LLM, or any OpenAI-compatible server:
    export LLM_BASE_URL=http://localhost:11434/v1 LLM_MODEL=llama3.2 \\
           STT_BASE_URL=http://localhost:8000/v1 STT_MODEL=Systran/faster-whisper-small
    python -m livekit.agents download-files        # fetch the model's weights ahead of time (optional)
    python examples/livekit_agent.py console       # talk to it in this terminal: no LiveKit server needed
    python examples/livekit_agent.py dev           # serve rooms of LIVEKIT_URL (LIVEKIT_API_KEY/_SECRET)

Configuration is read from the environment (LiveKit's CLI owns the command line): QWEN3TTS_MODEL (a Hugging Face
id or a checkpoint folder; default the 0.6B CustomVoice model), QWEN3TTS_VOICE (a built-in speaker or a name in
the voice library; default ryan), QWEN3TTS_VOICE_DIR (the library: a folder or redis:// URL), LLM_BASE_URL,
LLM_MODEL, LLM_API_KEY, STT_BASE_URL, STT_MODEL, STT_API_KEY (OPENAI_BASE_URL and OPENAI_API_KEY are the
fallbacks; STT_* default to the LLM's server).

The model loads once per worker process, in `prewarm`, before the worker takes jobs, and a voice it does not
have stops the worker there, not mid-call. Jobs run as threads of that process (`JobExecutorType.THREAD`), so
all calls share the engine and their speech is generated in one batch per step; see `qwen3tts_realtime.livekit`
for the trade-off against LiveKit's process-per-job default. The worker reports its engine's occupancy as its
load (`engine_load`), so LiveKit sends calls to other workers once this one's engine is busy: run one such
worker per GPU (or machine) and LiveKit spreads the calls. Voice activity is LiveKit's local Silero model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from livekit.agents import (
    Agent,
    AgentServer,
    AgentSession,
    JobContext,
    JobExecutorType,
    JobProcess,
    cli,
    inference,
)

from livekit.plugins import openai
from qwen3tts_realtime.livekit import DEFAULT_LOAD_THRESHOLD, TTS, engine_load, load_engine

MAX_STREAMS = 16  # streams the engine generates at once (more wait in its queue)
GREETING = "Hello! I am speaking with Qwen3-TTS. How can I help you today?"
INSTRUCTIONS = (
    "You are a friendly voice assistant. Your replies are spoken aloud: answer in one or two short sentences "
    "of plain speech, without lists, markdown or emoji."
)


@dataclass(frozen=True)
class Settings:
    """What the agent talks to, from the environment."""

    voice: str
    language: str
    llm_base_url: str | None
    llm_model: str
    llm_api_key: str
    stt_base_url: str | None
    stt_model: str
    stt_api_key: str

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        llm_base_url = env("LLM_BASE_URL") or env("OPENAI_BASE_URL")
        stt_base_url = env("STT_BASE_URL") or llm_base_url
        llm_api_key = env("LLM_API_KEY") or env("OPENAI_API_KEY")
        stt_api_key = env("STT_API_KEY") or llm_api_key
        for what, url, key in (("LLM", llm_base_url, llm_api_key), ("STT", stt_base_url, stt_api_key)):
            if url is None and key is None:
                raise RuntimeError(f"set {what}_API_KEY or OPENAI_API_KEY to use OpenAI, or {what}_BASE_URL for "
                                   "another OpenAI-compatible server")
        return cls(
            voice=env("QWEN3TTS_VOICE", "ryan"),
            language=env("AGENT_LANGUAGE", "en"),
            llm_base_url=llm_base_url,
            llm_model=env("LLM_MODEL", "gpt-4.1-mini"),
            llm_api_key=llm_api_key or "none",  # local servers ignore it; the client needs one
            stt_base_url=stt_base_url,
            stt_model=env("STT_MODEL", "gpt-4o-mini-transcribe"),
            stt_api_key=stt_api_key or "none",
        )


def prewarm(proc: JobProcess) -> None:
    """Runs once per worker process before it takes jobs: settings, the model (loaded or reused, warmed up),
    the voice checked against it, and the VAD model."""
    settings = Settings.from_env()
    engine = load_engine(max_streams=MAX_STREAMS)
    engine.resolve_voice(settings.voice)  # an unknown voice stops the worker here, naming what exists
    proc.userdata.update(settings=settings, engine=engine, vad=inference.VAD(model="silero"))


server = AgentServer(
    setup_fnc=prewarm,
    initialize_process_timeout=120,  # loading the model takes longer than LiveKit's 10 s default
    num_idle_processes=1,  # one process holds the model; its jobs are threads that share it
    job_executor_type=JobExecutorType.THREAD,
    # Load = the engine's occupancy, not CPU usage: LiveKit sends no new calls once 3/4 of its streams are busy.
    load_fnc=engine_load,
    load_threshold=DEFAULT_LOAD_THRESHOLD,
)


class Assistant(Agent):
    def __init__(self) -> None:
        super().__init__(instructions=INSTRUCTIONS)

    async def on_enter(self) -> None:
        self.session.say(GREETING)


def build_session(userdata: dict) -> AgentSession:
    """STT and LLM on the configured OpenAI-compatible servers, Qwen3-TTS on the process's engine."""
    settings: Settings = userdata["settings"]
    return AgentSession(
        stt=openai.STT(base_url=settings.stt_base_url, api_key=settings.stt_api_key, model=settings.stt_model,
                       language=settings.language),
        llm=openai.LLM(base_url=settings.llm_base_url, api_key=settings.llm_api_key, model=settings.llm_model),
        tts=TTS(engine=userdata["engine"], voice=settings.voice, language=settings.language),
        vad=userdata["vad"],
    )


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = build_session(ctx.proc.userdata)
    await session.start(agent=Assistant(), room=ctx.room)  # the session closes with the room


if __name__ == "__main__":
    cli.run_app(server)
