"""`SpeechCodec`: the 12 Hz speech tokenizer as users see it (`tts.codec`): audio ⇄ codes [frames, 16].

`encode` takes a path or `(samples, sample_rate)`, resamples to 24 kHz and runs the Mimi encoder; `decode`
is the exact full decode of all frames at once (no windowing), one 1920-sample frame per code frame.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidInputError
from .audio_input import load_reference_audio
from .checkpoint import load_module_weights
from .codec_decoder import CodecDecoder, validate_codes
from .codec_encoder import CodecEncoder
from .config import SpeechTokenizerConfig, load_json

__all__ = ["SpeechCodec", "AudioLike"]

AudioLike = str | os.PathLike | tuple[np.ndarray, int]


class SpeechCodec:
    """Encoder and decoder of one checkpoint's `speech_tokenizer/`, on one device and dtype."""

    def __init__(self, folder: Path, *, dtype: torch.dtype, device: torch.device) -> None:
        self.config = SpeechTokenizerConfig.from_dict(load_json(folder / "config.json"))
        self.dtype, self.device = dtype, device
        self._weights = folder / "model.safetensors"
        self._encoder: CodecEncoder | None = None
        self._encoder_lock = threading.Lock()
        with torch.device("meta"):  # every tensor of the decoder is in the checkpoint: no init-time copy
            self.decoder = CodecDecoder(self.config.decoder)
        load_module_weights(self.decoder, self._weights, "decoder.", dtype=dtype, device=device)
        self.decoder.eval()

    @property
    def encoder(self) -> CodecEncoder:
        """The Mimi encoder, loaded on first use: only cloning needs it, and a process that never clones (every
        CustomVoice or VoiceDesign server) keeps its memory."""
        with self._encoder_lock:
            if self._encoder is None:
                encoder = CodecEncoder(self.config)
                load_module_weights(encoder, self._weights, "encoder.", dtype=self.dtype, device=self.device)
                self._encoder = encoder.to(self.device).eval()
            return self._encoder

    @property
    def sample_rate(self) -> int:
        return self.config.output_sample_rate

    @property
    def samples_per_frame(self) -> int:
        return self.config.decode_upsample_rate

    def encode(self, audio: AudioLike) -> Tensor:
        """Reference audio → codes.

        Args:
            audio: a path to an audio file, or `(samples, sample_rate)` (mono [T] or [T, channels]).

        Returns:
            LongTensor [frames, 16] on the CPU, frames = ceil(samples at 24 kHz / 1920).

        Raises:
            AudioInputError: unreadable, empty, NaN/inf or non-audio input.
        """
        wav = load_reference_audio(audio, self.config.input_sample_rate)
        return self.encode_samples(wav)

    def encode_samples(self, wav_24k: np.ndarray) -> Tensor:
        """Codes of an already validated 24 kHz mono float waveform."""
        x = torch.from_numpy(np.ascontiguousarray(wav_24k)).to(self.device, self.dtype)
        with torch.inference_mode():
            return self.encoder.encode(x).cpu()

    def decode(self, codes: Tensor | np.ndarray) -> np.ndarray:
        """Codes [frames, 16] → np.float32 mono 24 kHz audio of exactly frames × 1920 samples.

        Raises:
            InvalidInputError: codes of the wrong shape (not [frames, 16]), dtype or range (ids 0..2047).
        """
        checked = validate_codes(codes)
        if checked.shape[0] != 1:
            raise InvalidInputError(f"decode takes one stream of codes [frames, 16], got a batch of {checked.shape[0]}")
        with torch.inference_mode():
            audio = self.decoder(checked.to(self.device))[0]
        return audio.to(torch.float32).cpu().numpy()
