"""Language names and codes: the one rule for what a caller may pass as a language, on every surface (Python,
CLI, HTTP, websocket, Pipecat, LiveKit).

    language_name("english") == language_name("en") == language_name("en-US") == "English"
    language_name("zh-Hans-CN") == language_name("cmn") == "Chinese"
    language_name("auto") == language_name("multi") == "Auto"        # the model decides

Accepted: the model's names in any case, ISO 639-1/-2/-3 codes, and BCP-47 tags (their primary subtag; "_" is
read as "-", so "pt_BR" works). The Chinese dialects some built-in speakers use are chosen by the speaker, never
named by a caller (the official rule).
"""

from __future__ import annotations

from ..errors import InvalidInputError

__all__ = ["LANGUAGES", "language_name"]

# The languages every Qwen3-TTS 12 Hz checkpoint speaks, as the model names them ("Auto": the model decides).
LANGUAGES: tuple[str, ...] = (
    "Chinese", "English", "German", "Italian", "Portuguese", "Spanish", "Japanese", "Korean", "French", "Russian",
)

_CODES = {
    "zh": "Chinese", "zho": "Chinese", "chi": "Chinese", "cmn": "Chinese",
    "en": "English", "eng": "English",
    "de": "German", "deu": "German", "ger": "German",
    "it": "Italian", "ita": "Italian",
    "pt": "Portuguese", "por": "Portuguese",
    "es": "Spanish", "spa": "Spanish",
    "ja": "Japanese", "jpn": "Japanese",
    "ko": "Korean", "kor": "Korean",
    "fr": "French", "fra": "French", "fre": "French",
    "ru": "Russian", "rus": "Russian",
}
_AUTO = ("auto", "multi")  # "multi": LiveKit's word for any language
_BY_NAME = {name.lower(): name for name in LANGUAGES}


def language_name(language: object) -> str:
    """"Auto" or the model's name for `language` (a name in any case, an ISO 639 code or a BCP-47 tag).

    Raises:
        InvalidInputError: not a string, or a language Qwen3-TTS does not speak (the message lists them).
    """
    if not isinstance(language, str):
        raise InvalidInputError(f"language must be a string such as 'English' or 'en', got {language!r}")
    key = language.strip().lower().replace("_", "-")
    if key in _AUTO:
        return "Auto"
    name = _BY_NAME.get(key) or _CODES.get(key.split("-")[0])
    if name is None:
        raise InvalidInputError(
            f"language {language!r} is not supported by Qwen3-TTS; accepted: Auto, {', '.join(LANGUAGES)} (any "
            "case), or their ISO 639 codes and BCP-47 tags (en, zh, de, it, pt, es, ja, ko, fr, ru; en-US, zh-CN, "
            "pt-BR, ...)"
        )
    return name
