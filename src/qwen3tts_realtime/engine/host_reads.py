"""Counted device-to-host reads. The generation path reads tensors back to the host only through `host_read`:
one read per engine step (codes, ends, finite flags), one per decode call (the audio), and a prefill read only
when a stream could end before its first frame. A thread that wants the counts (the engine thread, a benchmark)
opens `counting(counter)`; the counter then holds reads by kind, which `Engine.stats()` reports."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor

__all__ = ["host_read", "host_copy", "counting"]

_local = threading.local()


@contextmanager
def counting(counter: Counter[str]) -> Iterator[Counter[str]]:
    """Count this thread's host reads into `counter` (by kind) while the block runs."""
    previous = getattr(_local, "counter", None)
    _local.counter = counter
    try:
        yield counter
    finally:
        _local.counter = previous


def _count(kind: str) -> None:
    counter = getattr(_local, "counter", None)
    if counter is not None:
        counter[kind] += 1


def host_read(t: Tensor, kind: str) -> list:
    """`t.tolist()`, counted under `kind`."""
    _count(kind)
    return t.tolist()


def host_copy(t: Tensor, kind: str) -> Tensor:
    """`t.cpu()` (one transfer), counted under `kind`."""
    _count(kind)
    return t.cpu()
