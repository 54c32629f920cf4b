"""The FastAPI app: `create_app(tts, config)` around a loaded model, and `serve(config)` (load, warm up, run
uvicorn).

    GET  /health              the process is up
    GET  /ready               200 after the warm-up, 503 before
    GET  /metrics             Prometheus text format (the app's own registry); the API key unless public
    GET  /v1/models           OpenAI's model list: the names `model` accepts
    GET  /v1/stats            model, engine statistics, admission
    POST /v1/audio/speech     `_speech.py`
    WS   /v1/stream           `_websocket.py`
    /v1/voices...             `_voices.py`

/v1 routes need the API key when one is configured, and so does /metrics unless `metrics_public`
(`--metrics-public`: for a scraper that cannot send the key; the figures show load and usage, so they are
not open by default). /health and /ready never do (probes). Every refusal is OpenAI's error JSON,
{"error": {"message", "type", "param", "code"}}.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from . import _playground, _speech, _voices, _websocket
from ._config import ServerConfig
from ._limits import check_api_key
from ._metrics import CONTENT_TYPE_LATEST
from ._requests import ApiError
from ._state import ServerState

if TYPE_CHECKING:
    from ..tts import Qwen3TTS

__all__ = ["create_app", "serve"]

log = logging.getLogger("qwen3tts_realtime.server")

WARMUP_MAX_FRAMES = 25  # 2 s of the warm-up text is enough to touch every kernel at a realistic length


def create_app(tts: Qwen3TTS, config: ServerConfig | None = None, *, owns_model: bool = False) -> FastAPI:
    """The server's ASGI app around a loaded model (run it with uvicorn, or `serve`).

    The app warms the model up when it starts (then /ready turns true) and, with `owns_model`, stops the
    model's engine when it shuts down. Every request shares the model's one batching engine.

    Args:
        tts: the loaded model.
        config: settings (`ServerConfig()` when None); `config.model`/`device`/`dtype` are not used here.
        owns_model: close the model's engine at shutdown.

    Raises:
        InvalidInputError: a setting the installed libraries cannot honour (e.g. an unavailable default
            format).
    """
    config = config or ServerConfig()
    state = ServerState.create(tts, config, owns_model=owns_model)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warm = asyncio.create_task(_warm_up(state))
        try:
            yield
        finally:
            warm.cancel()
            if state.owns_model:
                await tts.aclose()

    app = FastAPI(title="qwen3tts-realtime", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.server = state

    async def authorized(request: Request) -> None:
        check_api_key(request.headers, config.api_key)

    app.include_router(_speech.router, dependencies=[Depends(authorized)])
    app.include_router(_voices.router, dependencies=[Depends(authorized)])
    app.include_router(_websocket.router)  # checks the key itself, at the handshake

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> JSONResponse:
        state.metrics.refused(e.status)
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        state.metrics.refused(e.status_code)
        error = ApiError(e.status_code, f"{request.method} {request.url.path}: {e.detail}", code="http_error")
        return JSONResponse(error.body(), status_code=e.status_code, headers=e.headers)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, e: ClientDisconnect) -> Response:
        state.metrics.disconnected()  # the client's doing, not the server's: no traceback, not "internal"
        log.info("client disconnected while sending %s %s", request.method, request.url.path)
        return Response(status_code=499)  # nobody reads it; uvicorn drops it

    @app.exception_handler(Exception)
    async def internal_error(request: Request, e: Exception) -> JSONResponse:
        if not isinstance(e, _speech.StreamBroken):  # logged and counted where it broke; its 200 has left
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            state.metrics.refused(500)
        return JSONResponse(ApiError(500, f"internal error: {type(e).__name__}", code="internal").body(),
                            status_code=500)

    if config.ui:
        _playground.mount(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        return JSONResponse({"ready": state.ready}, status_code=200 if state.ready else 503)

    @app.get("/metrics", dependencies=[] if config.metrics_public else [Depends(authorized)])
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "qwen3tts-realtime"}
                                           for name in config.model_names]}

    @app.get("/v1/stats", dependencies=[Depends(authorized)])
    async def stats() -> dict[str, Any]:
        return {
            "model": {"id": config.model_id or config.model, "type": tts.model_type, "size": tts.model_size,
                      "sample_rate": tts.sample_rate, "speakers": tts.speakers, "languages": tts.languages},
            "engine": tts.stats(),
            "server": {"ready": state.ready, "admitted_streams": state.admission.admitted,
                       "max_streams": config.max_streams, "max_queue": config.max_queue,
                       "formats": list(state.rules.formats), "default_format": state.rules.default_format},
        }

    return app


async def _warm_up(state: ServerState) -> None:
    """One-time costs before /ready: the checkpoint's identity for the voice library, the engine's warm-up,
    then the warm-up text in a default voice (whose prompt prefix then stays warm)."""
    try:
        await asyncio.to_thread(_warm, state)
    except Exception:
        log.exception("warm-up failed; serving anyway (first requests may be slow)")
    state.ready = True
    state.metrics.ready.set(1)
    log.info("ready")


def _warm(state: ServerState) -> None:
    tts, text = state.tts, state.config.warmup_text
    _ = state.library.model_id
    tts.warmup()
    if not text:
        return
    if tts.model_type == "custom_voice":
        voice, _ = state.voices.resolve(tts.speakers[0])
    elif tts.model_type == "voice_design":
        voice, _ = state.voices.resolve(_voices.DESIGN_VOICE, "A neutral voice.")
    else:
        return  # a Base checkpoint has no voice of its own; tts.warmup() used a neutral x-vector
    with tts.open_stream(text, voice=voice, max_new_frames=WARMUP_MAX_FRAMES, seed=0) as stream:
        for _ in stream:
            pass


def serve(config: ServerConfig) -> None:
    """Load `config.model`, then serve until interrupted (blocking)."""
    import uvicorn

    from ..tts import Qwen3TTS

    if config.api_key is None and not _is_loopback(config.host):
        log.warning("listening on %s without an API key: anyone who can reach it can use it "
                    "(set $QWEN3TTS_API_KEY or --api-key-env)", config.host)
    log.info("loading %s; API key %s", config.model, "required" if config.api_key else "not required")
    tts = Qwen3TTS.from_pretrained(config.model, device=config.device, dtype=config.dtype,
                                   quantize=config.quantize)
    app = create_app(tts, config, owns_model=True)
    uvicorn.run(app, host=config.host, port=config.port, ws_max_size=config.max_body_bytes,
                timeout_graceful_shutdown=5, log_level="info")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
