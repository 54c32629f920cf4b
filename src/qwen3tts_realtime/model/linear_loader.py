"""Installing the talker's linear layers as their weights arrive from the checkpoint: fused projections, and
the quantized formats of `from_pretrained(quantize=)`.

Does:
    Fuses the projections each module declares in `FUSED` (q/k/v of every attention as `qkv_proj`, gate/up of
    every MLP as `gate_up_proj`): the official weights are concatenated along their output rows, so one call
    computes what three (or two) did, and the checkpoint stays the official one. With a quantized mode, every
    linear under `QUANTIZED_PREFIXES` (fused or not) is installed in that format; the formats quantize each
    output row on its own, so a fused layer holds exactly the rows of the separate ones. A part's tensors wait
    until its group is complete (one layer's q/k/v at most), so no float copy of the model is ever held.
Does not:
    Pack for oneDNN (`packed_linear.py` runs over the installed `nn.Linear`s afterwards) or choose kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .quantize import QUANTIZED_PREFIXES
from .quantized_linear import quantize_linear

__all__ = ["linear_loader", "plain_linear"]


def plain_linear(weight: Tensor, bias: Tensor | None = None) -> nn.Linear:
    """An `nn.Linear` holding these tensors (no copy, no grad)."""
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    layer.weight = nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        layer.bias = nn.Parameter(bias, requires_grad=False)
    return layer


def linear_loader(
    module: nn.Module, device: torch.device, quantize: str | None = None, kernel: str = ""
) -> Callable[[str, Tensor], bool]:
    """A `convert` callback for `load_module_weights(module, ...)` that installs fused projections and, with
    `quantize`, quantized linears (kernel `kernel`), each as soon as all of its tensors have arrived."""
    # key of a checkpoint linear -> (parent module, installed name, the parts it is made of)
    targets: dict[str, tuple[nn.Module, str, tuple[str, ...]]] = {}
    for name, m in module.named_modules():
        for fused, parts in getattr(m, "FUSED", {}).items():
            for part in parts:
                targets[f"{name}.{part}"] = (m, fused, parts)
    if quantize is not None:
        for name, m in module.named_modules():
            if isinstance(m, nn.Linear) and name.startswith(QUANTIZED_PREFIXES) and name not in targets:
                parent, _, child = name.rpartition(".")
                targets[name] = (module.get_submodule(parent) if parent else module, child, (child,))

    def make(name: str, weight: Tensor, bias: Tensor | None) -> nn.Module:
        if quantize is not None and name.startswith(QUANTIZED_PREFIXES):
            return quantize_linear(weight, quantize, kernel, bias)
        return plain_linear(weight.to(device), None if bias is None else bias.to(device))

    pending: dict[str, dict[tuple[str, str], Tensor]] = {}

    def convert(key: str, tensor: Tensor) -> bool:
        owner, _, leaf = key.rpartition(".")
        target = targets.get(owner)
        if target is None or leaf not in ("weight", "bias"):
            return False
        parent, installed, parts = target
        prefix = owner.rpartition(".")[0]
        group_key = f"{prefix}.{installed}" if prefix else installed
        group = pending.setdefault(group_key, {})
        group[(owner.rpartition(".")[2], leaf)] = tensor
        needed = [(p, "weight") for p in parts] + [(p, "bias") for p in parts if getattr(parent, p).bias is not None]
        if all(k in group for k in needed):
            weight = torch.cat([group[(p, "weight")] for p in parts])
            has_bias = (parts[0], "bias") in needed
            bias = torch.cat([group[(p, "bias")] for p in parts]) if has_bias else None
            for part in parts:
                if part != installed:
                    delattr(parent, part)
            setattr(parent, installed, make(group_key, weight, bias))
            del pending[group_key]
        return True

    return convert
