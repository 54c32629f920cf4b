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
from torch import Tensor, nn

from ..errors import CheckpointError, InvalidInputError
from .memory import release_free_heap

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
    """The device to load on: the one rule for every surface (Python, CLI, server, Pipecat, LiveKit).

    `None` → "cuda" when torch sees a CUDA device, else "cpu" (logged). A named device must exist: "cuda" on a
    CPU-only torch build, or "cuda:3" with one GPU, is refused here with what to do, before any loading.

    Raises:
        InvalidInputError: not a torch device, or one this machine or torch build does not have.
    """
    if device is None:
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        log.info("device: %s (the default: cuda when torch sees a CUDA device, else cpu)", dev)
        return dev
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InvalidInputError(
            f"device={device!r} is not a torch device; use e.g. 'cpu', 'cuda', 'cuda:1', 'mps'"
        ) from e
    if dev.type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:  # ROCm builds say "cuda" too
            raise InvalidInputError(
                f"device={str(device)!r}: this torch ({torch.__version__}) is built without CUDA; install a CUDA "
                "build of torch (https://pytorch.org/get-started/locally/) or run on the CPU ('cpu')"
            )
        count = torch.cuda.device_count()
        if count == 0 or (dev.index is not None and dev.index >= count):
            raise InvalidInputError(
                f"device={str(device)!r}: torch sees {count} CUDA device(s) (check the driver and "
                "CUDA_VISIBLE_DEVICES), or run on the CPU ('cpu')"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidInputError(f"device={str(device)!r}: MPS is not available on this machine; run on the CPU ('cpu')")
    return dev


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
    with _TensorFile(file) as f:
        return f.keys()


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
    with _TensorFile(file) as f:
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
        read_bytes = 0
        for key in file_keys:
            name = key[len(prefix) :]
            if read_bytes > TRIM_EVERY_BYTES:  # temporaries freed so far go back to the OS, keeping the peak low
                release_free_heap()
                read_bytes = 0
            shape = f.shape(key)
            if shape != tuple(expected[name].shape):
                raise CheckpointError(
                    f"{file}: {key} has shape {shape}, config.json implies {tuple(expected[name].shape)}"
                )
            stored = f.dtype(key)
            if name in compact and stored.is_floating_point and stored.itemsize < dtype.itemsize:
                # narrower in the file than in compute: keep it so (the caller casts looked-up rows)
                state[name] = f.mapped(key) if device.type == "cpu" else f.read(key).to(device)
                continue
            tensor = f.read(key)
            read_bytes += tensor.numel() * tensor.element_size()
            if tensor.is_floating_point():
                tensor = tensor.to(dtype)
            if convert is not None and convert(name, tensor):
                continue
            state[name] = tensor.to(device)
    taken = set(expected) - set(state)  # installed by `convert`
    result = module.load_state_dict(state, strict=False, assign=True)
    unloaded = set(result.missing_keys) & set(expected) - taken
    assert not unloaded and not result.unexpected_keys, f"weights left unloaded: {sorted(unloaded)[:3]}"


TRIM_EVERY_BYTES = 128 << 20

_SAFETENSORS_DTYPES = {
    "BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


class _TensorFile:
    """A safetensors file read one tensor at a time with plain reads.

    safetensors' own loader maps the whole file, and every page it touches counts in the process's resident
    memory until the file is closed (a 1.8 GB checkpoint inflated the peak by as much); here a tensor costs only
    its own buffer, and `mapped()` gives a private map for tables that are looked up rather than read whole.
    """

    def __init__(self, file: Path) -> None:
        self.file = file
        self._fh = open(file, "rb")
        try:
            header_len = int.from_bytes(self._fh.read(8), "little")
            header = json.loads(self._fh.read(header_len))
        except (ValueError, UnicodeDecodeError) as e:
            self._fh.close()
            raise CheckpointError(f"{file} is not a safetensors file ({e})") from e
        header.pop("__metadata__", None)
        self._info, self._data_start = header, 8 + header_len

    def __enter__(self) -> _TensorFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

    def keys(self) -> list[str]:
        return sorted(self._info)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._info[key]["shape"])

    def dtype(self, key: str) -> torch.dtype:
        name = self._info[key]["dtype"]
        if name not in _SAFETENSORS_DTYPES:
            raise CheckpointError(f"{self.file}: {key} has dtype {name}, which this loader does not read")
        return _SAFETENSORS_DTYPES[name]

    def read(self, key: str) -> Tensor:
        start, end = self._info[key]["data_offsets"]
        buf = bytearray(end - start)
        self._fh.seek(self._data_start + start)
        if self._fh.readinto(buf) != len(buf):
            raise CheckpointError(f"{self.file} is truncated: {key} ends past the end of the file")
        if not buf:
            return torch.empty(self.shape(key), dtype=self.dtype(key))
        return torch.frombuffer(buf, dtype=self.dtype(key)).view(self.shape(key))

    def mapped(self, key: str) -> Tensor:
        """`key` over a private (copy-on-write) map of the file: pages load when rows are looked up, so a
        151,936-row text embedding costs only the rows a process reads."""
        start, end = self._info[key]["data_offsets"]
        mapped = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_COPY)
        dtype = self.dtype(key)
        count = (end - start) // dtype.itemsize
        return torch.frombuffer(mapped, dtype=dtype, count=count, offset=self._data_start + start).view(self.shape(key))
