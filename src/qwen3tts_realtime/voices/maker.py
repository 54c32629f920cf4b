"""`VoiceMaker`: what the voice library needs from a loaded model (`Qwen3TTS` is one), so `voices/` depends on
this narrow protocol and never on the facade above it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch

from ..model.config import Qwen3TTSConfig
from ..model.text_tokenizer import TextTokenizer
from .profile import VoiceProfile

__all__ = ["VoiceMaker"]


class VoiceMaker(Protocol):
    folder: Path  # the checkpoint folder (its identity keys the library's entries)
    config: Qwen3TTSConfig
    tokenizer: TextTokenizer
    device: torch.device
    dtype: torch.dtype

    @property
    def model_type(self) -> str: ...

    @property
    def speakers(self) -> list[str]: ...

    def clone_voice(self, audio: Any, ref_text: str | None = None, *, x_vector_only: bool = False) -> VoiceProfile:
        ...

    def speaker(self, name: str, instruct: str | None = None) -> VoiceProfile: ...

    def design_voice(self, instruct: str) -> VoiceProfile: ...

    def resolve_voice(self, voice: VoiceProfile | str) -> VoiceProfile: ...
