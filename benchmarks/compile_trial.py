"""torch.compile (inductor, CPU) trial: compile the pure-tensor parts of every talker and code-predictor layer
(RMSNorms and the SwiGLU MLP; attention keeps its per-stream Python loop) and compare the per-frame time and
the greedy codes with eager float32, in one process.

    python benchmarks/compile_trial.py --model 0.6B --frames 8 --threads 2

Writes benchmarks/results/compile-trial-<model>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save  # noqa: E402

from qwen3tts_realtime import Qwen3TTS  # noqa: E402
from qwen3tts_realtime.bench import workloads  # noqa: E402
from qwen3tts_realtime.bench.checkpoints import bench_checkpoint  # noqa: E402

HERE = Path(__file__).resolve().parent


def timed_generate(tts: Qwen3TTS, voice, frames: int, repeats: int) -> tuple[float, torch.Tensor]:
    kwargs = dict(sampling=workloads.GREEDY, non_streaming_layout=False, max_new_frames=frames)
    best, codes = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = tts.generate(workloads.TEXTS[0], voice=voice, **kwargs)
        best = min(best, time.perf_counter() - t)
        codes = out.codes
    return best, codes


def compile_layers(tts: Qwen3TTS) -> None:
    for stack in (tts.talker.model, tts.talker.code_predictor.model):
        for layer in stack.layers:
            layer.mlp = torch.compile(layer.mlp, dynamic=True)
            layer.input_layernorm = torch.compile(layer.input_layernorm, dynamic=True)
            layer.post_attention_layernorm = torch.compile(layer.post_attention_layernorm, dynamic=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="0.6B")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder, name = bench_checkpoint(args.model, HERE / ".cache")
    tts = Qwen3TTS.from_pretrained(folder)
    voice = workloads.bench_voice(tts)
    timed_generate(tts, voice, 2, 1)
    eager_s, eager_codes = timed_generate(tts, voice, args.frames, args.repeats)
    compile_layers(tts)
    t = time.perf_counter()
    timed_generate(tts, voice, args.frames, 1)  # compiles (and recompiles for the shapes it meets)
    compile_s = time.perf_counter() - t
    compiled_s, compiled_codes = timed_generate(tts, voice, args.frames, args.repeats)
    same = compiled_codes == eager_codes
    result = {
        "benchmark": "compile-trial", "model": name, "frames": args.frames, "threads": torch.get_num_threads(),
        "machine": machine(),
        "eager_per_frame_ms": 1000 * eager_s / args.frames,
        "compiled_per_frame_ms": 1000 * compiled_s / args.frames,
        "compiled_over_eager": compiled_s / eager_s,
        "first_call_with_compilation_s": compile_s,
        "greedy_codes_identical": bool(same.all()),
        "equal_code_fraction": float(same.float().mean()),
    }
    print(result)
    save(f"compile-trial-{name}", result)
    tts.close()


if __name__ == "__main__":
    main()
