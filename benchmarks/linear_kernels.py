"""Linear-layer kernels at the engine's batch sizes, every candidate in one process: float32 (`nn.Linear` and
oneDNN pre-packed) and each quantized kernel of `model.quantized_linear.KERNELS`, on the 0.6B talker's and code
predictor's layer shapes, 1..16 rows (one row per stream in a step).

    python benchmarks/linear_kernels.py --threads 2

Each timing cycles through enough distinct weights (about 0.5 GB of float32) that none stays in cache, as in a real
step, and keeps the fastest of several passes. Reported per kernel: microseconds per call at each row count and the
weight bytes read per second (GB/s: the format's bytes per weight x weights / time) — the CPU step is memory-bound,
so GB/s at one row against the machine's bandwidth says how close a kernel gets to the bound. Writes
benchmarks/results/linear-kernels.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save  # noqa: E402

from qwen3tts_realtime.model.packed_linear import PackedLinear  # noqa: E402
from qwen3tts_realtime.model.quantized_linear import KERNELS, QuantizedLinear  # noqa: E402

# [in, out] of the 0.6B layers: the talker's and the code predictor's decoder layers share these widths.
SHAPES = {"q_proj": (1024, 2048), "k_proj": (1024, 1024), "o_proj": (2048, 1024), "up_proj": (1024, 3072),
          "down_proj": (3072, 1024), "predictor_head": (1024, 2048), "codec_head": (1024, 3072)}
BYTES_PER_WEIGHT = {"torch_float32": 4, "onednn_float32": 4, "fp16": 2, "int8": 1, "int4": 0.5, "w8a8": 1}


def label(mode: str, kernel: str) -> str:
    """A quantized kernel's name in the results: "<mode>:<kernel>" (ours run both int8 and int4)."""
    return f"{mode}:{kernel}"


def bytes_per_weight(name: str) -> float:
    return BYTES_PER_WEIGHT[name.partition(":")[0]]


def best_us(layers: list[nn.Module], rows: int, in_features: int, passes: int) -> float:
    x = torch.randn(rows, in_features)
    best = float("inf")
    with torch.inference_mode():
        for layer in layers:
            layer(x)
        for _ in range(passes):
            t = time.perf_counter()
            for layer in layers:
                layer(x)
            best = min(best, (time.perf_counter() - t) / len(layers))
    return 1e6 * best


def kernels_for(weights: list[torch.Tensor]) -> dict[str, list[nn.Module]]:
    plain = []
    for w in weights:
        layer = nn.Linear(w.shape[1], w.shape[0], bias=False)
        layer.weight.data = w
        plain.append(layer)
    out = {"torch_float32": plain, "onednn_float32": [PackedLinear(layer) for layer in plain]}
    for mode, kernels in KERNELS.items():
        for kernel in kernels:
            out[label(mode, kernel)] = [QuantizedLinear(mode, kernel, w, None) for w in weights]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name, (k, n) in SHAPES.items():
        copies = max(8, int(5e8 // (4 * k * n)))
        kernels = kernels_for([torch.randn(n, k) * 0.02 for _ in range(copies)])
        results[name] = {"in": k, "out": n, "us": {}, "gb_per_s": {}}
        for kernel, layers in kernels.items():
            us = {str(m): round(best_us(layers, m, k, args.passes), 1) for m in args.rows}
            results[name]["us"][kernel] = us
            results[name]["gb_per_s"][kernel] = {m: round(bytes_per_weight(kernel) * k * n / (1e3 * t), 2)
                                                 for m, t in us.items()}
        del kernels
        line = " ".join(f"{kern}:" + ",".join(f"{v:.0f}" for v in per.values())
                        for kern, per in results[name]["us"].items())
        print(f"{name} {k}x{n} us at rows {args.rows}: {line}", flush=True)
    totals = {}
    for kernel in next(iter(results.values()))["us"]:
        total = {m: sum(r["us"][kernel][str(m)] for r in results.values()) for m in args.rows}
        weights = sum(r["in"] * r["out"] for r in results.values())
        totals[kernel] = {
            "sum_us": {str(m): round(t, 1) for m, t in total.items()},
            "gb_per_s": {str(m): round(bytes_per_weight(kernel) * weights / (1e3 * t), 2) for m, t in total.items()},
            "rows_8_over_rows_1": round(total[8] / total[1], 3) if 8 in total and 1 in total else None,
        }
    result = {"benchmark": "linear-kernels", "threads": torch.get_num_threads(), "rows": args.rows,
              "machine": machine(), "shapes": results, "all_shapes": totals,
              "note": "GB/s = bytes of weights in the kernel's format read per second (memory-bound at one row)"}
    for kernel, t in totals.items():
        print(f"{kernel:24s} all shapes: us {t['sum_us']}  GB/s {t['gb_per_s']}")
    save("linear-kernels", result)


if __name__ == "__main__":
    main()
