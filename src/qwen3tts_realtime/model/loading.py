"""Loading a checkpoint: a local folder or a Hugging Face id in the official layout, into our modules.

Weights are read one tensor at a time (see `checkpoint.py`), quantized as they arrive when a CPU weight format is
asked for (`quantize.py`), and the larger float32 layers pre-packed for oneDNN where it runs (`packed_linear.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError
from . import native_stack
from .checkpoint import checkpoint_keys, load_module_weights, parse_device, parse_dtype, resolve_checkpoint
from .codec import SpeechCodec
from .config import GenerationDefaults, Qwen3TTSConfig, load_json
from .kernel_choice import choose_kernel
from .linear_loader import linear_loader
from .memory import release_free_heap
from .packed_linear import AUTO_MIN_WEIGHTS, pack_linears, resolve_linear_backend
from .quantize import widest_linear_shape
from .quantized_linear import check_quantize
from .speaker_encoder import SpeakerEncoder
from .talker import Talker
from .text_tokenizer import TextTokenizer

__all__ = ["LoadedModel", "load_model"]


@dataclass(frozen=True)
class LoadedModel:
    folder: Path
    config: Qwen3TTSConfig
    talker: Talker
    codec: SpeechCodec
    speaker_encoder: SpeakerEncoder | None
    tokenizer: TextTokenizer
    generation_defaults: GenerationDefaults
    dtype: torch.dtype
    device: torch.device
    quantize: str | None
    linear_backend: str  # "onednn", "torch" or the quantized kernel


def load_model(
    model: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    revision: str | None = None,
    quantize: str | None = None,
    linear_backend: str = "auto",
) -> LoadedModel:
    """Every part of a checkpoint (see `Qwen3TTS.from_pretrained` for the arguments)."""
    dev = parse_device(device)
    dt = parse_dtype(dtype, dev)
    quantize = check_quantize(quantize, dev, dt)
    backend = linear_backend if quantize else resolve_linear_backend(linear_backend, dev, dt)
    folder = resolve_checkpoint(model, revision=revision)
    config = Qwen3TTSConfig.from_dict(load_json(folder / "config.json"))
    weights = folder / "model.safetensors"
    with torch.device("meta"):
        talker = Talker(config.talker)
    if quantize is not None:
        backend = choose_kernel(quantize, linear_backend, widest_linear_shape(talker, quantize))
    convert = linear_loader(talker, dev, quantize, backend)
    load_module_weights(
        talker, weights, "talker.", dtype=dt, device=dev, compact=talker.lookup_tables(), convert=convert
    )
    speaker_encoder = None
    if config.speaker_encoder is not None:
        with torch.device("meta"):
            speaker_encoder = SpeakerEncoder(config.speaker_encoder)
        load_module_weights(speaker_encoder, weights, "speaker_encoder.", dtype=dt, device=dev)
        speaker_encoder.to(dev).eval()
    _check_no_stray_keys(weights, has_speaker_encoder=speaker_encoder is not None)
    codec = SpeechCodec(folder / "speech_tokenizer", dtype=dt, device=dev)
    gen_path = folder / "generation_config.json"
    defaults = GenerationDefaults.from_dict(load_json(gen_path)) if gen_path.exists() else GenerationDefaults()
    talker.eval()
    if backend == "onednn":  # every talker linear: decoder, text projection, codec head, code predictor
        pack_linears(talker, min_weights=AUTO_MIN_WEIGHTS if linear_backend == "auto" else 0)
    if backend in native_stack.KERNELS:  # our kernels: each decoder stack runs whole in one native call
        for stack in (talker.model, talker.code_predictor.model):
            native_stack.install(stack)
    loaded = LoadedModel(folder, config, talker, codec, speaker_encoder, TextTokenizer(folder), defaults, dt, dev,
                         quantize, backend)
    release_free_heap()  # the loader's temporaries (see model/memory.py)
    return loaded


def _check_no_stray_keys(weights: Path, *, has_speaker_encoder: bool) -> None:
    """Every tensor of model.safetensors belongs to the talker or (Base) the speaker encoder."""
    allowed = ("talker.", "speaker_encoder.") if has_speaker_encoder else ("talker.",)
    stray = [k for k in checkpoint_keys(weights) if not k.startswith(allowed)]
    if stray:
        raise CheckpointError(
            f"{weights} has {len(stray)} tensor(s) outside {' and '.join(allowed)}, e.g. {stray[0]}: "
            "it does not match its config.json (a Base checkpoint has speaker_encoder.*, others do not)"
        )
