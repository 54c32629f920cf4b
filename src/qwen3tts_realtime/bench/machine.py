"""What a benchmark ran on, and how much memory the process holds (Linux /proc, else getrusage)."""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "describe_machine", "cpu_caches", "cpu_isa_flags", "load_average", "peak_rss_bytes", "reset_peak_rss", "rss_bytes"
]


def describe_machine(device: str = "cpu") -> dict[str, Any]:
    """CPU model, cores, torch threads and versions, the accelerator (or "none") and the UTC date."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    accelerator = "none"
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        accelerator = torch.cuda.get_device_name(torch.device(device))
    return {
        "cpu": cpu,
        "isa": cpu_isa_flags(),
        "caches": cpu_caches(),
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "accelerator": accelerator,
        "load_average_1_5_15": load_average(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
             "avx_vnni", "amx_bf16", "amx_int8", "amx_tile", "asimd", "sve", "bf16", "i8mm")


def cpu_isa_flags() -> list[str]:
    """The vector ISA features that decide which kernels are fast (from /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    return [f for f in ISA_FLAGS if f in flags]


def cpu_caches() -> dict[str, str]:
    """Cache sizes of CPU 0 by level and type, e.g. {"L1d": "32K", "L2": "512K", "L3": "32768K"}."""
    out: dict[str, str] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        out[f"L{level}{suffix}"] = size
    return out


def load_average() -> list[float]:
    """1/5/15-minute load averages: how busy the machine was (other work slows every figure)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return [0.0, 0.0, 0.0]


def rss_bytes() -> int:
    """The process's resident memory now."""
    value = _proc_status("VmRSS")
    return value if value is not None else peak_rss_bytes()


def reset_peak_rss() -> bool:
    """Start the peak (VmHWM) afresh from the current resident memory (Linux), so work done before the
    measurement (writing a random checkpoint) does not count; False where the OS does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """The process's peak resident memory so far (VmHWM; getrusage where /proc is missing)."""
    value = _proc_status("VmHWM")
    if value is not None:
        return value
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024  # macOS: bytes, Linux: kB


def _proc_status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
