"""First audio through `RemoteEngine` with pooled connections against one connection per stream.

A real `qwen3tts-realtime serve` runs in its own process on a free localhost port (the tiny random model by
default: generation is fast, so the connection's cost shows); `RemoteEngine(pool_size=4)` and
`RemoteEngine(pool_size=0)` then each run the same sequential streams, alternately. Time to first audio is
measured from `open_stream` to the first chunk in the caller. On localhost a handshake costs little; across a
network (and with TLS) it costs one or more round trips more per stream, which pooling saves.

    python benchmarks/remote_pool.py [--model tiny] [--streams 40]

Writes benchmarks/results/remote-pool-<model>.json (settings, machine, per-stream first audio, connections).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from qwen3tts_realtime import SamplingParams
from qwen3tts_realtime.bench.checkpoints import bench_checkpoint
from qwen3tts_realtime.bench.machine import describe_machine
from qwen3tts_realtime.client import RemoteEngine

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_audio_s(engine: RemoteEngine, text: str) -> float:
    t0 = time.perf_counter()
    stream = engine.open_stream(text, voice="ryan", sampling=SamplingParams.greedy(), max_new_frames=2)
    chunks = iter(stream)
    next(chunks)
    elapsed = time.perf_counter() - t0
    for _ in chunks:
        pass
    return elapsed


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"p50_ms": 1000 * statistics.median(ordered), "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
            "mean_ms": 1000 * statistics.fmean(ordered)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--streams", type=int, default=40, help="sequential streams per setting")
    args = parser.parse_args(argv)
    folder, name = bench_checkpoint(args.model, HERE / ".cache")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "qwen3tts_realtime.cli", "serve", "--model", str(folder), "--device", "cpu",
         "--port", str(port)], env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(url + "/ready", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not become ready") from None
                time.sleep(0.2)
        engines = {"pooled": RemoteEngine(url, pool_size=4), "unpooled": RemoteEngine(url, pool_size=0)}
        times: dict[str, list[float]] = {label: [] for label in engines}
        for engine in engines.values():
            first_audio_s(engine, "Warm up.")
        for i in range(args.streams):
            for label, engine in engines.items():
                times[label].append(first_audio_s(engine, f"Reply number {i}."))
        result = {
            "benchmark": "remote-pool",
            "model": name,
            "streams_per_setting": args.streams,
            "machine": describe_machine("cpu"),
            "first_audio": {label: summary(t) for label, t in times.items()},
            "connections_opened": {label: e.connections_opened for label, e in engines.items()},
            "first_audio_s": times,
        }
        for engine in engines.values():
            engine.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = HERE / "results" / f"remote-pool-{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("first_audio", "connections_opened")}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
