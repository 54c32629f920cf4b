"""Checkpoint configuration: every id and size read from `config.json` and `speech_tokenizer/config.json`.

The official Python classes carry defaults that are wrong for the published checkpoints (e.g. codec ids in
the 4196+ range), so nothing here has a default for a value a checkpoint defines: a missing key is a
`CheckpointError` naming it. Only values the official code itself fills in from class defaults (the
speaker-encoder channel layout, the decoder `head_dim` fallback) are defaulted here, with the same values.

This module reads JSON only; it builds no modules and imports no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import CheckpointError

__all__ = [
    "ModelType",
    "ModelSize",
    "TransformerConfig",
    "TalkerConfig",
    "SpeakerEncoderConfig",
    "Qwen3TTSConfig",
    "CodecDecoderConfig",
    "SpeechTokenizerConfig",
    "GenerationDefaults",
    "load_json",
]

ModelType = Literal["base", "custom_voice", "voice_design"]
ModelSize = Literal["0b6", "1b7"]
MODEL_TYPES: tuple[str, ...] = ("base", "custom_voice", "voice_design")
MODEL_SIZES: tuple[str, ...] = ("0b6", "1b7")


def load_json(path: Path) -> dict[str, Any]:
    """Read a JSON object, raising `CheckpointError` (not a bare JSON error) for a missing or bad file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CheckpointError(f"{path} is missing: not a Qwen3-TTS 12 Hz checkpoint folder") from e
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not readable JSON: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise CheckpointError(f"{where} has no '{key}': not a Qwen3-TTS 12 Hz checkpoint config")
    return d[key]


@dataclass(frozen=True)
class TransformerConfig:
    """A Qwen3-style decoder stack (talker or code predictor)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    vocab_size: int
    num_code_groups: int

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> TransformerConfig:
        heads = int(_req(d, "num_attention_heads", where))
        hidden = int(_req(d, "hidden_size", where))
        return cls(
            hidden_size=hidden,
            intermediate_size=int(_req(d, "intermediate_size", where)),
            num_hidden_layers=int(_req(d, "num_hidden_layers", where)),
            num_attention_heads=heads,
            num_key_value_heads=int(_req(d, "num_key_value_heads", where)),
            head_dim=int(d.get("head_dim") or hidden // heads),
            rms_norm_eps=float(_req(d, "rms_norm_eps", where)),
            rope_theta=float(_req(d, "rope_theta", where)),
            vocab_size=int(_req(d, "vocab_size", where)),
            num_code_groups=int(_req(d, "num_code_groups", where)),
        )


@dataclass(frozen=True)
class TalkerConfig:
    """`talker_config`: the talker stack, its text side, codec control ids, languages and speakers."""

    transformer: TransformerConfig
    code_predictor: TransformerConfig
    text_vocab_size: int
    text_hidden_size: int
    codec_pad_id: int
    codec_bos_id: int
    codec_eos_token_id: int
    codec_think_id: int
    codec_nothink_id: int
    codec_think_bos_id: int
    codec_think_eos_id: int
    codec_language_id: dict[str, int]
    spk_id: dict[str, int]
    spk_is_dialect: dict[str, str | bool]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TalkerConfig:
        w = "config.json talker_config"
        cp = _req(d, "code_predictor_config", w)
        return cls(
            transformer=TransformerConfig.from_dict(d, w),
            code_predictor=TransformerConfig.from_dict(cp, w + ".code_predictor_config"),
            text_vocab_size=int(_req(d, "text_vocab_size", w)),
            text_hidden_size=int(_req(d, "text_hidden_size", w)),
            codec_pad_id=int(_req(d, "codec_pad_id", w)),
            codec_bos_id=int(_req(d, "codec_bos_id", w)),
            codec_eos_token_id=int(_req(d, "codec_eos_token_id", w)),
            codec_think_id=int(_req(d, "codec_think_id", w)),
            codec_nothink_id=int(_req(d, "codec_nothink_id", w)),
            codec_think_bos_id=int(_req(d, "codec_think_bos_id", w)),
            codec_think_eos_id=int(_req(d, "codec_think_eos_id", w)),
            codec_language_id={str(k).lower(): int(v) for k, v in _req(d, "codec_language_id", w).items()},
            spk_id={str(k).lower(): int(v) for k, v in (d.get("spk_id") or {}).items()},
            spk_is_dialect={str(k).lower(): v for k, v in (d.get("spk_is_dialect") or {}).items()},
        )


@dataclass(frozen=True)
class SpeakerEncoderConfig:
    """ECAPA-TDNN speaker encoder (Base checkpoints). Channel defaults are the official class defaults."""

    enc_dim: int
    sample_rate: int = 24000
    mel_dim: int = 128
    enc_channels: tuple[int, ...] = (512, 512, 512, 512, 1536)
    enc_kernel_sizes: tuple[int, ...] = (5, 3, 3, 3, 1)
    enc_dilations: tuple[int, ...] = (1, 2, 3, 4, 1)
    enc_attention_channels: int = 128
    enc_res2net_scale: int = 8
    enc_se_channels: int = 128

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeakerEncoderConfig:
        w = "config.json speaker_encoder_config"
        kw: dict[str, Any] = {"enc_dim": int(_req(d, "enc_dim", w))}
        for name in ("sample_rate", "mel_dim", "enc_attention_channels", "enc_res2net_scale", "enc_se_channels"):
            if name in d:
                kw[name] = int(d[name])
        for name in ("enc_channels", "enc_kernel_sizes", "enc_dilations"):
            if name in d:
                kw[name] = tuple(int(x) for x in d[name])
        return cls(**kw)


@dataclass(frozen=True)
class Qwen3TTSConfig:
    """Top-level `config.json`."""

    model_type: ModelType
    model_size: ModelSize
    talker: TalkerConfig
    speaker_encoder: SpeakerEncoderConfig | None
    im_start_token_id: int
    im_end_token_id: int
    tts_pad_token_id: int
    tts_bos_token_id: int
    tts_eos_token_id: int
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Qwen3TTSConfig:
        w = "config.json"
        if d.get("model_type") != "qwen3_tts":
            raise CheckpointError(
                f"config.json has model_type {d.get('model_type')!r}; expected 'qwen3_tts' "
                "(a Qwen3-TTS 12 Hz checkpoint such as Qwen/Qwen3-TTS-12Hz-0.6B-Base)"
            )
        if d.get("tokenizer_type", "qwen3_tts_tokenizer_12hz") != "qwen3_tts_tokenizer_12hz":
            raise CheckpointError(
                f"config.json has tokenizer_type {d.get('tokenizer_type')!r}; only the 12 Hz models "
                "('qwen3_tts_tokenizer_12hz') are supported"
            )
        model_type = _req(d, "tts_model_type", w)
        if model_type not in MODEL_TYPES:
            raise CheckpointError(f"config.json tts_model_type {model_type!r} is not one of {MODEL_TYPES}")
        model_size = _req(d, "tts_model_size", w)
        if model_size not in MODEL_SIZES:
            raise CheckpointError(f"config.json tts_model_size {model_size!r} is not one of {MODEL_SIZES}")
        spk = d.get("speaker_encoder_config")
        return cls(
            model_type=model_type,
            model_size=model_size,
            talker=TalkerConfig.from_dict(_req(d, "talker_config", w)),
            speaker_encoder=SpeakerEncoderConfig.from_dict(spk) if model_type == "base" and spk else None,
            im_start_token_id=int(_req(d, "im_start_token_id", w)),
            im_end_token_id=int(_req(d, "im_end_token_id", w)),
            tts_pad_token_id=int(_req(d, "tts_pad_token_id", w)),
            tts_bos_token_id=int(_req(d, "tts_bos_token_id", w)),
            tts_eos_token_id=int(_req(d, "tts_eos_token_id", w)),
            raw=d,
        )

    @property
    def languages(self) -> list[str]:
        """Languages a request may name: "auto" plus every non-dialect language id (official rule)."""
        return ["auto"] + [k for k in self.talker.codec_language_id if "dialect" not in k]

    @property
    def speakers(self) -> list[str]:
        return list(self.talker.spk_id)


@dataclass(frozen=True)
class CodecDecoderConfig:
    """`speech_tokenizer/config.json` `decoder_config`."""

    codebook_size: int
    codebook_dim: int
    latent_dim: int
    decoder_dim: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    sliding_window: int
    num_quantizers: int
    upsample_rates: tuple[int, ...]
    upsampling_ratios: tuple[int, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodecDecoderConfig:
        w = "speech_tokenizer/config.json decoder_config"
        heads = int(_req(d, "num_attention_heads", w))
        hidden = int(_req(d, "hidden_size", w))
        return cls(
            codebook_size=int(_req(d, "codebook_size", w)),
            codebook_dim=int(_req(d, "codebook_dim", w)),
            latent_dim=int(_req(d, "latent_dim", w)),
            decoder_dim=int(_req(d, "decoder_dim", w)),
            hidden_size=hidden,
            intermediate_size=int(_req(d, "intermediate_size", w)),
            num_hidden_layers=int(_req(d, "num_hidden_layers", w)),
            num_attention_heads=heads,
            num_key_value_heads=int(d.get("num_key_value_heads", heads)),
            head_dim=int(d.get("head_dim") or hidden // heads),
            rms_norm_eps=float(_req(d, "rms_norm_eps", w)),
            rope_theta=float(_req(d, "rope_theta", w)),
            sliding_window=int(_req(d, "sliding_window", w)),
            num_quantizers=int(_req(d, "num_quantizers", w)),
            upsample_rates=tuple(int(x) for x in _req(d, "upsample_rates", w)),
            upsampling_ratios=tuple(int(x) for x in _req(d, "upsampling_ratios", w)),
        )

    @property
    def samples_per_frame(self) -> int:
        n = 1
        for r in (*self.upsampling_ratios, *self.upsample_rates):
            n *= r
        return n


@dataclass(frozen=True)
class SpeechTokenizerConfig:
    """`speech_tokenizer/config.json`: the Mimi encoder config (kept as a dict for `transformers.MimiConfig`)
    and our decoder config."""

    decoder: CodecDecoderConfig
    encoder: dict[str, Any]
    encoder_valid_num_quantizers: int
    input_sample_rate: int
    output_sample_rate: int
    encode_downsample_rate: int
    decode_upsample_rate: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeechTokenizerConfig:
        w = "speech_tokenizer/config.json"
        if d.get("model_type") != "qwen3_tts_tokenizer_12hz":
            raise CheckpointError(
                f"{w} has model_type {d.get('model_type')!r}; expected 'qwen3_tts_tokenizer_12hz'"
            )
        cfg = cls(
            decoder=CodecDecoderConfig.from_dict(_req(d, "decoder_config", w)),
            encoder=dict(_req(d, "encoder_config", w)),
            encoder_valid_num_quantizers=int(_req(d, "encoder_valid_num_quantizers", w)),
            input_sample_rate=int(_req(d, "input_sample_rate", w)),
            output_sample_rate=int(_req(d, "output_sample_rate", w)),
            encode_downsample_rate=int(_req(d, "encode_downsample_rate", w)),
            decode_upsample_rate=int(_req(d, "decode_upsample_rate", w)),
        )
        if cfg.decoder.samples_per_frame != cfg.decode_upsample_rate:
            raise CheckpointError(
                f"{w}: decoder upsampling {cfg.decoder.samples_per_frame} != decode_upsample_rate "
                f"{cfg.decode_upsample_rate}"
            )
        return cfg


@dataclass(frozen=True)
class GenerationDefaults:
    """`generation_config.json`, with the official wrapper's fallbacks for missing keys (WRAP 319-330)."""

    do_sample: bool = True
    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.05
    subtalker_dosample: bool = True
    subtalker_temperature: float = 0.9
    subtalker_top_k: int = 50
    subtalker_top_p: float = 1.0
    max_new_tokens: int = 2048
    min_new_frames: int = 2  # not in generation_config.json: the official generate hard-wires min_new_tokens=2

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerationDefaults:
        names = cls.__dataclass_fields__
        return cls(**{k: type(getattr(cls, k))(v) for k, v in d.items() if k in names})
