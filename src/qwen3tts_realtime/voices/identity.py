"""Model identity: which checkpoint a stored voice was prepared with, so another checkpoint never reuses it.

The identity is a SHA-256 over everything a voice depends on: `config.json`, `speech_tokenizer/config.json`,
and the raw bytes (with names, dtypes and shapes) of the tensors that make or use a voice: the speech
tokenizer's encoder (`encoder.*`, reference codes), the speaker encoder (`speaker_encoder.*`, x-vectors), and
the talker's embedding tables and text projection (the rows a voice's prompt prefix is built from). Two
checkpoints with the same config but other weights get different identities.

Hashing reads up to a gigabyte, so it is done once per checkpoint: memoised per checkpoint folder in the process and
cached on disk under the voice library (keyed by each file's size, mtime and inode; a changed file is
rehashed).
What this module does not do: hash the talker's transformer layers or the codec decoder (a voice does not
depend on them).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open

from .store import atomic_write

if TYPE_CHECKING:
    from .maker import VoiceMaker

__all__ = ["model_identity", "checkpoint_identity", "model_label"]

log = logging.getLogger("qwen3tts_realtime.voices")

IDENTITY_FORMAT = "qwen3tts-model-identity/1"
CONFIG_FILES = ("config.json", "speech_tokenizer/config.json")
WEIGHT_PREFIXES = {
    "model.safetensors": (
        "speaker_encoder.",
        "talker.model.codec_embedding.",
        "talker.model.text_embedding.",
        "talker.text_projection.",
        "talker.code_predictor.model.codec_embedding.",
    ),
    "speech_tokenizer/model.safetensors": ("encoder.",),
}
CHUNK_BYTES = 64 << 20  # hash large tables in slices of this size, so memory stays flat
_HUB_SNAPSHOT = re.compile(r"models--([^/\\]+)--([^/\\]+)[/\\]snapshots[/\\]")


def model_identity(tts: VoiceMaker, cache_dir: Path | None = None) -> str:
    """The identity of `tts`'s checkpoint (64 hex digits), memoised per folder in this process.

    Args:
        tts: a loaded model.
        cache_dir: where identities of checkpoints are cached across processes; None: no disk cache.
    """
    return _memo_identity(Path(tts.folder).resolve(), cache_dir)


@functools.lru_cache(maxsize=16)
def _memo_identity(folder: Path, cache_dir: Path | None) -> str:
    return checkpoint_identity(folder, cache_dir)


def checkpoint_identity(folder: Path, cache_dir: Path | None = None) -> str:
    """The identity of the checkpoint in `folder`, from the disk cache when its files are unchanged.

    Args:
        folder: a checkpoint in the official layout.
        cache_dir: folder of cached identities; None hashes every time.
    """
    folder = Path(folder).resolve()
    stamp = _stamp(folder)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{hashlib.sha256(os.fsencode(folder)).hexdigest()[:32]}.json"
        cached = _read_cached(cache_file, stamp)
        if cached is not None:
            return cached
    identity = hash_checkpoint(folder)
    if cache_file is not None:
        record = {"format": IDENTITY_FORMAT, "folder": str(folder), "stamp": stamp, "identity": identity}
        try:
            atomic_write(cache_file, json.dumps(record, sort_keys=True).encode())
        except OSError as e:  # a read-only cache only costs a rehash next time
            log.warning("cannot cache the model identity in %s: %s", cache_file, e)
    return identity


def hash_checkpoint(folder: Path) -> str:
    """Hash the configs and voice-related tensors of a checkpoint (the slow part; see the module doc)."""
    log.info("hashing the voice-related weights of %s (once per checkpoint)", folder)
    h = hashlib.sha256(IDENTITY_FORMAT.encode() + b"\0")
    for rel in CONFIG_FILES:
        data = (folder / rel).read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    for rel, prefixes in WEIGHT_PREFIXES.items():
        with safe_open(str(folder / rel), framework="pt") as f:
            for key in sorted(k for k in f.keys() if k.startswith(prefixes)):
                tensor = f.get_slice(key)
                shape = list(tensor.get_shape())
                h.update(f"{rel}\0{key}\0{tensor.get_dtype()}\0{shape}\0".encode())
                _hash_tensor(h, f, key, shape)
    return h.hexdigest()


def model_label(folder: Path) -> str:
    """A readable name for a checkpoint folder: "Qwen/Qwen3-TTS-12Hz-0.6B-Base" for a Hugging Face cache
    snapshot, else the folder's name."""
    match = _HUB_SNAPSHOT.search(str(folder))
    return f"{match.group(1)}/{match.group(2)}" if match else Path(folder).name


def _hash_tensor(h: Any, f: Any, key: str, shape: list[int]) -> None:
    if not shape or shape[0] == 0:
        h.update(_raw(f.get_tensor(key)))
        return
    sliced = f.get_slice(key)
    first = sliced[0:1]
    rows = max(1, CHUNK_BYTES // max(1, first.numel() * first.element_size()))
    for start in range(0, shape[0], rows):
        h.update(_raw(sliced[start : start + rows]))


def _raw(tensor: torch.Tensor) -> Any:
    """The tensor's bytes as stored (bfloat16 included), without a copy."""
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy()


def _stamp(folder: Path) -> dict[str, list[int]]:
    stamp = {}
    for rel in (*CONFIG_FILES, *WEIGHT_PREFIXES):
        st = (folder / rel).stat()
        stamp[rel] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return stamp


def _read_cached(cache_file: Path, stamp: dict[str, list[int]]) -> str | None:
    try:
        record = json.loads(cache_file.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != IDENTITY_FORMAT:
        return None
    if record.get("stamp") != stamp:
        return None
    identity = record.get("identity")
    return identity if isinstance(identity, str) and re.fullmatch(r"[0-9a-f]{64}", identity) else None
