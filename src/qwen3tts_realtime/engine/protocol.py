"""The `Engine` protocol: all the integrations (Pipecat, LiveKit, the server) need from a TTS engine.

`Qwen3TTS` implements it in-process; the server's remote client implements it over the network. Integrations
depend on this protocol only, so either can be plugged in.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..voices.profile import VoiceProfile
from .sampling import SamplingParams
from .stream import Stream

__all__ = ["TTSEngine"]


@runtime_checkable
class TTSEngine(Protocol):
    """What a streaming TTS engine offers.

    - `open_stream(text=None, *, voice, ...)`: a `Stream`. With `text`, it speaks that text (the official
      default layout per model type unless `non_streaming_layout` says otherwise); without, push text with
      `stream.push_text()` and close it with `stream.end_input()`. Iterate it with `async for` or `for`,
      wherever it was opened. Thread-safe.
    - `resolve_voice(voice)`: a `VoiceProfile` from a profile, a voice-library name or a built-in speaker name.
    - `stats()`: active/queued streams, steps, batch sizes seen.
    - `warmup()`: run a tiny generation so the first real request does not pay one-time costs (blocking).
    - `sample_rate`: of the audio chunks (24000).
    - `aclose()`: stop the engine; open streams are cancelled.
    """

    @property
    def sample_rate(self) -> int: ...

    def open_stream(
        self,
        text: str | None = None,
        *,
        voice: VoiceProfile | str,
        language: str = "Auto",
        sampling: SamplingParams | None = None,
        chunk_frames: tuple[int, ...] = ...,
        non_streaming_layout: bool | None = None,
        max_new_frames: int | None = None,
        seed: int | None = None,
    ) -> Stream: ...

    def resolve_voice(self, voice: VoiceProfile | str) -> VoiceProfile: ...

    def stats(self) -> dict[str, Any]: ...

    def warmup(self) -> None: ...

    async def aclose(self) -> None: ...
