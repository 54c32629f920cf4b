"""Float audio to 16-bit PCM.

Does: convert float samples in [-1, 1] to int16 with one documented convention (clip, scale by 32767,
round half to even, NaN -> 0).
Does not: dither, normalise loudness, pack bytes (use `.tobytes()`; the array is native-endian, little-endian
on every platform this package supports), or convert back (that is `pcm.astype(np.float32) / 32767`).
"""

from __future__ import annotations

import numpy as np

from qwen3tts_realtime.audio._checks import require_mono

__all__ = ["PCM16_SCALE", "to_pcm16"]

PCM16_SCALE = 32767
"""Full scale used by `to_pcm16`: 1.0 maps to 32767 and -1.0 to -32767."""


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Convert float samples to 16-bit PCM.

    Convention: NaN becomes 0; values are clipped to [-1.0, 1.0] (so +inf -> 32767, -inf -> -32767),
    multiplied by 32767 in float64 and rounded to the nearest integer, ties to even (`np.rint`). Symmetric:
    -32768 is never produced, and `to_pcm16(pcm / 32767)` returns `pcm` for every int16 value except -32768.
    (libsndfile/soundfile scale by 32768 instead, so -1.0 -> -32768 there; the two differ by at most 1 LSB
    below full scale.)

    Args:
        audio: 1-D float32 or float64 samples, nominally in [-1, 1].

    Returns:
        1-D int16 array of the same length.

    Raises:
        InvalidInputError: (a ValueError) `audio` is not a 1-D float32/float64 numpy array.
    """
    require_mono(audio, accepted=(np.float32, np.float64), where="to_pcm16")
    scaled = np.nan_to_num(audio.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(scaled, -1.0, 1.0, out=scaled)
    scaled *= PCM16_SCALE
    return np.rint(scaled).astype(np.int16)
