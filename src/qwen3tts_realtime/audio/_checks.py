"""Argument checks shared by the audio modules.

Does: validate mono audio arrays (1-D, an accepted dtype) and sample-rate arguments, raising
`InvalidInputError` (a `ValueError`) whose message names the value, the accepted values and the fix.
Does not: convert or copy audio, or know anything about streaming.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

from qwen3tts_realtime.errors import InvalidInputError

__all__ = ["require_mono", "require_positive_int", "require_number"]


def require_mono(audio: object, *, accepted: Iterable[np.dtype | type], where: str) -> np.ndarray:
    """Return `audio` unchanged when it is a 1-D numpy array of an accepted dtype.

    Args:
        audio: the value to check.
        accepted: the dtypes allowed (e.g. `(np.float32,)`).
        where: the caller, named in the message (e.g. `"StreamResampler.process"`).

    Returns:
        `audio` itself (no copy).

    Raises:
        InvalidInputError: not a numpy array, not 1-D, or a dtype outside `accepted`.
    """
    dtypes = [np.dtype(d) for d in accepted]
    names = " or ".join(d.name for d in dtypes)
    if not isinstance(audio, np.ndarray):
        raise InvalidInputError(
            f"{where} expects a 1-D numpy array of {names} (mono samples), got {type(audio).__name__}; "
            f"wrap it with np.asarray(x, dtype=np.{dtypes[0].name})"
        )
    if audio.ndim != 1:
        raise InvalidInputError(
            f"{where} expects a 1-D (mono) array of {names}, got shape {audio.shape}; "
            "pass one channel, e.g. x[:, 0] or x.mean(axis=1) for interleaved stereo"
        )
    if audio.dtype not in dtypes:
        raise InvalidInputError(
            f"{where} expects dtype {names}, got {audio.dtype.name}; "
            f"convert with x.astype(np.{dtypes[0].name})"
        )
    return audio


def require_positive_int(value: object, *, name: str, where: str) -> int:
    """Return `value` as an int when it is a positive integer (bool excluded).

    Raises:
        InvalidInputError: anything else; the message names `name`, the value and what is accepted.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) <= 0:
        raise InvalidInputError(f"{where}: {name} must be a positive integer (Hz), got {value!r}")
    return int(value)


def require_number(value: object, *, name: str, where: str, low: float, high: float) -> float:
    """Return `value` as a float when it is a finite real number in `[low, high]`.

    Raises:
        InvalidInputError: not a real number (bool excluded), NaN/inf, or outside the range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(float(value)):
        raise InvalidInputError(f"{where}: {name} must be a finite number in [{low}, {high}], got {value!r}")
    result = float(value)
    if not low <= result <= high:
        raise InvalidInputError(f"{where}: {name} must be in [{low}, {high}], got {value!r}")
    return result
