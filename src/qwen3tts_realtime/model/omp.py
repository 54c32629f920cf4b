"""Release a thread's OpenMP worker threads when it stops computing, so other threads' torch work runs at full speed.

Does:
    GNU OpenMP (libgomp, which torch's Linux wheels use) keeps a pool of worker threads for every thread that has
    run a parallel region, for the life of that thread. Once the pools together hold more threads than the machine
    has cores, libgomp stops letting its workers spin between parallel regions, and every region then waits for
    its workers to be woken: on this project's 2-core machine a small layer went from 8.6 to 57 us per call, and a
    0.6B engine step ran 20-30% slower, as soon as the thread that loaded the model had run any torch op. The
    engine therefore calls `release_omp_workers()` on its own thread before it goes idle, and the model's methods
    that compute on the caller's thread (loading, cloning, offline generation) call it when they return
    (`omp_pause_resource_all(omp_pause_soft)` frees the calling thread's pool only; its next parallel region
    builds a new one, which costs microseconds).
Does not:
    Anything where libgomp is not loaded (macOS, Windows, other OpenMP runtimes) or inside a parallel region.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
from collections.abc import Callable
from functools import cache
from typing import Any, ParamSpec, TypeVar

__all__ = ["release_omp_workers", "releases_omp_workers"]

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)

_OMP_PAUSE_SOFT = 1


def release_omp_workers() -> bool:
    """Free the calling thread's OpenMP worker pool; True if done (False where libgomp is not in use)."""
    pause = _pause_function()
    return pause is not None and pause(_OMP_PAUSE_SOFT) == 0


@cache
def _pause_function() -> Any:
    """`omp_pause_resource_all` of the libgomp this process has loaded (torch's), or None."""
    if sys.platform != "linux":
        return None
    import torch  # noqa: F401 - loads torch's OpenMP runtime before it is looked up

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line}
    except OSError:
        return None
    for path in sorted(paths):
        if not os.path.isfile(path):
            continue
        try:
            fn = ctypes.CDLL(path).omp_pause_resource_all
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        log.debug("releasing idle OpenMP workers through %s", path)
        return fn
    return None


def releases_omp_workers(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a method that computes on its caller's thread: the thread's OpenMP workers are released after."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            release_omp_workers()

    return wrapper
