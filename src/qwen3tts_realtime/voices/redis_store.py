"""`RedisVoiceStore`: the voice library in Redis, shared by every replica that can reach the server.

    lib = VoiceLibrary(tts, "redis://redis:6379/0")          # or --voice-dir / $QWEN3TTS_VOICE_DIR

Keys (under `prefix`, default "qwen3tts"): `<prefix>:entry:<key>` one voice entry (the same checksummed
safetensors bytes as a folder's entry file), `<prefix>:name:<name>` a name record (the same checksummed JSON),
`<prefix>:names` the set of names, `<prefix>:lock:*` locks. Each write is one Redis command (or one MULTI), so a
reader sees the old value or the new one. An entry is stored with an expiry of an hour and made persistent when a
name binds it, so an entry whose writer died before naming it goes away by itself (what sweeping does in a
folder). Locks are Redis locks (`SET NX` with an expiry: a holder that dies frees its lock when it expires).
Needs the `redis` extra: pip install "qwen3tts-realtime[redis]".
"""

from __future__ import annotations

import logging
import urllib.parse
from pathlib import Path
from typing import Any

import platformdirs
from filelock import Timeout

from ..errors import InvalidInputError
from .profile import VoiceProfile
from .store import (
    KEY_PATTERN,
    NAME_PATTERN,
    STALE_ORPHAN_S,
    DamagedEntryError,
    VoiceInfo,
    decode_entry,
    decode_name,
    encode_entry,
    encode_name,
    unknown_name,
    validate_name,
)

try:
    import redis
except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        f"a Redis voice store needs the redis client ({e}); install it with: pip install "
        '"qwen3tts-realtime[redis]"',
        name=e.name,
    ) from e

__all__ = ["RedisVoiceStore"]

log = logging.getLogger("qwen3tts_realtime.voices")

DEFAULT_PREFIX = "qwen3tts"
INDEX_LOCK_S = 30.0  # the index lock is held for a few commands; it expires if its holder dies


class RedisVoiceStore:
    """A voice store in Redis (see the module docstring)."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX, location: str = "redis") -> None:
        if not isinstance(prefix, str) or not NAME_PATTERN.fullmatch(prefix):
            raise InvalidInputError(f"prefix={prefix!r}; use 1-64 letters, digits, '.', '_' or '-'")
        self._redis, self._prefix, self._location = client, prefix, location
        try:
            client.ping()
        except redis.RedisError as e:
            raise InvalidInputError(f"cannot reach the voice store {location}: {e}") from e

    @classmethod
    def from_url(cls, url: str) -> RedisVoiceStore:
        """`redis://[:password@]host:port/db[?prefix=name]` (also rediss://, unix://)."""
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(parts.query)
        prefix = query.pop("prefix", [DEFAULT_PREFIX])[-1]
        rest = urllib.parse.urlencode({k: v[-1] for k, v in query.items()})
        client_url = urllib.parse.urlunsplit(parts._replace(query=rest))
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2], query=f"prefix={prefix}")
        try:
            client = redis.Redis.from_url(client_url)
        except ValueError as e:
            raise InvalidInputError(f"voice store URL {urllib.parse.urlunsplit(shown)!r}: {e}") from e
        return cls(client, prefix=prefix, location=urllib.parse.urlunsplit(shown))

    @property
    def location(self) -> str:
        return self._location

    @property
    def identity_dir(self) -> Path:
        return Path(platformdirs.user_cache_dir("qwen3tts-realtime", appauthor=False)) / "models"

    # ---- entries ------------------------------------------------------------------------------------------

    def _entry(self, key: str) -> str:
        if not KEY_PATTERN.fullmatch(key):
            raise ValueError(f"not a content key: {key!r}")
        return f"{self._prefix}:entry:{key}"

    def _name(self, name: str) -> str:
        return f"{self._prefix}:name:{validate_name(name)}"

    def has_entry(self, key: str) -> bool:
        return bool(self._redis.exists(self._entry(key)))

    def read_entry(self, key: str) -> tuple[VoiceProfile, dict[str, Any]] | None:
        raw = self._redis.get(self._entry(key))
        if raw is None:
            return None
        return decode_entry(raw, key)

    def write_entry(self, key: str, profile: VoiceProfile, meta: dict[str, Any]) -> None:
        self._redis.set(self._entry(key), encode_entry(profile, {**meta, "key": key}), ex=int(STALE_ORPHAN_S))

    def remove_entry(self, key: str) -> None:
        self._redis.delete(self._entry(key))

    def usage(self) -> tuple[int, int]:
        keys = list(self._redis.scan_iter(match=f"{self._prefix}:entry:*", count=500))
        if not keys:
            return 0, 0
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.strlen(key)
        return len(keys), sum(pipe.execute())

    # ---- names --------------------------------------------------------------------------------------------

    def read_name(self, name: str) -> VoiceInfo | None:
        raw = self._redis.get(self._name(name))
        if raw is None:
            return None
        try:
            return decode_name(raw, name)
        except DamagedEntryError:
            return None

    def write_name(self, info: VoiceInfo) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._name(info.name), encode_name(info))
        pipe.sadd(f"{self._prefix}:names", info.name)
        pipe.persist(self._entry(info.key))  # a named entry stays
        pipe.execute()

    def remove(self, name: str) -> VoiceInfo | None:
        key = self._name(name)
        with self.index_lock():
            info = self.read_name(name)
            if info is None and not self._redis.exists(key):
                raise unknown_name(name, self._location, self.names())
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(key)
            pipe.srem(f"{self._prefix}:names", name)
            pipe.execute()
            if info is not None and all(other.key != info.key for other in self.names()):
                self.remove_entry(info.key)
        return info

    def names(self) -> list[VoiceInfo]:
        names = sorted(n.decode() if isinstance(n, bytes) else n for n in self._redis.smembers(f"{self._prefix}:names"))
        names = [n for n in names if NAME_PATTERN.fullmatch(n)]
        if not names:
            return []
        raws = self._redis.mget([self._name(n) for n in names])
        infos = []
        for name, raw in zip(names, raws, strict=True):
            if raw is None:
                continue
            try:
                infos.append(decode_name(raw, name))
            except DamagedEntryError:
                continue
        return infos

    # ---- locks --------------------------------------------------------------------------------------------

    def key_lock(self, key: str, timeout_s: float) -> _Lock:
        self._entry(key)  # validates the key
        return _Lock(self._redis.lock(f"{self._prefix}:lock:prepare:{key}", timeout=timeout_s + 60,
                                      blocking_timeout=timeout_s))

    def index_lock(self) -> _Lock:
        return _Lock(self._redis.lock(f"{self._prefix}:lock:index", timeout=INDEX_LOCK_S,
                                      blocking_timeout=INDEX_LOCK_S))


class _Lock:
    """A Redis lock that behaves like the folder's `filelock` locks: `acquire()` raises `filelock.Timeout`."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def acquire(self) -> None:
        if not self._lock.acquire():
            raise Timeout(self._lock.name)

    def release(self) -> None:
        try:
            self._lock.release()
        except redis.exceptions.LockError:  # it expired while held: another holder may have run meanwhile
            log.warning("voice store lock %s expired before its release", self._lock.name)

    def __enter__(self) -> _Lock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
