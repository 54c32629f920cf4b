"""One engine per worker process: `load_engine` (memoised) and `download_files` (weights ahead of time).

LiveKit runs each job in a process (the default) or a thread of a shared process. Every `load_engine` call in
a process with the same (model, device, dtype) returns the same engine, so jobs running as threads share one
model and one step loop, and their streams batch together. Nothing here imports livekit.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...engine.protocol import TTSEngine

__all__ = ["DEFAULT_MODEL", "MODEL_ENV", "default_model", "download_files", "engine_model_name",
           "load_engine"]

log = logging.getLogger("qwen3tts_realtime.livekit")

DEFAULT_MODEL = "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice"
MODEL_ENV = "QWEN3TTS_MODEL"  # overrides DEFAULT_MODEL for load_engine() and `download-files`

# The process-wide engines, by (model, device, dtype). Guarded by _LOCK: LiveKit may run several job
# threads' setup functions at once, and a model must load only once.
_ENGINES: dict[tuple[str, str, str, str | None], TTSEngine] = {}
_LOCK = threading.Lock()


def default_model() -> str:
    """The model `load_engine()` and `download_files()` use when given none: $QWEN3TTS_MODEL, else
    DEFAULT_MODEL."""
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


def load_engine(
    model: str | Path | None = None,
    *,
    device: str | None = None,
    dtype: str | None = None,
    quantize: str | None = None,
    warmup: bool = True,
) -> TTSEngine:
    """The process's engine for `model` on `device`: loaded (and warmed up) on the first call, then shared.

    Call it in the worker's `setup_fnc` (it blocks while the model loads): with
    `job_executor_type=JobExecutorType.THREAD` every job of the process gets this same engine.

    Args:
        model: a Hugging Face id or a checkpoint folder; `None` = `default_model()`.
        device: "cuda", "cuda:1", "cpu", ...; `None` = "cuda" when available, else "cpu".
        dtype: "bfloat16", "float32", ...; `None` = bfloat16 on accelerators, float32 on CPU.
        quantize: CPU weight format, "fp16", "int8", "int4" or "w8a8" (see `Qwen3TTS.from_pretrained`);
            `None` = none.
        warmup: run a tiny generation once loaded, so the first call pays no one-time costs.

    Returns:
        A `Qwen3TTS`, which implements the `TTSEngine` protocol.

    Raises:
        CheckpointError: not a Qwen3-TTS checkpoint, or the download failed.
        InvalidInputError: unknown device or dtype.
    """

    from ...model.checkpoint import parse_device, parse_dtype
    from ...tts import Qwen3TTS

    model = default_model() if model is None else model
    dev = parse_device(device)
    dt = parse_dtype(dtype, dev)
    path = Path(model).expanduser()
    key = (str(path.resolve()) if path.is_dir() else str(model), str(dev), str(dt).removeprefix("torch."), quantize)
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            log.info("loading %s on %s (%s)", key[0], key[1], key[2])
            loaded = Qwen3TTS.from_pretrained(model, device=dev, dtype=dt, quantize=quantize)
            if warmup:
                loaded.warmup()
            _ENGINES[key] = engine = loaded
    return engine


def engine_model_name(engine: object) -> str | None:
    """The model an engine from `load_engine` was loaded from (a hub id or a folder name); None otherwise."""
    for (model, *_), loaded in list(_ENGINES.items()):  # no lock: a load in progress must not block a loop
        if loaded is engine:
            return Path(model).name if Path(model).is_dir() else model
    return None


def download_files(model: str | Path | None = None, *, revision: str | None = None) -> Path:
    """Fetch a model's weights into the Hugging Face cache now, so the first `load_engine` does not download.

    `python -m livekit.agents download-files` calls this (through the plugin) for `default_model()`.

    Args:
        model: a Hugging Face id or a checkpoint folder (nothing to fetch: returned as is); `None` =
            `default_model()`.
        revision: a Hugging Face revision for hub ids.

    Returns:
        The local folder holding the checkpoint.
    """
    model = default_model() if model is None else model
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    log.info("downloading %s from the Hugging Face Hub", model)
    return Path(snapshot_download(str(model), revision=revision))
