"""RateChanger (WSOLA): duration, pitch, chunking, pass-through, latency, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from qwen3tts_realtime.audio import RateChanger

SR = 24000
RATES = [0.5, 0.8, 1.25, 2.0]


def tone(freq_hz: float = 220.0, seconds: float = 2.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def stretch(rc: RateChanger, chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([rc.process(c) for c in chunks] + [rc.flush()])


def random_chunks(x: np.ndarray, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, x.shape[0]), size=x.shape[0] // 700, replace=False))
    return np.split(x, cuts)


def peak_hz(y: np.ndarray) -> float:
    """Frequency of the spectral peak, 0.02 Hz resolution (zero-padded FFT of a Hann-windowed signal)."""
    n = 1 << 20
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.shape[0]), n))
    return float(np.argmax(spectrum) * SR / n)


@pytest.mark.parametrize("rate", RATES)
def test_duration_is_input_over_rate(rate: float) -> None:
    x = tone(seconds=2.0)

    y = stretch(RateChanger(rate=rate, sample_rate=SR), [x])

    assert y.dtype == np.float32
    assert y.shape[0] == round(48_000 / rate)  # exact, hence within 2 %
    assert abs(y.shape[0] / SR - 2.0 / rate) <= 0.02 * 2.0 / rate


@pytest.mark.parametrize("rate", RATES)
def test_pitch_of_a_220_hz_tone_is_kept(rate: float) -> None:
    y = stretch(RateChanger(rate=rate, sample_rate=SR), [tone(220.0)])

    middle = y[y.shape[0] // 8 : -y.shape[0] // 8]
    assert peak_hz(middle) == pytest.approx(220.0, rel=0.02)
    # Level and continuity are kept too: RMS of a 0.5 sine, and no step larger than the sine's slope.
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    assert np.max(np.abs(np.diff(y))) <= 2 * np.pi * 220.0 / SR * 0.5 * 1.02


@pytest.mark.parametrize("rate", RATES)
def test_random_chunking_does_not_change_the_output(rate: float) -> None:
    x = (0.2 * np.random.default_rng(11).standard_normal(SR)).astype(np.float32)

    whole = stretch(RateChanger(rate=rate, sample_rate=SR), [x])
    chunked = stretch(RateChanger(rate=rate, sample_rate=SR), random_chunks(x, seed=int(rate * 100)))

    assert chunked.shape == whole.shape  # not even one sample (let alone one frame) apart
    assert np.max(np.abs(chunked - whole)) <= 1e-6


def test_rate_one_is_an_exact_pass_through_with_the_same_chunking() -> None:
    x = (0.3 * np.random.default_rng(2).standard_normal(5000)).astype(np.float32)
    chunks = random_chunks(x, seed=3)
    rc = RateChanger(rate=1.0, sample_rate=SR)

    outs = [rc.process(c) for c in chunks]

    assert all(np.array_equal(o, c) for o, c in zip(outs, chunks, strict=True))
    assert rc.flush().shape == (0,)
    assert rc.lookahead_ms == 0.0


@pytest.mark.parametrize("rate", RATES)
def test_latency_is_bounded_by_lookahead_ms(rate: float) -> None:
    rc = RateChanger(rate=rate, sample_rate=SR)
    x = tone(seconds=1.0)
    chunk = SR // 100  # 10 ms
    lookahead = rc.lookahead_ms * SR / 1000
    assert rc.lookahead_ms == (40.0 if rate <= 1.0 else 10.0 + 15.0 + 15.0 * rate)

    produced = 0
    for start in range(0, x.shape[0], chunk):
        produced += rc.process(x[start : start + chunk]).shape[0]
        consumed = start + chunk
        # Input not yet reflected in the output never exceeds the stated look-ahead.
        assert consumed - produced * rate <= lookahead


def test_flush_makes_it_ready_for_the_next_stream() -> None:
    x = tone(330.0, seconds=0.5)
    reused = RateChanger(rate=1.25, sample_rate=SR)
    stretch(reused, [tone(seconds=0.3)])

    assert np.array_equal(stretch(reused, [x]), stretch(RateChanger(rate=1.25, sample_rate=SR), [x]))
    assert stretch(reused, []).shape == (0,)


@pytest.mark.parametrize("rate", [0.49, 2.01, 0.0, -1.0, float("nan"), True, "1.5"])
def test_rate_outside_half_to_double_is_rejected(rate: object) -> None:
    with pytest.raises(ValueError, match="accepted: 0.5 to 2.0"):
        RateChanger(rate=rate, sample_rate=SR)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("chunk", "message"),
    [
        (np.zeros(10, dtype=np.float64), "float32, got float64"),
        (np.zeros((10, 1), dtype=np.float32), r"1-D \(mono\)"),
    ],
)
def test_wrong_chunk_is_rejected(chunk: np.ndarray, message: str) -> None:
    for rate in (1.0, 1.5):
        with pytest.raises(ValueError, match=message):
            RateChanger(rate=rate, sample_rate=SR).process(chunk)
