"""The Pipecat examples, run on the tiny CustomVoice model.

- `examples/pipecat_twilio_bot.py` on a real uvicorn server: POST /twiml answers with TwiML that streams the
  call to /ws, and a websocket client speaking the Twilio Media Streams protocol ("connected", "start") gets
  the greeting back as mu-law "media" messages for its stream, byte for byte the engine's own (greedy) speech
  at 8 kHz.
- `examples/pipecat_local_bot.py` speaks its streamed reply into a WAV file (its no-sound-card output).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import wave
from argparse import Namespace

import httpx
import numpy as np
import pytest
import uvicorn
import websockets

from qwen3tts_realtime import Qwen3TTS, SamplingParams, VoiceLibrary
from qwen3tts_realtime.audio import StreamResampler, encode_g711, to_pcm16
from qwen3tts_realtime.pipecat import Qwen3TTSService
from tests.integrations.voice_bots import example

GREETING = "Hello there."
FRAMES = 10  # 0.8 s of speech


def twilio_start(stream_sid: str) -> list[str]:
    return [
        json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        json.dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": stream_sid,
                "start": {
                    "streamSid": stream_sid,
                    "accountSid": "AC0",
                    "callSid": "CA0",
                    "tracks": ["inbound"],
                    "customParameters": {},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        ),
    ]


async def expected_ulaw(tts: Qwen3TTS, voice: str = "ryan") -> bytes:
    """The engine's greedy speech of the greeting, as the service asks for it in token mode, in mu-law."""
    async with tts.open_stream(voice=voice, sampling=SamplingParams.greedy(), max_new_frames=FRAMES) as stream:
        stream.push_text(GREETING)
        stream.end_input()
        samples = np.concatenate([chunk.audio async for chunk in stream])
    resampler = StreamResampler(24000, 8000)
    return encode_g711(to_pcm16(np.concatenate([resampler.process(samples), resampler.flush()])), "ulaw")


@pytest.mark.parametrize(("checkpoint", "voice"), [("custom_voice", "ryan"), ("base", "anna")])
async def test_twilio_media_stream_gets_the_greeting_as_ulaw(golden, tmp_path, monkeypatch, checkpoint, voice):
    """A built-in speaker, and a voice-library name from $QWEN3TTS_VOICE_DIR (as the example's --voice help says)."""
    bot = example("pipecat_twilio_bot")
    if checkpoint == "base":
        monkeypatch.setenv("QWEN3TTS_VOICE_DIR", str(tmp_path / "voices"))
        VoiceLibrary(Qwen3TTS.from_pretrained(golden / "tiny" / "base"), tmp_path / "voices").clone(
            voice, str(golden / "inputs" / "ref_24k.wav"), x_vector_only=True
        )
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / checkpoint)  # its library: $QWEN3TTS_VOICE_DIR
    app = bot.create_app(
        tts, Qwen3TTSService.Settings(voice=voice, do_sample=False), greeting=GREETING, max_new_frames=FRAMES
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.01)
            async with httpx.AsyncClient() as client:
                twiml = await client.post(f"http://127.0.0.1:{port}/twiml")
            assert twiml.status_code == 200 and f'<Stream url="wss://127.0.0.1:{port}/ws"/>' in twiml.text

            want = await expected_ulaw(tts, voice)
            got = b""
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                for message in twilio_start("MZ0"):
                    await ws.send(message)
                while len(got) < len(want):
                    message = json.loads(await ws.recv())
                    if message["event"] == "media":
                        assert message["streamSid"] == "MZ0"
                        got += base64.b64decode(message["media"]["payload"])
                await ws.send(json.dumps({"event": "stop", "streamSid": "MZ0"}))
            assert got[: len(want)] == want
    finally:
        server.should_exit = True
        await serving
        tts.close()


async def test_local_bot_speaks_its_streamed_reply(golden, tmp_path):
    bot = example("pipecat_local_bot")
    wav = tmp_path / "reply.wav"
    args = Namespace(
        device="cpu",
        voice="ryan",
        random=False,
        text="Hello there, how are you?",
        sample_rate=16000,
        wav=str(wav),
        seed=0,  # unseeded sampling on random weights may stop after a few frames
    )

    await bot.speak(args, str(golden / "tiny" / "custom_voice"), bot.WavWriter(str(wav), 16000))

    with wave.open(str(wav)) as w:
        assert w.getframerate() == 16000 and w.getnframes() > 16000 * 0.5
