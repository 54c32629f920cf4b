"""Give freed heap memory back to the operating system after loading.

Loading converts or quantizes tensors one at a time; the float temporaries are freed, but glibc keeps freed
blocks inside its heap, where they still count as the process's resident memory (about 0.6 GiB after loading a
quantized 0.6B model). `malloc_trim(0)` returns every whole free page. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

__all__ = ["release_free_heap"]

log = logging.getLogger(__name__)


def release_free_heap() -> bool:
    """Return free heap pages to the OS; True when glibc did it."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


@cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS, Windows)
        log.debug("malloc_trim unavailable (%s)", name)
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim
