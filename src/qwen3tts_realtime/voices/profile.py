"""`VoiceProfile`: everything needed to speak in one voice, computed once and never mutated.

Kinds:
- "clone_icl": Base checkpoints; speaker embedding + reference codes + reference transcript (in-context clone).
- "clone_xvector": Base checkpoints; speaker embedding only.
- "speaker": CustomVoice checkpoints; a built-in speaker name, optional instruct (honoured on 1.7B only).
- "design": VoiceDesign checkpoints; a natural-language voice description (instruct).
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import torch
from torch import Tensor

from ..errors import InvalidInputError

__all__ = ["VoiceKind", "VoiceProfile", "with_instruct"]

VoiceKind = Literal["clone_icl", "clone_xvector", "speaker", "design"]


@dataclass(frozen=True, eq=False)
class VoiceProfile:
    """An immutable voice. Build it with `Qwen3TTS.clone_voice`, `.speaker` or `.design_voice`.

    Attributes:
        kind: see the module docstring.
        model_type: the checkpoint type it was made for ("base", "custom_voice", "voice_design").
        hidden_size: the talker width its speaker embedding has (clones only), so a clone made with a 0.6B
            model is refused by a 1.7B one instead of failing deep inside.
        speaker: built-in speaker name (kind "speaker").
        instruct: voice/style instruction (kinds "speaker" and "design"); None or "" for none.
        speaker_embedding: [hidden] float32 CPU tensor (clones).
        ref_codes: [frames, 16] reference codes (kind "clone_icl").
        ref_text: transcript of the reference clip (kind "clone_icl").
    """

    kind: VoiceKind
    model_type: str
    hidden_size: int | None = None
    speaker: str | None = None
    instruct: str | None = None
    speaker_embedding: Tensor | None = None
    ref_codes: Tensor | None = None
    ref_text: str | None = None

    @cached_property
    def content_key(self) -> str:
        """A hash of everything the voice is (kind, model type, speaker, instruct, embedding, reference codes and
        text): two profiles built the same way have the same key, so they share warm state in the engine."""
        h = hashlib.sha256()
        for value in (self.kind, self.model_type, self.hidden_size, self.speaker, self.instruct or None, self.ref_text):
            h.update(repr(value).encode("utf-8", "surrogatepass") + b"\0")
        for tensor in (self.speaker_embedding, self.ref_codes):
            if tensor is None:
                h.update(b"none\0")
            else:
                t = tensor.detach().cpu().contiguous()
                h.update(f"{t.dtype}{tuple(t.shape)}".encode())
                h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        detail = {
            "clone_icl": f"ref_frames={None if self.ref_codes is None else self.ref_codes.shape[0]}",
            "clone_xvector": f"hidden={self.hidden_size}",
            "speaker": f"speaker={self.speaker!r}, instruct={self.instruct!r}",
            "design": f"instruct={self.instruct!r}",
        }[self.kind]
        return f"VoiceProfile(kind={self.kind!r}, {detail})"


def with_instruct(
    profile: VoiceProfile,
    instruct: str | None,
    *,
    model_size: str | None,
    on_ignored: Callable[[str], None] | None = None,
) -> VoiceProfile:
    """`profile` speaking with `instruct`: a built-in speaker's style (1.7B CustomVoice) or a designed voice's
    description (VoiceDesign). None, or the profile's own instruction, keeps the profile. The one rule for
    instructions, used by every surface (server, Pipecat, LiveKit).

    The 0.6B CustomVoice model ignores instructions, as the official implementation does: the profile comes
    back unchanged and `on_ignored` gets the reason (default: a `UserWarning`, shown once per place; a server
    passes a debug log instead). `model_size` is the loaded model's ("0b6", "1b7").

    Raises:
        InvalidInputError: an instruction for a cloned voice (a clone takes its style from its reference audio).
    """
    if not instruct or instruct == profile.instruct:
        return profile
    if profile.kind not in ("speaker", "design"):
        raise InvalidInputError(
            f"instructions cannot apply to {profile!r}: they steer built-in speakers (CustomVoice) and designed "
            "voices (VoiceDesign); a clone takes its style from its reference audio"
        )
    if profile.kind == "speaker" and model_size == "0b6":
        reason = ("the 0.6B CustomVoice model ignores instruct (as the official implementation does); use a 1.7B "
                  "CustomVoice checkpoint for instructions")
        if on_ignored is None:
            warnings.warn(reason, UserWarning, stacklevel=2)
        else:
            on_ignored(reason)
        return profile
    return dataclasses.replace(profile, instruct=instruct)
