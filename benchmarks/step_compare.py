"""The engine's aggregate throughput at 1 and N streams for two source trees, measured in one sitting on the
same machine (the *Static step* acceptance check: N streams at least 0.9x the old code, and at least 4x one
stream). Each tree runs in its own process, alternately, `--rounds` times; the best wave of each is kept.

    git worktree add ../wt-before <old commit>
    python benchmarks/step_compare.py --before ../wt-before/src --after src --model 0.6B --threads 2
    python benchmarks/step_compare.py ... --quantize w8a8 --streams 1 4   # both trees with w8a8 weights

Writes benchmarks/results/step-compare-<model>[-<quantize>].json (settings, machine, every wave, engine stats).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]))
from qwen3tts_realtime.bench import workloads
from qwen3tts_realtime.bench.checkpoints import bench_checkpoint
from qwen3tts_realtime.tts import Qwen3TTS
folder, name = bench_checkpoint(sys.argv[2], sys.argv[3])
streams, frames = [int(s) for s in sys.argv[4].split(",")], int(sys.argv[5])
tts = Qwen3TTS.from_pretrained(folder, quantize=None if sys.argv[6] == "none" else sys.argv[6])
tts.max_streams = max(streams)
voice = workloads.bench_voice(tts)
tts.warmup()
workloads.run_wave(tts, voice, 1, 4)
waves = []
for n in streams:
    workloads.run_wave(tts, voice, n, 4)
    before = tts.stats()
    summary, _ = workloads.run_wave(tts, voice, n, frames)
    after = tts.stats()
    steps = after["steps"] - before["steps"]
    spent = {k: after["time_s"].get(k, 0.0) - before["time_s"].get(k, 0.0) for k in after["time_s"]}
    summary["steps"] = steps
    summary["step_ms"] = 1000 * spent.get("step", 0.0) / max(steps, 1)
    summary["ms_per_step_by_stage"] = {k: 1000 * v / max(steps, 1) for k, v in spent.items()}
    reads = after.get("host_reads")
    if reads is not None:
        summary["host_reads_per_step"] = (reads.get("step", 0) - before["host_reads"].get("step", 0)) / max(steps, 1)
        summary["decode_copies"] = reads.get("decode", 0) - before["host_reads"].get("decode", 0)
    waves.append(summary)
print("RESULT " + json.dumps({"model": name, "waves": waves, "linear_backend": tts.linear_backend}))
tts.close()
"""


def run_tree(src: str, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve()), "OMP_NUM_THREADS": str(args.threads)}
    streams = ",".join(str(s) for s in args.streams)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(args.threads), args.model, str(HERE / ".cache"), streams, str(args.frames),
         args.quantize or "none"],
        env=env, capture_output=True, text=True, check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{src} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="src folder of the old tree")
    parser.add_argument("--after", required=True, help="src folder of the new tree")
    parser.add_argument("--before-label", default="before")
    parser.add_argument("--after-label", default="after")
    parser.add_argument("--model", default="0.6B")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quantize", default=None, help='weights of both trees: "fp16", "int8", "int4", "w8a8"')
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.after).resolve()))
    from qwen3tts_realtime.bench.machine import describe_machine

    runs: dict[str, list[dict]] = {args.before_label: [], args.after_label: []}
    for _ in range(args.rounds):
        for label, src in ((args.before_label, args.before), (args.after_label, args.after)):
            runs[label].append(run_tree(src, args))
            print(
                label,
                json.dumps([(w["streams"], round(w["aggregate_audio_s_per_s"], 4)) for w in runs[label][-1]["waves"]]),
            )
    best = {
        label: {n: max((w for r in rs for w in r["waves"] if w["streams"] == n),
                       key=lambda w: w["aggregate_audio_s_per_s"]) for n in args.streams}
        for label, rs in runs.items()
    }
    top, one = max(args.streams), min(args.streams)
    b, a = best[args.before_label], best[args.after_label]
    result = {
        "benchmark": "step-compare",
        "model": args.model,
        "quantize": args.quantize,
        "threads": args.threads,
        "frames_per_stream": args.frames,
        "rounds": args.rounds,
        "machine": describe_machine("cpu"),
        "best_waves": {label: list(waves.values()) for label, waves in best.items()},
        "ratios": {
            f"after_over_before_at_{top}_streams": a[top]["aggregate_audio_s_per_s"]
            / b[top]["aggregate_audio_s_per_s"],
            f"after_{top}_streams_over_one_stream": a[top]["aggregate_audio_s_per_s"]
            / a[one]["aggregate_audio_s_per_s"],
            f"before_{top}_streams_over_one_stream": b[top]["aggregate_audio_s_per_s"]
            / b[one]["aggregate_audio_s_per_s"],
        },
        "runs": runs,
    }
    out = HERE / "results" / f"step-compare-{args.model}{'-' + args.quantize if args.quantize else ''}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios"], indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
