"""Shared benchmark helpers: the machine description and cached random-weight checkpoints."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from qwen3tts_realtime.bench.machine import describe_machine

RESULTS = Path(__file__).resolve().parent / "results"
CACHE = Path(os.environ.get("QWEN3TTS_BENCH_CACHE", Path(__file__).resolve().parent / ".cache"))
GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return describe_machine()


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
