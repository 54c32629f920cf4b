"""Quantized CPU linear layers: the weight formats of `from_pretrained(quantize=)` and the kernels that run them.

A CPU step is memory-bound: a 0.6B frame reads ~1.64 G weights (the talker once, the code predictor fifteen
times), so bytes per weight set the speed. Each format has one or more kernels; which kernel runs is chosen by
measurement on the machine at load (`model/kernel_choice.py`) unless `linear_backend` names one.

Formats:
    "fp16"  float16 weights, float32 activations and sums (fbgemm). Kernel "fbgemm-fp16".
    "int8"  int8 weights, one float scale per output channel; activations stay floating point (weight-only).
            Kernels "int8pack-bf16" (activations rounded to bfloat16 into torch's `_weight_int8pack_mm`),
            "int8pack-float32" (float32 activations, the same op), and ours (`model/native_kernels.py`):
            "avx2-float32" (float32 activations and sums) and "avx2-int16" (each activation row rounded to
            14-bit integers on its own, exact integer sums).
    "int4"  4-bit weights in groups of `int4_group_size(in_features)` inputs, a scale and zero per group
            (weight-only). Kernels "int4pack-bf16" and "int4pack-float32" (torch's `_weight_int4pack_mm_for_cpu`)
            and ours, "avx2-float32" and "avx2-int16", as for int8.
    "w8a8"  int8 weights per output channel and each activation row quantized to 7 bits on its own
            (scaled by its own max |x|), int32 sums (fbgemm). Kernel "fbgemm-rowq". 7 bits, not 8: without
            VNNI fbgemm adds pairs of u8*s8 products in int16, which 8-bit activations can saturate.

The int8, int4 and w8a8 kernels (torch's and ours) compute each row from that row alone (the row scale of "w8a8"
included; integer sums are exact), so a row's result is bit-identical whatever rows are batched with it; fbgemm's
float16 kernel, like float32 matrix kernels, sums in an order that depends on the batch size (`tests/model/
test_quantized_linear.py`).
Does not: touch embeddings, norms, the speaker encoder or the codec; run off the CPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InvalidInputError
from . import native_kernels

__all__ = [
    "QUANTIZE_MODES",
    "KERNELS",
    "QuantizedLinear",
    "check_quantize",
    "int4_group_size",
    "quantize_linear",
]

QUANTIZE_MODES = ("fp16", "int8", "int4", "w8a8")
KERNELS: dict[str, tuple[str, ...]] = {
    "fp16": ("fbgemm-fp16",),
    "int8": ("int8pack-bf16", "int8pack-float32", "avx2-float32", "avx2-int16"),
    "int4": ("int4pack-bf16", "int4pack-float32", "avx2-float32", "avx2-int16"),
    "w8a8": ("fbgemm-rowq",),
}
NATIVE_ACT = {"avx2-float32": 32, "avx2-int16": 16}  # our kernels (model/native_kernels.py): activation width
ROWQ_LEVELS = 63  # 7-bit activations (see the module docstring)
INT4_GROUP_SIZES = (128, 64, 32)


def check_quantize(mode: str | None, device: torch.device, dtype: torch.dtype) -> str | None:
    """`mode` validated against the device and dtype it would run with.

    Raises:
        InvalidInputError: an unknown mode, a device other than the CPU or a dtype other than float32.
    """
    if mode is None:
        return None
    if mode not in QUANTIZE_MODES:
        raise InvalidInputError(f"quantize={mode!r}; accepted: None, {', '.join(map(repr, QUANTIZE_MODES))}")
    if device.type != "cpu":
        raise InvalidInputError(f"quantize={mode!r} is a CPU mode; on {device} use dtype='bfloat16' instead")
    if dtype != torch.float32:
        raise InvalidInputError(f"quantize={mode!r} computes in float32; got dtype={dtype}; use dtype='float32'")
    return mode


def int4_group_size(in_features: int) -> int | None:
    """The int4 group size for a layer of `in_features` inputs: the largest of 128/64/32 that divides it (None:
    the layer stays float32)."""
    return next((g for g in INT4_GROUP_SIZES if in_features % g == 0), None)


def quantizable(mode: str, weight_shape: tuple[int, int]) -> bool:
    """Whether a [out, in] weight can take `mode` (int4's kernel needs out % 16 == 0 and a group size)."""
    out_features, in_features = weight_shape
    if mode == "int4":
        return out_features % 16 == 0 and int4_group_size(in_features) is not None
    return True


class QuantizedLinear(nn.Module):
    """`y = x @ W.T + b` with `W` held in a quantized format and run by one named kernel."""

    def __init__(self, mode: str, kernel: str, weight: Tensor, bias: Tensor | None) -> None:
        super().__init__()
        if kernel not in KERNELS[mode]:
            raise InvalidInputError(f"kernel {kernel!r} does not run quantize={mode!r}; accepted: {KERNELS[mode]}")
        self.mode, self.kernel = mode, kernel
        self.out_features, self.in_features = weight.shape
        self.bias = None if bias is None else nn.Parameter(bias.detach().to(torch.float32), requires_grad=False)
        self._run: Callable[[Tensor], Tensor]
        self._dequantized: Callable[[], Tensor]
        self._adds_bias = False  # whether `_run` adds the bias itself
        w = weight.detach().to(torch.float32)
        getattr(self, "_setup_" + mode)(w)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        y = self._run(x.reshape(-1, self.in_features).contiguous())
        if y.dtype != x.dtype:
            y = y.to(x.dtype)
        if self.bias is not None and not self._adds_bias:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    def dequantized_weight(self) -> Tensor:
        """The float32 [out, in] weight this layer's format holds (the reference its kernels approximate)."""
        return self._dequantized()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, mode={self.mode}, " \
               f"kernel={self.kernel}, bias={self.bias is not None}"

    # ---- formats ----------------------------------------------------------------------------------------

    def _setup_fp16(self, w: Tensor) -> None:
        self._packed = torch.ops.quantized.linear_prepack_fp16(w, None)
        self._dequantized = lambda: torch.ops.quantized.linear_unpack_fp16(self._packed)[0].to(torch.float32)
        self._run = lambda x: torch.ops.quantized.linear_dynamic_fp16(x, self._packed)

    def _setup_int8(self, w: Tensor) -> None:
        q, scales = _int8_per_channel(w)
        self.register_buffer("scales", scales)
        if self.kernel in NATIVE_ACT:
            act = self.act = NATIVE_ACT[self.kernel]
            self.register_buffer("qweight", native_kernels.pack_int8(q, native_kernels.RUN[act][8]))
            n, k = self.out_features, self.in_features
            self._dequantized = lambda: native_kernels.unpack_int8(self.qweight, n, k).to(torch.float32) * \
                self.scales[:, None]
            self._adds_bias = True
            self._run = lambda x: native_kernels.int8_linear(_float32(x), self.qweight, self.scales, self.bias, act)
            return
        self.register_buffer("qweight", q)
        self._dequantized = lambda: self.qweight.to(torch.float32) * self.scales[:, None]
        if self.kernel == "int8pack-bf16":
            scales16 = scales.to(torch.bfloat16)
            self._run = lambda x: torch.ops.aten._weight_int8pack_mm(x.to(torch.bfloat16), self.qweight, scales16)
        else:
            self._run = lambda x: torch.ops.aten._weight_int8pack_mm(x.to(torch.float32), self.qweight, self.scales)

    def _setup_int4(self, w: Tensor) -> None:
        group = int4_group_size(self.in_features)
        if group is None or self.out_features % 16:
            raise InvalidInputError(f"a {self.out_features}x{self.in_features} layer cannot take int4 weights")
        n, k = w.shape
        grouped = w.view(n, k // group, group)
        low, high = grouped.amin(-1), grouped.amax(-1)
        scale = ((high - low) / 15).clamp(min=1e-12)
        q = ((grouped - low[..., None]) / scale[..., None]).round().clamp(0, 15).to(torch.int32).view(n, k)
        if self.kernel in NATIVE_ACT:
            self._setup_int4_native(q, scale, low, group)
            return
        zero = low + 8 * scale  # torch's int4 kernels compute (q - 8) * scale + zero
        scales_and_zeros = torch.stack([scale, zero], -1).transpose(0, 1).contiguous()  # [k/group, n, 2]
        self.register_buffer("qweight", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1))
        self.register_buffer("scales_and_zeros", scales_and_zeros)
        self.group_size = group
        del q  # only the packed copy stays; the float32 kernel on an identity matrix reads the weight back exactly
        self._dequantized = lambda: torch.ops.aten._weight_int4pack_mm_for_cpu(
            torch.eye(k), self.qweight, group, self.scales_and_zeros
        ).t()
        act = torch.bfloat16 if self.kernel == "int4pack-bf16" else torch.float32
        sz = scales_and_zeros.to(act)
        self._run = lambda x: torch.ops.aten._weight_int4pack_mm_for_cpu(x.to(act), self.qweight, group, sz)

    def _setup_int4_native(self, q: Tensor, scale: Tensor, low: Tensor, group: int) -> None:
        act = self.act = NATIVE_ACT[self.kernel]
        self.register_buffer("qweight", native_kernels.pack_int4(q, native_kernels.RUN[act][4]))
        self.register_buffer("scales", scale.contiguous())
        self.register_buffer("lows", low.contiguous())
        self.group_size = group
        self._adds_bias = True
        n, k = self.out_features, self.in_features

        def dequantized() -> Tensor:
            q = native_kernels.unpack_int4(self.qweight, n, k).view(n, k // group, group).to(torch.float32)
            return (q * self.scales[..., None] + self.lows[..., None]).reshape(n, k)

        self._dequantized = dequantized
        self._run = lambda x: native_kernels.int4_linear(
            _float32(x), self.qweight, group, self.scales, self.lows, self.bias, act
        )

    def _setup_w8a8(self, w: Tensor) -> None:
        q, scales = _int8_per_channel(w)
        zero_points = torch.zeros(self.out_features, dtype=torch.long)
        with warnings.catch_warnings():  # quantized tensors are deprecated; this one only feeds the packer
            warnings.simplefilter("ignore")
            qw = torch._make_per_channel_quantized_tensor(q, scales.to(torch.float64), zero_points, 0)
            self._packed = torch.ops.quantized.linear_prepack(qw, None)
        self._dequantized = lambda: torch.ops.quantized.linear_unpack(self._packed)[0].dequantize()
        self._run = self._rowq

    def _rowq(self, x: Tensor) -> Tensor:
        peak = torch.linalg.vector_norm(x, float("inf"), dim=-1, keepdim=True).clamp_(min=1e-30)  # max |x|, one op
        y = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(
            x / peak, 1.0 / ROWQ_LEVELS, ROWQ_LEVELS + 1, self._packed
        )
        return y * peak


def _float32(x: Tensor) -> Tensor:
    return x if x.dtype == torch.float32 and x.is_contiguous() else x.to(torch.float32).contiguous()


def _int8_per_channel(w: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric int8 per output channel: (q int8 [out, in], scales float32 [out])."""
    scales = (w.abs().amax(1) / 127).clamp(min=1e-12)
    q = (w / scales[:, None]).round().clamp(-127, 127).to(torch.int8)
    return q, scales


def quantize_linear(weight: Tensor, mode: str, kernel: str, bias: Tensor | None = None) -> nn.Module:
    """A `QuantizedLinear` for a [out, in] weight and its bias; a layer whose shape the format cannot take is
    returned as a float32 `nn.Linear`."""
    if quantizable(mode, tuple(weight.shape)):
        return QuantizedLinear(mode, kernel, weight, bias)
    plain = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        plain.weight.copy_(weight)
        if bias is not None:
            plain.bias.copy_(bias)
    return plain.requires_grad_(False)


def reference_linear(layer: QuantizedLinear, x: Tensor) -> Tensor:
    """What a quantized layer approximates: float32 math on its dequantized weight (for tests and fidelity)."""
    return F.linear(x.to(torch.float32), layer.dequantized_weight(), layer.bias)
