"""`VoiceLibrary`: named voices that are prepared once and then load warm, in this process and later ones.

    lib = VoiceLibrary(tts)                                       # $QWEN3TTS_VOICE_DIR or the user cache
    anna = lib.clone("agent-anna", "anna.wav", ref_text="...")    # encoded once; later calls load it
    lib.design("narrator", "A calm, low male voice")              # VoiceDesign checkpoints
    lib.add("support", tts.speaker("ryan", instruct="Speak warmly."))
    voice = lib.resolve("agent-anna")   # a VoiceProfile, library name or built-in speaker → VoiceProfile

Entries are content-addressed: a cloned voice's key hashes the prepared reference samples, the transcript,
the preprocessing options, the compute dtype and device type, and the checkpoint's identity (`identity.py`),
so the same clip under two names is encoded once and a voice is never reused by another checkpoint. Names
are small records pointing at keys. Loaded voices stay in an in-memory LRU, and `resolve` returns the same
object for the same voice, so the engine's warm state for it (kept per profile object) is reused.
What this module does not do: generate speech, or run on the engine thread (cloning runs the codec encoder and
the speaker encoder on the caller's thread, as `Qwen3TTS.clone_voice` does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import platformdirs
import torch
from filelock import Timeout

from ..errors import InvalidInputError, UnsupportedError
from ..model.audio_input import AudioInput
from .backends import VoiceBackend, is_store_url, open_voice_store
from .identity import model_identity, model_label
from .preprocess import SAMPLE_RATE, ReferencePreprocessing, prepare_reference
from .profile import VoiceProfile
from .store import (
    NAME_PATTERN,
    PROFILE_FIELDS,
    TENSOR_FIELDS,
    DamagedEntryError,
    VoiceInfo,
    validate_name,
)

if TYPE_CHECKING:
    from .maker import VoiceMaker

__all__ = ["VoiceLibrary", "VoiceLibraryStats", "VoiceInfo", "default_voice_dir", "voice_location"]

log = logging.getLogger("qwen3tts_realtime.voices")

KEY_FORMAT = "qwen3tts-voice-key/1"
VOICE_DIR_ENV = "QWEN3TTS_VOICE_DIR"
PREPARE_LOCK_TIMEOUT_S = 300.0  # then prepare without the lock: the write stays atomic, only work repeats


def default_voice_dir() -> Path | str:
    """`$QWEN3TTS_VOICE_DIR` if set (a folder, or a Redis URL: see `backends.py`), else `voices/` in the user
    cache (e.g. ~/.cache/qwen3tts-realtime)."""
    env = os.environ.get(VOICE_DIR_ENV)
    if env:
        return env if is_store_url(env) else Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("qwen3tts-realtime", appauthor=False)) / "voices"


def voice_location(location: str | os.PathLike[str] | None) -> Path | str:
    """A library location as given (a folder or a store URL), or `default_voice_dir()` for None."""
    if location is None:
        return default_voice_dir()
    return str(location) if is_store_url(location) else Path(location).expanduser()


@dataclass(frozen=True)
class VoiceLibraryStats:
    """Counters of one `VoiceLibrary` object, and the size of its folder.

    Attributes:
        hits: voices served without preparing them (from memory or disk).
        misses: voices prepared (encoded, embedded) and stored.
        entries: voice entries on disk (shared by every process using the folder).
        bytes: their total size.
        memory_entries: voices held in this object's LRU.
    """

    hits: int
    misses: int
    entries: int
    bytes: int
    memory_entries: int


class VoiceLibrary:
    """Persistent named voices for one loaded model (see the module docstring).

    Thread-safe; several processes may share one folder.
    """

    def __init__(
        self,
        tts: VoiceMaker,
        cache_dir: str | os.PathLike[str] | VoiceBackend | None = None,
        *,
        preprocessing: ReferencePreprocessing | None = None,
        max_memory_voices: int = 128,
    ) -> None:
        """
        Args:
            tts: the model voices are prepared with and for.
            cache_dir: where the voices are: a folder, a Redis URL ("redis://host:6379/0", see `backends.py`)
                or a `VoiceBackend`; None: `default_voice_dir()`.
            preprocessing: how reference clips are prepared by default (`ReferencePreprocessing()`).
            max_memory_voices: how many voices the in-memory LRU keeps.
        """
        if type(max_memory_voices) is not int or max_memory_voices < 1:
            raise InvalidInputError(f"max_memory_voices={max_memory_voices!r}; it must be a positive int")
        self._tts = tts
        if isinstance(cache_dir, str | os.PathLike) or cache_dir is None:
            self._store: VoiceBackend = open_voice_store(voice_location(cache_dir))
        else:
            self._store = cache_dir
        self._preprocessing = preprocessing or ReferencePreprocessing()
        self._max_memory = max_memory_voices
        self._memory: OrderedDict[str, VoiceProfile] = OrderedDict()
        self._builtin: dict[str, VoiceProfile] = {}
        self._lock = threading.Lock()
        self._hits = self._misses = 0

    @property
    def cache_dir(self) -> Path | str:
        """Where the voices are: a folder, or a store URL (without its password)."""
        return self._store.location

    @property
    def model_id(self) -> str:
        """The identity of the model's checkpoint (hashed once, then cached in memory and on disk)."""
        return model_identity(self._tts, self._store.identity_dir)

    # ---- adding voices ------------------------------------------------------------------------------------

    def clone(
        self,
        name: str,
        audio: AudioInput,
        ref_text: str | None = None,
        *,
        x_vector_only: bool = False,
        preprocessing: ReferencePreprocessing | None = None,
    ) -> VoiceProfile:
        """Clone a voice from a reference clip (Base checkpoints) and store it under `name`.

        Prepared once: a later call with the same clip, transcript and options (in any process using this
        folder, under any name) loads the stored voice instead of encoding again.

        Args:
            name: library name (1-64 letters, digits, '.', '_', '-'); rebinds an existing name.
            audio: a path to an audio file, or `(samples, sample_rate)`.
            ref_text: the clip's transcript; required unless `x_vector_only`.
            x_vector_only: clone from the speaker embedding alone (no transcript).
            preprocessing: overrides the library's default reference preparation;
                `ReferencePreprocessing.disabled()` gives exactly `Qwen3TTS.clone_voice`'s voice.

        Raises:
            InvalidInputError: bad name, missing transcript; AudioInputError (a subclass) for unusable audio.
            UnsupportedError: not a Base checkpoint.
        """
        name = validate_name(name)
        if self._tts.model_type != "base":
            raise UnsupportedError(
                f"cloning a voice needs a Base checkpoint; this one is {self._tts.model_type} "
                f"({self._tts.folder.name}): store its own voices (designed, or built-in speakers) instead"
            )
        if x_vector_only:
            ref_text = None
        else:
            self._tts.tokenizer.ref_ids(ref_text)  # validates the transcript before any audio work
        options = preprocessing or self._preprocessing
        prepared = prepare_reference(audio, options)
        kind = "clone_xvector" if x_vector_only else "clone_icl"
        spec = {
            "kind": kind,
            "ref_text": ref_text,
            "preprocessing": options.as_dict(),
            "compute": {"dtype": str(self._tts.dtype), "device": self._tts.device.type},
        }
        key = self._key(spec, [("samples", prepared.samples.astype("<f4"))])

        def compute() -> VoiceProfile:
            start = time.perf_counter()
            voice = self._tts.clone_voice(
                (prepared.samples, SAMPLE_RATE), ref_text=ref_text, x_vector_only=x_vector_only
            )
            log.info(
                "voice %r: cloned from %.2f s of reference (trimmed %.2f s, cut %.2f s, gain %+.1f dB) "
                "in %.2f s",
                name, prepared.seconds, prepared.trimmed_seconds, prepared.cut_seconds, prepared.gain_db,
                time.perf_counter() - start,
            )
            return voice

        source = {"ref_seconds": round(prepared.seconds, 3), **spec}
        return self._bind(name, key, self._obtain(key, compute, source))

    def design(self, name: str, instruct: str) -> VoiceProfile:
        """A voice described in words (VoiceDesign checkpoints), stored under `name`.

        Raises:
            InvalidInputError: bad name or description.
            UnsupportedError: not a VoiceDesign checkpoint.
        """
        name = validate_name(name)
        voice = self._tts.design_voice(instruct)
        key = self._key({"kind": "design", "instruct": voice.instruct})
        return self._bind(name, key, self._obtain(key, lambda: voice, {"kind": "design"}))

    def add(self, name: str, voice: VoiceProfile) -> VoiceProfile:
        """Store any voice of this model (a clone, `tts.speaker(...)`, `tts.design_voice(...)`) under `name`.

        Raises:
            InvalidInputError: bad name, or a voice made for another checkpoint type or width.
        """
        name = validate_name(name)
        voice = self._tts.resolve_voice(voice)
        fields = {f: getattr(voice, f) for f in PROFILE_FIELDS}
        tensors = [
            (f"{f} {t.dtype} {list(t.shape)}", _tensor_bytes(t))
            for f in TENSOR_FIELDS
            if (t := getattr(voice, f)) is not None
        ]
        key = self._key({"kind": "added", "fields": fields}, tensors)
        return self._bind(name, key, self._obtain(key, lambda: voice, {"kind": "added"}))

    # ---- using voices -------------------------------------------------------------------------------------

    def get(self, name: str) -> VoiceProfile:
        """The voice stored under `name` (the same object on every call while it stays in memory).

        Raises:
            InvalidInputError: no such name, a voice prepared for another checkpoint, or a damaged entry.
        """
        info = self._store.read_name(validate_name(name))
        if info is None:
            raise InvalidInputError(f"no voice named {name!r} in {self.cache_dir}; {self._known_names()}")
        return self._load(info)

    def resolve(self, voice: VoiceProfile | str) -> VoiceProfile:
        """The one voice resolver integrations call with their `voice=` argument.

        A `VoiceProfile` is checked against the model and returned as is; a string is this library's voice of
        that name if there is one, else a built-in speaker of the checkpoint (CustomVoice).

        Raises:
            InvalidInputError: an unknown name (the message lists both kinds of names), a voice made for
                another checkpoint, or not a voice.
        """
        if isinstance(voice, VoiceProfile):
            return self._tts.resolve_voice(voice)
        if not isinstance(voice, str):
            raise InvalidInputError(f"voice must be a VoiceProfile or a name, got {voice!r}")
        info = self._store.read_name(voice) if NAME_PATTERN.fullmatch(voice) else None
        if info is not None:
            return self._load(info)
        key = voice.lower()
        if key in self._tts.config.talker.spk_id:
            with self._lock:
                if key not in self._builtin:
                    self._builtin[key] = self._tts.speaker(key)
                return self._builtin[key]
        speakers = self._tts.speakers
        builtin = f"built-in speakers: {', '.join(speakers)}" if speakers else "no built-in speakers"
        raise InvalidInputError(
            f"unknown voice {voice!r}: {self._known_names()}; "
            f"this {self._tts.model_type} checkpoint has {builtin}"
        )

    def list(self) -> list[VoiceInfo]:
        """Every named voice in the folder (for any checkpoint), sorted by name."""
        return self._store.names()

    def remove(self, name: str) -> None:
        """Forget `name`; its entry is deleted unless another name shares it. Voices already resolved keep
        working (they are immutable).

        Raises:
            InvalidInputError: no such name.
        """
        info = self._store.remove(name)
        if info is not None and not self._store.has_entry(info.key):
            with self._lock:
                self._memory.pop(info.key, None)

    def stats(self) -> VoiceLibraryStats:
        entries, num_bytes = self._store.usage()
        with self._lock:
            return VoiceLibraryStats(self._hits, self._misses, entries, num_bytes, len(self._memory))

    # ---- internals ----------------------------------------------------------------------------------------

    def _key(self, spec: dict[str, Any], arrays: Sequence[tuple[str, np.ndarray]] = ()) -> str:
        """SHA-256 of the model identity, the voice's description and its input arrays (labels and bytes)."""
        h = hashlib.sha256(f"{KEY_FORMAT}\0".encode())
        h.update(json.dumps({"model_id": self.model_id, **spec}, sort_keys=True, ensure_ascii=True).encode())
        for label, array in arrays:
            h.update(f"\0{label}\0{array.dtype.str}\0{list(array.shape)}\0".encode())
            h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()

    def _obtain(self, key: str, compute: Callable[[], VoiceProfile], source: dict[str, Any]) -> VoiceProfile:
        """The voice of `key`: from memory, from disk, or computed (once across processes) and stored."""
        voice = self._cached(key) or self._read(key)
        if voice is not None:
            return self._remember(key, voice, hit=True)
        lock = self._store.key_lock(key, PREPARE_LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            lock = None
            log.warning("voice entry %s stayed locked %.0f s; preparing anyway", key, PREPARE_LOCK_TIMEOUT_S)
        try:
            voice = self._read(key)  # another process may have stored it while this one waited for the lock
            if voice is not None:
                return self._remember(key, voice, hit=True)
            voice = compute()
            self._store.write_entry(key, voice, self._entry_meta(source))
            return self._remember(key, voice, hit=False)
        finally:
            if lock is not None:
                lock.release()

    def _entry_meta(self, source: dict[str, Any]) -> dict[str, Any]:
        return {"model_id": self.model_id, "model": model_label(self._tts.folder), "created": time.time(),
                "source": source}

    def _cached(self, key: str) -> VoiceProfile | None:
        with self._lock:
            voice = self._memory.get(key)
            if voice is not None:
                self._memory.move_to_end(key)
            return voice

    def _read(self, key: str) -> VoiceProfile | None:
        """The stored voice of `key`, or None when missing, damaged (then prepared again and replaced) or made
        for another checkpoint."""
        try:
            stored = self._store.read_entry(key)
        except DamagedEntryError as e:
            log.warning("voice entry %s is damaged (%s); it will be prepared again", key, e)
            return None
        if stored is None:
            return None
        voice, meta = stored
        if meta.get("model_id") != self.model_id:
            log.warning("voice entry %s was made for another checkpoint; it will be prepared again", key)
            return None
        return voice

    def _remember(self, key: str, voice: VoiceProfile, *, hit: bool) -> VoiceProfile:
        with self._lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1
            kept = self._memory.setdefault(key, voice)  # two threads racing keep one object
            self._memory.move_to_end(key)
            while len(self._memory) > self._max_memory:
                self._memory.popitem(last=False)
            return kept

    def _bind(self, name: str, key: str, voice: VoiceProfile) -> VoiceProfile:
        """Point `name` at `key`, restoring the entry if a concurrent `remove` deleted it meanwhile."""
        with self._store.index_lock():
            if not self._store.has_entry(key):
                self._store.write_entry(key, voice, self._entry_meta({"kind": voice.kind}))
            current = self._store.read_name(name)
            if current is None or current.key != key:
                self._store.write_name(VoiceInfo(
                    name=name, key=key, kind=voice.kind, model=model_label(self._tts.folder),
                    model_id=self.model_id, created=time.time(),
                ))
        return voice

    def _load(self, info: VoiceInfo) -> VoiceProfile:
        python = {"clone_icl": f"lib.clone({info.name!r}, audio, ref_text=...)",
                  "clone_xvector": f"lib.clone({info.name!r}, audio, x_vector_only=True)",
                  "design": f"lib.design({info.name!r}, description)"}.get(info.kind, f"lib.add({info.name!r}, voice)")
        redo = f"CLI: qwen3tts-realtime voices add {info.name} --replace ...; HTTP: POST /v1/voices; Python: {python}"
        if info.model_id != self.model_id:
            raise InvalidInputError(
                f"voice {info.name!r} ({info.kind}) was prepared for another checkpoint ({info.model}); this "
                f"model is {model_label(self._tts.folder)}: prepare it again with this model ({redo})"
            )
        voice = self._cached(info.key)
        if voice is None:
            try:
                stored = self._store.read_entry(info.key)
            except DamagedEntryError as e:
                raise InvalidInputError(
                    f"the stored voice {info.name!r} is damaged ({e}), so it is not used: prepare it again ({redo})"
                ) from e
            if stored is None:
                raise InvalidInputError(f"the entry of voice {info.name!r} is missing; prepare it again ({redo})")
            voice = stored[0]
        return self._remember(info.key, voice, hit=True)

    def _known_names(self) -> str:
        names = [info.name for info in self._store.names()]
        return f"library voices: {', '.join(names)}" if names else "the library has no voices"


def _tensor_bytes(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's raw bytes (any dtype, bfloat16 included)."""
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
