"""Concurrency benchmark: first audio p50/p95, per-stream xRT and aggregate audio seconds per second at
1, 2, 4, 8, 16 concurrent streams on one engine; and the same fed by a simulated LLM token stream.

    python benchmarks/concurrency.py --config tiny-custom_voice --streams 1 2 4 8 16 --frames 24
    python benchmarks/concurrency.py --config 0.6B-CustomVoice --streams 1 8 --frames 12 --llm-rates 20 60
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import checkpoint, machine, save  # noqa: E402

from qwen3tts_realtime import Qwen3TTS  # noqa: E402
from qwen3tts_realtime.bench import workloads  # noqa: E402


def run_wave(tts: Qwen3TTS, voice, n: int, frames: int, llm_rate: float | None, repeats: int = 1) -> dict:
    """`qwen3tts_realtime.bench.workloads.run_wave` (`repeats` times, merged) plus the playout gaps of a listener
    who starts at the first chunk (no jitter buffer)."""
    per_repeat = [workloads.run_wave(tts, voice, n, frames, llm_rate) for _ in range(repeats)]
    summary = workloads.merge_waves(per_repeat)
    gaps = workloads.jitter_playout([r for _, rs in per_repeat for r in rs], tts.sample_rate)
    return {**summary, "llm_tokens_per_s": llm_rate, "repeats": repeats, "underruns_total": gaps["naive_underruns"],
            "underrun_s_total": gaps["naive_underrun_ms"] / 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tiny-custom_voice")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--llm-rates", type=float, nargs="*", default=[20.0, 60.0])
    parser.add_argument("--start-tokens", type=int, nargs="*", default=[1, 4, 8],
                        help="start policies to compare on one LLM-fed stream (committed tokens before speaking)")
    parser.add_argument("--repeats", type=int, default=1, help="waves per sweep point (merged)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tts = Qwen3TTS.from_pretrained(checkpoint(args.config), device=args.device, dtype=args.dtype)
    tts.max_streams = max(args.streams)
    voice = workloads.bench_voice(tts)
    tts.warmup()
    run_wave(tts, voice, 1, 4, None)  # warm the voice
    waves = []
    for rate in [None, *args.llm_rates]:
        for n in args.streams:
            if rate is None:
                run_wave(tts, voice, n, 4, None)  # untimed: first calls at a new batch size pay kernel set-up
            waves.append(run_wave(tts, voice, n, args.frames, rate, args.repeats))
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
        "dtype": args.dtype, "device": args.device, "threads": torch.get_num_threads(),
        "linear_backend": tts.linear_backend, "machine": machine(), "waves": waves,
        "start_policies": policies,
        "engine_stats": tts.stats(),
    })
    tts.close()


if __name__ == "__main__":
    main()
