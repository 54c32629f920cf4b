"""A phone bot on Twilio Media Streams that speaks with Qwen3-TTS in this process (8 kHz mu-law).

    pip install "qwen3tts-realtime[pipecat,server]"
    python examples/pipecat_twilio_bot.py --model Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice --voice ryan
    # make it reachable (e.g. `ngrok http 8765`) and set your Twilio number's voice webhook to
    # https://<public host>/twiml (HTTP POST)

Twilio calls POST /twiml; the TwiML answer opens a media stream to wss://<host>/ws. The bot greets the
caller; put your STT and LLM between `transport.input()` and `tts` in `run_bot` for a conversation. The
pipeline runs at 8 kHz, so the TTS emits 8 kHz audio directly and the Twilio serializer only encodes it as
mu-law. One engine (one model in memory) serves every call; give `--device cuda` on a GPU.

Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to let the serializer hang up the call when the bot ends it.
"""

from __future__ import annotations

import argparse
import os

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner

from qwen3tts_realtime import Qwen3TTS
from qwen3tts_realtime.engine.protocol import TTSEngine
from qwen3tts_realtime.pipecat import Qwen3TTSService

TELEPHONY_RATE = 8000
GREETING = "Hello! You are talking to a bot that speaks with Qwen3 TTS."


async def run_bot(
    websocket: WebSocket,
    engine: TTSEngine,
    settings: Qwen3TTSService.Settings,
    *,
    greeting: str = GREETING,
    max_new_frames: int | None = None,
) -> None:
    """Serve one call on an accepted Twilio media-stream websocket until the caller hangs up."""
    _, call = await parse_telephony_websocket(websocket)  # reads Twilio's "connected" and "start" messages
    account_sid, auth_token = os.getenv("TWILIO_ACCOUNT_SID"), os.getenv("TWILIO_AUTH_TOKEN")
    serializer = TwilioFrameSerializer(
        stream_sid=call["stream_id"],
        call_sid=call["call_id"],
        account_sid=account_sid,
        auth_token=auth_token,
        params=TwilioFrameSerializer.InputParams(auto_hang_up=bool(account_sid and auth_token)),
    )
    transport = FastAPIWebsocketTransport(
        websocket,
        FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True, serializer=serializer),
    )
    tts = Qwen3TTSService(engine=engine, settings=settings, max_new_frames=max_new_frames)
    pipeline = Pipeline([transport.input(), tts, transport.output()])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=TELEPHONY_RATE, audio_out_sample_rate=TELEPHONY_RATE),
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport, websocket):
        await worker.queue_frames([TTSSpeakFrame(greeting)])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport, websocket):
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def create_app(
    engine: TTSEngine,
    settings: Qwen3TTSService.Settings,
    *,
    greeting: str = GREETING,
    max_new_frames: int | None = None,
) -> FastAPI:
    """The web app: POST /twiml answers Twilio's webhook, /ws carries the calls' audio (each call gets its own
    service, built from `settings`, on the shared engine)."""
    app = FastAPI()

    @app.post("/twiml")
    async def twiml(request: Request) -> Response:
        host = request.headers.get("host", request.url.hostname)
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<Response><Connect><Stream url="wss://{host}/ws"/></Connect></Response>'
        )
        return Response(content=xml, media_type="application/xml")

    @app.websocket("/ws")
    async def media_stream(websocket: WebSocket) -> None:
        await websocket.accept()
        await run_bot(websocket, engine, settings, greeting=greeting, max_new_frames=max_new_frames)

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice", help="hub id or local folder"
    )
    parser.add_argument("--voice", default="ryan", help="speaker or voice-library name")
    parser.add_argument("--device", default=None, help='"cuda", "cpu", ...')
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    engine = Qwen3TTS.from_pretrained(args.model, device=args.device)  # loaded once, before serving
    engine.warmup()
    app = create_app(engine, Qwen3TTSService.Settings(voice=args.voice))
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
