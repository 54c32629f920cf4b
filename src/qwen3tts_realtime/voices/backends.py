"""Where a voice library keeps its voices: the `VoiceBackend` interface and `open_voice_store`.

Two backends: a folder (`store.VoiceStore`; on a shared volume, every replica of a deployment sees the same
voices, within what its file locks are safe on, see below) and Redis (`redis_store.RedisVoiceStore`, extra
`[redis]`). Both hold the same checksummed entry and name records, so nothing loaded from either is trusted
before its checksum passes. A library location is a folder path or a Redis URL:

    /srv/voices                          a folder (created if missing)
    redis://redis:6379/0                 Redis (rediss:// for TLS, unix:///run/redis.sock for a socket);
    redis://:password@redis:6379/0?prefix=agents   `prefix` namespaces the keys (default "qwen3tts")

Folder locking: `filelock` files, safe between processes of one machine and on network file systems whose
`flock`/`fcntl` locks work across machines (NFSv4, CephFS; not most SMB mounts or NFSv3 without lockd). Writes
are atomic renames everywhere, so a reader never sees a torn file even where locks do not hold: at worst two
replicas prepare the same voice twice. Redis locks (`SET NX` with expiry) hold across machines.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from .profile import VoiceProfile
from .store import VoiceInfo, VoiceStore

__all__ = ["VoiceBackend", "StoreLock", "is_store_url", "open_voice_store"]

_URL_SCHEMES = ("redis://", "rediss://", "unix://")


class StoreLock(Protocol):
    """A lock of the store: `acquire()` raises `filelock.Timeout` when it cannot be had in its time."""

    def acquire(self) -> Any: ...
    def release(self) -> Any: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> Any: ...


class VoiceBackend(Protocol):
    """What `VoiceLibrary` needs of a store. Safe to share by threads, processes and (Redis, shared volumes)
    machines."""

    @property
    def location(self) -> str | Path:
        """Where the voices are, for messages (a folder, or a Redis URL without its password)."""

    @property
    def identity_dir(self) -> Path:
        """A local folder for cached checkpoint identities (they describe local files)."""

    def has_entry(self, key: str) -> bool: ...
    def read_entry(self, key: str) -> tuple[VoiceProfile, dict[str, Any]] | None: ...
    def write_entry(self, key: str, profile: VoiceProfile, meta: dict[str, Any]) -> None: ...
    def remove_entry(self, key: str) -> None: ...
    def usage(self) -> tuple[int, int]: ...
    def read_name(self, name: str) -> VoiceInfo | None: ...
    def write_name(self, info: VoiceInfo) -> None: ...
    def remove(self, name: str) -> VoiceInfo | None: ...
    def names(self) -> list[VoiceInfo]: ...
    def key_lock(self, key: str, timeout_s: float) -> StoreLock: ...
    def index_lock(self) -> AbstractContextManager[Any]: ...


def is_store_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(_URL_SCHEMES)


def open_voice_store(location: str | os.PathLike[str]) -> VoiceBackend:
    """The store at `location`: a Redis URL (needs the `redis` extra) or a folder."""
    if is_store_url(location):
        from .redis_store import RedisVoiceStore

        return RedisVoiceStore.from_url(str(location))
    return VoiceStore(Path(location))


