"""to_pcm16: clip, scale by 32767, round half to even, NaN -> 0."""

from __future__ import annotations

import numpy as np
import pytest

from qwen3tts_realtime.audio import to_pcm16


def test_rounding_clipping_and_non_finite_values() -> None:
    x = np.array(
        [0.0, 0.5, 1.5, 2.5, -0.5, -1.5, 32766.5, 32767.0, -32767.0, 40000.0, -40000.0], dtype=np.float64
    )
    x /= 32767  # the half-way values above are exact after this division
    special = np.array([np.nan, np.inf, -np.inf, 1.0, -1.0])

    pcm = to_pcm16(np.concatenate([x, special]))

    assert pcm.dtype == np.int16
    # ties go to the even neighbour; -32768 is never produced (symmetric scale)
    assert pcm[:11].tolist() == [0, 0, 2, 2, 0, -2, 32766, 32767, -32767, 32767, -32767]
    assert pcm[11:].tolist() == [0, 32767, -32767, 32767, -32767]  # nan, inf, -inf, 1.0, -1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_int16_value_round_trips_through_float(dtype: type) -> None:
    pcm = np.arange(-32767, 32768, dtype=np.int16)

    assert np.array_equal(to_pcm16((pcm / 32767).astype(dtype)), pcm)


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros(4, dtype=np.int16), "float32 or float64, got int16"),
        (np.zeros((2, 2), dtype=np.float32), r"1-D \(mono\)"),
        (0.5, "numpy array"),
    ],
)
def test_wrong_input_is_rejected(audio: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_pcm16(audio)  # type: ignore[arg-type]
