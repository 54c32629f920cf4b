"""What a caller may pass as a language, the same on every surface: names in any case, ISO 639 codes, BCP-47 tags."""

from __future__ import annotations

import pytest

from qwen3tts_realtime import InvalidInputError
from qwen3tts_realtime.text.languages import LANGUAGES, language_name


@pytest.mark.parametrize(
    ("given", "name"),
    [("English", "English"), ("english", "English"), ("en", "English"), ("en-US", "English"), ("eng", "English"),
     ("zh", "Chinese"), ("zh-Hans-CN", "Chinese"), ("cmn", "Chinese"), ("pt_BR", "Portuguese"), ("ja-JP", "Japanese"),
     ("fre", "French"), ("deu", "German"), (" Korean ", "Korean"), ("auto", "Auto"), ("Auto", "Auto"),
     ("multi", "Auto")],
)
def test_names_codes_and_tags_name_one_language(given, name):
    assert language_name(given) == name


def test_every_model_language_is_its_own_name():
    assert [language_name(n) for n in LANGUAGES] == list(LANGUAGES) and len(LANGUAGES) == 10


@pytest.mark.parametrize("given", ["Klingon", "xx", "sichuan_dialect", "", "e", None, 7])
def test_anything_else_is_refused_with_what_is_accepted(given):
    with pytest.raises(InvalidInputError, match="language") as refused:
        language_name(given)
    if isinstance(given, str):
        assert "accepted: Auto, Chinese, English" in str(refused.value)
