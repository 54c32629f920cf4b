"""Which kernel runs a quantized format on this machine: measured once, remembered per machine.

Kernels win on one CPU and lose on another (an Intel Xeon with AMX and an AMD EPYC with AVX2 differ by 10x on
some of them), so "auto" times every kernel of the format that runs here and agrees with its reference, on the
model's own widest layer shape, at 1 and 8 rows (one stream, a batch), and keeps the fastest (sum of both). The
result is cached in the user cache directory (`QWEN3TTS_KERNEL_CACHE` overrides the file), keyed by CPU model,
torch version, thread count, format, shape and the format's kernels, so later loads skip the measurement. The
float32 time of the same shape is measured beside it and logged, so a format whose best kernel is slower than
float32 here says so.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from filelock import FileLock

from ..errors import InvalidInputError
from .quantized_linear import KERNELS, QuantizedLinear, reference_linear

__all__ = ["choose_kernel", "measure_kernels", "kernel_cache_path"]

log = logging.getLogger(__name__)

ROWS = (1, 8)
# relative error against float32 math on the dequantized weight, by the activations a kernel computes with
TOLERANCE = {"bf16": 3e-2, "float32": 1e-4, "fp16": 1e-4, "rowq": 6e-2, "int16": 1e-3}


def kernel_cache_path() -> Path:
    env = os.environ.get("QWEN3TTS_KERNEL_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("qwen3tts-realtime")) / "kernels.json"


def choose_kernel(mode: str, requested: str, shape: tuple[int, int]) -> str:
    """The kernel for `mode`: `requested` when it names one ("auto": the fastest measured here, cached).

    Raises:
        InvalidInputError: `requested` is neither "auto" nor a kernel of `mode`, or no kernel of `mode` runs here.
    """
    kernels = KERNELS[mode]
    if requested != "auto":
        if requested not in kernels:
            raise InvalidInputError(
                f"linear_backend={requested!r} does not run quantize={mode!r}; accepted: 'auto', "
                f"{', '.join(map(repr, kernels))}"
            )
        why = _unusable(mode, requested)
        if why:
            raise InvalidInputError(f"linear_backend={requested!r} cannot run here: {why}; use 'auto'")
        return requested
    if len(kernels) == 1:
        why = _unusable(mode, kernels[0])
        if why:
            raise InvalidInputError(f"quantize={mode!r} cannot run here: {why}")
        return kernels[0]
    key = "|".join([_cpu_model(), torch.__version__, str(torch.get_num_threads()), mode, "x".join(map(str, shape)),
                    ",".join(kernels)])  # a release with another kernel measures again
    path = kernel_cache_path()
    cached = _read(path).get(key)
    if cached in kernels:
        return cached
    timings = measure_kernels(mode, shape)
    usable = {k: v for k, v in timings.items() if k != "float32" and v is not None}
    if not usable:
        raise InvalidInputError(f"quantize={mode!r} cannot run here: none of {kernels} works on this machine")
    best = min(usable, key=lambda k: sum(usable[k].values()))
    log.info("quantize=%r: kernel %s (us at rows %s: %s; float32 %s)", mode, best, ROWS, usable, timings["float32"])
    if any(usable[best][r] > timings["float32"][r] for r in ROWS):
        log.warning(
            "quantize=%r runs slower than float32 on this CPU at some batch sizes (%s: %s us, float32: %s us): "
            "it saves memory; for speed try quantize='w8a8' or 'fp16'", mode, best, usable[best], timings["float32"]
        )
    _write(path, key, best)
    return best


def measure_kernels(mode: str, shape: tuple[int, int], passes: int = 3) -> dict[str, dict[int, float] | None]:
    """Microseconds per call of each kernel of `mode` (None where it does not run or disagrees with its
    reference) and of float32 `F.linear`, for a random [out, in] = `shape` layer at `ROWS` rows."""
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(shape, generator=gen) * 0.02
    copies = max(2, min(8, int(32e6 // weight.numel())))  # cycle weights (~100 MB of float32) past the caches
    results: dict[str, dict[int, float] | None] = {}
    with torch.inference_mode():
        plain = [weight + 0.001 * i for i in range(copies)]
        results["float32"] = _time([lambda x, w=w: F.linear(x, w) for w in plain], shape[1], passes)
        for kernel in KERNELS[mode]:
            why = _unusable(mode, kernel)
            if why:
                log.info("quantize=%r: %s", mode, why)
                results[kernel] = None
                continue
            layers = [QuantizedLinear(mode, kernel, w, None) for w in plain]
            results[kernel] = _time(layers, shape[1], passes)
    return results


def _time(fns, in_features: int, passes: int) -> dict[int, float]:
    out = {}
    for rows in ROWS:
        x = torch.randn(rows, in_features)
        for f in fns:
            f(x)
        best = float("inf")
        for _ in range(passes):
            t = time.perf_counter()
            for f in fns:
                f(x)
            best = min(best, (time.perf_counter() - t) / len(fns))
        out[rows] = round(1e6 * best, 1)
    return out


def _unusable(mode: str, kernel: str) -> str | None:
    """None when `kernel` runs here and agrees with dequantized float32 math; otherwise why not."""
    gen = torch.Generator().manual_seed(1)
    try:
        layer = QuantizedLinear(mode, kernel, torch.randn(64, 128, generator=gen), torch.randn(64, generator=gen))
        x = torch.randn(3, 128, generator=gen)
        with torch.inference_mode():
            got, want = layer(x), reference_linear(layer, x)
    except (RuntimeError, AttributeError, NotImplementedError) as e:
        return f"{kernel} failed ({str(e).splitlines()[0][:160]})"
    tol = next(v for k, v in TOLERANCE.items() if k in kernel)
    err = float((got - want).norm() / want.norm())
    if not err <= tol:
        return f"{kernel} disagrees with its reference here (relative error {err:.2e} > {tol:.0e})"
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, key: str, kernel: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            data = _read(path)
            data[key] = kernel
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(path)
    except OSError as e:  # a read-only cache only costs a measurement next time
        log.debug("kernel choice not cached (%s)", e)
