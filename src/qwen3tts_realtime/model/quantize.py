"""`from_pretrained(quantize=)`: which of the talker's linear layers take a quantized format, installed while the
checkpoint loads by `linear_loader.py` (one layer's float32 weight at a time, so no float copy of the model is
ever held).

Quantized: the talker's decoder layers, `codec_head`, the text projection and the code predictor (layers, heads,
and the 1.7B width projection). Not quantized: embeddings (looked up, kept compact by the loader), norms, the
speaker encoder and the codec. The formats and kernels are in `quantized_linear.py`; the kernel choice in
`kernel_choice.py`.
"""

from __future__ import annotations

from torch import nn

from .quantized_linear import quantizable
from .talker import Talker

__all__ = ["QUANTIZED_PREFIXES", "widest_linear_shape"]

QUANTIZED_PREFIXES = ("model.layers.", "codec_head", "text_projection.", "code_predictor.")


def widest_linear_shape(talker: Talker, mode: str) -> tuple[int, int]:
    """The [out, in] shape of the talker's largest quantized layer: the shape kernels are measured on."""
    shapes = [tuple(m.weight.shape) for name, m in talker.named_modules()
              if isinstance(m, nn.Linear) and name.startswith("model.layers.") and quantizable(mode, m.weight.shape)]
    return max(shapes, key=lambda s: s[0] * s[1])
