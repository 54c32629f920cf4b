"""Voices shared by replicas: the voice library on Redis (a real `redis-server`) behaves as on a folder —
a voice cloned through one library object (one replica) is loaded by another without preparing it again,
names list and remove, a damaged entry is never loaded — and its entries expire unless a name binds them."""

from __future__ import annotations

import numpy as np
import pytest
import redis
import torch

from qwen3tts_realtime import InvalidInputError
from qwen3tts_realtime.voices.backends import open_voice_store
from qwen3tts_realtime.voices.library import VoiceLibrary
from qwen3tts_realtime.voices.redis_store import RedisVoiceStore

from .conftest import REF_TEXT


def test_a_voice_cloned_through_one_replica_is_used_by_another(base_tts, redis_url, ref_wav, work):
    replica_a, replica_b = VoiceLibrary(base_tts, redis_url), VoiceLibrary(base_tts, redis_url)
    anna = replica_a.clone("agent-anna", ref_wav, ref_text=REF_TEXT)
    assert work == {"encode": 1, "embed": 1}

    loaded = replica_b.resolve("agent-anna")  # another object: its memory is empty, the voice comes from Redis
    assert work == {"encode": 1, "embed": 1}  # not prepared again
    assert loaded.kind == "clone_icl" and loaded.ref_text == REF_TEXT
    assert torch.equal(loaded.ref_codes, anna.ref_codes)
    assert torch.equal(loaded.speaker_embedding, anna.speaker_embedding)
    assert loaded.content_key == anna.content_key  # the engine's warm state is shared too
    again = replica_b.clone("agent-anna", ref_wav, ref_text=REF_TEXT)
    assert work == {"encode": 1, "embed": 1} and again.content_key == anna.content_key
    a = base_tts.generate("Hi.", voice=anna, max_new_frames=4, seed=0).audio
    b = base_tts.generate("Hi.", voice=loaded, max_new_frames=4, seed=0).audio
    assert np.array_equal(a, b)


def test_list_remove_and_stats(base_tts, redis_url, ref_wav):
    lib = VoiceLibrary(base_tts, redis_url)
    lib.clone("anna", ref_wav, ref_text=REF_TEXT)
    lib.add("anna-again", lib.get("anna"))  # keyed by the profile: an entry of its own
    lib.clone("also-anna", ref_wav, ref_text=REF_TEXT)  # the same clip: the same entry as anna
    assert [i.name for i in lib.list()] == ["also-anna", "anna", "anna-again"]
    assert lib.stats().entries == 2 and lib.stats().bytes > 0
    lib.remove("anna")
    assert lib.stats().entries == 2  # still named by also-anna
    lib.remove("also-anna")
    lib.remove("anna-again")
    assert lib.list() == [] and lib.stats().entries == 0
    with pytest.raises(InvalidInputError, match=r"no voice named 'anna' in redis://127\.0\.0\.1:\d+/0\?prefix="):
        lib.remove("anna")
    with pytest.raises(InvalidInputError, match="invalid voice name"):
        lib.clone("../etc", ref_wav, ref_text=REF_TEXT)


def test_a_damaged_entry_is_never_loaded(base_tts, redis_url, ref_wav, work):
    lib = VoiceLibrary(base_tts, redis_url)
    lib.clone("anna", ref_wav, ref_text=REF_TEXT)
    info = lib.list()[0]
    client, prefix = redis.Redis.from_url(redis_url.split("?")[0]), redis_url.split("prefix=")[1]
    raw = bytearray(client.get(f"{prefix}:entry:{info.key}"))
    raw[-5] ^= 0xFF  # one flipped byte in the tensor data
    client.set(f"{prefix}:entry:{info.key}", bytes(raw))
    with pytest.raises(InvalidInputError, match="damaged .*checksum"):
        VoiceLibrary(base_tts, redis_url).get("anna")
    VoiceLibrary(base_tts, redis_url).clone("anna", ref_wav, ref_text=REF_TEXT)  # prepared again, replaced
    assert work["encode"] == 2
    assert VoiceLibrary(base_tts, redis_url).get("anna").ref_text == REF_TEXT


def test_entries_expire_unless_named_and_the_url_hides_its_password(base_tts, redis_url, redis_server, ref_wav):
    store = open_voice_store(redis_url)
    assert isinstance(store, RedisVoiceStore)
    lib = VoiceLibrary(base_tts, store)
    voice = lib.clone("anna", ref_wav, ref_text=REF_TEXT)
    client, prefix = redis.Redis.from_url(redis_server), redis_url.split("prefix=")[1]
    [entry] = [k.decode() for k in client.scan_iter(f"{prefix}:entry:*")]
    assert client.ttl(entry) == -1  # named: persistent
    store.write_entry("0" * 64, voice, {"model_id": lib.model_id})  # a writer that died before naming it
    assert 0 < client.ttl(f"{prefix}:entry:{'0' * 64}") <= 3600
    shown = open_voice_store(redis_server.replace("redis://", "redis://:secret@") + "?prefix=x")
    assert "secret" not in str(shown.location)


def test_an_unreachable_store_is_a_clear_error(base_tts):
    with pytest.raises(InvalidInputError, match="cannot reach the voice store redis://127.0.0.1:9/0"):
        VoiceLibrary(base_tts, "redis://127.0.0.1:9/0")
