"""The speech server on a Ray cluster: replicas that each own one model, autoscaled, voices shared through Redis.

    pip install "qwen3tts-realtime[ray,redis]"
    python examples/ray_serve.py --model Qwen/Qwen3-TTS-12Hz-0.6B-Base --voice-dir redis://redis:6379/0 \
        --max-replicas 4 --num-gpus 1            # one replica per GPU; --num-cpus 4 for CPU replicas
    # the same without this script:
    serve run qwen3tts_realtime.server.ray:app_builder model=Qwen/Qwen3-TTS-12Hz-0.6B-Base max_replicas=4

Clients use it exactly as `qwen3tts-realtime serve` (OpenAI's /v1/audio/speech, the /v1/stream websocket,
/v1/voices), at Ray's HTTP proxy (http://127.0.0.1:8000 unless --host/--port say otherwise). Ray starts a local
cluster when none is running (`ray start --head` on one machine and `ray start --address=...` on the others
make one across machines). Ctrl-C stops the application.
"""

from __future__ import annotations

import argparse
import time

from ray import serve

from qwen3tts_realtime.server import ServerConfig
from qwen3tts_realtime.server.ray import deployment


def application(args: argparse.Namespace):  # noqa: ANN201 - a ray.serve.Application
    config = ServerConfig(model=args.model, device=args.device, voice_dir=args.voice_dir,
                          max_streams=args.max_streams)
    return deployment(config, num_replicas=args.num_replicas, max_replicas=args.max_replicas,
                      num_cpus=args.num_cpus, num_gpus=args.num_gpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice", help="hub id or local folder")
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--voice-dir", default=None, help="redis://host:6379/0 (shared by replicas) or a folder")
    parser.add_argument("--max-streams", type=int, default=16, help="streams one replica's engine generates at once")
    parser.add_argument("--num-replicas", type=int, default=None, help="a fixed count (default: autoscale)")
    parser.add_argument("--max-replicas", type=int, default=4, help="autoscaling's upper bound")
    parser.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per replica")
    parser.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per replica (1 on a GPU cluster)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    serve.start(http_options={"host": args.host, "port": args.port})
    serve.run(application(args), name="qwen3tts", route_prefix="/")
    print(f"serving at http://{args.host}:{args.port} (Ctrl-C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()


if __name__ == "__main__":
    main()
