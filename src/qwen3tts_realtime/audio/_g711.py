"""G.711 mu-law and A-law companding of 16-bit PCM, in numpy.

Does: encode int16 samples to 8-bit G.711 codes and decode them back, with 65536-entry and 256-entry lookup
tables built once at import. Results are bit-exact with CPython's `audioop` (`lin2ulaw`, `lin2alaw`,
`ulaw2lin`, `alaw2lin`, width 2), which Python 3.13 removed and this package therefore does not import.
Does not: resample (G.711 telephony is 8000 Hz; see `StreamResampler`), frame packets, or handle RTP.
"""

from __future__ import annotations

import numpy as np

from qwen3tts_realtime.audio._checks import require_mono
from qwen3tts_realtime.errors import InvalidInputError

__all__ = ["G711_ENCODINGS", "encode_g711", "decode_g711"]

G711_ENCODINGS: dict[str, str] = {
    "ulaw": "ulaw",
    "mulaw": "ulaw",
    "pcmu": "ulaw",
    "alaw": "alaw",
    "pcma": "alaw",
}
"""Accepted encoding names (case-insensitive) and the law each one means."""

# Segment end points of the reference (Sun / CCITT) implementation that audioop uses.
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_CLIP = 8159
_ULAW_BIAS_14 = 0x84 >> 2


def _ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """mu-law codes of int16 samples: audioop's st_14linear2ulaw(sample >> 2)."""
    x = pcm.astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS_14
    seg = np.searchsorted(_SEG_UEND, mag, side="left")
    code = (np.minimum(seg, 7) << 4) | ((mag >> np.minimum(seg + 1, 8)) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _alaw_encode(pcm: np.ndarray) -> np.ndarray:
    """A-law codes of int16 samples: audioop's st_linear2alaw(sample >> 3)."""
    x = pcm.astype(np.int32) >> 3
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.where(x >= 0, x, -x - 1)
    seg = np.searchsorted(_SEG_AEND, mag, side="left")
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _ulaw_decode(codes: np.ndarray) -> np.ndarray:
    """Linear int16 values of mu-law codes (audioop's st_ulaw2linear16)."""
    u = (~codes.astype(np.int32)) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_decode(codes: np.ndarray) -> np.ndarray:
    """Linear int16 values of A-law codes (audioop's st_alaw2linear16)."""
    a = codes.astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


# Encoders are indexed by the sample's bit pattern (pcm.view(np.uint16)), decoders by the code byte.
_ALL_PCM16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.int16)
_ALL_CODES = np.arange(256, dtype=np.uint8)
_ENCODE_LUT = {"ulaw": _ulaw_encode(_ALL_PCM16), "alaw": _alaw_encode(_ALL_PCM16)}
_DECODE_LUT = {"ulaw": _ulaw_decode(_ALL_CODES), "alaw": _alaw_decode(_ALL_CODES)}
for _table in (*_ENCODE_LUT.values(), *_DECODE_LUT.values()):
    _table.setflags(write=False)


def _law(encoding: object, where: str) -> str:
    law = G711_ENCODINGS.get(encoding.lower()) if isinstance(encoding, str) else None
    if law is None:
        accepted = ", ".join(repr(name) for name in G711_ENCODINGS)
        raise InvalidInputError(
            f"{where}: unknown G.711 encoding {encoding!r}; accepted: {accepted} (case-insensitive)"
        )
    return law


def encode_g711(pcm16: np.ndarray, encoding: str) -> bytes:
    """Encode 16-bit PCM to G.711, one byte per sample.

    Args:
        pcm16: 1-D int16 samples (from `to_pcm16`, or `np.frombuffer(data, "<i2")` for raw bytes).
        encoding: "ulaw" (aliases "mulaw", "pcmu") or "alaw" (alias "pcma"), case-insensitive.

    Returns:
        The G.711 codes, `len(pcm16)` bytes, identical to `audioop.lin2ulaw` / `audioop.lin2alaw` (width 2).

    Raises:
        InvalidInputError: (a ValueError) unknown encoding, or `pcm16` not a 1-D int16 numpy array.
    """
    law = _law(encoding, "encode_g711")
    require_mono(pcm16, accepted=(np.int16,), where="encode_g711")
    return _ENCODE_LUT[law][pcm16.view(np.uint16)].tobytes()


def decode_g711(data: bytes | bytearray | memoryview | np.ndarray, encoding: str) -> np.ndarray:
    """Decode G.711 codes to 16-bit PCM.

    Args:
        data: the codes, one byte per sample: bytes-like, or a 1-D uint8 numpy array.
        encoding: "ulaw" (aliases "mulaw", "pcmu") or "alaw" (alias "pcma"), case-insensitive.

    Returns:
        1-D int16 array, one sample per byte, identical to `audioop.ulaw2lin` / `audioop.alaw2lin` (width 2).

    Raises:
        InvalidInputError: (a ValueError) unknown encoding, or `data` neither bytes-like nor a 1-D uint8
            array.
    """
    law = _law(encoding, "decode_g711")
    if isinstance(data, bytes | bytearray | memoryview):
        codes = np.frombuffer(data, dtype=np.uint8)
    else:
        codes = require_mono(data, accepted=(np.uint8,), where="decode_g711")
    return _DECODE_LUT[law][codes]
