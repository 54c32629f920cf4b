"""Another stream's chunk gaps beside a client sending 10,000 one-character websocket messages.

A real `qwen3tts-realtime serve` (tiny random model by default) runs in its own process per setting; stream A
speaks a fixed text and its chunk gaps (time between audio messages at the client) are recorded beside stream B,
which speaks as many frames from a 10,000-character text sent either in one message (the baseline: the same
generation work) or as 10,000 one-character messages, with no message-rate bound (`--ws-max-messages-per-s 0`)
and with the default bound.

    python benchmarks/ws_flood.py [--model tiny] [--messages 10000]

Writes benchmarks/results/ws-flood-<model>.json (settings, machine, gaps per setting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from websockets.asyncio.client import connect

from qwen3tts_realtime.bench.checkpoints import bench_checkpoint
from qwen3tts_realtime.bench.machine import describe_machine

HERE = Path(__file__).resolve().parent
TEXT = "Hello there, this is the stream whose audio should flow evenly while another client floods the server."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def stream_a(url: str, frames: int) -> list[float]:
    gaps, last = [], None
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "start", "voice": "ryan", "text": TEXT, "max_frames": frames,
                                  "encoding": "pcm16", "chunk_frames": [1], "do_sample": False}))
        async for message in ws:
            if isinstance(message, bytes):
                now = time.perf_counter()
                if last is not None:
                    gaps.append(now - last)
                last = now
            elif json.loads(message)["type"] in ("done", "error"):
                break
    return gaps


async def stream_b(url: str, chars: int, messages: int, frames: int) -> None:
    """B: `chars` characters of text in `messages` messages (1 or one per character), then the end."""
    text = ("All work and no play makes a dull voice. " * (chars // 40 + 1))[:chars]
    async with connect(url, max_queue=None) as ws:
        await ws.send(json.dumps({"type": "start", "voice": "eric", "max_frames": frames, "do_sample": False}))

        async def drain() -> None:
            async for message in ws:
                if not isinstance(message, bytes) and json.loads(message)["type"] in ("done", "error"):
                    return

        reader = asyncio.create_task(drain())
        pieces = [text] if messages == 1 else list(text)
        for piece in pieces:
            await ws.send(json.dumps({"type": "text", "text": piece}))
        await ws.send(json.dumps({"type": "end"}))
        await reader


async def run(url: str, messages: int, frames: int, chars: int = 0) -> dict[str, float]:
    other = asyncio.create_task(stream_b(url, chars, messages, 10 * frames)) if chars else None
    if other is not None:
        await asyncio.sleep(0.5)  # B under way
    gaps = await stream_a(url, frames)
    if other is not None:
        other.cancel()
    g = np.array(gaps) * 1000
    return {"chunks": len(gaps) + 1, "max_gap_ms": float(g.max()), "p99_gap_ms": float(np.percentile(g, 99)),
            "p50_gap_ms": float(np.median(g))}


def serve(folder: Path, port: int, rate: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qwen3tts_realtime.cli", "serve", "--model", str(folder),
                             "--device", "cpu", "--port", str(port), "--max-text-chars", "20000",
                             "--max-body-bytes", "1000000",
                             "--ws-max-messages-per-s", rate, "--ws-idle-timeout", "0"],
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args(argv)
    folder, name = bench_checkpoint(args.model, HERE / ".cache")
    settings = {"one_message": ("0", 1), "flood_unbounded": ("0", args.messages),
                "flood_bounded": ("200", args.messages)}
    results = {}
    for label, (rate, messages) in settings.items():
        port = free_port()
        server = serve(folder, port, rate)
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not become ready"
                time.sleep(0.2)
            url = f"ws://127.0.0.1:{port}/v1/stream"
            asyncio.run(run(url, 0, 4))  # warm
            results[label] = {"ws_max_messages_per_s": float(rate), "b_messages": messages,
                              **asyncio.run(run(url, messages, args.frames, args.messages))}
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(label, results[label])
    result = {"benchmark": "ws-flood", "model": name, "frames": args.frames, "machine": describe_machine("cpu"),
              "results": results}
    out = HERE / "results" / f"ws-flood-{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
