"""`from_pretrained(quantize=)`: which of the talker's linear layers take a quantized format, installed while the
checkpoint loads (one layer's float32 weight at a time, so no float copy of the model is ever held).

Quantized: the talker's decoder layers, `codec_head`, the text projection and the code predictor (layers, heads,
and the 1.7B width projection). Not quantized: embeddings (looked up, kept compact by the loader), norms, the
speaker encoder and the codec. The formats and kernels are in `quantized_linear.py`; the kernel choice in
`kernel_choice.py`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from .quantized_linear import quantizable, quantize_linear
from .talker import Talker

__all__ = ["QUANTIZED_PREFIXES", "quantizing_loader", "widest_linear_shape"]

QUANTIZED_PREFIXES = ("model.layers.", "codec_head", "text_projection.", "code_predictor.")


def widest_linear_shape(talker: Talker, mode: str) -> tuple[int, int]:
    """The [out, in] shape of the talker's largest quantized layer: the shape kernels are measured on."""
    shapes = [tuple(m.weight.shape) for name, m in talker.named_modules()
              if isinstance(m, nn.Linear) and name.startswith("model.layers.") and quantizable(mode, m.weight.shape)]
    return max(shapes, key=lambda s: s[0] * s[1])


def quantizing_loader(talker: Talker, mode: str, kernel: str) -> Callable[[str, Tensor], bool]:
    """A `convert` callback for `load_module_weights(talker, ...)`: it takes the weights (and biases) of the
    quantized linears and installs each layer, quantized, as soon as its tensors have arrived."""
    linears = {name: m for name, m in talker.named_modules()
               if isinstance(m, nn.Linear) and name.startswith(QUANTIZED_PREFIXES)}
    pending: dict[str, dict[str, Tensor]] = {}

    def convert(key: str, tensor: Tensor) -> bool:
        owner, _, leaf = key.rpartition(".")
        layer = linears.get(owner)
        if layer is None or leaf not in ("weight", "bias"):
            return False
        parts = pending.setdefault(owner, {})
        parts[leaf] = tensor
        if "weight" in parts and (layer.bias is None or "bias" in parts):
            parent_name, _, child = owner.rpartition(".")
            parent = talker.get_submodule(parent_name) if parent_name else talker
            setattr(parent, child, quantize_linear(parts["weight"], mode, kernel, parts.get("bias")))
            del pending[owner]
        return True

    return convert
