"""Shared benchmark helpers: the machine description and cached random-weight checkpoints."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"
CACHE = Path(os.environ.get("QWEN3TTS_BENCH_CACHE", Path(__file__).resolve().parent / ".cache"))
GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def checkpoint(config: str) -> Path:
    """A model folder: "tiny-<type>" = the golden tiny checkpoints, else a full-size random checkpoint
    written once under the cache (e.g. "0.6B-CustomVoice")."""
    if config.startswith("tiny-"):
        return GOLDEN / "tiny" / config.removeprefix("tiny-")
    from qwen3tts_realtime.model.random_checkpoint import write_random_checkpoint

    folder = CACHE / config
    if not (folder / "speech_tokenizer" / "model.safetensors").exists():
        source = write_random_checkpoint(folder, config)
        print(f"wrote random {config} checkpoint to {folder} (text tokenizer: {source})")
    return folder


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
