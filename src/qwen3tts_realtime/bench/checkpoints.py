"""The model a benchmark runs: a random-weight checkpoint built once from a shipped config, or a given folder."""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock
from platformdirs import user_cache_dir

from qwen3tts_realtime.bench.options import MODEL_ALIASES
from qwen3tts_realtime.errors import InvalidInputError
from qwen3tts_realtime.model.random_checkpoint import write_random_checkpoint
from qwen3tts_realtime.model.shipped_configs import CONFIG_NAMES

__all__ = ["bench_checkpoint", "default_cache_dir"]


def default_cache_dir() -> Path:
    """Where random benchmark checkpoints are written: $QWEN3TTS_BENCH_CACHE or the user cache."""
    return Path(os.environ.get("QWEN3TTS_BENCH_CACHE") or Path(user_cache_dir("qwen3tts-realtime")) / "bench")


def bench_checkpoint(model: str, cache_dir: str | Path | None = None) -> tuple[Path, str]:
    """The checkpoint folder for `model` and its name in reports.

    `model`: an alias ("tiny", "0.6B", "1.7B"), a shipped config name ("0.6B-Base", ...) optionally prefixed
    "tiny-", or an existing checkpoint folder. Random checkpoints are written once (seed 0) under `cache_dir` and
    reused; their weights are random, so their speech is noise, but their speed is the real model's.

    Raises:
        InvalidInputError: neither a known name nor a folder.
    """
    if Path(model).is_dir():
        return Path(model), Path(model).name
    name = MODEL_ALIASES.get(model, model)
    tiny = name.startswith("tiny-")
    config = name.removeprefix("tiny-")
    if config not in CONFIG_NAMES:
        accepted = ", ".join([*MODEL_ALIASES, *CONFIG_NAMES, "tiny-<config>", "a checkpoint folder"])
        raise InvalidInputError(f"unknown benchmark model {model!r}; accepted: {accepted}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / name
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{name}.lock")):
        if not (folder / ".complete").exists():
            write_random_checkpoint(folder, config, tiny=tiny, seed=0)
            (folder / ".complete").touch()
    return folder, name
