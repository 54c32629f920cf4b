"""Linear layers with weights pre-packed for oneDNN: the CPU float32 fast path for the talker and code predictor.

Does:
    Repacks each `nn.Linear` weight once, at load, into oneDNN's blocked layout and runs it with oneDNN's matrix
    kernels. Torch's default CPU path (MKL sgemm on a row-major weight) handles the engine's small batches badly:
    on this project's 2-core machine a 1024x3072 layer takes 0.9 ms for one row and 1.3-1.7 ms for 2-8 rows,
    while the packed weight takes 0.55 ms for 1 to 8 rows (benchmarks/linear_kernels.py). Continuous batching
    steps 1-16 rows per forward, so this is what lets 8 streams cost little more than one.
    Same math as float32 `nn.Linear` up to summation order (within a few 1e-6; the golden tests run on it).
Does not:
    Touch other dtypes or devices (oneDNN packs float32 here), layers outside the modules given, or keep the
    unpacked weight (the packed copy replaces it; `state_dict()` no longer lists it, loading is done by then).

`LINEAR_BACKENDS`: "auto" packs where oneDNN is usable (CPU, float32, the probe passes) and keeps `nn.Linear`
elsewhere; "onednn" requires it; "torch" keeps `nn.Linear`. "auto" leaves layers under `AUTO_MIN_WEIGHTS`
weights as `nn.Linear`: oneDNN's call overhead (~18 us) outweighs its gain there (a 64x64 layer: 8 us plain,
18 us packed; from 128x384 up packed wins).
"""

from __future__ import annotations

import logging
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InvalidInputError

__all__ = ["AUTO_MIN_WEIGHTS", "LINEAR_BACKENDS", "PackedLinear", "resolve_linear_backend", "pack_linears"]

log = logging.getLogger(__name__)

LINEAR_BACKENDS = ("auto", "onednn", "torch")
AUTO_MIN_WEIGHTS = 32_768


class PackedLinear(nn.Module):
    """`y = x @ W.T + b` with `W` held in oneDNN's packed layout (float32, CPU)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        self._packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self._packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def resolve_linear_backend(backend: str, device: torch.device, dtype: torch.dtype) -> str:
    """"onednn" or "torch": what `backend` means for an unquantized model on `device` in `dtype`.

    Raises:
        InvalidInputError: an unknown backend, or "onednn" where it cannot run (another device or dtype, a torch
            build without oneDNN, or a kernel that disagrees with `nn.Linear` on this machine).
    """
    if backend not in LINEAR_BACKENDS:
        raise InvalidInputError(
            f"linear_backend={backend!r}; accepted without quantize: {', '.join(map(repr, LINEAR_BACKENDS))}"
        )
    if backend == "torch":
        return "torch"
    why = _unusable_reason(device, dtype)
    if why is None:
        return "onednn"
    if backend == "onednn":
        raise InvalidInputError(f"linear_backend='onednn' cannot run here: {why}; use 'auto' or 'torch'")
    log.debug("linear layers stay nn.Linear: %s", why)
    return "torch"


def pack_linears(module: nn.Module, *, min_weights: int = 0) -> int:
    """Replace every `nn.Linear` below `module` with at least `min_weights` weights by a `PackedLinear`, in place;
    returns how many."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            if child.weight.numel() >= min_weights:
                setattr(module, name, PackedLinear(child))
                count += 1
        else:
            count += pack_linears(child, min_weights=min_weights)
    return count


def _unusable_reason(device: torch.device, dtype: torch.dtype) -> str | None:
    if device.type != "cpu":
        return f"it is a CPU path and the model is on {device}"
    if dtype != torch.float32:
        return f"it packs float32 weights and the model is {dtype}"
    return _probe()


@cache
def _probe() -> str | None:
    """None when oneDNN's packed linear runs here and agrees with `F.linear`; otherwise why not."""
    if not torch.backends.mkldnn.is_available():
        return "this torch build has no oneDNN (mkldnn)"
    try:
        gen = torch.Generator().manual_seed(0)
        layer = nn.Linear(64, 48, bias=True)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(48, 64, generator=gen))
            layer.bias.copy_(torch.randn(48, generator=gen))
            x = torch.randn(3, 5, 64, generator=gen)
            got, want = PackedLinear(layer)(x), F.linear(x, layer.weight, layer.bias)
    except (RuntimeError, AttributeError, NotImplementedError) as e:
        return f"oneDNN's packed linear failed ({e})"
    if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-4, atol=1e-4):
        return "oneDNN's packed linear disagrees with nn.Linear on this machine"
    return None
