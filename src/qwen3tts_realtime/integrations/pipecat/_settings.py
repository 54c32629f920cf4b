"""`Qwen3TTSSettings` (the service's runtime-updatable settings), Pipecat languages and sampling switches.

Does: declare the settings dataclass in Pipecat's store/delta convention, map Pipecat `Language` values and
language names to the model's language names, check setting values before they are applied, and turn the
settings into `SamplingParams`.
Does not: touch the engine or resolve voices (see `_service.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipecat.services.settings import TTSSettings
from pipecat.transcriptions.language import Language
from pipecat.utils.types import NOT_GIVEN, NotGiven, is_given

from ...audio import MAX_RATE, MIN_RATE
from ...engine.sampling import SamplingParams, check_sampling_value
from ...errors import InvalidInputError
from ...text.languages import language_name
from ...voices.profile import VoiceProfile

__all__ = ["Qwen3TTSSettings", "check_values", "is_language_code", "model_language", "sampling_params"]

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
    """The model's language name for a Pipecat `Language`, a language name or code, or None ("Auto"), by the
    product's one rule (`text.languages`): regional variants resolve through their base language
    (`Language.EN_GB` -> "English").

    Raises:
        InvalidInputError: a language Qwen3-TTS does not speak; the message lists the supported ones.
    """
    if language is None:
        return "Auto"
    return language_name(str(language.value) if isinstance(language, Language) else language)


def is_language_code(language: object) -> bool:
    """A Pipecat `Language` or its code ("de-DE"), which Pipecat converts itself (and splits sentences by)."""
    if isinstance(language, Language):
        return True
    try:
        Language(language)
    except ValueError:
        return False
    return True


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Field -> (accepted?, what is accepted). None means "the checkpoint's default" wherever it is accepted.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "speed": (
        lambda v: _number(v) and MIN_RATE <= v <= MAX_RATE,
        f"{MIN_RATE} to {MAX_RATE} (1.0 = unchanged)",
    ),
    "seed": (lambda v: v is None or _int(v), "an int, or None"),
    "do_sample": (lambda v: v is None or isinstance(v, bool), "True, False or None"),
    "instruct": (lambda v: v is None or isinstance(v, str), "a string, or None"),
}


def check_values(settings: Qwen3TTSSettings) -> dict[str, InvalidInputError]:
    """The given speed/sampling/instruct fields that are out of range, each with the error saying why."""
    errors: dict[str, InvalidInputError] = {}
    for name, (accepted, what) in _RULES.items():
        value = getattr(settings, name)
        if is_given(value) and not accepted(value):
            errors[name] = InvalidInputError(f"{name}={value!r}; accepted: {what}")
    for name in ("temperature", "top_k", "top_p"):  # the engine's own rules (engine/sampling.py)
        value = getattr(settings, name)
        what = None if not is_given(value) or value is None else check_sampling_value(name, value)
        if what is not None:
            errors[name] = InvalidInputError(f"{name}={value!r}; accepted: {what}, or None")
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
