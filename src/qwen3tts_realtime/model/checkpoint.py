"""Checkpoint resolution and strict weight loading (spec §1).

A checkpoint is a local folder or a Hugging Face id (downloaded with `huggingface_hub.snapshot_download`,
with its progress bar). Weights load from `model.safetensors` and `speech_tokenizer/model.safetensors`
unchanged: every module key must be in the file and every file key must be used, else a `CheckpointError`
names the key. Tensors are cast to the requested dtype and placed on the requested device.
"""

from __future__ import annotations

import json
import logging
import mmap
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor, nn

from ..errors import CheckpointError, InvalidInputError

__all__ = ["resolve_checkpoint", "load_module_weights", "parse_dtype", "parse_device", "checkpoint_keys"]

log = logging.getLogger("qwen3tts_realtime.model")

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "speech_tokenizer/config.json",
    "speech_tokenizer/model.safetensors",
)


def parse_device(device: str | torch.device | None) -> torch.device:
    """`None` → CPU; anything torch accepts as a device otherwise."""
    if device is None:
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InvalidInputError(
            f"device={device!r} is not a torch device; use e.g. 'cpu', 'cuda', 'cuda:1', 'mps'"
        ) from e


def parse_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Validate the compute dtype for a device.

    float32 and float64 run on CPU (and any device that supports them); bfloat16 runs anywhere (emulated and
    slow on CPUs without native support); float16 only on accelerators (CPU half-precision kernels are
    incomplete). `None` → float32 on CPU, bfloat16 elsewhere.
    """
    if dtype is None:
        return torch.float32 if device.type == "cpu" else torch.bfloat16
    if isinstance(dtype, torch.dtype):
        name = next((k for k, v in DTYPES.items() if v == dtype), None)
    else:
        name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise InvalidInputError(f"dtype={dtype!r} is not supported; accepted: {', '.join(DTYPES)}")
    if name == "float16" and device.type == "cpu":
        raise InvalidInputError(
            "dtype='float16' is not supported on CPU; use 'float32' (or 'bfloat16', emulated) on CPU, "
            "float16 on a GPU"
        )
    return DTYPES[name]


def resolve_checkpoint(model: str | Path, *, revision: str | None = None, cache_dir: str | None = None) -> Path:
    """A local checkpoint folder, downloading `model` from the Hugging Face Hub when it is not a folder.

    Raises:
        CheckpointError: the folder lacks a Qwen3-TTS file, or the id cannot be downloaded.
    """
    path = Path(model).expanduser()
    if not path.is_dir():
        if path.exists() or str(model).count("/") != 1 or str(model).startswith((".", "/", "~")):
            raise CheckpointError(
                f"{model!s} is neither a checkpoint folder nor a Hugging Face id like "
                "'Qwen/Qwen3-TTS-12Hz-0.6B-Base'"
            )
        path = _download(str(model), revision=revision, cache_dir=cache_dir)
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise CheckpointError(
            f"{path} is not a Qwen3-TTS 12 Hz checkpoint folder: missing {', '.join(missing)} "
            "(expected config.json, model.safetensors, tokenizer files and speech_tokenizer/)"
        )
    return path


def _download(repo_id: str, *, revision: str | None, cache_dir: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    log.info("downloading %s from the Hugging Face Hub", repo_id)
    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as e:
        raise CheckpointError(
            f"cannot download {repo_id!r} from the Hugging Face Hub ({type(e).__name__}: {e}); "
            "pass a local checkpoint folder instead, or check the id and your network"
        ) from e


def checkpoint_keys(file: Path) -> list[str]:
    with safe_open(str(file), framework="pt") as f:
        return list(f.keys())


def load_module_weights(
    module: nn.Module,
    file: Path,
    prefix: str,
    *,
    dtype: torch.dtype,
    device: torch.device,
    ignore_prefixes: Iterable[str] = (),
    compact: Iterable[str] = (),
    convert: Callable[[str, Tensor], bool] | None = None,
) -> None:
    """Load `file`'s tensors under `prefix` into `module` strictly, cast to `dtype` on `device`.

    Keys of the file outside `prefix` belong to other modules; pass prefixes of such keys in `ignore_prefixes`
    only when they are checked elsewhere. Floating tensors are cast; integer buffers keep their dtype.

    Args:
        compact: module keys of tables that are only looked up (embeddings): kept in the file's dtype when it is
            narrower than `dtype` (the official bfloat16 values are exact in float32, so the caller casts rows
            after lookup) and, on the CPU, memory-mapped from the file instead of copied.
        convert: called with (module key, tensor in `dtype`) one tensor at a time; returns True when it took
            the tensor itself (e.g. quantized a layer's weight), so no float copy of the whole module is held.
    """
    compact = set(compact)
    expected = module.state_dict()
    with safe_open(str(file), framework="pt", device="cpu") as f:
        file_keys = [k for k in f.keys() if k.startswith(prefix)]
        present = {k[len(prefix) :] for k in file_keys}
        missing = sorted(set(expected) - present)
        unexpected = sorted(present - set(expected))
        if missing:
            raise CheckpointError(
                f"{file} lacks {len(missing)} tensor(s) the model needs, e.g. {prefix}{missing[0]}: "
                "the checkpoint is incomplete or not a Qwen3-TTS 12 Hz checkpoint of this type"
            )
        if unexpected:
            raise CheckpointError(
                f"{file} has {len(unexpected)} tensor(s) this model does not know, e.g. {prefix}{unexpected[0]}: "
                "the checkpoint does not match its config.json"
            )
        state = {}
        for key in file_keys:
            name = key[len(prefix) :]
            shape = tuple(f.get_slice(key).get_shape())
            if shape != tuple(expected[name].shape):
                raise CheckpointError(
                    f"{file}: {key} has shape {shape}, config.json implies {tuple(expected[name].shape)}"
                )
            if name in compact:
                state[name] = _compact_tensor(f, file, key, dtype, device)
                continue
            tensor = f.get_tensor(key)
            if tensor.is_floating_point():
                tensor = tensor.to(dtype)
            if convert is not None and convert(name, tensor):
                continue
            state[name] = tensor.to(device)
    taken = set(expected) - set(state)  # installed by `convert`
    result = module.load_state_dict(state, strict=False, assign=True)
    unloaded = set(result.missing_keys) & set(expected) - taken
    assert not unloaded and not result.unexpected_keys, f"weights left unloaded: {sorted(unloaded)[:3]}"


def _compact_tensor(f, file: Path, key: str, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A lookup table in the narrower of its file dtype and `dtype`; memory-mapped on the CPU."""
    stored = f.get_slice(key).get_dtype()
    file_dtype = _SAFETENSORS_DTYPES.get(stored)
    if file_dtype is None or torch.finfo(file_dtype).bits >= torch.finfo(dtype).bits:
        return f.get_tensor(key).to(dtype).to(device)
    if device.type != "cpu":
        return f.get_tensor(key).to(device)
    return _mmap_tensor(file, key)


_SAFETENSORS_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def _mmap_tensor(file: Path, key: str) -> Tensor:
    """`key` of a safetensors file as a tensor over a private memory map: pages load when rows are looked up,
    so a 151,936-row text embedding costs only the rows a process reads."""
    with open(file, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        info = json.loads(fh.read(header_len))[key]
        start, end = info["data_offsets"]
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
    dtype = _SAFETENSORS_DTYPES[info["dtype"]]
    count = (end - start) // torch.tensor([], dtype=dtype).element_size()
    flat = torch.frombuffer(mapped, dtype=dtype, count=count, offset=8 + header_len + start)
    return flat.view(info["shape"])
