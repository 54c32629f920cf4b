"""Opt-in CPU weight formats for the talker's and code predictor's linear layers (`from_pretrained(quantize=)`).

Does:
    "fp16"  weights stored as float16, products summed in float32 (fbgemm). The official checkpoints are
            bfloat16, whose values float16 holds exactly except tiny ones (below 6.1e-5 in magnitude, rounded to
            float16's subnormal step), so the model is the float32 one up to summation order; each row is
            computed on its own, so batched == alone and streaming == offline hold as in float32. Half the
            weight bytes of float32 per step (the CPU step is memory-bound).
    "int8"  dynamic int8 (per-channel weights, activations quantized per call): a quarter of the bytes, the
            fastest; but activations share one scale per call, so a stream's output depends on how its rows
            are grouped (the streams batched with it, the warm voice prefix: streaming != offline), and greedy
            codes drift from float32.
Does not: touch embeddings, the text projection, the speaker encoder or the codec (small or exactness-critical),
or run anywhere but the CPU with float32 activations.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from qwen3tts_realtime.errors import InvalidInputError
from qwen3tts_realtime.model.talker import Talker

__all__ = ["QUANTIZE_MODES", "check_quantize", "quantize_talker"]

QUANTIZE_MODES = ("fp16", "int8")


def check_quantize(mode: str | None, device: torch.device, dtype: torch.dtype) -> str | None:
    """`mode` validated against the device and dtype it would run with.

    Raises:
        InvalidInputError: an unknown mode, a device other than the CPU, a dtype other than float32, or a torch
            build without the fbgemm/x86 quantized engine.
    """
    if mode is None:
        return None
    if mode not in QUANTIZE_MODES:
        raise InvalidInputError(f"quantize={mode!r}; accepted: None, {', '.join(map(repr, QUANTIZE_MODES))}")
    if device.type != "cpu":
        raise InvalidInputError(f"quantize={mode!r} is a CPU mode; on {device} use dtype='bfloat16' instead")
    if dtype != torch.float32:
        raise InvalidInputError(f"quantize={mode!r} computes in float32; got dtype={dtype}; use dtype='float32'")
    engines = set(torch.backends.quantized.supported_engines)
    if not engines & {"fbgemm", "x86"}:
        raise InvalidInputError(
            f"quantize={mode!r} needs torch's fbgemm/x86 quantized engine (x86 CPUs); this build has {sorted(engines)}"
        )
    return mode


def quantize_talker(talker: Talker, mode: str) -> None:
    """Swap the talker's decoder, `codec_head` and code-predictor linears for `mode` versions, in place."""
    from torch.ao.quantization import float16_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    qconfig = float16_dynamic_qconfig if mode == "fp16" else per_channel_dynamic_qconfig
    with warnings.catch_warnings():  # torch.ao eager quantization is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        for module in (talker.model, talker.code_predictor):
            quantize_dynamic(module, {nn.Linear: qconfig}, inplace=True)
        holder = nn.ModuleDict({"codec_head": talker.codec_head})
        quantize_dynamic(holder, {nn.Linear: qconfig}, inplace=True)
        talker.codec_head = holder["codec_head"]
