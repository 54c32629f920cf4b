"""The static KV cache's memory: zero-filled buffers that become resident only where streams write (a cache sized
for every slot and the longest stream would otherwise hold all of it), grown without touching what no stream
wrote."""

from __future__ import annotations

import sys

import pytest
import torch

from qwen3tts_realtime.model.config import TransformerConfig
from qwen3tts_realtime.model.transformer import KVCache, lazy_zeros

CONFIG = TransformerConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=128, rms_norm_eps=1e-6, rope_theta=10000.0,
                           vocab_size=32, num_code_groups=16)


def resident_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_lazy_zeros_are_zeros_that_can_be_written():
    t = lazy_zeros((4, 2, 1024, 128), torch.float32, torch.device("cpu"))
    assert t.shape == (4, 2, 1024, 128) and t.dtype == torch.float32 and t.is_contiguous()
    assert not t.any()
    t[1, :, 5] = 2.0
    assert float(t.sum()) == 2.0 * 2 * 128
    small = lazy_zeros((3, 4), torch.float32, torch.device("cpu"))  # below the threshold: plain zeros
    assert not small.any()


@pytest.mark.skipif(sys.platform != "linux", reason="reads resident memory from /proc")
def test_a_large_cache_holds_memory_only_where_it_is_written():
    before = resident_mib()
    cache = KVCache.allocate(CONFIG, rows=8, max_len=4096, dtype=torch.float32, device=torch.device("cpu"))
    size = 2 * CONFIG.num_hidden_layers * 8 * 2 * 4096 * 128 * 4 / 2**20  # 128 MiB
    allocated = resident_mib() - before
    for t in cache.k + cache.v:
        t[0, :, :256] = 1.0  # one stream, 256 positions: 1/128 of the cache
    written = resident_mib() - before
    assert allocated < 0.05 * size and written < 0.1 * size, (allocated, written, size)


def test_growing_copies_each_rows_filled_positions_only():
    cache = KVCache.allocate(CONFIG, rows=2, max_len=8, dtype=torch.float32, device=torch.device("cpu"))
    for t in cache.k + cache.v:
        t.copy_(torch.randn(t.shape))
    grown = cache.grown(3, 16, lengths=[5, 2])
    for old, new in zip(cache.k + cache.v, grown.k + grown.v, strict=True):
        assert new.shape == (3, 2, 16, 128)
        assert torch.equal(new[0, :, :5], old[0, :, :5]) and torch.equal(new[1, :, :2], old[1, :, :2])
        assert not new[0, :, 5:].any() and not new[1, :, 2:].any() and not new[2].any()
    everything = cache.grown(2, 16)
    assert all(torch.equal(new[:, :, :8], old) for old, new in zip(cache.k, everything.k, strict=True))
