"""Quantized linear layers: each format's kernels compute what its dequantized weight computes (to the
activation rounding the kernel documents), and each row's result does not depend on the rows batched with it
(bit for bit for the int8, int4 and w8a8 kernels).
The kernel choice ("auto") is measured once per machine and remembered."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from qwen3tts_realtime import InvalidInputError
from qwen3tts_realtime.model.kernel_choice import _unusable, choose_kernel, measure_kernels
from qwen3tts_realtime.model.quantized_linear import (
    KERNELS,
    QuantizedLinear,
    check_quantize,
    int4_group_size,
    quantize_linear,
    reference_linear,
)

RUNNABLE = [(mode, kernel) for mode, kernels in KERNELS.items() for kernel in kernels if not _unusable(mode, kernel)]
# Relative error against float32 math on the dequantized weight: float activations are exact up to summation
# order; bfloat16 activations (and outputs) round to 8 bits of mantissa; "w8a8" rounds activations to 7 bits.
TOLERANCE = {"fbgemm-fp16": 1e-5, "int8pack-float32": 1e-5, "int4pack-float32": 1e-5, "int8pack-bf16": 1e-2,
             "int4pack-bf16": 1e-2, "fbgemm-rowq": 4e-2, "avx2-float32": 1e-5,
             "avx2-int16": 1e-3}


def test_every_kernel_of_this_project_runs_on_its_ci_machines():
    assert {kernel for _, kernel in RUNNABLE} == {k for ks in KERNELS.values() for k in ks}


@pytest.mark.parametrize(("mode", "kernel"), RUNNABLE, ids=[k for _, k in RUNNABLE])
@pytest.mark.parametrize("rows", [1, 5])
def test_kernels_equal_dequantized_float32_math(mode, kernel, rows):
    gen = torch.Generator().manual_seed(rows)
    weight, bias = torch.randn(96, 256, generator=gen) * 0.05, torch.randn(96, generator=gen)
    layer = QuantizedLinear(mode, kernel, weight, bias)
    x = torch.randn(2, rows, 256, generator=gen)
    with torch.inference_mode():
        got, want = layer(x), reference_linear(layer, x)
    assert got.shape == (2, rows, 96) and got.dtype == torch.float32
    assert float((got - want).norm() / want.norm()) <= TOLERANCE[kernel]
    # the format itself stays close to the float32 weight
    step = {"fp16": 1e-3, "int8": 1e-2, "w8a8": 1e-2, "int4": 0.2}[mode]
    assert float((layer.dequantized_weight() - weight).norm() / weight.norm()) <= step


@pytest.mark.parametrize(("mode", "kernel"), RUNNABLE, ids=[k for _, k in RUNNABLE])
def test_a_rows_result_does_not_depend_on_its_batch(mode, kernel):
    """Bit for bit, except fbgemm's float16 kernel, which sums in a batch-size-dependent order (as float32 does)."""
    gen = torch.Generator().manual_seed(3)
    layer = QuantizedLinear(mode, kernel, torch.randn(64, 128, generator=gen), None)
    x = torch.randn(9, 128, generator=gen) * torch.logspace(-2, 2, 9)[:, None]  # rows of very different scales
    with torch.inference_mode():
        together = layer(x)
        alone = torch.cat([layer(x[i : i + 1]) for i in range(9)])
    if kernel == "fbgemm-fp16":
        torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5 * float(together.abs().max()))
    else:
        assert torch.equal(together, alone)


def test_int4_groups_divide_the_input_and_odd_layers_stay_float32():
    assert int4_group_size(1024) == 128 and int4_group_size(96) == 32 and int4_group_size(16) is None
    odd = quantize_linear(torch.randn(40, 16), "int4", "int4pack-bf16")  # out % 16 != 0, no group size
    assert type(odd) is nn.Linear
    assert isinstance(quantize_linear(torch.randn(48, 64), "int4", "int4pack-bf16"), QuantizedLinear)


def test_bad_modes_and_kernels_are_named():
    cpu = torch.device("cpu")
    with pytest.raises(InvalidInputError, match="quantize='int5'; accepted: None, 'fp16', 'int8', 'int4', 'w8a8'"):
        check_quantize("int5", cpu, torch.float32)
    with pytest.raises(InvalidInputError, match="CPU mode"):
        check_quantize("int8", torch.device("cuda"), torch.float32)
    with pytest.raises(InvalidInputError, match="computes in float32"):
        check_quantize("int4", cpu, torch.bfloat16)
    assert check_quantize(None, torch.device("cuda"), torch.bfloat16) is None
    with pytest.raises(InvalidInputError, match="'int4pack-bf16' does not run quantize='int8'; accepted: 'auto', "
                                                "'int8pack-bf16', 'int8pack-float32', 'avx2-float32', 'avx2-int16'"):
        choose_kernel("int8", "int4pack-bf16", (64, 64))


def test_auto_measures_once_per_machine_and_remembers(tmp_path, monkeypatch):
    cache = tmp_path / "kernels.json"
    monkeypatch.setenv("QWEN3TTS_KERNEL_CACHE", str(cache))
    first = choose_kernel("int8", "auto", (96, 64))
    assert first in KERNELS["int8"]
    (key, remembered), = json.loads(cache.read_text()).items()
    assert remembered == first and key.endswith("|int8|96x64|" + ",".join(KERNELS["int8"]))
    other = next(k for k in KERNELS["int8"] if k != first)  # a remembered choice is used without measuring
    cache.write_text(json.dumps({key: other}))
    assert choose_kernel("int8", "auto", (96, 64)) == other
    assert choose_kernel("int8", first, (96, 64)) == first  # an explicit kernel is never overridden


def test_measurement_reports_every_kernel_beside_float32():
    timings = measure_kernels("int4", (64, 128), passes=1)
    assert set(timings) == {"float32", *KERNELS["int4"]}
    assert all(t[1] > 0 and t[8] > 0 for t in timings.values())
