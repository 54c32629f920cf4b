"""Bad input gets a ValueError that names what is wrong and what is accepted."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from qwen3tts_realtime import (
    AudioInputError,
    CheckpointError,
    InvalidInputError,
    Qwen3TTS,
    SamplingParams,
    UnsupportedError,
    VoiceLibrary,
)

from .voices.conftest import speechlike


@pytest.fixture(scope="module")
def base(golden):
    return Qwen3TTS.from_pretrained(golden / "tiny" / "base")


@pytest.fixture(scope="module")
def custom(golden):
    return Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")


@pytest.fixture(scope="module")
def design(golden):
    return Qwen3TTS.from_pretrained(golden / "tiny" / "voice_design")


def test_errors_are_value_errors():
    for cls in (AudioInputError, CheckpointError, InvalidInputError, UnsupportedError):
        assert issubclass(cls, ValueError)


@pytest.mark.parametrize(
    ("dtype", "device", "match"),
    [("float8", "cpu", "float32, float64, bfloat16, float16"), ("float16", "cpu", "not supported on CPU"),
     ("float32", "tpu-ish:0", "not a torch device")],
)
def test_unknown_dtype_or_device(golden, dtype, device, match):
    with pytest.raises(InvalidInputError, match=match):
        Qwen3TTS.from_pretrained(golden / "tiny" / "base", dtype=dtype, device=device)


def test_folder_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not a Qwen3-TTS 12 Hz checkpoint folder"):
        Qwen3TTS.from_pretrained(tmp_path)


def test_path_that_is_neither_folder_nor_hub_id(tmp_path):
    with pytest.raises(CheckpointError, match="neither a checkpoint folder nor a Hugging Face id"):
        Qwen3TTS.from_pretrained(tmp_path / "missing" / "deeper")


@pytest.mark.parametrize(
    "audio",
    [(np.zeros(0, np.float32), 24000), (np.full(4800, np.nan, np.float32), 24000), np.zeros(4800, np.float32),
     (np.zeros(4800, np.float32), 0), "/definitely/not/here.wav"],
    ids=["empty", "nan", "bare-array", "zero-rate", "missing-file"],
)
def test_unusable_reference_audio(base, audio):
    with pytest.raises(AudioInputError):
        base.codec.encode(audio)


def test_non_audio_file(base, tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio")
    with pytest.raises(AudioInputError):
        base.speaker_embedding(str(path))


@pytest.mark.parametrize(
    "codes",
    [torch.zeros(5, 15, dtype=torch.long), torch.full((5, 16), 2048), torch.full((5, 16), -1),
     torch.zeros(5, 16, dtype=torch.float32), torch.zeros(16, dtype=torch.long)],
    ids=["15-groups", "id-2048", "negative", "float", "1-d"],
)
def test_bad_codes(base, codes):
    with pytest.raises(InvalidInputError):
        base.codec.decode(codes)


def test_speaker_embedding_needs_a_base_checkpoint(custom, golden):
    with pytest.raises(UnsupportedError, match="Base checkpoint.*CustomVoice"):
        custom.speaker_embedding(str(golden / "inputs" / "ref_24k.wav"))


def test_clone_needs_a_base_checkpoint(design, golden):
    with pytest.raises(UnsupportedError, match=r"cloning a voice needs a Base checkpoint; this one is VoiceDesign "
                                               r"\(voice_design\), whose voices are voices designed from a "
                                               "description"):
        design.clone_voice(str(golden / "inputs" / "ref_24k.wav"), ref_text="hi")


def test_icl_clone_needs_ref_text(base, golden):
    with pytest.raises(InvalidInputError, match="x_vector_only=True"):
        base.clone_voice(str(golden / "inputs" / "ref_24k.wav"))


def test_unknown_speaker_names_the_speakers(custom):
    with pytest.raises(InvalidInputError, match="ryan, eric"):
        custom.speaker("nobody")


def test_unknown_language_names_the_languages(custom):
    with pytest.raises(InvalidInputError, match="accepted: Auto, Chinese, English, .* or their ISO 639 codes"):
        custom.generate("Hi.", voice=custom.speaker("ryan"), language="Klingon")


def test_languages_are_names_or_codes_alike(custom):
    """One rule on every surface (text/languages.py): "en", "en-US", "eng" and "english" are English."""
    voice, greedy = custom.speaker("ryan"), SamplingParams.greedy()
    english = custom.generate("Hi.", voice=voice, language="English", sampling=greedy, max_new_frames=4).codes
    for language in ("en", "en-US", "eng", "english", "EN_gb"):
        out = custom.generate("Hi.", voice=voice, language=language, sampling=greedy, max_new_frames=4)
        assert torch.equal(out.codes, english), language
    with custom.open_stream("Hi.", voice=voice, language="en", sampling=greedy, max_new_frames=4) as stream:
        assert torch.equal(torch.cat([c.codes for c in stream]), english)


def test_dialects_are_not_request_languages(custom):
    """As officially: dialect ids are reached only through the speakers Eric and Dylan."""
    assert "sichuan_dialect" not in custom.languages
    with pytest.raises(InvalidInputError):
        custom.generate("Hi.", voice=custom.speaker("eric"), language="sichuan_dialect")


def test_empty_text(custom):
    with pytest.raises(InvalidInputError, match="non-empty"):
        custom.generate("   ", voice=custom.speaker("ryan"))


@pytest.mark.parametrize("text", [None, 42])
def test_text_that_is_not_a_string_names_text(custom, text):
    message = (f"text={text!r}; give the text to say as a non-empty string (for text that arrives in pieces, "
               "use open_stream() without text and push_text())")
    calls = (custom.generate,) if text is None else (custom.generate, custom.open_stream)  # open_stream(): incremental
    for call in calls:
        with pytest.raises(InvalidInputError) as refused:
            call(text, voice=custom.speaker("ryan"))
        assert str(refused.value) == message
    assert custom.stats()["queued_streams"] == custom.stats()["active_streams"] == 0


def test_voice_from_another_checkpoint_type(custom, design):
    with pytest.raises(InvalidInputError, match="voice_design"):
        custom.generate("Hi.", voice=design.design_voice("calm"))


SCALE = "a number from 0.01 to 100"


@pytest.mark.parametrize(("field", "value", "accepted"), [
    ("top_p", 1.5, "a number in (0, 1]"),
    ("top_p", True, "a number in (0, 1]"),
    ("temperature", 1e-300, SCALE),  # scores / temperature overflow float32
    ("subtalker_temperature", 1e30, SCALE),  # scores underflow to 0
    ("repetition_penalty", 1e-300, SCALE),
    ("repetition_penalty", 101, SCALE),
    ("temperature", float("nan"), SCALE),
    ("temperature", float("inf"), SCALE),
    ("temperature", True, SCALE),
    ("top_k", 100_001, "an int from 0 (off) to 100000"),
    ("subtalker_top_k", 2.5, "an int from 0 (off) to 100000"),
    ("subtalker_top_k", False, "an int from 0 (off) to 100000"),
    ("min_new_frames", -1, "an int >= 0"),
])
def test_bad_sampling_names_the_field_the_value_and_the_range(custom, field, value, accepted):
    with pytest.raises(InvalidInputError) as refused:
        custom.generate("Hi.", voice=custom.speaker("ryan"), sampling=SamplingParams(**{field: value}))
    assert str(refused.value) == f"SamplingParams.{field}={value!r}; accepted: {accepted}"


def test_sampling_at_the_ends_of_the_ranges_leaves_a_batch_unharmed(custom):
    """The most extreme accepted values, sampled in one engine batch with a greedy stream: both end normally
    with finite audio."""
    voice = custom.speaker("ryan")
    extremes = [
        SamplingParams(do_sample=True, temperature=0.01, repetition_penalty=100.0, subtalker_temperature=100.0),
        SamplingParams(do_sample=True, temperature=100.0, repetition_penalty=0.01, subtalker_temperature=0.01),
    ]
    for sampling in extremes:
        with (
            custom.open_stream(
                "Hello there.", voice=voice, sampling=SamplingParams.greedy(), max_new_frames=12
            ) as plain,
            custom.open_stream("Hello there.", voice=voice, sampling=sampling, max_new_frames=12, seed=0) as extreme,
        ):
            for chunks in (list(plain), list(extreme)):
                assert chunks[-1].is_last
                assert all(np.isfinite(chunk.audio).all() for chunk in chunks)


@pytest.mark.parametrize(
    ("audio", "needle"),
    [((speechlike(0.2), 24000), "holds 0.20 s of sound"),
     ((np.zeros(3 * 24000, np.float32), 24000), "is silent (digital silence)"),
     ((speechlike(61), 24000), "is 61.0 s long; the longest accepted is 60 s"),
     ((speechlike(2, sample_rate=6000), 6000), "sample rate of 6000 Hz; at least 8000 Hz"),
     ((np.random.default_rng(0).standard_normal(200).astype(np.float32), 24000), "at least 1 s is needed")],
    ids=["0.2s", "digital-silence", "61s", "6kHz", "200-samples"],
)
def test_clone_voice_refuses_what_the_voice_library_refuses(base, tmp_path, audio, needle):
    """One reference-audio rule (voices/preprocess.py) for `clone_voice`, `speaker_embedding`, `speak --ref-audio`,
    `voices add`, the server and `VoiceLibrary.clone`; `clone_voice` then uses the clip as given."""
    with pytest.raises(AudioInputError, match=re.escape(needle)):
        base.clone_voice(audio, ref_text="hi")
    with pytest.raises(AudioInputError, match=re.escape(needle)):
        base.speaker_embedding(audio)
    with pytest.raises(AudioInputError, match=re.escape(needle)):
        VoiceLibrary(base, tmp_path).clone("anna", audio, "hi")


def test_instruct_on_a_0b6_custom_voice_model_warns_and_is_ignored(tmp_path):
    from qwen3tts_realtime.model.random_checkpoint import write_random_checkpoint

    write_random_checkpoint(tmp_path, "0.6B-CustomVoice", tiny=True)
    tts = Qwen3TTS.from_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="ignores instruct"):
        voice = tts.speaker("ryan", instruct="Speak warmly.")
    assert voice.instruct is None


def test_a_device_this_machine_lacks_is_refused_before_loading(golden):
    """One device rule (`parse_device`) for every surface; the default is cuda when torch sees one, else cpu."""
    missing = "cuda" if torch.version.cuda is None else f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(InvalidInputError, match=f"device='{missing}': ") as refused:
        Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice", device=missing)
    assert "run on the CPU ('cpu')" in str(refused.value)  # what to do instead
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice").device.type == expected
