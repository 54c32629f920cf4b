"""Our AVX2 int8/int4 kernels (model/native_kernels.py): built once with the machine's C compiler, exact to
float32 math on the dequantized weight for any shape, the same bits for a row whatever its batch or the thread
count, and simply not chosen where they cannot be built."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from qwen3tts_realtime.model import native_kernels
from qwen3tts_realtime.model.kernel_choice import _unusable, choose_kernel
from qwen3tts_realtime.model.quantized_linear import QuantizedLinear, reference_linear

SHAPES = [(8, 16), (13, 40), (100, 96), (1030, 256)]  # channels not a multiple of the tiles, K not of 8
KERNELS = ["avx2-float32", "avx2-int16"]


def assert_close_to_reference(layer, x):
    """float32 activations: float rounding, element by element; int16: each row rounded to 14 bits (steps of
    max |x| / 8191), which moves each output by ~1e-4 of the row's size (relative norm)."""
    with torch.inference_mode():
        got, want = layer(x), reference_linear(layer, x)
    if layer.kernel == "avx2-float32":
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    else:
        assert float((got - want).norm() / want.norm()) <= 1e-3


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("out_features", "in_features"), SHAPES)
@pytest.mark.parametrize("rows", [1, 2, 3, 8, 17])
def test_int8_kernels_equal_float32_math_on_their_weights(kernel, out_features, in_features, rows):
    gen = torch.Generator().manual_seed(rows * out_features)
    layer = QuantizedLinear("int8", kernel, torch.randn(out_features, in_features, generator=gen),
                            torch.randn(out_features, generator=gen))
    assert_close_to_reference(layer, torch.randn(rows, in_features, generator=gen))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("out_features", "in_features"), [(16, 32), (48, 64), (112, 384), (1040, 256)])
@pytest.mark.parametrize("rows", [1, 2, 3, 8, 17])
def test_int4_kernels_equal_float32_math_on_their_weights(kernel, out_features, in_features, rows):
    gen = torch.Generator().manual_seed(rows * out_features)
    weight = torch.randn(out_features, in_features, generator=gen)
    layer = QuantizedLinear("int4", kernel, weight, None)
    assert_close_to_reference(layer, torch.randn(rows, in_features, generator=gen))
    # the same groups, scales and levels as torch's int4 kernels: the two dequantized weights agree to rounding
    theirs = QuantizedLinear("int4", "int4pack-float32", weight, None)
    torch.testing.assert_close(layer.dequantized_weight(), theirs.dequantized_weight(), rtol=1e-5, atol=1e-5)


def test_weights_are_stored_in_blocks_of_8_channels_and_read_back_exactly():
    q8 = torch.randint(-127, 128, (13, 21), dtype=torch.int8)
    packed = native_kernels.pack_int8(q8)
    assert packed.shape == (2, 3, 8, 8) and torch.equal(packed[0, 0, 1], q8[1, :8])  # channel 1, inputs 0..7
    assert torch.equal(native_kernels.unpack_int8(packed, 13, 21), q8)
    q4 = torch.randint(0, 16, (13, 32))
    packed = native_kernels.pack_int4(q4)
    assert packed.shape == (2, 2, 8, 8) and packed.dtype == torch.uint8
    assert packed[0, 1, 2, 0] == q4[2, 16] | (q4[2, 24] << 4)  # channel 2, inputs 16 and 24 share a byte
    assert torch.equal(native_kernels.unpack_int4(packed, 13, 32), q4.to(torch.uint8))
    # the int16-activation kernels read runs of 16 int8 / 32 int4 inputs
    assert native_kernels.pack_int8(q8, 16).shape == (2, 2, 8, 16)
    packed = native_kernels.pack_int4(q4, 32)
    assert packed.shape == (2, 1, 8, 16) and packed[0, 0, 2, 3] == q4[2, 3] | (q4[2, 19] << 4)
    assert torch.equal(native_kernels.unpack_int4(packed, 13, 32), q4.to(torch.uint8))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_a_row_is_the_same_whatever_the_batch_and_the_threads(mode, kernel):
    gen = torch.Generator().manual_seed(5)
    layer = QuantizedLinear(mode, kernel, torch.randn(272, 256, generator=gen), None)
    x = torch.randn(11, 256, generator=gen) * torch.logspace(-2, 2, 11)[:, None]
    threads = torch.get_num_threads()
    with torch.inference_mode():
        together = layer(x)
        for rows in ([0], [0, 1], [2, 3, 4], list(range(3, 11))):
            assert torch.equal(layer(x[rows]), together[rows])
        try:
            torch.set_num_threads(1)
            assert torch.equal(layer(x), together)
        finally:
            torch.set_num_threads(threads)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_a_row_with_nan_or_infinity_gives_nan_and_leaves_the_others_alone(mode, kernel):
    """The engine finds a poisoned stream by its non-finite logits: no kernel may turn NaN into numbers."""
    gen = torch.Generator().manual_seed(6)
    layer = QuantizedLinear(mode, kernel, torch.randn(48, 64, generator=gen), None)
    x = torch.randn(3, 64, generator=gen)
    clean = layer(x)
    x[0, 5], x[2, 7] = float("nan"), float("inf")
    with torch.inference_mode():
        y = layer(x)
    assert torch.isnan(y[0]).all() and not torch.isfinite(y[2]).any()
    assert torch.equal(y[1], clean[1])


def test_the_library_is_built_once_and_shares_torchs_openmp(tmp_path, monkeypatch):
    monkeypatch.setenv("QWEN3TTS_NATIVE_CACHE", str(tmp_path))
    first = native_kernels._build()
    built = first.stat().st_mtime_ns
    assert native_kernels._build() == first and first.stat().st_mtime_ns == built
    # a fresh interpreter loads the cached library and runs it with torch's libgomp only
    code = (
        "import torch; from qwen3tts_realtime.model import native_kernels as n; assert n.unavailable() is None;"
        "n.int8_linear(torch.randn(2, 16), n.pack_int8(torch.ones(8, 16, dtype=torch.int8)), torch.ones(8), None);"
        "print(sorted({l.split()[-1] for l in open('/proc/self/maps') if 'libgomp' in l}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "QWEN3TTS_NATIVE_CACHE": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    (gomp,) = eval(done.stdout)
    assert "torch" in gomp
    assert list(tmp_path.glob("*.so")) == [first]


def test_without_a_compiler_the_kernel_says_why_and_auto_picks_another(tmp_path, monkeypatch):
    monkeypatch.setenv("QWEN3TTS_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler-qwen3tts")
    monkeypatch.setenv("QWEN3TTS_KERNEL_CACHE", str(tmp_path / "kernels.json"))
    native_kernels._load.cache_clear()
    try:
        assert "no C compiler found ('no-such-compiler-qwen3tts'" in native_kernels.unavailable()
        assert "avx2-float32 failed (the native int8/int4 kernels cannot run here: no C compiler" in \
            _unusable("int8", "avx2-float32")
        assert choose_kernel("int8", "auto", (64, 64)) in ("int8pack-bf16", "int8pack-float32")
    finally:
        native_kernels._load.cache_clear()
