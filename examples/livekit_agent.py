"""A LiveKit voice agent speaking with Qwen3-TTS in-process: one engine per worker process, shared by jobs.

    pip install "qwen3tts-realtime[livekit]"
    python -m livekit.agents download-files        # fetch the model's weights ahead of time (optional)
    python examples/livekit_agent.py console        # talk to it in this terminal: no LiveKit server needed
    python examples/livekit_agent.py dev            # serve rooms of LIVEKIT_URL (LIVEKIT_API_KEY/_SECRET)

The model is $QWEN3TTS_MODEL (a Hugging Face id or a checkpoint folder), else the 0.6B CustomVoice model; it
loads once per worker process, in `prewarm`, before the worker takes jobs. Jobs run as threads of that
process (`JobExecutorType.THREAD`), so all calls share the engine and their speech is generated in one batch
per step; see `qwen3tts_realtime.livekit` for the trade-off against LiveKit's process-per-job default. The
worker reports its engine's occupancy as its load (`engine_load`), so LiveKit sends calls to other workers once
this one's engine is busy: run one such worker per GPU (or machine) and LiveKit spreads the calls.

STT and LLM here are LiveKit Inference models, which need a LiveKit Cloud project's LIVEKIT_API_KEY and
LIVEKIT_API_SECRET (console mode included); any LiveKit STT/LLM plugin instance can take their place.
"""

from __future__ import annotations

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, JobExecutorType, JobProcess, cli

from qwen3tts_realtime.livekit import DEFAULT_LOAD_THRESHOLD, TTS, engine_load, load_engine

VOICE = "ryan"  # a built-in speaker of the CustomVoice models
MAX_STREAMS = 16  # streams the engine generates at once (more wait in its queue)
GREETING = "Hello! I am speaking with Qwen3-TTS. How can I help you today?"


def prewarm(proc: JobProcess) -> None:
    """Runs once per worker process before it takes jobs: load the model (or reuse it) and warm it up."""
    proc.userdata["engine"] = load_engine(max_streams=MAX_STREAMS)


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
        super().__init__(
            instructions="You are a friendly voice assistant. Answer in one or two short spoken sentences, "
            "without lists, markdown or emoji."
        )

    async def on_enter(self) -> None:
        self.session.say(GREETING)


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    tts = TTS(engine=ctx.proc.userdata["engine"], voice=VOICE, language="en")
    session = AgentSession(stt="deepgram/nova-3", llm="openai/gpt-4.1-mini", tts=tts)
    await session.start(agent=Assistant(), room=ctx.room)


if __name__ == "__main__":
    cli.run_app(server)
