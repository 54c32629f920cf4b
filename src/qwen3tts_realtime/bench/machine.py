"""What a benchmark ran on, and how much memory the process holds (Linux /proc, else getrusage)."""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["describe_machine", "load_average", "peak_rss_bytes", "rss_bytes"]


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
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "accelerator": accelerator,
        "load_average_1_5_15": load_average(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


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
