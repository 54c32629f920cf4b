"""The voice library's folder: content-addressed voice entries and a name index, safe against crashes and
concurrent writers.

    <voice dir>/entries/<key>.safetensors   one voice: its tensors, its fields as JSON metadata, a SHA-256
    <voice dir>/names/<name>.json           a name → content key record (with kind, model, time), checksummed
    <voice dir>/models/<hash>.json          cached model identities (`identity.py`)
    <voice dir>/locks/                      filelock files: for preparing voices, and for the name index

Every file is written to a temporary file in its folder, fsynced and renamed over the target (then the folder
is fsynced), so a reader sees the old file or the new one, never a torn one. A writer killed mid-way leaves a
temporary file, and one killed between storing an entry and naming it leaves an entry no name points to:
opening the store sweeps both once they are an hour old (younger ones may belong to a live writer; an
unnamed entry is only a cache of work, prepared again if ever asked for). A file that is truncated, has a
flipped byte or does not parse fails its checksum and is reported as damaged, never loaded; the library then
prepares the voice again and replaces it. Tensors are read with safetensors only after the checksum passed;
nothing is unpickled. Names are checked against `NAME_PATTERN`, so no name can point outside the folder.
What this module does not do: compute voices or decide what a key is (`library.py` does).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ..errors import InvalidInputError
from .profile import VoiceProfile

__all__ = ["VoiceStore", "VoiceInfo", "DamagedEntryError", "validate_name", "atomic_write", "NAME_PATTERN",
           "encode_entry", "decode_entry", "encode_name", "decode_name", "unknown_name"]

log = logging.getLogger("qwen3tts_realtime.voices")

ENTRY_FORMAT = "qwen3tts-voice/1"
NAME_FORMAT = "qwen3tts-voice-name/1"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
MAX_HEADER_BYTES = 1 << 20
STALE_TEMP_S = 3600.0  # temp files of writers killed mid-write are removed after this long
STALE_ORPHAN_S = 3600.0  # entries no name points to are removed after this long (a live writer names its own
                         # within moments of storing it)
KINDS = ("clone_icl", "clone_xvector", "speaker", "design")
TEXT_FIELDS = ("speaker", "instruct", "ref_text")
PROFILE_FIELDS = ("kind", "model_type", "hidden_size", *TEXT_FIELDS)
TENSOR_FIELDS = ("speaker_embedding", "ref_codes")


class DamagedEntryError(Exception):
    """A stored file failed its checksum or does not hold a valid voice; the message says how."""


@dataclass(frozen=True)
class VoiceInfo:
    """What the library knows about a named voice, without loading it.

    Attributes:
        name: the library name.
        key: the content key of its entry (64 hex digits).
        kind: "clone_icl", "clone_xvector", "speaker" or "design".
        model: the checkpoint it was prepared with, readable (folder or Hugging Face id).
        model_id: that checkpoint's identity (see `identity.py`).
        created: when the name was (re)bound, seconds since the epoch.
    """

    name: str
    key: str
    kind: str
    model: str
    model_id: str
    created: float


def validate_name(name: object) -> str:
    """`name` if it is a valid voice name, else InvalidInputError (keeps every path inside the folder)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            f"invalid voice name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (e.g. 'agent-anna')"
        )
    return name


def unknown_name(name: str, location: object, infos: list[VoiceInfo]) -> InvalidInputError:
    known = ", ".join(i.name for i in infos) or "none"
    return InvalidInputError(f"no voice named {name!r} in {location}; voices: {known}")


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a fsynced temporary file and a rename: all or nothing, crash or not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


class VoiceStore:
    """The files of one voice folder (see the module docstring). Safe to share by threads and processes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()
        for sub in ("entries", "names", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.sweep_temp()
        self.sweep_orphans()

    @property
    def location(self) -> Path:
        return self.root

    @property
    def identity_dir(self) -> Path:
        return self.root / "models"

    # ---- entries ------------------------------------------------------------------------------------------

    def entry_path(self, key: str) -> Path:
        if not KEY_PATTERN.fullmatch(key):
            raise ValueError(f"not a content key: {key!r}")
        return self.root / "entries" / f"{key}.safetensors"

    def has_entry(self, key: str) -> bool:
        return self.entry_path(key).is_file()

    def read_entry(self, key: str) -> tuple[VoiceProfile, dict[str, Any]] | None:
        """The voice stored under `key` and its metadata; None if there is none.

        Raises:
            DamagedEntryError: the file is truncated, altered or not a voice entry.
        """
        try:
            raw = self.entry_path(key).read_bytes()
        except FileNotFoundError:
            return None
        return decode_entry(raw, key)

    def write_entry(self, key: str, profile: VoiceProfile, meta: dict[str, Any]) -> None:
        atomic_write(self.entry_path(key), encode_entry(profile, {**meta, "key": key}))

    def remove_entry(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.entry_path(key).unlink()

    def usage(self) -> tuple[int, int]:
        """(number of entries, their total bytes)."""
        sizes = [p.stat().st_size for p in (self.root / "entries").glob("*.safetensors")]
        return len(sizes), sum(sizes)

    # ---- names --------------------------------------------------------------------------------------------

    def read_name(self, name: str) -> VoiceInfo | None:
        """The record of `name`; None if there is none or it is damaged (a damaged one is logged)."""
        path = self.root / "names" / f"{validate_name(name)}.json"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return decode_name(raw, name)
        except DamagedEntryError as e:
            log.warning("ignoring damaged voice name record %s: %s", path, e)
            return None

    def write_name(self, info: VoiceInfo) -> None:
        atomic_write(self.root / "names" / f"{validate_name(info.name)}.json", encode_name(info))

    def remove(self, name: str) -> VoiceInfo | None:
        """Unbind `name` (returning its record; None if that was damaged), and delete its entry unless another
        name shares it.

        Raises:
            InvalidInputError: no such name.
        """
        path = self.root / "names" / f"{validate_name(name)}.json"
        with self.index_lock():
            info = self.read_name(name)
            if info is None and not path.exists():
                raise unknown_name(name, self.root, self.names())
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                _fsync_dir(path.parent)
            if info is not None and all(other.key != info.key for other in self.names()):
                self.remove_entry(info.key)
        return info

    def names(self) -> list[VoiceInfo]:
        """Every valid name record, sorted by name."""
        names = sorted(p.stem for p in (self.root / "names").glob("*.json") if NAME_PATTERN.fullmatch(p.stem))
        return [info for name in names if (info := self.read_name(name)) is not None]

    # ---- locks and housekeeping ---------------------------------------------------------------------------

    def key_lock(self, key: str, timeout_s: float) -> FileLock:
        """Held while a voice is prepared, so two processes do not compute the same one. Keys share 256 lock
        files by their first two hex digits: a bounded set that never needs deleting (deleting a lock file
        another process waits on would let two holders in)."""
        self.entry_path(key)  # validates the key
        return FileLock(self.root / "locks" / f"prepare-{key[:2]}.lock", timeout=timeout_s)

    def index_lock(self) -> FileLock:
        """Held while names are bound or removed (short), so a removal never orphans a name being bound."""
        return FileLock(self.root / "locks" / "index.lock")

    def sweep_temp(self) -> None:
        """Remove temporary files left by writers that were killed (older than an hour)."""
        cutoff = time.time() - STALE_TEMP_S
        for sub in ("entries", "names", "models"):
            for path in (self.root / sub).glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()

    def sweep_orphans(self) -> None:
        """Remove entries no name record points to, older than an hour (what a writer killed between storing
        and naming leaves, or what a rebound name left behind). Under the index lock, so a name being bound
        keeps its entry (binding restores an entry removed before it took the lock)."""
        cutoff = time.time() - STALE_ORPHAN_S
        with self.index_lock():
            named = {info.key for info in self.names()}
            for path in (self.root / "entries").glob("*.safetensors"):
                if path.stem in named or not KEY_PATTERN.fullmatch(path.stem):
                    continue
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        log.info("removed voice entry %s: no name points to it", path.stem)


# ---- entry encoding ---------------------------------------------------------------------------------------


def encode_entry(profile: VoiceProfile, meta: dict[str, Any]) -> bytes:
    """A safetensors file of the profile's tensors, its fields and `meta` as JSON metadata, and a checksum
    over the header (less the checksum) and the tensor bytes."""
    fields = {name: getattr(profile, name) for name in PROFILE_FIELDS}
    voice = _canonical({"format": ENTRY_FORMAT, "profile": fields, **meta}).decode()
    tensors = {
        name: t.detach().to("cpu").contiguous()
        for name in TENSOR_FIELDS
        if (t := getattr(profile, name)) is not None
    }
    unsigned = save_tensors(tensors, metadata={"voice": voice})
    header, data = _split(unsigned)
    return save_tensors(tensors, metadata={"voice": voice, "sha256": _entry_digest(header, data)})


def decode_entry(raw: bytes, key: str | None = None) -> tuple[VoiceProfile, dict[str, Any]]:
    """The profile and metadata of an entry file (stored under `key`, when given).

    Raises:
        DamagedEntryError: truncated, altered (checksum mismatch), not a valid voice entry, or the entry of
            another key.
    """
    header, data = _split(raw)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("sha256"), str):
        raise DamagedEntryError("no checksum in the header")
    if _entry_digest(header, data) != metadata["sha256"]:
        raise DamagedEntryError("checksum mismatch (the file was altered or only partly written)")
    try:
        meta = json.loads(metadata["voice"])
        tensors = load_tensors(raw)
    except Exception as e:  # verified bytes should always parse; anything else is damage
        raise DamagedEntryError(f"unreadable after a valid checksum: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != ENTRY_FORMAT:
        raise DamagedEntryError(f"not a {ENTRY_FORMAT} entry")
    if not isinstance(meta.get("profile"), dict):
        raise DamagedEntryError(f"not a {ENTRY_FORMAT} entry")
    if key is not None and meta.get("key") != key:
        raise DamagedEntryError(f"entry {key} holds the voice of key {meta.get('key')!r}")
    return _profile(meta["profile"], tensors), meta


def _profile(fields: dict[str, Any], tensors: dict[str, torch.Tensor]) -> VoiceProfile:
    kind, hidden = fields.get("kind"), fields.get("hidden_size")
    text = {name: fields.get(name) for name in TEXT_FIELDS}
    emb, codes = tensors.get("speaker_embedding"), tensors.get("ref_codes")
    problems = []
    if kind not in KINDS or not isinstance(fields.get("model_type"), str):
        problems.append(f"kind {kind!r}")
    if hidden is not None and (isinstance(hidden, bool) or not isinstance(hidden, int)):
        problems.append(f"hidden_size {hidden!r}")
    problems += [f"{k} {v!r}" for k, v in text.items() if v is not None and not isinstance(v, str)]
    if kind in ("clone_icl", "clone_xvector") and (
        emb is None or emb.dtype != torch.float32 or emb.shape != (hidden,)
    ):
        problems.append("speaker_embedding")
    if kind == "clone_icl" and (
        codes is None or codes.dtype != torch.int64 or codes.ndim != 2 or codes.shape[1] != 16
        or not text["ref_text"]
    ):
        problems.append("ref_codes/ref_text")
    if kind == "speaker" and not text["speaker"]:
        problems.append("speaker")
    if problems:
        raise DamagedEntryError(f"invalid voice fields: {', '.join(problems)}")
    return VoiceProfile(
        kind, fields["model_type"], hidden_size=hidden, speaker_embedding=emb, ref_codes=codes, **text
    )


def _split(raw: bytes) -> tuple[dict[str, Any], memoryview]:
    """The safetensors header (parsed with json, not by the native reader) and the tensor bytes after it."""
    if len(raw) < 8:
        raise DamagedEntryError(f"{len(raw)} bytes: truncated")
    size = int.from_bytes(raw[:8], "little")
    if size > min(MAX_HEADER_BYTES, len(raw) - 8):
        raise DamagedEntryError(f"header length {size} does not fit the {len(raw)}-byte file: truncated")
    try:
        header = json.loads(raw[8 : 8 + size])
    except (UnicodeDecodeError, ValueError) as e:
        raise DamagedEntryError(f"header does not parse: {e}") from e
    if not isinstance(header, dict):
        raise DamagedEntryError("header is not a JSON object")
    data = memoryview(raw)[8 + size :]
    ends = [info.get("data_offsets", [0])[-1] for info in header.values() if isinstance(info, dict)]
    expected = max((e for e in ends if isinstance(e, int)), default=0)  # (__metadata__ has no offsets)
    if len(data) < expected:
        raise DamagedEntryError(f"{len(data)} of {expected} tensor bytes: truncated")
    return header, data


def _entry_digest(header: dict[str, Any], data: memoryview) -> str:
    unsigned = dict(header)
    unsigned["__metadata__"] = {k: v for k, v in (header.get("__metadata__") or {}).items() if k != "sha256"}
    h = hashlib.sha256(_canonical(unsigned))
    h.update(b"\0")
    h.update(data)
    return h.hexdigest()


# ---- name records -----------------------------------------------------------------------------------------


def encode_name(info: VoiceInfo) -> bytes:
    """A name record: the info's fields and a checksum over them, as canonical JSON."""
    record = {"format": NAME_FORMAT, **info.__dict__}
    record["sha256"] = _json_digest(record)
    return _canonical(record)


def decode_name(raw: bytes, name: str) -> VoiceInfo:
    try:
        record = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise DamagedEntryError(f"does not parse: {e}") from e
    if not isinstance(record, dict) or record.get("format") != NAME_FORMAT:
        raise DamagedEntryError(f"not a {NAME_FORMAT} record")
    if record.pop("sha256", None) != _json_digest(record):
        raise DamagedEntryError("checksum mismatch")
    record.pop("format")
    try:
        info = VoiceInfo(**record)
    except TypeError as e:
        raise DamagedEntryError(str(e)) from e
    if info.name != name or not isinstance(info.key, str) or not KEY_PATTERN.fullmatch(info.key):
        raise DamagedEntryError(f"record of {info.name!r} → {info.key!r}")
    return info


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _json_digest(record: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "sha256"})).hexdigest()


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable. Not possible on Windows (folders cannot be opened), where it is skipped."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
