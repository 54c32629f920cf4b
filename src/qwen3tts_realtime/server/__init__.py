"""The streaming speech server: OpenAI-compatible `POST /v1/audio/speech`, `WS /v1/stream` for incremental
text, the voice library over HTTP and Prometheus `/metrics`, around one shared batching engine.

    qwen3tts-realtime serve --model Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice        # or, in Python:
    app = create_app(Qwen3TTS.from_pretrained(...), ServerConfig(max_streams=8))   # any ASGI server
    serve(ServerConfig(model="...", port=8000))                                      # load + uvicorn

Needs the `server` extra: pip install "qwen3tts-realtime[server]". `ServerConfig` imports without it (the CLI
builds its flags from it); `create_app` and `serve` need FastAPI and uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._config import ServerConfig

__all__ = ["ServerConfig", "create_app", "serve"]

if TYPE_CHECKING:
    from ._app import create_app, serve


def __getattr__(name: str) -> Any:
    if name in ("create_app", "serve"):
        try:
            from . import _app
        except ModuleNotFoundError as e:
            if e.name not in ("fastapi", "starlette", "uvicorn", "prometheus_client"):
                raise
            raise ModuleNotFoundError(
                f"qwen3tts_realtime.server needs {e.name}; install it with: "
                'pip install "qwen3tts-realtime[server]"',
                name=e.name,
            ) from e
        return getattr(_app, name)
    raise AttributeError(f"module 'qwen3tts_realtime.server' has no attribute {name!r}")
