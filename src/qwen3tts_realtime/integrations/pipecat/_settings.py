"""`Qwen3TTSSettings` (the service's runtime-updatable settings), Pipecat languages and sampling switches.

Does: declare the settings dataclass in Pipecat's store/delta convention, map Pipecat `Language` values and
language names to the model's language names, check setting values before they are applied, and turn the
settings into `SamplingParams`.
Does not: touch the engine or resolve voices (see `_service.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipecat.services.settings import TTSSettings
from pipecat.transcriptions.language import Language
from pipecat.utils.types import NOT_GIVEN, NotGiven

from ...audio import MAX_RATE, MIN_RATE
from ...engine.sampling import SamplingParams
from ...errors import InvalidInputError
from ...voices.profile import VoiceProfile

__all__ = ["Qwen3TTSSettings", "model_language", "sampling_params", "check_values"]

# Pipecat base language code -> the model's language name (the 10 languages of Qwen3-TTS).
_BY_CODE = {
    "zh": "Chinese",
    "cmn": "Chinese",
    "en": "English",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "es": "Spanish",
    "ja": "Japanese",
    "ko": "Korean",
    "fr": "French",
    "ru": "Russian",
}
_NAMES = {name.lower(): name for name in ("Auto", *_BY_CODE.values())}


@dataclass
class Qwen3TTSSettings(TTSSettings):
    """Settings for `Qwen3TTSService` (store mode in the service, delta mode in `TTSUpdateSettingsFrame`).

    Parameters:
        model: the checkpoint the service loaded (informational; it cannot change at runtime).
        voice: a voice-library name, a built-in speaker name (CustomVoice checkpoints) or a `VoiceProfile`.
        language: a Pipecat `Language` (e.g. `Language.EN`, `Language.ZH_CN`) or a model language name
            ("English", "Auto", ...); None means "Auto" (the model decides).
        instruct: a speaking-style instruction for CustomVoice speakers (honoured by 1.7B checkpoints) or the
            description of a VoiceDesign voice; None keeps the voice's own.
        speed: speaking rate, 0.5 to 2.0 (pitch kept); 1.0 is the model's own pace, untouched.
        temperature, top_k, top_p: sampling of the talker's codec tokens; None = the checkpoint's default.
        do_sample: False = greedy (deterministic) for the talker and the code predictor; None = default.
        seed: seeds each engine stream's sampling (reproducible speech); None = unseeded.
    """

    voice: str | VoiceProfile | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    instruct: str | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    speed: float | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    temperature: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    top_k: int | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    top_p: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    do_sample: bool | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    seed: int | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)


def model_language(language: Language | str | None) -> str:
    """The model's language name for a Pipecat `Language`, a language name or None ("Auto").

    Regional variants resolve through their base language (`Language.EN_GB` -> "English").

    Raises:
        InvalidInputError: a language Qwen3-TTS does not speak; the message lists the supported ones.
    """
    if language is None:
        return "Auto"
    if isinstance(language, Language):
        name = _BY_CODE.get(str(language.value).split("-")[0].lower())
    elif isinstance(language, str):
        name = _NAMES.get(language.strip().lower())
        if name is None:
            try:
                return model_language(Language(language))
            except ValueError:
                pass
    else:
        name = None
    if name is None:
        supported = ", ".join(_NAMES.values())
        raise InvalidInputError(
            f"language {language!r} is not supported by Qwen3-TTS; supported: {supported} "
            "(as Pipecat Language values, e.g. Language.EN, or these names); None means Auto"
        )
    return name


def check_values(settings: Qwen3TTSSettings) -> dict[str, InvalidInputError]:
    """The given numeric/sampling fields that are out of range, each with the error saying why."""
    errors: dict[str, InvalidInputError] = {}

    def given(name: str) -> object:
        value = getattr(settings, name)
        return NOT_GIVEN if isinstance(value, NotGiven) else value

    speed = given("speed")
    if not isinstance(speed, NotGiven) and (
        isinstance(speed, bool) or not isinstance(speed, int | float) or not MIN_RATE <= speed <= MAX_RATE
    ):
        errors["speed"] = InvalidInputError(f"speed={speed!r}; accepted: {MIN_RATE} to {MAX_RATE} (1.0 = unchanged)")
    temperature = given("temperature")
    if temperature is not None and not isinstance(temperature, NotGiven) and not (
        isinstance(temperature, int | float) and temperature > 0
    ):
        errors["temperature"] = InvalidInputError(f"temperature={temperature!r}; it must be > 0 or None")
    top_p = given("top_p")
    if top_p is not None and not isinstance(top_p, NotGiven) and not (
        isinstance(top_p, int | float) and 0 < top_p <= 1
    ):
        errors["top_p"] = InvalidInputError(f"top_p={top_p!r}; accepted: 0 < top_p <= 1, or None")
    for name, label in (("top_k", "an int >= 0 (0 = off)"), ("seed", "an int")):
        value = given(name)
        if value is not None and not isinstance(value, NotGiven) and (
            isinstance(value, bool) or not isinstance(value, int) or (name == "top_k" and value < 0)
        ):
            errors[name] = InvalidInputError(f"{name}={value!r}; accepted: {label}, or None")
    do_sample = given("do_sample")
    if do_sample is not None and not isinstance(do_sample, NotGiven | bool):
        errors["do_sample"] = InvalidInputError(f"do_sample={do_sample!r}; accepted: True, False or None")
    instruct = given("instruct")
    if instruct is not None and not isinstance(instruct, NotGiven | str):
        errors["instruct"] = InvalidInputError(f"instruct={instruct!r}; it must be a string or None")
    return errors


def sampling_params(settings: Qwen3TTSSettings) -> SamplingParams:
    """The engine's sampling switches for these settings.

    `do_sample` switches both the talker and the code predictor (False: fully greedy, deterministic);
    `temperature`/`top_k`/`top_p` shape the talker's tokens, which carry the prosody; the code predictor keeps
    the checkpoint's values.
    """
    return SamplingParams(
        do_sample=settings.do_sample,
        subtalker_dosample=settings.do_sample,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
    )
