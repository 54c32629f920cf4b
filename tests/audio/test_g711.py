"""G.711 mu-law / A-law: bit-exact with CPython's audioop for every input."""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np
import pytest

from qwen3tts_realtime.audio import decode_g711, encode_g711

ALL_PCM16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    """The stdlib audioop (Python <= 3.12, deprecated) or the `audioop-lts` backport (3.13+), else skip."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pytest.importorskip("audioop", reason="needs stdlib audioop or the audioop-lts package")


def test_ulaw_encoding_matches_audioop_for_all_65536_samples(audioop: ModuleType) -> None:
    assert encode_g711(ALL_PCM16, "ulaw") == audioop.lin2ulaw(ALL_PCM16.tobytes(), 2)


def test_alaw_encoding_matches_audioop_for_all_65536_samples(audioop: ModuleType) -> None:
    assert encode_g711(ALL_PCM16, "alaw") == audioop.lin2alaw(ALL_PCM16.tobytes(), 2)


def test_ulaw_decoding_matches_audioop_for_all_256_codes(audioop: ModuleType) -> None:
    expected = np.frombuffer(audioop.ulaw2lin(ALL_CODES, 2), dtype=np.int16)

    assert np.array_equal(decode_g711(ALL_CODES, "ulaw"), expected)


def test_alaw_decoding_matches_audioop_for_all_256_codes(audioop: ModuleType) -> None:
    expected = np.frombuffer(audioop.alaw2lin(ALL_CODES, 2), dtype=np.int16)

    assert np.array_equal(decode_g711(ALL_CODES, "alaw"), expected)


def test_known_codes() -> None:
    pcm = np.array([0, -1, 32767, -32768], dtype=np.int16)

    assert encode_g711(pcm, "ulaw") == bytes([0xFF, 0x7E, 0x80, 0x00])
    assert encode_g711(pcm, "alaw") == bytes([0xD5, 0x55, 0xAA, 0x2A])
    assert decode_g711(bytes([0xFF, 0x80, 0x00]), "ulaw").tolist() == [0, 32124, -32124]
    assert decode_g711(bytes([0xD5, 0xAA, 0x2A]), "alaw").tolist() == [8, 32256, -32256]


def test_aliases_and_input_forms_agree() -> None:
    pcm = np.arange(-32768, 32768, 97, dtype=np.int16)
    codes = encode_g711(pcm, "ulaw")

    assert encode_g711(pcm, "PCMU") == encode_g711(pcm, "mulaw") == codes
    assert encode_g711(pcm, "PCMA") == encode_g711(pcm, "alaw")
    decoded = decode_g711(codes, "ulaw")
    assert decoded.dtype == np.int16 and decoded.shape == pcm.shape
    for form in (bytearray(codes), memoryview(codes), np.frombuffer(codes, dtype=np.uint8)):
        assert np.array_equal(decode_g711(form, "ulaw"), decoded)


@pytest.mark.parametrize("encoding", ["gsm", "u-law", "", None])
def test_unknown_encoding_is_rejected_with_the_accepted_names(encoding: object) -> None:
    with pytest.raises(ValueError, match="accepted: 'ulaw', 'mulaw', 'pcmu', 'alaw', 'pcma'"):
        encode_g711(np.zeros(4, dtype=np.int16), encoding)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown G.711 encoding"):
        decode_g711(b"\x00", encoding)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pcm", "message"),
    [
        (np.zeros(4, dtype=np.float32), "int16, got float32"),
        (np.zeros((2, 2), dtype=np.int16), r"1-D \(mono\)"),
        (b"\x00\x00", "numpy array"),
    ],
)
def test_encode_rejects_anything_but_1d_int16(pcm: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_g711(pcm, "ulaw")  # type: ignore[arg-type]


def test_decode_rejects_non_byte_arrays() -> None:
    with pytest.raises(ValueError, match="uint8, got int16"):
        decode_g711(np.zeros(4, dtype=np.int16), "alaw")
