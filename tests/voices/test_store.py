"""The voice folder survives crashes and tampering: a torn or altered entry is detected by its checksum, never
loaded, and prepared again; entries are plain safetensors + JSON (no pickle); what killed writers leave behind
is swept when the store opens."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

from qwen3tts_realtime import VoiceLibrary, VoiceProfile
from qwen3tts_realtime.voices.store import DamagedEntryError, VoiceInfo, VoiceStore, decode_entry, encode_entry

from .conftest import REF_TEXT


def _entry_file(voice_dir):
    (path,) = (voice_dir / "entries").glob("*.safetensors")
    return path


def test_a_write_killed_halfway_is_prepared_again(base_tts, voice_dir, ref_wav, work):
    first = VoiceLibrary(base_tts, voice_dir).clone("anna", ref_wav, ref_text=REF_TEXT)
    entry = _entry_file(voice_dir)
    intact = entry.read_bytes()
    entry.write_bytes(intact[: len(intact) // 2])  # what a crash mid-write would leave without atomic renames

    lib = VoiceLibrary(base_tts, voice_dir)
    with pytest.raises(ValueError, match="stored voice 'anna' is damaged .*truncated"):
        lib.get("anna")
    again = lib.clone("anna", ref_wav, ref_text=REF_TEXT)

    assert work["encode"] == 2 and lib.stats().misses == 1
    assert torch.equal(again.ref_codes, first.ref_codes)
    decode_entry(entry.read_bytes())  # replaced by a complete entry
    assert torch.equal(VoiceLibrary(base_tts, voice_dir).get("anna").ref_codes, first.ref_codes)


@pytest.mark.parametrize("where", ["header length", "header", "metadata", "tensor data", "last byte"])
def test_a_flipped_byte_is_detected_and_the_voice_prepared_again(base_tts, voice_dir, ref_wav, work, where):
    VoiceLibrary(base_tts, voice_dir).clone("anna", ref_wav, ref_text=REF_TEXT)
    entry = _entry_file(voice_dir)
    raw = bytearray(entry.read_bytes())
    header_len = int.from_bytes(raw[:8], "little")
    offset = {
        "header length": 0,
        "header": 12,
        "metadata": raw.index(b"Hello there"),
        "tensor data": 8 + header_len + 5,
        "last byte": len(raw) - 1,
    }[where]
    raw[offset] ^= 0x01
    entry.write_bytes(bytes(raw))

    with pytest.raises(DamagedEntryError):
        decode_entry(bytes(raw))
    lib = VoiceLibrary(base_tts, voice_dir)
    with pytest.raises(ValueError, match="damaged"):
        lib.get("anna")
    lib.clone("anna", ref_wav, ref_text=REF_TEXT)
    assert work["encode"] == 2
    decode_entry(entry.read_bytes())  # intact again


def test_a_damaged_name_record_is_ignored_not_trusted(base_tts, voice_dir, ref_wav):
    lib = VoiceLibrary(base_tts, voice_dir)
    lib.clone("anna", ref_wav, ref_text=REF_TEXT)
    record = voice_dir / "names" / "anna.json"
    data = json.loads(record.read_bytes())
    data["key"] = "0" * 64
    record.write_text(json.dumps(data))

    with pytest.raises(ValueError, match="no voice named 'anna'"):
        lib.get("anna")
    assert lib.list() == []
    lib.remove("anna")  # a damaged record can still be removed
    assert not record.exists()


def test_entries_round_trip_every_kind_of_voice_exactly():
    voices = [
        VoiceProfile("clone_icl", "base", hidden_size=4, speaker_embedding=torch.randn(4),
                     ref_codes=torch.randint(0, 2048, (7, 16)), ref_text="Hi."),
        VoiceProfile("clone_xvector", "base", hidden_size=4, speaker_embedding=torch.randn(4)),
        VoiceProfile("speaker", "custom_voice", speaker="ryan", instruct="Warmly."),
        VoiceProfile("design", "voice_design", instruct="A calm, low male voice"),
    ]
    for voice in voices:
        raw = encode_entry(voice, {"key": "k"})
        back, meta = decode_entry(raw)
        assert raw[8:9] == b"{" and b"pickle" not in raw  # a safetensors header, nothing else
        assert meta["key"] == "k"
        for field in ("kind", "model_type", "hidden_size", "speaker", "instruct", "ref_text"):
            assert getattr(back, field) == getattr(voice, field)
        for field in ("speaker_embedding", "ref_codes"):
            a, b = getattr(back, field), getattr(voice, field)
            assert (a is None and b is None) or torch.equal(a, b)


def test_a_checksummed_entry_that_is_not_a_valid_voice_is_refused():
    bad = VoiceProfile("clone_icl", "base", hidden_size=4, speaker_embedding=torch.randn(4))  # no ref codes
    with pytest.raises(DamagedEntryError, match="ref_codes"):
        decode_entry(encode_entry(bad, {}))


def test_writes_leave_no_temporary_files(base_tts, voice_dir, ref_wav):
    lib = VoiceLibrary(base_tts, voice_dir)
    lib.clone("anna", ref_wav, ref_text=REF_TEXT)
    lib.clone("anna-x", ref_wav, x_vector_only=True)
    assert not [p for p in voice_dir.rglob("*") if p.name.endswith(".tmp")]


def test_opening_the_store_sweeps_what_killed_writers_left(tmp_path):
    """Temporary files and entries no name points to are removed once an hour old; younger ones may belong to
    a writer still at work and stay, as do named entries of any age."""
    root = tmp_path / "voices"
    store = VoiceStore(root)
    voice = VoiceProfile("speaker", "custom_voice", speaker="ryan")
    named, orphan, young_orphan = ("a" * 64, "b" * 64, "c" * 64)
    for key in (named, orphan, young_orphan):
        store.write_entry(key, voice, {"model_id": "m"})
    store.write_name(VoiceInfo(name="anna", key=named, kind="speaker", model="m", model_id="m", created=0.0))
    stale_temps = [root / "entries" / f".{orphan}.safetensors.x1.tmp", root / "names" / ".anna.json.x2.tmp",
                   root / "models" / ".0123.json.x3.tmp"]
    young_temp = root / "entries" / f".{young_orphan}.safetensors.x4.tmp"
    for path in [*stale_temps, young_temp]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a write")
    two_hours_ago = time.time() - 7200
    for path in [*stale_temps, store.entry_path(orphan), store.entry_path(named)]:
        os.utime(path, (two_hours_ago, two_hours_ago))

    VoiceStore(root)

    assert not any(path.exists() for path in stale_temps)
    assert not store.has_entry(orphan)
    assert young_temp.exists() and store.has_entry(young_orphan)
    assert store.has_entry(named) and store.read_entry(named) is not None
    assert [info.name for info in store.names()] == ["anna"]
