"""What a LiveKit `TTS` asks of the engine, frozen per stream: options, languages, voices, and error mapping.

Only this package (and `livekit.py`) knows LiveKit's `APIError`; everything below it raises the package's own
exception tree, which `api_error` translates at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError

from ...audio import MAX_RATE, MIN_RATE
from ...client import RemoteEngineError
from ...errors import InvalidInputError, Qwen3TTSError
from ...text.languages import LANGUAGES, language_name

if TYPE_CHECKING:
    from ...engine.sampling import SamplingParams
    from ...voices.profile import VoiceProfile

__all__ = ["MODEL_LANGUAGES", "Qwen3Language", "TTSOptions", "api_error", "check_speed",
           "model_language"]

Qwen3Language = Literal[
    "Auto", "Chinese", "English", "German", "Italian", "Portuguese", "Spanish", "Japanese", "Korean",
    "French", "Russian",
]
MODEL_LANGUAGES: tuple[str, ...] = LANGUAGES  # every Qwen3-TTS 12 Hz checkpoint speaks these


def model_language(language: str) -> str:
    """The model's name for a language given as LiveKit passes it or as the model names it, by the product's
    one rule (`text.languages`): "en", "en-US", "zh-CN", "pt-BR" -> "English", "Chinese", "Chinese",
    "Portuguese"; "Auto", "multi" or "" -> "Auto" (the model decides).

    Raises:
        InvalidInputError: a language Qwen3-TTS does not speak, or not a language at all.
    """
    if isinstance(language, str) and not language.strip():
        return "Auto"
    return language_name(language)


def check_speed(speed: float) -> float:
    """A valid speaking rate (1.0 = as generated).

    Raises:
        InvalidInputError: not a number in [0.5, 2.0].
    """
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not MIN_RATE <= speed <= MAX_RATE:
        raise InvalidInputError(
            f"speed={speed!r}; accepted: {MIN_RATE} to {MAX_RATE} (2.0 = twice as fast, 1.0 = as generated)"
        )
    return float(speed)


@dataclass(frozen=True)
class TTSOptions:
    """A `TTS`'s settings; each stream takes the ones current when it was created (see `update_options`)."""

    voice: VoiceProfile | str
    language: str  # the model's name for it: "Auto", "English", ...
    instruct: str | None
    speed: float
    sampling: SamplingParams | None
    seed: int | None
    chunk_frames: tuple[int, ...] | None  # None: the engine's default schedule
    max_new_frames: int | None  # None: the engine's guard against runaway generation

    def stream_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `TTSEngine.open_stream` (the voice aside)."""
        kwargs: dict[str, Any] = {
            "language": self.language,
            "sampling": self.sampling,
            "seed": self.seed,
            "max_new_frames": self.max_new_frames,
        }
        if self.chunk_frames is not None:
            kwargs["chunk_frames"] = self.chunk_frames
        return kwargs


def api_error(e: BaseException) -> APIError:
    """The LiveKit error for an engine failure, retryable only where a retry can help.

    Bad input (unknown voice or language, bad text or option) and a closed engine fail the same way again:
    not retryable. A remote engine's connection failures (refused, dropped mid-stream) and timeouts, its
    server at capacity (429) or failing (5xx), and running out of accelerator memory (other streams end and
    free it), are; a wrong API key (401) is not.
    """
    if isinstance(e, APIError):
        return e
    if isinstance(e, RemoteEngineError):  # the server: unreachable or dropped (retry), or an HTTP status
        if e.status is None:
            return APIConnectionError(f"cannot reach the Qwen3-TTS server: {e}")
        # LiveKit's rule: 408/429 and 5xx are retried (at capacity, restarting), other 4xx (a wrong key) are not
        return APIStatusError(f"the Qwen3-TTS server refused: {e}", status_code=e.status)
    if isinstance(e, Qwen3TTSError | ValueError | TypeError):
        return APIError(f"Qwen3-TTS rejected the request: {e}", retryable=False)
    if isinstance(e, TimeoutError):
        return APITimeoutError(f"the Qwen3-TTS engine timed out: {e}")
    if isinstance(e, ConnectionError):
        return APIConnectionError(f"cannot reach the Qwen3-TTS engine: {e}")
    if type(e).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError, without importing torch here
        return APIError(f"the Qwen3-TTS engine ran out of memory: {e}", retryable=True)
    return APIError(f"the Qwen3-TTS engine failed: {type(e).__name__}: {e}", retryable=False)
