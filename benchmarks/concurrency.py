"""Concurrency benchmark: first audio p50/p95, per-stream xRT and aggregate audio seconds per second at
1, 2, 4, 8, 16 concurrent streams on one engine; and the same fed by a simulated LLM token stream.

    python benchmarks/concurrency.py --config tiny-custom_voice --streams 1 2 4 8 16 --frames 24
    python benchmarks/concurrency.py --config 0.6B-CustomVoice --streams 1 8 --frames 12 --llm-rates 20 60
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import checkpoint, machine, percentile, save  # noqa: E402
from streaming import voice_for  # noqa: E402

from qwen3tts_realtime import Qwen3TTS, SamplingParams  # noqa: E402

TEXTS = [
    "Hello there, thanks for calling. How can I help you today?",
    "Your order number is four two seven, and it ships on Monday.",
    "Please hold while I transfer your call to a specialist.",
    "I can book that for you. What time works best tomorrow?",
]


def playout_gaps(arrivals: list[tuple[float, float]]) -> tuple[int, float]:
    """Underruns (count, seconds) of a listener who starts playing at the first chunk's arrival."""
    underruns, silent_s, play_end = 0, 0.0, None
    for t, dur in arrivals:
        if play_end is not None and t > play_end + 1e-9:
            underruns += 1
            silent_s += t - play_end
        play_end = (t if play_end is None else max(play_end, t)) + dur
    return underruns, silent_s


def run_wave(tts: Qwen3TTS, voice, n: int, frames: int, llm_rate: float | None) -> dict:
    results: list[dict] = [{} for _ in range(n)]
    start = threading.Barrier(n + 1)

    def one(i: int) -> None:
        text = TEXTS[i % len(TEXTS)]
        greedy = SamplingParams.greedy()
        start.wait()
        t0 = time.perf_counter()
        if llm_rate is None:
            stream = tts.stream_sync(text, voice, sampling=greedy, non_streaming_layout=False, max_new_frames=frames)
        else:
            stream = tts.open_stream(voice, sampling=greedy, max_new_frames=frames)

            def feed() -> None:
                words = text.split(" ")
                for k, w in enumerate(words):
                    stream.push_text(w if k == 0 else " " + w)
                    time.sleep(1.0 / llm_rate)  # about one LLM token per word
                stream.end_input()

            threading.Thread(target=feed, daemon=True).start()
        arrivals = []
        for chunk in stream:
            arrivals.append((time.perf_counter() - t0, len(chunk.audio) / chunk.sample_rate))
        wall = time.perf_counter() - t0
        audio_s = sum(d for _, d in arrivals)
        underruns, silent_s = playout_gaps(arrivals)
        results[i] = {"first_audio_s": arrivals[0][0], "wall_s": wall, "audio_s": audio_s,
                      "xrt": audio_s / wall, "underruns": underruns, "underrun_s": silent_s}

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    first = [r["first_audio_s"] for r in results]
    return {
        "streams": n,
        "llm_tokens_per_s": llm_rate,
        "first_audio_p50_s": percentile(first, 0.5),
        "first_audio_p95_s": percentile(first, 0.95),
        "per_stream_xrt_mean": sum(r["xrt"] for r in results) / n,
        "aggregate_audio_s_per_s": sum(r["audio_s"] for r in results) / wall,
        "underruns_total": sum(r["underruns"] for r in results),
        "underrun_s_total": sum(r["underrun_s"] for r in results),
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tiny-custom_voice")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--llm-rates", type=float, nargs="*", default=[20.0, 60.0])
    parser.add_argument("--start-tokens", type=int, nargs="*", default=[1, 4, 8],
                        help="start policies to compare on one LLM-fed stream (committed tokens before speaking)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tts = Qwen3TTS.from_pretrained(checkpoint(args.config), device=args.device, dtype=args.dtype)
    tts.max_streams = max(args.streams)
    voice = voice_for(tts)
    tts.warmup()
    run_wave(tts, voice, 1, 4, None)  # warm the voice
    waves = []
    for rate in [None, *args.llm_rates]:
        for n in args.streams:
            waves.append(run_wave(tts, voice, n, args.frames, rate))
            print(waves[-1])
    policies = []
    for start_tokens in args.start_tokens:
        tts.engine.start_tokens = start_tokens
        for rate in args.llm_rates:
            wave = run_wave(tts, voice, 1, args.frames, rate)
            policies.append({"start_tokens": start_tokens, **wave})
            print(policies[-1])
    one = next(w for w in waves if w["streams"] == 1 and w["llm_tokens_per_s"] is None)
    for w in waves:
        w["aggregate_vs_one_stream"] = w["aggregate_audio_s_per_s"] / one["aggregate_audio_s_per_s"]
    save(f"concurrency-{args.config}-{args.device}-{args.dtype}", {
        "benchmark": "concurrency", "config": args.config, "frames_per_stream": args.frames,
        "dtype": args.dtype, "device": args.device, "machine": machine(), "waves": waves,
        "start_policies": policies,
        "engine_stats": tts.stats(),
    })
    tts.close()


if __name__ == "__main__":
    main()
