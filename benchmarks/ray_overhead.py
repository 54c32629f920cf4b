"""What Ray Serve adds to first audio: the same model behind `qwen3tts-realtime serve` and behind one Ray Serve
replica, the same machine, one after the other; 1 and 8 concurrent streamed requests.

    python benchmarks/ray_overhead.py [--model tiny] [--waves 5]

First audio = request sent to the first body bytes received, per request; p50 over every request of the waves.
Writes benchmarks/results/ray-overhead-<model>.json (settings, machine, figures).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from qwen3tts_realtime.bench.checkpoints import bench_checkpoint
from qwen3tts_realtime.bench.machine import describe_machine

HERE = Path(__file__).resolve().parent
BODY = {"input": "Hello there, how can I help you today?", "voice": "ryan", "response_format": "pcm",
        "max_frames": 8, "stream": True, "do_sample": False}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url + "/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not become ready")
        time.sleep(0.2)


def first_audio_s(url: str) -> float:
    t0 = time.perf_counter()
    with httpx.stream("POST", url + "/v1/audio/speech", json=BODY, timeout=120) as r:
        r.raise_for_status()
        chunks = r.iter_bytes()
        next(chunks)
        elapsed = time.perf_counter() - t0
        for _ in chunks:
            pass
    return elapsed


def measure(url: str, waves: int) -> dict[str, dict[str, float]]:
    first_audio_s(url)  # warm: voice prefix, connections
    out = {}
    for n in (1, 8):
        times: list[float] = []
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            for _ in range(waves):
                times += pool.map(lambda _: first_audio_s(url), range(n))
        out[f"{n}_streams"] = {"first_audio_p50_ms": 1000 * statistics.median(times),
                               "first_audio_max_ms": 1000 * max(times), "requests": len(times)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--waves", type=int, default=5)
    args = parser.parse_args(argv)
    folder, name = bench_checkpoint(args.model, HERE / ".cache")
    results = {}

    port = free_port()
    direct = subprocess.Popen([sys.executable, "-m", "qwen3tts_realtime.cli", "serve", "--model", str(folder),
                               "--device", "cpu", "--port", str(port)], env=dict(os.environ),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        results["serve"] = measure(f"http://127.0.0.1:{port}", args.waves)
    finally:
        direct.terminate()
        direct.wait(timeout=30)

    import ray
    from ray import serve

    from qwen3tts_realtime.server import ServerConfig
    from qwen3tts_realtime.server.ray import deployment

    port = free_port()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        config = ServerConfig(model=str(folder), device="cpu")
        serve.run(deployment(config, num_replicas=1, num_cpus=1), name="qwen3tts", route_prefix="/")
        wait_ready(f"http://127.0.0.1:{port}")
        results["ray_serve"] = measure(f"http://127.0.0.1:{port}", args.waves)
    finally:
        serve.shutdown()
        ray.shutdown()

    added = {k: results["ray_serve"][k]["first_audio_p50_ms"] - results["serve"][k]["first_audio_p50_ms"]
             for k in results["serve"]}
    result = {"benchmark": "ray-overhead", "model": name, "waves": args.waves, "request": BODY,
              "machine": describe_machine("cpu"), "results": results, "ray_adds_p50_ms": added}
    out = HERE / "results" / f"ray-overhead-{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"results": results, "ray_adds_p50_ms": added}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
