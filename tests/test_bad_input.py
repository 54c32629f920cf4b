"""Bad input gets a ValueError that names what is wrong and what is accepted."""

from __future__ import annotations

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
)


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
    with pytest.raises(UnsupportedError, match="design_voice"):
        design.clone_voice(str(golden / "inputs" / "ref_24k.wav"), ref_text="hi")


def test_icl_clone_needs_ref_text(base, golden):
    with pytest.raises(InvalidInputError, match="x_vector_only=True"):
        base.clone_voice(str(golden / "inputs" / "ref_24k.wav"))


def test_unknown_speaker_names_the_speakers(custom):
    with pytest.raises(InvalidInputError, match="ryan, eric"):
        custom.speaker("nobody")


def test_unknown_language_names_the_languages(custom):
    with pytest.raises(InvalidInputError, match="accepted: auto, chinese, english"):
        custom.generate("Hi.", custom.speaker("ryan"), language="Klingon")


def test_dialects_are_not_request_languages(custom):
    """As officially: dialect ids are reached only through the speakers Eric and Dylan."""
    assert "sichuan_dialect" not in custom.languages
    with pytest.raises(InvalidInputError):
        custom.generate("Hi.", custom.speaker("eric"), language="sichuan_dialect")


def test_empty_text(custom):
    with pytest.raises(InvalidInputError, match="non-empty"):
        custom.generate("   ", custom.speaker("ryan"))


def test_voice_from_another_checkpoint_type(custom, design):
    with pytest.raises(InvalidInputError, match="voice_design"):
        custom.generate("Hi.", design.design_voice("calm"))


def test_bad_sampling(custom):
    with pytest.raises(InvalidInputError, match="top_p"):
        custom.generate("Hi.", custom.speaker("ryan"), sampling=SamplingParams(top_p=1.5))


def test_reference_too_short_to_encode(base):
    with pytest.raises(AudioInputError, match="too short"):
        base.clone_voice((np.random.default_rng(0).standard_normal(200).astype(np.float32), 24000), ref_text="hi")


def test_instruct_on_a_0b6_custom_voice_model_warns_and_is_ignored(tmp_path):
    from qwen3tts_realtime.model.random_checkpoint import write_random_checkpoint

    write_random_checkpoint(tmp_path, "0.6B-CustomVoice", tiny=True)
    tts = Qwen3TTS.from_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="ignores instruct"):
        voice = tts.speaker("ryan", instruct="Speak warmly.")
    assert voice.instruct is None
