"""The speech server on Ray Serve: replicas across a cluster, each owning one model and its batching engine,
serving the routes of `qwen3tts-realtime serve` (the same app: `create_app`), scaled on ongoing requests.

    # one command (a Ray cluster is started if none is running; flags as `qwen3tts-realtime serve`'s):
    serve run qwen3tts_realtime.server.ray:app_builder model=Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice max_replicas=4
    # or in Python:
    from ray import serve
    from qwen3tts_realtime.server import ServerConfig
    from qwen3tts_realtime.server.ray import deployment
    serve.run(deployment(ServerConfig(model="...", voice_dir="redis://redis:6379/0"), max_replicas=4))

Each replica loads `config.model` once and serves OpenAI's `POST /v1/audio/speech` (streamed), the `/v1/stream`
websocket, `/v1/voices`, `/metrics`, `/ready` through Ray's HTTP proxy. A request occupies one engine stream, so
a replica takes at most `max_streams + max_queue` ongoing requests (`max_ongoing_requests`), and the autoscaler
adds replicas when their average ongoing requests pass `target_ongoing_requests` (3/4 of `max_streams` unless
given). Voices cloned through one replica reach the others when `voice_dir` is shared: a Redis URL, or a folder
on a shared volume (see `voices/backends.py`); a replica-local folder keeps them on that replica. Each response
says which replica served it (`X-Served-By`). On GPUs give `num_gpus=1` (one replica per GPU).
Needs the `ray` extra: pip install "qwen3tts-realtime[ray]".
"""

from __future__ import annotations

import argparse
from typing import Any

try:
    from ray import serve
    from ray.serve import Application
except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        f"qwen3tts_realtime.server.ray needs Ray Serve ({e}); install it with: pip install "
        '"qwen3tts-realtime[ray]"',
        name=e.name,
    ) from e

from ..errors import InvalidInputError
from ._config import ServerConfig, add_serve_arguments, config_from_args

__all__ = ["Qwen3TTSReplica", "app_builder", "deployment"]

DEPLOYMENT_NAME = "qwen3tts"


@serve.ingress()
class Qwen3TTSReplica:
    """One replica: the model, loaded once, behind the server's app."""

    def __init__(self, config: ServerConfig) -> None:
        from ..tts import Qwen3TTS

        self._config = config
        self._tts = Qwen3TTS.from_pretrained(config.model, device=config.device, dtype=config.dtype,
                                             quantize=config.quantize)

    def __serve_build_asgi_app__(self) -> Any:
        from ._app import create_app

        app = create_app(self._tts, self._config, owns_model=True)
        context = serve.get_replica_context()
        replica = getattr(context.replica_id, "unique_id", None) or str(context.replica_id)

        @app.middleware("http")
        async def served_by(request: Any, call_next: Any) -> Any:
            response = await call_next(request)
            response.headers["X-Served-By"] = replica
            return response

        return app


def deployment(
    config: ServerConfig | None = None,
    *,
    num_replicas: int | None = None,
    min_replicas: int = 1,
    max_replicas: int = 4,
    target_ongoing_requests: float | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    name: str = DEPLOYMENT_NAME,
) -> Application:
    """The server as a Ray Serve application, ready for `serve.run`.

    Args:
        config: the server's settings (`ServerConfig()` when None); `host` and `port` are Ray's HTTP proxy's
            business (`serve.start(http_options=...)`), not the replicas'.
        num_replicas: a fixed number of replicas; None: autoscale between `min_replicas` and `max_replicas`.
        target_ongoing_requests: the autoscaler's target per replica; None: 3/4 of `config.max_streams`.
        num_cpus, num_gpus: Ray resources of one replica (fractions allowed; `num_gpus=1` on a GPU cluster).
        name: the deployment's name.

    Raises:
        InvalidInputError: replica counts that cannot work.
    """
    cfg = config or ServerConfig()
    if num_replicas is not None and (isinstance(num_replicas, bool) or not isinstance(num_replicas, int)
                                     or num_replicas < 1):
        raise InvalidInputError(f"num_replicas={num_replicas!r}; give an int >= 1, or None to autoscale")
    if not 1 <= min_replicas <= max_replicas:
        raise InvalidInputError(f"min_replicas={min_replicas}, max_replicas={max_replicas}; need 1 <= min <= max")
    options: dict[str, Any] = {
        "name": name,
        "max_ongoing_requests": cfg.max_streams + cfg.max_queue,  # what one engine admits
        "ray_actor_options": {"num_cpus": num_cpus, "num_gpus": num_gpus},
    }
    if num_replicas is None:
        target = target_ongoing_requests or max(1.0, 0.75 * cfg.max_streams)
        options["autoscaling_config"] = {"min_replicas": min_replicas, "max_replicas": max_replicas,
                                         "target_ongoing_requests": target}
    else:
        options["num_replicas"] = num_replicas
    return serve.deployment(Qwen3TTSReplica, **options).bind(cfg)


def app_builder(args: dict[str, str]) -> Application:
    """For `serve run qwen3tts_realtime.server.ray:app_builder key=value ...`: the keys of `qwen3tts-realtime serve`'s
    flags (model, voice_dir, max_streams, ...; environment variables as there) and of `deployment` (num_replicas,
    min_replicas, max_replicas, target_ongoing_requests, num_cpus, num_gpus)."""
    scaling_kinds = {"num_replicas": int, "min_replicas": int, "max_replicas": int,
                     "target_ongoing_requests": float, "num_cpus": float, "num_gpus": float}
    scaling: dict[str, Any] = {}
    argv: list[str] = []
    for key, value in args.items():
        if key in scaling_kinds:
            try:
                scaling[key] = scaling_kinds[key](value)
            except ValueError:
                raise InvalidInputError(f"{key}={value!r}; give a {scaling_kinds[key].__name__}") from None
        else:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    parser = argparse.ArgumentParser(prog="serve run qwen3tts_realtime.server.ray:app_builder", exit_on_error=False)
    add_serve_arguments(parser)
    try:
        parsed = parser.parse_args(argv)
    except (argparse.ArgumentError, SystemExit) as e:
        raise InvalidInputError(f"serve run arguments {args}: {e}") from None
    return deployment(config_from_args(parsed), **scaling)
