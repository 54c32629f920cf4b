"""A local OpenAI-compatible server standing in for the network services of the voice-bot examples.

It answers the two routes the bots' speech-to-text and LLM clients call, over real HTTP on a free localhost
port, and records what they sent:

    POST /v1/audio/transcriptions   multipart (file, model, ...) -> {"text": transcript}
    POST /v1/chat/completions       streamed (server-sent events): `reply` word by word, then [DONE]

    with serving_openai(transcript="What time is it?", reply="It is noon.") as openai:
        ...  # point the bot's --stt-base-url and --llm-base-url at openai.url
        openai.uploads     # the audio files received (bytes)
        openai.chats       # the chat requests received (JSON bodies)
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile

from tests.serving import serve_in_thread


@dataclass
class OpenAIStandIn:
    transcript: str
    reply: str
    url: str = ""
    uploads: list[bytes] = field(default_factory=list)
    chats: list[dict] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict:
            return {"object": "list", "data": [{"id": "stand-in", "object": "model", "owned_by": "tests"}]}

        @app.post("/v1/audio/transcriptions")
        async def transcriptions(request: Request) -> dict:
            form = await request.form()
            upload = form["file"]
            assert isinstance(upload, UploadFile)
            self.uploads.append(await upload.read())
            return {"text": self.transcript}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> StreamingResponse:
            body = await request.json()
            self.chats.append(body)
            return StreamingResponse(self._chunks(body["model"]), media_type="text/event-stream")

        return app

    async def _chunks(self, model: str):
        def event(delta: dict, finish: str | None = None) -> str:
            chunk = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(chunk)}\n\n"

        yield event({"role": "assistant", "content": ""})
        for i, word in enumerate(self.reply.split(" ")):
            yield event({"content": word if i == 0 else " " + word})
        yield event({}, "stop")
        yield "data: [DONE]\n\n"


@contextlib.contextmanager
def serving_openai(transcript: str, reply: str) -> Iterator[OpenAIStandIn]:
    """The stand-in on a free localhost port (its `url` ends in /v1), stopped when the block is left."""
    standin = OpenAIStandIn(transcript, reply)
    port, server, thread = serve_in_thread(standin.app(), "/v1/models")
    standin.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield standin
    finally:
        server.should_exit = True
        thread.join(timeout=10)
