"""The 12 Hz speech-tokenizer encoder: 24 kHz reference audio → codes [frames, 16] (spec §6.1).

The official encoder is a `transformers.MimiModel` with its decoder half deleted. This module builds only the
half that is kept, from the same transformers Mimi blocks, under the same attribute names, so its state_dict
keys are the checkpoint's `encoder.*` keys with the leading `encoder.` stripped and the decoder half is never
allocated:

    encoder              SEANet: causal convs with strides 4, 5, 6, 8 (zero padding), 24 kHz → 25 Hz
    encoder_transformer  8 causal pre-norm layers with RoPE and LayerScale
    downsample           causal conv, stride 2 (replicate padding), 25 Hz → 12.5 Hz
    quantizer            split RVQ: 1 semantic + 31 acoustic codebooks (only the first 16 codes are kept)

Parity with the official run: the attention is set to SDPA explicitly (the transformers default the official
run used; it builds the full causal mask, `sliding_window` only applies to flash attention); only the first
`encoder_valid_num_quantizers` codebooks run (each RVQ stage sees only earlier residuals, so the 16 kept codes
are those of the full 32-stage run); the input is cast to the module's dtype as the official wrapper does;
T samples give ceil(T / 1920) frames, as the official trim. Codes match the golden outputs (made with
transformers 4.57.3) exactly with 4.57.6; the Mimi code was reworked in transformers 5.x.

What this module does not do: read or resample audio (see `audio_input`), batch references, load checkpoints.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from transformers import MimiConfig
from transformers.models.mimi.modeling_mimi import (
    MimiConv1d,
    MimiEncoder,
    MimiEuclideanCodebook,
    MimiSplitResidualVectorQuantizer,
    MimiTransformerModel,
)

from ..errors import AudioInputError, CheckpointError
from .config import SpeechTokenizerConfig

__all__ = ["CodecEncoder"]


def _mimi_config(encoder_config: dict[str, Any]) -> MimiConfig:
    """The `transformers.MimiConfig` of `speech_tokenizer/config.json` `encoder_config`, with SDPA attention
    and no key/value cache (one pass over a whole reference)."""
    config = MimiConfig(**{**encoder_config, "use_cache": False, "use_streaming": False})
    config._attn_implementation = "sdpa"
    return config


class CodecEncoder(nn.Module):
    """Reference waveform → 12.5 Hz codes with `encoder_valid_num_quantizers` (16) code groups per frame.

    Args:
        config: the parsed `speech_tokenizer/config.json`.
    """

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        mimi = _mimi_config(config.encoder)
        if mimi.frame_rate == mimi.encodec_frame_rate:
            raise CheckpointError(
                f"speech_tokenizer/config.json encoder_config: frame rate {mimi.frame_rate} Hz equals the "
                "SEANet rate; the 12 Hz tokenizer downsamples 25 Hz → 12.5 Hz"
            )
        if not mimi.num_semantic_quantizers <= config.encoder_valid_num_quantizers <= mimi.num_quantizers:
            raise CheckpointError(
                "speech_tokenizer/config.json: encoder_valid_num_quantizers "
                f"{config.encoder_valid_num_quantizers} must lie between {mimi.num_semantic_quantizers} and "
                f"{mimi.num_quantizers}"
            )
        self.num_quantizers = config.encoder_valid_num_quantizers
        self.samples_per_frame = config.encode_downsample_rate
        self.sample_rate = config.input_sample_rate
        # The encoder half of `MimiModel.__init__`, same blocks and names.
        self.encoder = MimiEncoder(mimi)
        self.encoder_transformer = MimiTransformerModel(mimi)
        self.downsample = MimiConv1d(
            mimi,
            mimi.hidden_size,
            mimi.hidden_size,
            kernel_size=2 * int(mimi.encodec_frame_rate / mimi.frame_rate),
            stride=2,
            bias=False,
            pad_mode="replicate",
            layer_idx=len(_conv_layer_names(self.encoder)),
        )
        self.quantizer = MimiSplitResidualVectorQuantizer(mimi)
        # Mimi codebooks cache `embed_sum / cluster_usage` on first use: drop that cache whenever the buffers
        # change (new weights, another device or dtype), or it would keep quantizing against stale centroids.
        self.register_load_state_dict_post_hook(_drop_codebook_caches_after_load)

    def _drop_codebook_caches(self) -> None:
        for module in self.quantizer.modules():
            if isinstance(module, MimiEuclideanCodebook):
                module._embed = None

    def _apply(self, fn: Any, recurse: bool = True) -> CodecEncoder:
        super()._apply(fn, recurse)
        self._drop_codebook_caches()
        return self

    def num_frames(self, num_samples: int) -> int:
        """Code frames for `num_samples` at 24 kHz: ceil(num_samples / 1920)."""
        return math.ceil(num_samples / self.samples_per_frame)

    def forward(self, wav: Tensor) -> Tensor:
        """`wav` [B, 1, T] in the module dtype → codes [B, num_quantizers, ceil(T / 1920)], in Mimi's order of
        operations. Each strided convolution pads the end to complete its last step, so T samples give
        ceil(T / 960) SEANet steps and ceil(T / 1920) frames: the official trim to the valid length only
        matters for zero-padded batches, which this module does not build."""
        hidden = self.encoder(wav)  # [B, C, T / 960]
        hidden = self.encoder_transformer(hidden.transpose(1, 2), use_cache=False, return_dict=True)
        hidden = self.downsample(hidden.last_hidden_state.transpose(1, 2))  # [B, C, frames]
        codes = self.quantizer.encode(hidden, self.num_quantizers)  # [K, B, frames]
        return codes.transpose(0, 1)

    @torch.no_grad()
    def encode(self, wav_24k: Tensor) -> Tensor:
        """Codes of one reference waveform, as the official `Qwen3TTSTokenizer.encode` returns them.

        Args:
            wav_24k: `[T]` float waveform at 24 kHz (resample other rates first, see `audio_input`); it is
                cast to the module's dtype and moved to its device.

        Returns:
            `[ceil(T / 1920), num_quantizers]` int64 codes on the module's device.

        Raises:
            AudioInputError: the waveform is not 1-D or is empty.
        """
        if wav_24k.ndim != 1 or wav_24k.shape[0] == 0:
            raise AudioInputError(
                "the codec encoder needs a non-empty mono waveform of shape [T], got shape "
                f"{tuple(wav_24k.shape)}"
            )
        param = next(self.parameters())
        wav = wav_24k.to(device=param.device, dtype=param.dtype)
        return self(wav.view(1, 1, -1))[0].transpose(0, 1)


def _conv_layer_names(encoder: MimiEncoder) -> list[str]:
    """The SEANet's conv layers (what Mimi numbers its padding caches by): named `_mimiconv1d_layer_names` in
    transformers 4.57, `_conv1d_layer_names` in 5.x."""
    names = getattr(encoder, "_mimiconv1d_layer_names", None)
    return encoder._conv1d_layer_names if names is None else names


def _drop_codebook_caches_after_load(module: CodecEncoder, _incompatible_keys: Any) -> None:
    module._drop_codebook_caches()
