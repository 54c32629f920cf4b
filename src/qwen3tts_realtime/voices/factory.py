"""`VoiceFactory`: making voices from a loaded model's parts (clone from audio, built-in speaker, designed voice).

`Qwen3TTS` is one (it inherits this); the methods need the model's `config`, `folder`, `talker`, `codec`,
`tokenizer`, `speaker_encoder` and `device`, and nothing above the voices layer.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidInputError, UnsupportedError
from ..model.codec import AudioLike
from ..model.omp import releases_omp_workers
from .preprocess import ReferencePreprocessing, prepare_reference
from .profile import VoiceProfile, with_instruct

__all__ = ["VoiceFactory"]

_KINDS = {"base": "Base", "custom_voice": "CustomVoice", "voice_design": "VoiceDesign"}
# Said in words, not Python calls: these messages reach the CLI and HTTP surfaces too.
_MAKERS = {"base": "clones of a reference clip", "custom_voice": "its built-in speakers, by name",
           "voice_design": "voices designed from a description"}
_WHAT = {"speaker_embedding": "a speaker embedding of reference audio", "clone_voice": "cloning a voice",
         "speaker": "a built-in speaker", "design_voice": "designing a voice from a description"}


class VoiceFactory:
    """Voice-making methods over a loaded model's parts."""

    @releases_omp_workers
    def speaker_embedding(self, audio: AudioLike) -> Tensor:
        """Speaker embedding [talker hidden] (float32, CPU) of a reference clip. Base checkpoints only.

        Raises:
            UnsupportedError: the checkpoint has no speaker encoder (CustomVoice, VoiceDesign).
            AudioInputError: unusable audio.
        """
        self._require("base", "speaker_embedding")
        return self._embed(prepare_reference(audio, ReferencePreprocessing.disabled()).samples)

    @releases_omp_workers
    def clone_voice(
        self, audio: AudioLike, ref_text: str | None = None, *, x_vector_only: bool = False
    ) -> VoiceProfile:
        """A cloned voice from a reference clip (Base checkpoints).

        Args:
            audio: path or `(samples, sample_rate)`.
            ref_text: the clip's transcript; required for the default in-context (ICL) clone.
            x_vector_only: clone from the speaker embedding alone (no transcript needed; less faithful).

        The clip is validated by the same rule as the voice library's (`voices.preprocess`: readable, finite,
        a source rate of at least 8 kHz, not silent, 1-60 s) but used as given (no trimming or normalising), as
        the official implementation does.

        Raises:
            UnsupportedError: not a Base checkpoint.
            InvalidInputError: ICL clone without `ref_text`.
            AudioInputError: unusable audio (the message says why and what is accepted).
        """
        self._require("base", "clone_voice")
        if not x_vector_only:
            self.tokenizer.ref_ids(ref_text)  # validates the transcript before any audio work
        wav = prepare_reference(audio, ReferencePreprocessing.disabled()).samples
        embedding, hidden = self._embed(wav), self.talker.hidden_size
        if x_vector_only:
            return VoiceProfile("clone_xvector", self.model_type, hidden_size=hidden, speaker_embedding=embedding)
        return VoiceProfile("clone_icl", self.model_type, hidden_size=hidden, speaker_embedding=embedding,
                            ref_codes=self.codec.encode_samples(wav), ref_text=ref_text)

    def speaker(self, name: str, instruct: str | None = None) -> VoiceProfile:
        """A built-in speaker of a CustomVoice checkpoint (see `speakers`), with an optional instruction.

        The 0.6B CustomVoice model ignores instructions (as officially); passing one there warns.

        Raises:
            UnsupportedError: not a CustomVoice checkpoint.
            InvalidInputError: unknown speaker.
        """
        self._require("custom_voice", "speaker")
        key = str(name).lower()
        if key not in self.config.talker.spk_id:
            raise InvalidInputError(f"unknown speaker {name!r}; this checkpoint has: {', '.join(self.speakers)}")
        plain = VoiceProfile("speaker", self.model_type, speaker=key)
        return with_instruct(plain, instruct, model_size=self.model_size)

    def design_voice(self, instruct: str) -> VoiceProfile:
        """A voice described in words (VoiceDesign checkpoints), e.g. "A calm, low male voice".

        Raises:
            UnsupportedError: not a VoiceDesign checkpoint.
        """
        self._require("voice_design", "design_voice")
        if not isinstance(instruct, str):
            raise InvalidInputError(f"instruct must be a string describing the voice, got {instruct!r}")
        return VoiceProfile("design", self.model_type, instruct=instruct or None)

    def _require(self, model_type: str, what: str) -> None:
        if self.model_type != model_type:
            raise UnsupportedError(
                f"{_WHAT[what]} needs a {_KINDS[model_type]} checkpoint; this one is {_KINDS[self.model_type]} "
                f"({self.folder.name}), whose voices are {_MAKERS[self.model_type]}"
            )

    def _embed(self, wav_24k: np.ndarray) -> Tensor:
        assert self.speaker_encoder is not None
        x = torch.from_numpy(np.ascontiguousarray(wav_24k)).to(self.device)
        return self.speaker_encoder.embed(x).to(torch.float32).cpu()
