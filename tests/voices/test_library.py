"""`VoiceLibrary`, as a user meets it: clone once and load warm ever after, name any voice, resolve one
`voice=` argument, and never reuse a voice on the wrong checkpoint."""

from __future__ import annotations

import pytest
import torch

from qwen3tts_realtime import ReferencePreprocessing, VoiceLibrary
from qwen3tts_realtime.model.random_checkpoint import write_random_checkpoint
from qwen3tts_realtime.tts import Qwen3TTS

from .conftest import REF_TEXT, speechlike


def test_a_clone_is_prepared_once_and_loaded_by_later_libraries(base_tts, voice_dir, ref_wav, work):
    lib = VoiceLibrary(base_tts)  # folder from QWEN3TTS_VOICE_DIR
    anna = lib.clone("agent-anna", ref_wav, ref_text=REF_TEXT)
    assert (work["encode"], work["embed"]) == (1, 1)
    assert lib.cache_dir == voice_dir

    again = VoiceLibrary(base_tts, cache_dir=voice_dir).clone("agent-anna", ref_wav, ref_text=REF_TEXT)
    same_clip = lib.clone("anna-copy", ref_wav, ref_text=REF_TEXT)  # another name, same content

    assert (work["encode"], work["embed"]) == (1, 1)
    assert torch.equal(again.speaker_embedding, anna.speaker_embedding)
    assert torch.equal(again.ref_codes, anna.ref_codes) and again.ref_text == REF_TEXT
    assert same_clip is anna  # one object per voice in a library: the engine's warm state is reused
    infos = {info.name: info for info in lib.list()}
    assert infos.keys() == {"agent-anna", "anna-copy"}
    assert infos["agent-anna"].key == infos["anna-copy"].key and infos["agent-anna"].kind == "clone_icl"
    stats = lib.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1) and stats.bytes > 0


def test_get_list_remove_and_stats(base_tts, voice_dir, ref_wav):
    lib = VoiceLibrary(base_tts, voice_dir)
    anna = lib.clone("anna", ref_wav, ref_text=REF_TEXT)
    xvec = lib.clone("anna-x", ref_wav, x_vector_only=True)
    lib.clone("anna-2", ref_wav, ref_text=REF_TEXT)

    assert lib.get("anna") is anna
    assert xvec.kind == "clone_xvector" and xvec.ref_codes is None
    assert torch.equal(xvec.speaker_embedding, anna.speaker_embedding)
    assert [info.name for info in lib.list()] == ["anna", "anna-2", "anna-x"]
    assert lib.stats().entries == 2

    lib.remove("anna")  # "anna-2" still uses the entry
    assert lib.stats().entries == 2 and lib.get("anna-2").ref_text == REF_TEXT
    lib.remove("anna-2")
    assert lib.stats().entries == 1
    with pytest.raises(ValueError, match="no voice named 'anna'.*library voices: anna-x"):
        lib.get("anna")
    with pytest.raises(ValueError, match="no voice named 'anna'"):
        lib.remove("anna")


def test_with_preprocessing_disabled_a_clone_equals_clone_voice(base_tts, voice_dir, ref_wav):
    lib = VoiceLibrary(base_tts, voice_dir, preprocessing=ReferencePreprocessing.disabled())

    stored = lib.clone("golden", ref_wav, ref_text=REF_TEXT)
    direct = base_tts.clone_voice(ref_wav, ref_text=REF_TEXT)
    reloaded = VoiceLibrary(base_tts, voice_dir).get("golden")

    for voice in (stored, reloaded):
        assert torch.equal(voice.speaker_embedding, direct.speaker_embedding)
        assert torch.equal(voice.ref_codes, direct.ref_codes)
        assert (voice.kind, voice.model_type, voice.hidden_size, voice.ref_text) == (
            direct.kind, direct.model_type, direct.hidden_size, direct.ref_text,
        )


def test_preprocessing_options_are_part_of_the_key(base_tts, voice_dir, ref_wav, work):
    lib = VoiceLibrary(base_tts, voice_dir)
    lib.clone("a", ref_wav, ref_text=REF_TEXT)
    lib.clone("b", ref_wav, ref_text=REF_TEXT, preprocessing=ReferencePreprocessing(normalize=False))
    lib.clone("c", ref_wav, ref_text="Another transcript.")
    assert work["encode"] == 3 and lib.stats().entries == 3


def test_designed_and_named_speaker_voices_round_trip(design_tts, custom_tts, voice_dir):
    designs = VoiceLibrary(design_tts, voice_dir)
    narrator = designs.design("narrator", "A calm, low male voice")
    speakers = VoiceLibrary(custom_tts, voice_dir)
    support = speakers.add("support", custom_tts.speaker("ryan", instruct="Speak warmly."))

    loaded = VoiceLibrary(design_tts, voice_dir).get("narrator")
    assert (loaded.kind, loaded.model_type) == ("design", "voice_design")
    assert narrator.instruct == loaded.instruct
    loaded = VoiceLibrary(custom_tts, voice_dir).resolve("support")
    assert (loaded.kind, loaded.speaker, loaded.instruct) == ("speaker", "ryan", "Speak warmly.")
    assert support.speaker == "ryan"
    assert {(i.name, i.kind) for i in designs.list()} == {("narrator", "design"), ("support", "speaker")}


def test_resolve_takes_a_profile_a_library_name_or_a_built_in_speaker(custom_tts, base_tts, voice_dir):
    lib = VoiceLibrary(custom_tts, voice_dir)
    eric = custom_tts.speaker("eric")
    lib.add("helpdesk", custom_tts.speaker("ryan", instruct="Speak slowly."))

    assert lib.resolve(eric) is eric
    assert lib.resolve("helpdesk").instruct == "Speak slowly."
    assert lib.resolve("Ryan").speaker == "ryan"
    assert lib.resolve("ryan") is lib.resolve("ryan")  # one object: warm state is reused
    with pytest.raises(ValueError, match=r"unknown voice 'bob': library voices: helpdesk; .*speakers:.*ryan"):
        lib.resolve("bob")
    with pytest.raises(ValueError, match="made for a base checkpoint"):
        lib.resolve(base_tts.clone_voice((speechlike(2.0), 24000), x_vector_only=True))
    with pytest.raises(ValueError, match="VoiceProfile or a name"):
        lib.resolve(42)


def test_a_voice_for_another_checkpoint_is_never_reused(base_tts, voice_dir, ref_wav, tmp_path, work):
    other_dir = tmp_path / "other"
    write_random_checkpoint(other_dir, "0.6B-Base", tiny=True, seed=1)  # the same config, other weights
    other = Qwen3TTS.from_pretrained(other_dir)
    VoiceLibrary(other, voice_dir).clone("anna", ref_wav, ref_text=REF_TEXT)

    lib = VoiceLibrary(base_tts, voice_dir)
    with pytest.raises(ValueError, match="'anna' .*prepared for another checkpoint .*other"):
        lib.get("anna")
    lib.clone("anna", ref_wav, ref_text=REF_TEXT)  # computed for this checkpoint, and the name rebound
    assert work["encode"] == 1 and lib.stats().misses == 1 and lib.stats().entries == 2
    assert lib.get("anna").hidden_size == base_tts.talker.hidden_size


def test_names_are_validated(base_tts, voice_dir, ref_wav):
    lib = VoiceLibrary(base_tts, voice_dir)
    for name in ("../../etc/x", "a/b", ".hidden", "", "x" * 65, "with space", "..", None):
        with pytest.raises(ValueError, match="invalid voice name"):
            lib.clone(name, ref_wav, ref_text=REF_TEXT)
        with pytest.raises(ValueError, match="invalid voice name"):
            lib.get(name)
    assert not any(voice_dir.parent.glob("etc")) and lib.list() == []


def test_wrong_checkpoint_or_no_transcript_fail_before_audio(custom_tts, base_tts, voice_dir, ref_wav, work):
    with pytest.raises(ValueError, match="cloning a voice needs a Base checkpoint"):
        VoiceLibrary(custom_tts, voice_dir).clone("anna", ref_wav, ref_text=REF_TEXT)
    with pytest.raises(ValueError, match="ref_text must be the non-empty transcript"):
        VoiceLibrary(base_tts, voice_dir).clone("anna", ref_wav)
    with pytest.raises(ValueError, match="designing a voice from a description needs a VoiceDesign checkpoint; "
                                         "this one is Base .*whose voices are clones of a reference clip"):
        VoiceLibrary(base_tts, voice_dir).design("narrator", "A calm voice")
    assert work["encode"] == work["embed"] == 0


def test_the_memory_cache_is_bounded(base_tts, voice_dir, ref_wav):
    lib = VoiceLibrary(base_tts, voice_dir, max_memory_voices=2)
    for i in range(3):
        lib.clone(f"v{i}", ref_wav, ref_text=f"Transcript number {i}.")
    assert lib.stats().memory_entries == 2 and lib.stats().entries == 3
    assert lib.get("v0").ref_text == "Transcript number 0."  # evicted from memory, loaded from disk


def test_the_model_resolves_names_of_its_own_library(golden, voice_dir):
    """`from_pretrained(voice_dir=...)`: that library's names work wherever a voice is taken (generate,
    open_stream, the integrations' `voice=`), beside the built-in speakers."""
    from qwen3tts_realtime import Qwen3TTS

    with Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice", voice_dir=voice_dir) as tts:
        tts.voices.add("support", tts.speaker("eric"))
        assert tts.resolve_voice("support").speaker == "eric"
        with tts.open_stream("Hi.", voice="support", max_new_frames=2, seed=0) as stream:
            assert list(stream)[-1].is_last
        assert tts.generate("Hi.", voice="support", max_new_frames=2, seed=0).codes.shape[0] == 2
        assert tts.resolve_voice("ryan").speaker == "ryan"
