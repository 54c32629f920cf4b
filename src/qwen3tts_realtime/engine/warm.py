"""`WarmVoices`: the engine's one cache of per-voice constants, keyed by the voice's content.

For each voice (its `VoiceProfile.content_key`): the talker KV of its constant prompt rows, per language, and
for ICL clones the codec decoder state primed with its reference codes. Equal profiles built twice share one
entry; the least recently used entry is dropped beyond `capacity`. Hits, misses and evictions are counted for
`Engine.stats()` (and the server's voice-cache metrics). Engine thread only, except `stats`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model.codec_decoder import CodecDecoderState
from ..model.transformer import KVCache
from ..voices.profile import VoiceProfile

__all__ = ["WarmVoices", "DEFAULT_WARM_VOICES"]

DEFAULT_WARM_VOICES = 64


@dataclass
class _Entry:
    prefixes: dict[int | None, KVCache] = field(default_factory=dict)  # by language id
    decoder: CodecDecoderState | None = None


class WarmVoices:
    """A bounded LRU of warm voice state."""

    def __init__(self, capacity: int = DEFAULT_WARM_VOICES) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0
        self.prefix_computations = self.decoder_primings = 0

    def prefix(self, entry: _Entry, language_id: int | None, compute: Callable[[], KVCache]) -> KVCache:
        """The entry's prompt-prefix KV for a language, computed by `compute` the first time."""
        cache = entry.prefixes.get(language_id)
        if cache is None:
            cache = entry.prefixes[language_id] = compute()
            self.prefix_computations += 1
        return cache

    def decoder(self, entry: _Entry, compute: Callable[[], CodecDecoderState]) -> CodecDecoderState:
        """The entry's primed decoder state (ICL clones), computed by `compute` the first time; callers clone it."""
        if entry.decoder is None:
            entry.decoder = compute()
            self.decoder_primings += 1
        return entry.decoder

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"size": len(self._entries), "capacity": self.capacity, "hits": self.hits, "misses": self.misses,
                    "evictions": self.evictions}

    def contains(self, voice: VoiceProfile) -> bool:
        """Whether the voice has warm state now (a peek: counts nothing, moves nothing). Any thread."""
        with self._lock:
            return voice.content_key in self._entries

    def entry(self, voice: VoiceProfile) -> _Entry:
        """The voice's entry (created on a miss); one lookup per stream start."""
        key = voice.content_key
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
            self.misses += 1
            entry = self._entries[key] = _Entry()
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
                self.evictions += 1
            return entry
