"""One engine per worker process: `load_engine` (memoised), `engine_load` (the worker's load for LiveKit's
dispatcher) and `download_files` (weights ahead of time).

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

__all__ = ["DEFAULT_LOAD_THRESHOLD", "DEFAULT_MODEL", "MODEL_ENV", "default_model", "download_files",
           "engine_load", "engine_model_name", "load_engine"]

log = logging.getLogger("qwen3tts_realtime.livekit")

DEFAULT_MODEL = "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice"
MODEL_ENV = "QWEN3TTS_MODEL"  # overrides DEFAULT_MODEL for load_engine() and `download-files`
DEFAULT_LOAD_THRESHOLD = 0.75
"""The `load_threshold` to pair with `engine_load`: with the default 16 streams the worker stops taking new jobs
at 12 streams speaking or waiting, keeping a quarter of the slots for the turns of the calls it already has."""

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
    max_streams: int | None = None,
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
        max_streams: the engine's capacity, streams generating at once (more wait in its queue); `None` = the
            engine's default (16). `engine_load` reports occupancy against it. Set by the call that loads.
        warmup: run a tiny generation once loaded, so the first call pays no one-time costs.

    Returns:
        A `Qwen3TTS`, which implements the `TTSEngine` protocol.

    Raises:
        CheckpointError: not a Qwen3-TTS checkpoint, or the download failed.
        InvalidInputError: unknown device or dtype, or a `max_streams` below 1.
    """

    from ...errors import InvalidInputError
    from ...model.checkpoint import parse_device, parse_dtype
    from ...tts import Qwen3TTS

    if max_streams is not None and (isinstance(max_streams, bool) or not isinstance(max_streams, int)
                                    or max_streams < 1):
        raise InvalidInputError(f"max_streams={max_streams!r}; give an int >= 1 (streams generating at once)")

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
            if max_streams is not None:
                loaded.max_streams = max_streams  # read when its engine starts (warmup starts it)
            if warmup:
                loaded.warmup()
            _ENGINES[key] = engine = loaded
        elif max_streams is not None and engine.stats()["max_streams"] != max_streams:
            log.warning("load_engine(max_streams=%d): the engine of %s was loaded with max_streams=%d; keeping it",
                        max_streams, key[0], engine.stats()["max_streams"])
    return engine


def engine_load(server: object = None) -> float:
    """LiveKit's `load_fnc`: how busy this process's engines are, in [0, 1].

    (streams generating + streams queued) / `max_streams` of the busiest engine `load_engine` loaded in this
    process, capped at 1; 0 before any is loaded. Pass it with `load_threshold=DEFAULT_LOAD_THRESHOLD` (or your
    own) to `AgentServer`: LiveKit stops dispatching jobs to a worker whose load reaches the threshold, so a
    full engine stops receiving calls instead of queueing them. LiveKit's default load is CPU usage, which says
    nothing about free engine slots (and an engine on a GPU keeps the CPU nearly idle).

    It counts streams, not calls: a call between turns holds no stream. Run jobs as threads
    (`JobExecutorType.THREAD`): the engine lives in the worker's process, where LiveKit calls this.

    Args:
        server: the `AgentServer` (LiveKit passes it; unused).
    """
    busiest = 0.0
    for engine in list(_ENGINES.values()):  # no lock: loading must not block LiveKit's load task
        stats = engine.stats()
        used = stats["active_streams"] + stats["queued_streams"]
        busiest = max(busiest, used / max(1, stats["max_streams"]))
    return min(1.0, busiest)


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
