"""Our own CPU kernels for weight-only int8 and int4 linears (`model/native/qlinear.c`), built on first use.

Why: on an AVX2 CPU without VNNI or AMX, torch's low-bit kernels are compute-bound (int8 ~12 GB/s, int4 ~6 GB/s of
weights read at one row, against ~20-27 GB/s for float32), so fewer bytes per weight bought little. These kernels
turn the quantized weights into float32 in registers and sum in float32 with FMA, one fixed order per output
element, so a row's result never depends on the rows batched with it.

Does:
    Compiles `qlinear.c` with the machine's C compiler (`$CC`, else `cc`) into the user cache directory
    (`QWEN3TTS_NATIVE_CACHE` overrides the folder), once per source, compiler and flags; later processes load the
    cached library. Threads: OpenMP, linked to the libgomp torch has already loaded (one thread pool, which
    `model/omp.py` releases). The ctypes calls release the GIL.
Does not:
    Run without an x86-64 CPU with AVX2 and FMA, a C compiler with OpenMP, or on another OS than Linux:
    `unavailable()` says why, and the kernel choice (`model/kernel_choice.py`) then skips these kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from filelock import FileLock
from torch import Tensor

__all__ = [
    "unavailable", "int8_linear", "int4_linear", "pack_int8", "unpack_int8", "pack_int4", "unpack_int4",
    "QWeight", "Layer", "Stack", "stack_forward",
]

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("native") / "qlinear.c"
FLAGS = ("-O3", "-mavx2", "-mfma", "-fopenmp", "-std=c11", "-shared", "-fPIC")
LIBS = ("-lm",)
# inputs per run of the tile-major layouts, by activation width: {act: {bits: run}}
RUN = {32: {8: 8, 4: 16}, 16: {8: 16, 4: 32}}
_P, _I64, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int


def unavailable() -> str | None:
    """None when the kernels run here; otherwise why not (no AVX2, no compiler, a failed build)."""
    return _load()[1]


def int8_linear(x: Tensor, packed: Tensor, scales: Tensor, bias: Tensor | None, act: int = 32) -> Tensor:
    """`x @ (q * scales[:, None]).T + bias` for float32 x [M, K], q int8 [N, K] packed by `pack_int8(q, RUN[act])`
    and float32 scales [N]. `act` 32: float32 activations; 16: each row rounded to 14-bit integers on its own
    (max |x| / 8191 per row), exact integer sums."""
    m, k = x.shape
    n = scales.shape[0]
    y = torch.empty(m, n, dtype=torch.float32)
    lib = _library()
    fn = lib.qwen3tts_int8_linear_a16 if act == 16 else lib.qwen3tts_int8_linear
    status = fn(x.data_ptr(), m, k, packed.data_ptr(), scales.data_ptr(), _ptr(bias), n, y.data_ptr(),
                torch.get_num_threads())
    if status:
        raise MemoryError(f"int8 linear: no memory for {m} x {k} activations")
    return y


def int4_linear(x: Tensor, packed: Tensor, group: int, scales: Tensor, lows: Tensor, bias: Tensor | None,
                act: int = 32) -> Tensor:
    """`x @ W.T + bias` for float32 x [M, K] and W[n, k] = q[n, k] * scales[n, k // group] + lows[n, k // group],
    with q packed by `pack_int4(q, RUN[act])` and scales, lows float32 [N, K / group]; `act` as `int8_linear`."""
    m, k = x.shape
    n = scales.shape[0]
    y = torch.empty(m, n, dtype=torch.float32)
    lib = _library()
    fn = lib.qwen3tts_int4_linear_a16 if act == 16 else lib.qwen3tts_int4_linear
    status = fn(x.data_ptr(), m, k, group, packed.data_ptr(), scales.data_ptr(), lows.data_ptr(), _ptr(bias), n,
                y.data_ptr(), torch.get_num_threads())
    if status:
        raise MemoryError(f"int4 linear: no memory for {m} x {k} activations")
    return y


def pack_int8(q: Tensor, run: int = 8) -> Tensor:
    """int8 [N, K] in the kernels' tile-major layout: blocks of 8 channels, each a run of `run` inputs of each
    channel in turn ([ceil(N/8), ceil(K/run), 8, run], zero-padded), so a block is one contiguous stream."""
    n, k = q.shape
    padded = F.pad(q, (0, -k % run, 0, -n % 8))
    return padded.view(padded.shape[0] // 8, 8, padded.shape[1] // run, run).transpose(1, 2).contiguous()


def unpack_int8(packed: Tensor, n: int, k: int) -> Tensor:
    """The [N, K] int8 weight of `pack_int8`."""
    blocks, runs, _, run = packed.shape
    return packed.transpose(1, 2).reshape(blocks * 8, runs * run)[:n, :k]


def pack_int4(q: Tensor, run: int = 16) -> Tensor:
    """Values 0..15 [N, K] (K a multiple of `run`) in the kernels' tile-major layout [ceil(N/8), K/run, 8, run/2]:
    per channel, each run of inputs takes run/2 bytes, input j in the low nibble of byte j and input j + run/2
    in its high nibble."""
    n, k = q.shape
    half = run // 2
    runs = q.to(torch.uint8).view(n, k // run, 2, half)
    nibbles = F.pad(runs[:, :, 0] | (runs[:, :, 1] << 4), (0, 0, 0, 0, 0, -n % 8))
    return nibbles.view(nibbles.shape[0] // 8, 8, k // run, half).transpose(1, 2).contiguous()


def unpack_int4(packed: Tensor, n: int, k: int) -> Tensor:
    """The [N, K] values 0..15 (uint8) of `pack_int4`."""
    blocks, runs, _, half = packed.shape
    nibbles = packed.transpose(1, 2).reshape(blocks * 8, runs, half)[:n]
    return torch.stack([nibbles & 15, nibbles >> 4], dim=2).reshape(n, k)


class QWeight(ctypes.Structure):
    """A quantized linear as `qwen3tts_stack_forward` reads it (bits 8: q int8 and scale [out]; bits 4: q int4,
    scale and low [out, in / group]; act 32 or 16, with q packed for it: `RUN`)."""

    _fields_ = [("bits", _I64), ("act", _I64), ("out", _I64), ("inp", _I64), ("group", _I64), ("q", _P),
                ("scale", _P), ("low", _P)]


class Layer(ctypes.Structure):
    _fields_ = [("input_norm", _P), ("post_norm", _P), ("q_norm", _P), ("k_norm", _P),
                ("qkv", QWeight), ("o", QWeight), ("gate_up", QWeight), ("down", QWeight)]


class Stack(ctypes.Structure):
    _fields_ = [("layers", _I64), ("hidden", _I64), ("heads", _I64), ("kv_heads", _I64), ("head_dim", _I64),
                ("intermediate", _I64), ("eps", ctypes.c_float), ("layer", ctypes.POINTER(Layer)),
                ("final_norm", _P)]


def stack_forward(stack: Stack, x: Tensor, start: Tensor, k: list[Tensor], v: list[Tensor], cos: Tensor,
                  signed_sin: Tensor) -> Tensor:
    """Every layer and the final norm of a decoder stack on float32 x [B, T, D]: row b writes positions
    start[b] .. start[b] + T - 1 of its row of the caches k[layer], v[layer] ([B, kv_heads, max_len, head_dim],
    any row/head/position strides) and attends causally; cos/signed_sin [>= max position + 1, head_dim]."""
    lib = _library()
    b, t, _ = x.shape
    y = torch.empty_like(x)
    layers = len(k)
    ptrs = (_P * layers)
    strides = (_I64 * 3)(*k[0].stride()[:3])
    status = lib.qwen3tts_stack_forward(
        ctypes.byref(stack), x.data_ptr(), y.data_ptr(), b, t, start.data_ptr(),
        ptrs(*[c.data_ptr() for c in k]), ptrs(*[c.data_ptr() for c in v]), strides, cos.data_ptr(),
        signed_sin.data_ptr(), torch.get_num_threads(),
    )
    if status:
        raise MemoryError("decoder stack: out of memory") if status == -1 else ValueError("unsupported shape")
    return y


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _library() -> ctypes.CDLL:
    lib, why = _load()
    if lib is None:
        raise RuntimeError(f"the native int8/int4 kernels cannot run here: {why}")
    return lib


@cache
def _load() -> tuple[ctypes.CDLL | None, str | None]:
    why = _platform_problem()
    if why:
        return None, why
    try:
        path = _build()
        lib = ctypes.CDLL(str(path))
    except (OSError, subprocess.SubprocessError, RuntimeError) as e:
        return None, str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    for name, (argtypes, restype) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, restype
    return lib, None


# (x, M, K, q, scale, bias, N, y, threads) and (x, M, K, group, q, scale, low, bias, N, y, threads)
_INT8_ARGS = [_P, _I64, _I64, _P, _P, _P, _I64, _P, _INT]
_INT4_ARGS = [_P, _I64, _I64, _I64, _P, _P, _P, _P, _I64, _P, _INT]
_SIGNATURES = {
    "qwen3tts_int8_linear": (_INT8_ARGS, None),
    "qwen3tts_int8_linear_a16": (_INT8_ARGS, _INT),
    "qwen3tts_int4_linear": (_INT4_ARGS, _INT),
    "qwen3tts_int4_linear_a16": (_INT4_ARGS, _INT),
    "qwen3tts_stack_forward": ([_P, _P, _P, _I64, _I64, _P, _P, _P, _P, _P, _P, _INT], _INT),
}


def _platform_problem() -> str | None:
    if sys.platform != "linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return f"they are built for Linux on x86-64 (this is {sys.platform} on {platform.machine()})"
    try:
        flags = next(
            (line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("flags")), [],
        )
    except OSError:
        flags = []
    missing = [f for f in ("avx2", "fma") if f not in flags]
    if missing:
        return f"this CPU lacks {' and '.join(missing)}"
    return None


def _compiler() -> str:
    cc = os.environ.get("CC") or "cc"
    found = shutil.which(cc)
    if not found:
        raise RuntimeError(f"no C compiler found ({cc!r}, from $CC or the default 'cc'); install gcc to use them")
    return found


def _build() -> Path:
    """The compiled library in the cache folder, built now if this source, compiler and flags have none."""
    cc = _compiler()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
    digest = hashlib.sha256("\0".join([SOURCE.read_text(), cc, version, *FLAGS, *LIBS]).encode()).hexdigest()[:16]
    folder = _cache_folder()
    target = folder / f"qlinear-{digest}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists():  # built by another process while this one waited
            return target
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            out = Path(tmp) / target.name
            done = subprocess.run([cc, *FLAGS, str(SOURCE), "-o", str(out), *LIBS], capture_output=True, text=True,
                                  timeout=300)
            if done.returncode:
                raise RuntimeError(f"{Path(cc).name} failed to build them: {done.stderr.strip()[:400]}")
            out.replace(target)
    log.info("built the native int8/int4 kernels: %s", target)
    return target


def _cache_folder() -> Path:
    env = os.environ.get("QWEN3TTS_NATIVE_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("qwen3tts-realtime", appauthor=False)) / "native"
