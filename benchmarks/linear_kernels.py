"""Linear-layer kernels at the engine's batch sizes: nn.Linear (MKL), oneDNN pre-packed float32 and fbgemm
float16 weights, on the 0.6B talker's layer shapes, 1..16 rows (one row per stream in a step), in one process.

    python benchmarks/linear_kernels.py --threads 2

Each timing cycles through enough distinct weights (about 0.5 GB) that none stays in cache, as in a real step,
and keeps the fastest of several passes. Writes benchmarks/results/linear-kernels.json.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save  # noqa: E402

from qwen3tts_realtime.model.packed_linear import PackedLinear  # noqa: E402

SHAPES = {"q_proj": (1024, 2048), "k_proj": (1024, 1024), "o_proj": (2048, 1024), "up_proj": (1024, 3072),
          "down_proj": (3072, 1024)}


def fp16_linear(layer: nn.Linear) -> nn.Module:
    from torch.ao.quantization import float16_dynamic_qconfig, quantize_dynamic

    holder = nn.Sequential(copy.deepcopy(layer))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(holder, {nn.Linear: float16_dynamic_qconfig}, inplace=True)
    return holder[0]


def best_ms(layers: list[nn.Module], rows: int, in_features: int, passes: int) -> float:
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
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name, (k, n) in SHAPES.items():
        copies = max(8, int(5e8 // (4 * k * n)))
        plain = [nn.Linear(k, n, bias=False) for _ in range(copies)]
        kernels = {"torch_float32": plain, "onednn_float32": [PackedLinear(layer) for layer in plain],
                   "fbgemm_fp16_weights": [fp16_linear(layer) for layer in plain]}
        results[name] = {"in": k, "out": n, "ms": {}}
        for kernel, layers in kernels.items():
            results[name]["ms"][kernel] = {str(m): best_ms(layers, m, k, args.passes) for m in args.rows}
        del plain, kernels
        line = " ".join(f"{kern}:" + ",".join(f"{v:.2f}" for v in per.values())
                        for kern, per in results[name]["ms"].items())
        print(f"{name} {k}x{n} ms at rows {args.rows}: {line}", flush=True)
    ratios = {}
    for kernel in ("torch_float32", "onednn_float32", "fbgemm_fp16_weights"):
        total = {m: sum(r["ms"][kernel][str(m)] for r in results.values()) for m in args.rows}
        ratios[kernel] = {
            "sum_ms": {str(m): t for m, t in total.items()},
            "rows_8_over_rows_1": total[8] / total[1] if 8 in total and 1 in total else None,
        }
    result = {"benchmark": "linear-kernels", "threads": torch.get_num_threads(), "rows": args.rows,
              "machine": machine(), "shapes": results, "all_shapes": ratios}
    print({k: v["rows_8_over_rows_1"] for k, v in ratios.items()})
    save("linear-kernels", result)


if __name__ == "__main__":
    main()
